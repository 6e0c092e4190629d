"""Unit tests of the backup repository logic (module_utils/_backup_repository.py) on real directories.

The real pg_basebackup output and the real restores are covered by tests/integration/role/test_backup.py.
"""

import json
import os
import stat
import subprocess

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils import _backup_repository as br

DAY = 86400
T0 = 1796100000  # 2026-11-30


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def manifest_json(start="0/2000028", end="0/2000100", timeline=1):
    return json.dumps({"WAL-Ranges": [{"Timeline": timeline, "Start-LSN": start, "End-LSN": end}]})


def make_backup(repo, now, end=None, chain=None, checks=None, dbs=("postgres",), with_base=True, restore_point=None):
    """A staged backup with the files take.sh writes, committed; returns the summary."""
    started = br.begin(str(repo), now)
    staging = started["staging"]
    if with_base:
        os.makedirs(os.path.join(staging, "base"))
        with open(os.path.join(staging, "base", "backup_manifest"), "w") as fh:
            fh.write(manifest_json())
        with open(os.path.join(staging, "base", "end_time"), "w") as fh:
            fh.write(f"{end if end is not None else now + 5}\n")
        with open(os.path.join(staging, "base", "base.tar.gz"), "wb") as fh:
            fh.write(b"base")
    os.makedirs(os.path.join(staging, "db"))
    with open(os.path.join(staging, "db", "databases.tsv"), "w") as fh:
        fh.write("".join(f"{i + 5}\t{name}\n" for i, name in enumerate(dbs)))
    info = {"ref": "shop"} if chain is None else {"ref": "shop", "chain": chain}
    if restore_point:
        info["restore_point"] = restore_point
    return br.commit(str(repo), staging, info, checks if checks is not None else [{"name": "x", "ok": True}], now + 10)


def test_begin_makes_private_directories_and_clears_crashed_runs(tmp_path):
    repo = tmp_path / "shop"
    first = br.begin(str(repo), T0)
    assert first["id"] == T0 and first["chain"] is None and first["stale_removed"] == []
    assert mode_of(repo) == mode_of(repo / "archive") == mode_of(first["staging"]) == 0o700
    # a crashed run's staging directory is never listed and goes at the next begin
    assert br.backups(str(repo)) == []
    second = br.begin(str(repo), T0)
    assert second["stale_removed"] == [f".tmp-{T0}"]
    assert not os.path.exists(first["staging"]) or first["staging"] == second["staging"]


def test_commit_publishes_with_checksums_sizes_and_the_checks_verdict(tmp_path):
    repo = tmp_path / "shop"
    br.switch_chain(str(repo), None, T0)
    done = make_backup(repo, T0, dbs=("postgres", "_supabase"))
    assert done["status"] == "COMPLETED" and done["reason"] is None
    assert done["id"] == done["time"] == T0
    assert done["databases"] == ["postgres", "_supabase"]
    assert done["chain"] == br.current_chain(str(repo))
    assert done["base_end"] == T0 + 5
    path = repo / "archive" / str(T0)
    manifest = json.loads((path / "backup.json").read_text())
    assert manifest["base"] == {
        "timeline": 1,
        "start_lsn": "0/2000028",
        "end_lsn": "0/2000100",
        "start_wal": "000000010000000000000002",
    }
    assert manifest["files"]["base/base.tar.gz"]["size"] == 4
    assert done["size"] == sum(f["size"] for f in manifest["files"].values())
    assert all(mode_of(path / rel) == 0o600 for rel in manifest["files"])
    assert mode_of(path / "backup.json") == 0o600 and mode_of(path / "base") == 0o700
    assert [b["id"] for b in br.backups(str(repo))] == [T0]
    # the next id in the same second is unique
    assert make_backup(repo, T0)["id"] == T0 + 1


def test_a_failed_check_publishes_a_failed_backup_that_no_restore_uses(tmp_path):
    repo = tmp_path / "shop"
    failed = make_backup(repo, T0, checks=[{"name": "db/5.dump", "ok": False, "message": "db/5.dump unreadable"}])
    assert failed["status"] == "FAILED" and failed["reason"] == "db/5.dump unreadable"
    assert failed["checks"] == [{"name": "db/5.dump", "ok": False}]
    with pytest.raises(br.BackupError, match="is FAILED"):
        br.plan(str(repo), backup_id=T0)
    with pytest.raises(br.BackupError, match="no completed backup"):
        br.plan(str(repo))


