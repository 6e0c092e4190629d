"""Backups and restores through the playbooks, on one project (real engine, real PostgreSQL, stand-ins).

The tests run in file order on a shared project, and each restore proves several things (a restore
with its start and its closing backup is the expensive step; the suite has two, and one that fails):
1. a backup and its checks, listing, file modes, sealed settings;
2. a clone at a point in time (restore_source_ref + recovery_target_time): exactly the rows before
   the target, the storage object byte-identical, its own keys and ports, the closing backup in its
   own repository, the source untouched;
3. a restore in place to the latest point after the database and its volume are lost: every row,
   the last one written just before the kill (waited for in the agent's WAL, not slept for);
4. a backup killed mid-way (nothing listed, the next succeeds and is copied into a restic repository:
   its snapshot tagged with the project and the backup, whole, encrypted); a restore in place from
   it, its base archive rotten, fails mid-way and leaves the running project as it was; a restore
   with a bad target changes nothing;
5. the corrupted dump of that backup is caught by the check and marked FAILED (the newest backup is
   then FAILED: the restores run before it);
6. a paused project's backup (it stays paused); a delete whose final backup fails deletes nothing
   (the delete with the default final backup and the restore of the deleted project run through the
   daemon, on its live project: daemon/tests/test_database_api.py); the deleted project's backups go
   when its retention ends; no secret in any output.
"""

import json
import os
import secrets
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import REPO, pooler_query, run
from tests.integration.role.conftest import docker_names, random_ref

pytestmark = pytest.mark.docker