def test_commit_refuses_what_is_not_a_staging_directory_and_a_base_without_manifest(tmp_path):
    repo = tmp_path / "shop"
    br.begin(str(repo), T0)
    with pytest.raises(br.BackupError, match="not a staging directory"):
        br.commit(str(repo), str(tmp_path), {}, [], T0)
    staging = br.begin(str(repo), T0)["staging"]
    os.makedirs(os.path.join(staging, "base"))
    with pytest.raises(br.BackupError, match="backup_manifest"):
        br.commit(str(repo), staging, {}, [], T0)
    with open(os.path.join(staging, "base", "backup_manifest"), "w") as fh:
        fh.write(manifest_json())
    with pytest.raises(br.BackupError, match="end time"):
        br.commit(str(repo), staging, {}, [], T0)


def test_verify_and_mark_catch_a_changed_byte_and_a_missing_file(tmp_path):
    repo = tmp_path / "shop"
    make_backup(repo, T0)
    assert br.verify_files(str(repo), T0) == []
    target = repo / "archive" / str(T0) / "base" / "base.tar.gz"
    target.write_bytes(b"bas3")
    assert br.verify_files(str(repo), T0) == ["base/base.tar.gz does not match its checksum"]
    target.unlink()
    problems = br.verify_files(str(repo), T0)
    assert problems == ["base/base.tar.gz is missing"]
    marked = br.mark(str(repo), T0, [{"name": "checksums", "ok": False, "message": problems[0]}], T0 + 99)
    assert marked["status"] == "FAILED" and marked["verified_at"] == br.iso(T0 + 99)
    assert br.find(str(repo), T0)["status"] == "FAILED"
    again = br.mark(str(repo), T0, [{"name": "checksums", "ok": True}], T0 + 100)
    assert again["status"] == "COMPLETED" and again["reason"] is None


def test_plan_by_id_by_time_and_latest(tmp_path):
    repo = tmp_path / "shop"
    chain = br.switch_chain(str(repo), None, T0)["current"]
    make_backup(repo, T0, end=T0 + 5)
    make_backup(repo, T0 + 100, end=T0 + 105)
    by_id = br.plan(str(repo), backup_id=str(T0))
    assert (by_id["id"], by_id["target"], by_id["chain"]) == (T0, "immediate", chain)
    latest = br.plan(str(repo))
    assert (latest["id"], latest["target"]) == (T0 + 100, "latest")
    between = br.plan(str(repo), target_time=str(T0 + 50))
    assert between["id"] == T0 and between["target"] == "time"
    assert between["target_time"] == br.iso(T0 + 50)
    assert between["target_time_pg"].endswith("+00") and "T" not in between["target_time_pg"]
    assert br.plan(str(repo), target_time=br.iso(T0 + 105))["id"] == T0 + 100
    with pytest.raises(br.BackupError, match="before the recovery window"):
        br.plan(str(repo), target_time=str(T0 + 1))
    with pytest.raises(br.BackupError, match="no backup 42"):
        br.plan(str(repo), backup_id="42")
    with pytest.raises(br.BackupError, match="backup id must be a number"):
        br.plan(str(repo), backup_id="1; rm -rf /")


def test_a_backup_without_wal_chain_restores_only_itself(tmp_path):
    repo = tmp_path / "shop"
    make_backup(repo, T0, chain=None)
    os.unlink(repo / "wal" / "current") if os.path.lexists(repo / "wal" / "current") else None
    staged = br.begin(str(repo), T0 + 50)
    os.rmdir(staged["staging"])
    repo2 = tmp_path / "nochain"
    started = br.begin(str(repo2), T0)
    os.makedirs(os.path.join(started["staging"], "base"))
    with open(os.path.join(started["staging"], "base", "backup_manifest"), "w") as fh:
        fh.write(manifest_json())
    with open(os.path.join(started["staging"], "base", "end_time"), "w") as fh:
        fh.write(str(T0 + 1))
    br.commit(str(repo2), started["staging"], {"chain": None}, [{"name": "x", "ok": True}], T0)
    with pytest.raises(br.BackupError, match="no WAL chain"):
        br.plan(str(repo2), target_time=str(T0 + 10))
    assert br.plan(str(repo2), backup_id=str(T0))["chain"] is None


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("1796100000", 1796100000),
        ("2026-12-01T04:40:00Z", 1796100000),
        ("2026-12-01T05:40:00+01:00", 1796100000),
        ("2026-12-01 05:40:00+0100", 1796100000),
    ],
)
def test_target_times_in_unix_seconds_or_iso_with_a_zone(text, unix):
    assert br.parse_target_time(text) == unix


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-30T05:20:00", "2026-11-30T05:20:00Z'; drop table x; --", ""])
def test_a_target_time_that_is_not_a_time_is_refused(bad):
    with pytest.raises(br.BackupError, match="recovery target time"):
        br.parse_target_time(bad)