SECRET_NAMES = [
    "POSTGRES_PASSWORD",
    "JWT_SECRET",
    "ANON_KEY",
    "SERVICE_ROLE_KEY",
    "DASHBOARD_PASSWORD",
    "VAULT_ENC_KEY",
]
# Lighter projects for a machine shared with other suites: no logging pair, the role's default
# healthcheck interval (2 s checks starve stand-ins on a loaded host), and imgproxy's check a TCP
# connect in bash (the stand-in's `imgproxy health` is a Python start-up, which timed out at a
# load of 30 and failed a restore's start).
LIGHT = {
    "supabase_logs_enabled": False,
    "supabase_healthcheck_interval": "5s",
    "supabase_healthcheck_overrides": {
        "imgproxy": {"test": ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5001"], "timeout": "20s", "retries": 5}
    },
    "supabase_backup_wal_enabled": True,
    "delete_backup": True,
}


def fact(host, playbook, ref, name, outputs, **extra):
    """Run a playbook; return the fact its last task prints (through the tree callback)."""
    tree = host.root.parent / f"tree-{ref}-{secrets.token_hex(3)}"
    varfile = host.root.parent / f"vars-{ref}-{playbook}-{secrets.token_hex(3)}.json"
    varfile.write_text(json.dumps({**host.vars, **LIGHT, "project_ref": ref, **extra}))
    env = {**host.env, "ANSIBLE_CALLBACKS_ENABLED": "tree", "ANSIBLE_CALLBACK_TREE_DIR": str(tree)}
    host.refs.add(ref)
    proc = run(
        ["ansible-playbook", str(REPO / "playbooks" / f"{playbook}.yml"), "-e", f"@{varfile}"], env=env, timeout=1800
    )
    outputs.append(proc.stdout + proc.stderr)
    return json.loads((tree / "localhost").read_text())[name]


def fails(host, playbook, ref, outputs, **extra):
    proc = host.playbook(playbook, ref, check=False, **LIGHT, **extra)
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode != 0, proc.stdout[-2000:]
    return " ".join(proc.stdout.split())


def notes(env):
    return [row[0] for row in pooler_query(env, "select note from notes order by id")]


def gateway(env, method, path, key, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{env['KONG_HTTP_PORT']}{path}",
        data=body,
        method=method,
        headers={"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 (127.0.0.1 only)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def next_second():
    """A recovery target (unix seconds) later than every commit so far; returns once it has passed.

    Commit timestamps have microseconds: a target on the next whole second is after the last commit,
    and a commit once that second has begun is after the target.
    """
    target = int(time.time()) + 1
    while time.time() < target + 0.05:
        time.sleep(0.05)
    return target


def wait_until_the_agent_has(ref, host, marker, timeout=120):
    """Wait until the backup agent has written a row's text into the WAL on the host (WAL records
    carry inserted values in clear): the row is then safe from a loss of the database."""
    chain = host.root / "backups" / ref / "wal" / "current"
    deadline = time.monotonic() + timeout
    while not any(marker.encode() in path.read_bytes() for path in chain.iterdir() if path.is_file()):
        assert time.monotonic() < deadline, "the backup agent did not receive the row"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def project(host):
    ref = random_ref("b")
    outputs = []
    created = host.playbook("create", ref, **LIGHT)
    outputs.append(created.stdout + created.stderr)
    env = host.dotenv(ref)
    pooler_query(env, "create table notes (id serial primary key, note text not null)")
    pooler_query(env, "insert into notes (note) values ('before the backup')")
    return {"ref": ref, "env": env, "outputs": outputs, "secrets": [env[name] for name in SECRET_NAMES]}


@pytest.fixture(scope="module")
def first_backup(project, host):
    obj = os.urandom(70000)
    status, _ = gateway(
        project["env"], "POST", "/storage/v1/object/files/blob.bin", project["env"]["SERVICE_ROLE_KEY"], obj
    )
    assert status == 200
    backup = fact(host, "backup", project["ref"], "supabase_backup", project["outputs"])
    return {"backup": backup, "object": obj}


def test_backup_is_complete_checked_listed_and_private(project, host, first_backup):
    backup = first_backup["backup"]
    assert backup["status"] == "COMPLETED", backup
    assert backup["size"] > 0 and isinstance(backup["id"], int)
    assert {c["name"] for c in backup["checks"]} >= {"base/base.tar.gz", "storage.tar", "functions.tar"}
    assert any(c["name"].startswith("db/") for c in backup["checks"]) and all(c["ok"] for c in backup["checks"])
    assert set(backup["databases"]) >= {"postgres", "_supabase"}
    listed = fact(host, "backup", project["ref"], "supabase_backups", project["outputs"], supabase_backup_action="list")
    assert [b["id"] for b in listed["backups"]] == [backup["id"]]
    assert listed["window"]["earliest"] == backup["base_end"]
    # every directory 0700, every file 0600, the settings sealed (no secret in any file in clear)
    repo = host.root / "backups" / project["ref"]
    for path in [repo, *repo.rglob("*")]:
        if path.is_symlink():
            continue
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    archive = repo / "archive" / str(backup["id"])
    assert (archive / "settings.tar.enc").read_bytes().startswith(b"Salted__")
    assert not (archive / "dbconfig.tar").exists()
    for path in archive.rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            data = path.read_bytes()
            assert not any(s.encode() in data for s in project["secrets"]), path
    key = host.root / "secrets" / "backup.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_clone_at_a_point_in_time_has_the_rows_before_it_the_object_and_its_own_keys(project, host, first_backup):
    """A point-in-time restore into a new project: rows written at t1 < t2 < target < t3 give exactly
    the t1 and t2 rows; the object uploaded before the backup is byte-identical; the clone answers
    with its own keys only, and its closing backup is its own; the source is untouched."""
    env = project["env"]
    pooler_query(env, "insert into notes (note) values ('t1')")
    pooler_query(env, "insert into notes (note) values ('t2')")
    target = next_second()
    pooler_query(env, "insert into notes (note) values ('t3')")
    clone = random_ref("c")
    restored = fact(
        host,
        "restore",
        clone,
        "supabase_restore",
        project["outputs"],
        restore_source_ref=project["ref"],
        recovery_target_time=str(target),
    )
    assert restored["source_ref"] == project["ref"] and restored["target"] == "time"
    assert int(restored["backup_id"]) == first_backup["backup"]["id"]
    clone_env = host.dotenv(clone)
    project["secrets"] += [clone_env[name] for name in SECRET_NAMES]
    assert notes(clone_env) == ["before the backup", "t1", "t2"]
    for name in ["POSTGRES_PASSWORD", "JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "KONG_HTTP_PORT"]:
        assert clone_env[name] != env[name], name
    status, body = gateway(clone_env, "GET", "/storage/v1/object/files/blob.bin", clone_env["SERVICE_ROLE_KEY"])
    assert status == 200 and body == first_backup["object"]
    assert gateway(clone_env, "GET", "/storage/v1/object/files/blob.bin", env["SERVICE_ROLE_KEY"])[0] == 401
    # the restore took a backup on the clone's new history, in the clone's own repository
    new_id = int(restored["new_backup_id"])
    assert new_id > first_backup["backup"]["id"]
    assert (host.root / "backups" / clone / "archive" / str(new_id) / "backup.json").is_file()
    assert not (host.root / "backups" / project["ref"] / "archive" / str(new_id)).exists()
    # the source still runs with all its rows
    assert notes(env) == ["before the backup", "t1", "t2", "t3"]
    host.playbook("delete", clone, delete_volumes=True, delete_backup=False)


def test_restore_to_the_latest_point_after_the_database_and_its_volume_are_lost(project, host):
    env, ref = project["env"], project["ref"]
    pooler_query(env, "insert into notes (note) values ('just before the loss')")
    wait_until_the_agent_has(ref, host, "just before the loss")
    run(["docker", "kill", f"supamanager-{ref}-db"], env=None)
    run(["docker", "rm", f"supamanager-{ref}-db"], env=None)
    run(["docker", "volume", "rm", f"supamanager-{ref}-db-data"], env=None)
    restored = fact(host, "restore", ref, "supabase_restore", project["outputs"])
    assert restored["target"] == "latest"
    assert notes(env) == ["before the backup", "t1", "t2", "t3", "just before the loss"]
    assert int(restored["new_backup_id"]) > int(restored["backup_id"])


def test_kill_9_mid_backup_leaves_nothing_listed_and_the_next_backup_succeeds_and_is_copied_off_the_host(project, host):
    ref = project["ref"]
    varfile = host.root.parent / f"vars-{ref}-kill.json"
    varfile.write_text(json.dumps({**host.vars, **LIGHT, "project_ref": ref}))
    before = [
        b["id"]
        for b in fact(host, "backup", ref, "supabase_backups", project["outputs"], supabase_backup_action="list")[
            "backups"
        ]
    ]
    proc = subprocess.Popen(
        ["ansible-playbook", str(REPO / "playbooks" / "backup.yml"), "-e", f"@{varfile}"],
        cwd=REPO,
        env=host.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    archive = host.root / "backups" / ref / "archive"
    deadline = time.monotonic() + 600
    while not any((p / "base").exists() for p in archive.glob(".tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the backup did not start writing"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    listed = fact(host, "backup", ref, "supabase_backups", project["outputs"], supabase_backup_action="list")
    assert [b["id"] for b in listed["backups"]] == before
    # The next backup, copied off the host too: a restic repository (Debian's restic, a local path).
    off_host, password = host.root.parent / "restic", host.root.parent / "restic.pass"
    password.write_text(secrets.token_hex(16))
    password.chmod(0o600)
    project["secrets"].append(password.read_text())
    restic = ["restic", "--repo", str(off_host), "--password-file", str(password), "--no-cache"]
    run([*restic, "init"], env=None)
    after = fact(
        host,
        "backup",
        ref,
        "supabase_backup",
        project["outputs"],
        supabase_backup_restic_repository=str(off_host),
        supabase_backup_restic_password_file=str(password),
    )
    assert after["status"] == "COMPLETED"
    assert not list(archive.glob(".tmp-*"))
    assert not [n for n in docker_names("container", ref) if n.endswith("-backup-take")]
    snapshots = json.loads(run([*restic, "snapshots", "--json"], env=None).stdout)
    assert [set(s["tags"]) for s in snapshots] == [{f"supamanager-{ref}", f"backup-{after['id']}"}]
    manifest = archive / str(after["id"]) / "backup.json"
    copied = run([*restic, "dump", snapshots[0]["id"], str(manifest)], env=None).stdout
    assert copied == manifest.read_text()
    # encrypted: no file of the restic repository holds the manifest, or the settings' archive, in clear
    sealed = (archive / str(after["id"]) / "settings.tar.enc").read_bytes()[:64]
    for path in off_host.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b'"base_end"' not in data and sealed not in data, path


def test_a_restore_that_fails_midway_leaves_the_running_project_as_it_was(project, host):
    """A restore in place of the running project from a backup whose base archive has rotted since its
    checks (its checksums are not read again before a restore): the project is stopped, the recovery
    fails, and the project runs again, healthy, with every row, its backup agent on its own WAL chain."""
    ref, env = project["ref"], project["env"]
    before = notes(env)
    listed = fact(host, "backup", ref, "supabase_backups", project["outputs"], supabase_backup_action="list")
    rotted = listed["backups"][-1]  # the one copied off the host (the retention keeps one a day)
    assert rotted["status"] == "COMPLETED"
    base = host.root / "backups" / ref / "archive" / str(rotted["id"]) / "base" / "base.tar.gz"
    data = bytearray(base.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = os.urandom(4096)
    base.write_bytes(bytes(data))
    chain = (host.root / "backups" / ref / "wal" / "current").resolve()
    out = fails(host, "restore", ref, project["outputs"], backup_id=str(rotted["id"]))
    assert "Restoring project" in out and "The project is as it was before the restore." in out, out[-2000:]
    assert "unpack the base backup" in out  # it failed in the recovery, after the project was stopped
    assert host.status(ref)["status"] == "ACTIVE_HEALTHY"
    assert notes(env) == before
    assert (host.root / "backups" / ref / "wal" / "current").resolve() == chain
    assert not [n for n in docker_names("volume", ref) if "-restore-" in n]


def test_a_restore_with_a_bad_target_changes_nothing(project, host):
    before = notes(host.dotenv(project["ref"]))
    out = fails(host, "restore", project["ref"], project["outputs"], recovery_target_time="yesterday")
    assert "recovery target time must be unix seconds or ISO 8601" in out
    out = fails(host, "restore", project["ref"], project["outputs"], recovery_target_time="1000000000")
    assert "before the recovery window" in out
    assert notes(host.dotenv(project["ref"])) == before


def test_a_corrupted_archive_is_caught_and_marked_failed(project, host):
    ref = project["ref"]
    listed = fact(host, "backup", ref, "supabase_backups", project["outputs"], supabase_backup_action="list")
    newest = listed["backups"][-1]
    dump = next((host.root / "backups" / ref / "archive" / str(newest["id"]) / "db").glob("*.dump"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[:5] = b"XXXXX"
    dump.write_bytes(bytes(data))
    verified = fact(
        host,
        "backup",
        ref,
        "supabase_backup",
        project["outputs"],
        supabase_backup_action="verify",
        backup_id=str(newest["id"]),
    )
    assert verified["status"] == "FAILED"
    failed = {c["name"] for c in verified["checks"] if not c["ok"]}
    assert "checksums" in failed and f"db/{dump.name}" in failed
    listed = fact(host, "backup", ref, "supabase_backups", project["outputs"], supabase_backup_action="list")
    assert [b["status"] for b in listed["backups"] if b["id"] == newest["id"]] == ["FAILED"]
    assert "pg_restore" in (listed["backups"][-1]["reason"] or "")


def test_backup_of_a_paused_project_works_and_leaves_it_paused(project, host):
    ref = project["ref"]
    pooler_query(project["env"], "insert into notes (note) values ('before the pause')")
    host.playbook("pause", ref, **LIGHT)
    backup = fact(host, "backup", ref, "supabase_backup", project["outputs"])
    assert backup["status"] == "COMPLETED"
    out = run(
        ["docker", "ps", "--filter", f"label=supamanager.project={ref}", "--format", "{{.Names}}"], env=None
    ).stdout
    assert out.strip() == ""


def test_a_delete_whose_final_backup_fails_deletes_nothing(project, host):
    """The project is paused: the final backup starts its database alone, fails (its repository is a
    file), stops it again, and the delete stops there with the reason."""
    ref = project["ref"]
    blocked = host.root.parent / f"not-a-repository-{ref}"
    blocked.write_text("")
    volumes = docker_names("volume", ref)
    out = fails(host, "delete", ref, project["outputs"], delete_volumes=True, supamanager_backup_root=str(blocked))
    assert f"Deleting project {ref} stopped: its final backup failed" in out and "Nothing was deleted" in out, out
    assert docker_names("volume", ref) == volumes and (host.project_dir(ref) / "docker-compose.yml").exists()
    running = ["docker", "ps", "--filter", f"label=supamanager.project={ref}", "--format", "{{.Names}}"]
    assert run(running, env=None).stdout.strip() == ""  # still paused
    assert len(docker_names("container", ref)) > 1


def test_a_deleted_projects_backups_go_whole_when_its_retention_ends(project, host):
    """Its delete marks the repository; the next delete on the host past the retention (0 days
    here; 7 by default, unit-tested with times) removes its backups and WAL."""
    ref = project["ref"]
    repo = host.root / "backups" / ref
    deleted = host.playbook("delete", ref, delete_volumes=True, **{**LIGHT, "delete_backup": False})
    project["outputs"].append(deleted.stdout + deleted.stderr)
    assert abs(json.loads((repo / "deleted.json").read_text())["deleted_at"] - time.time()) < 900
    assert any((repo / "archive").iterdir()) and any((repo / "wal").iterdir())
    other = host.playbook("delete", random_ref("none"), **{**LIGHT, "supabase_backup_deleted_keep_days": 0})
    project["outputs"].append(other.stdout + other.stderr)
    assert not repo.exists()


def test_no_secret_in_any_output_or_listing(project):
    leaked = [i for i, value in enumerate(project["secrets"]) if any(value in out for out in project["outputs"])]
    assert leaked == []