def test_segment_names_and_lsns():
    assert br.segment_name(1, br.lsn_value("0/2000028")) == "000000010000000000000002"
    assert br.segment_name(2, br.lsn_value("1/FF000000")) == "0000000200000001000000FF"
    with pytest.raises(br.BackupError, match="not an LSN"):
        br.lsn_value("zz")


def test_switch_chain_new_and_back(tmp_path):
    repo = tmp_path / "shop"
    first = br.switch_chain(str(repo), None, T0)
    assert first["previous"] is None and br.current_chain(str(repo)) == first["current"]
    second = br.switch_chain(str(repo), None, T0)  # same second: a distinct name
    assert second["previous"] == first["current"] and second["current"] != first["current"]
    back = br.switch_chain(str(repo), first["current"])
    assert back == {"previous": second["current"], "current": first["current"]}
    assert mode_of(repo / "wal" / second["current"]) == 0o700
    with pytest.raises(br.BackupError, match="not a WAL chain"):
        br.switch_chain(str(repo), "../../etc")


def test_window_spans_first_backup_to_newest_wal(tmp_path):
    repo = tmp_path / "shop"
    assert br.window(str(repo)) == {"earliest": None, "latest": None}
    chain = br.switch_chain(str(repo), None, T0)["current"]
    make_backup(repo, T0, end=T0 + 5)
    segment = repo / "wal" / chain / "000000010000000000000003.partial"
    segment.write_bytes(b"")
    os.utime(segment, (T0 + 500, T0 + 500))
    (repo / "wal" / chain / "not-a-segment").write_text("")
    assert br.window(str(repo)) == {"earliest": T0 + 5, "latest": T0 + 500}


def write_segment(path, name, mtime):
    full = path / name
    full.write_bytes(b"w")
    os.utime(full, (mtime, mtime))


def test_prune_keeps_dailies_and_weeklies_and_the_wal_they_need(tmp_path):
    repo = tmp_path / "shop"
    old_chain = br.switch_chain(str(repo), None, T0 - 40 * DAY)["current"]
    make_backup(repo, T0 - 40 * DAY)
    chain = br.switch_chain(str(repo), None, T0 - 20 * DAY)["current"]
    ids = [make_backup(repo, T0 - d * DAY)["id"] for d in (20, 10, 3, 2, 1)]
    failed_old = make_backup(repo, T0 - 30 * DAY, checks=[{"name": "x", "ok": False}])["id"]
    extra_same_day = make_backup(repo, T0 - 1 * DAY - 3600)["id"]
    for name, age in (
        ("000000010000000000000001", 30),
        ("000000010000000000000002", 30),
        ("000000010000000000000005", 0),
    ):
        write_segment(repo / "wal" / chain, name, T0 - age * DAY)
    write_segment(repo / "wal" / old_chain, "000000010000000000000001", T0 - 40 * DAY)
    preview = br.prune(str(repo), 2, 2, 7, T0, check_mode=True)
    assert [b["id"] for b in br.backups(str(repo))] and preview["removed"]
    result = br.prune(str(repo), 2, 2, 7, T0)
    assert result == preview
    left = [b["id"] for b in br.backups(str(repo))]
    # the newest of the last 2 days and of the last 2 weeks
    assert ids[-1] in left and ids[-2] in left
    assert extra_same_day not in left and failed_old not in left and ids[0] not in left
    assert set(result["kept"]) == set(left)
    # WAL before the oldest kept backup's start goes, once older than 7 days; the old chain goes whole
    assert sorted(p.name for p in (repo / "wal" / chain).iterdir()) == [
        "000000010000000000000002",
        "000000010000000000000005",
    ]
    assert not (repo / "wal" / old_chain).exists()
    assert result["wal_removed"] == 2


def test_prune_keeps_a_restore_point_without_the_wal_after_it(tmp_path):
    repo = tmp_path / "shop"
    chain = br.switch_chain(str(repo), None, T0 - 30 * DAY)["current"]
    point = make_backup(repo, T0 - 30 * DAY, chain=chain, restore_point="before-upgrade")["id"]
    same_day = make_backup(repo, T0 - 30 * DAY + 60, chain=chain)["id"]
    newest = make_backup(repo, T0, chain=chain)["id"]
    write_segment(repo / "wal" / chain, "000000010000000000000001", T0 - 30 * DAY)
    result = br.prune(str(repo), 1, 1, 7, T0)
    assert [b["id"] for b in br.backups(str(repo))] == [point, newest]
    assert same_day in result["removed"]
    # the point restores from its own base backup: the old WAL after it goes as any other
    assert result["wal_removed"] == 1


def test_seal_and_unseal_with_openssl(tmp_path):
    def run_command(cmd, data=None, binary_data=False, encoding="utf-8"):
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr.decode()

    repo = tmp_path / "shop"
    staging = br.begin(str(repo), T0)["staging"]
    key = tmp_path / "secrets" / "backup.key"
    assert br.ensure_key(str(key)) is True and br.ensure_key(str(key)) is False
    assert mode_of(key) == 0o600 and len(key.read_text().strip()) == 64
    inside = os.path.join(staging, "dbconfig.tar")
    with open(inside, "w") as fh:
        fh.write("pgsodium-root-key")
    secrets_dir = tmp_path / "secrets" / "shop"
    secrets_dir.mkdir()
    (secrets_dir / "secrets.json").write_text('{"POSTGRES_PASSWORD": "correct-horse-battery"}')
    out = br.seal(
        run_command,
        "openssl",
        staging,
        [(inside, "dbconfig.tar"), (str(secrets_dir), "secrets"), ("/nonexistent", "x")],
        str(key),
    )
    assert mode_of(out) == 0o600 and not os.path.exists(inside)
    with open(out, "rb") as fh:
        sealed = fh.read()
    assert (
        b"correct-horse-battery" not in sealed and b"pgsodium-root-key" not in sealed and sealed.startswith(b"Salted__")
    )
    dest = tmp_path / "unsealed"
    names = br.unseal(run_command, "openssl", staging, str(key), str(dest))
    assert names == ["dbconfig.tar", "secrets/secrets.json"]
    assert (dest / "secrets" / "secrets.json").read_text() == '{"POSTGRES_PASSWORD": "correct-horse-battery"}'
    assert mode_of(dest / "secrets" / "secrets.json") == 0o600 and mode_of(dest) == 0o700
    other = tmp_path / "other.key"
    other.write_text("0" * 64)
    with pytest.raises(br.BackupError, match="could not decrypt"):
        br.unseal(run_command, "openssl", staging, str(other), str(tmp_path / "x"))
    with pytest.raises(br.BackupError, match="could not encrypt"):
        br.seal(run_command, "openssl", str(tmp_path / "missing-dir"), [], str(key))


def test_a_deleted_projects_repository_goes_whole_when_its_retention_ends(tmp_path):
    backups, projects = tmp_path / "backups", tmp_path / "projects"
    projects.mkdir()
    gone, fresh, restored, live = (backups / ref for ref in ("gone-one", "fresh-one", "restored-one", "live-one"))
    for repo in (gone, fresh, restored, live):
        br.switch_chain(str(repo), None, T0 - 9 * DAY)
        write_segment(repo / "wal" / br.current_chain(str(repo)), "000000010000000000000001", T0 - 9 * DAY)
        make_backup(repo, T0 - 9 * DAY)
    assert br.mark_deleted(str(gone), T0 - 7 * DAY) and br.mark_deleted(str(restored), T0 - 8 * DAY)
    assert br.mark_deleted(str(fresh), T0 - 7 * DAY + 1)
    assert not br.mark_deleted(str(backups / "never-backed-up"), T0)  # no repository, no mark
    assert mode_of(gone / br.DELETED) == 0o600 and br.deleted_at(str(gone)) == T0 - 7 * DAY
    (projects / "restored-one").mkdir()  # restored since: its project directory is back
    # not a project's repository, or a mark that is not a time: never removed
    (backups / "Not_A_Ref").mkdir()
    (backups / "Not_A_Ref" / br.DELETED).write_text(json.dumps({"deleted_at": 1}))
    (backups / "bad-mark").mkdir()
    (backups / "bad-mark" / br.DELETED).write_text(json.dumps({"deleted_at": True}))
    (backups / "odd-mark").mkdir()
    (backups / "odd-mark" / br.DELETED).write_text("[1]")

    assert br.prune_deleted(str(backups), str(projects), 7, T0, check_mode=True) == ["gone-one"]
    assert gone.exists()
    assert br.prune_deleted(str(backups), str(projects), 7, T0) == ["gone-one"]
    assert not gone.exists() and fresh.exists() and restored.exists() and live.exists()
    assert sorted(p.name for p in backups.iterdir()) == [
        "Not_A_Ref", "bad-mark", "fresh-one", "live-one", "odd-mark", "restored-one",
    ]  # fmt: skip
    # a second later the fresh one's 7 days are over too; a repository-less root is nothing to do
    assert br.prune_deleted(str(backups), str(projects), 7, T0 + 1) == ["fresh-one"]
    assert br.prune_deleted(str(tmp_path / "none"), str(projects), 7, T0) == []
