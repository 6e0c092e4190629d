"""`supamanager` (the CLI) against a real `supamanagerd` process running the fake playbooks of
conftest.py; the daemon's log is checked to be JSON lines without the token. The end-to-end
test with the real playbooks and stand-in images is in test_usability_e2e.py."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import TOKEN
from daemonproc import Daemon

CLI = pathlib.Path(sys.executable).parent / "supamanager"


@pytest.fixture
def daemon(tmp_path, fake_collection):
    root = tmp_path / "root"
    (root / "projects").mkdir(parents=True)
    # The fake playbooks start no container; with Docker out of reach the poller reports UNKNOWN
    # (not REMOVED), so every lifecycle step stays allowed.
    d = Daemon(tmp_path, fake_collection, root, docker_socket=str(tmp_path / "no-docker.sock"))
    d.start()
    yield d
    (root / "hold").unlink(missing_ok=True)
    d.stop()


def cli(daemon: Daemon, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
    base.update(SUPAMANAGER_URL=f"http://127.0.0.1:{daemon.port}", SUPAMANAGER_API_TOKEN=daemon.token)
    base.update(env or {})
    return subprocess.run(
        [str(CLI), *args], env=base, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_create_wait_shows_each_step_and_ends_healthy_then_the_whole_lifecycle(daemon):
    result = cli(daemon, "projects", "create", "--name", "x", "--wait")
    assert result.returncode == 0, result.stderr
    # Progress: each playbook task, as it started, in order (from the event stream).
    progress = result.stderr.splitlines()
    steps = [line.split("] ", 1)[1] for line in progress if line.startswith("[")]
    assert steps[:2] == ["Check the ref", "Record the extra vars"]
    assert "Hold while asked to" in steps
    assert "polling instead" not in result.stderr
    assert result.stdout.startswith("create of project ")
    assert " succeeded in " in result.stdout
    ref = result.stdout.split()[3]

    listed = cli(daemon, "projects", "list")
    assert listed.returncode == 0 and ref in listed.stdout and "NAME" in listed.stdout
    got = json.loads(cli(daemon, "projects", "get", ref, "--json").stdout)
    assert got["ref"] == ref and got["name"] == "x"
    keys = json.loads(cli(daemon, "projects", "keys", ref, "--json").stdout)
    assert [k["name"] for k in keys] == ["anon", "service_role"]
    # Health asks Docker, which is out of reach here: exit 1 with the reason.
    health = cli(daemon, "projects", "health", ref, "--service", "db")
    assert health.returncode == 1 and "HTTP 503 docker_unavailable" in health.stderr

    for verb in ("pause", "resume", "restart"):
        result = cli(daemon, "projects", verb, ref, "--wait", "--json")
        assert result.returncode == 0, (verb, result.stderr)
        assert json.loads(result.stdout)["operation"]["state"] == "succeeded"
    result = cli(daemon, "projects", "delete", ref)  # without --wait: answers at once with the operation
    assert result.returncode == 0, result.stderr
    op_id = result.stdout.split("operation ")[1].split()[0]
    waited = cli(daemon, "operations", "wait", op_id)
    assert waited.returncode == 0, waited.stderr
    assert "delete of project" in waited.stdout and "succeeded" in waited.stdout
    op = json.loads(cli(daemon, "operations", "get", op_id, "--json").stdout)
    assert (op["kind"], op["state"]) == ("delete", "succeeded")
    gone = cli(daemon, "projects", "get", ref)
    assert gone.returncode == 1 and "HTTP 404" in gone.stderr

    # The daemon logged JSON lines: job lines name their operation and project; never the token.
    log = daemon.log.read_text()
    assert TOKEN not in log
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert entries and all({"time", "level", "message"} <= set(e) for e in entries)
    done = [e for e in entries if e["message"].startswith(f"operation {op_id}")]
    assert done and done[0]["operation_id"] == op_id and done[0]["project_ref"] == ref


def test_a_failed_create_exits_non_zero_with_the_reason(daemon):
    (daemon.root / "fail-create").touch()
    result = cli(daemon, "projects", "create", "--name", "doomed", "--wait")
    assert result.returncode == 1
    assert "create of project" in result.stderr and "simulated failure of create" in result.stderr
    assert "rolling back through delete.yml" in result.stderr
    (daemon.root / "fail-create").unlink()


def test_url_and_token_come_from_flags_or_environment(daemon):
    url = f"http://127.0.0.1:{daemon.port}"
    result = cli(daemon, "projects", "list", "--json", env={"SUPAMANAGER_API_TOKEN": "wrong-token-123"})
    assert result.returncode == 1 and "HTTP 401" in result.stderr
    result = cli(daemon, "--token", TOKEN, "projects", "list", "--json", env={"SUPAMANAGER_API_TOKEN": "wrong"})
    assert result.returncode == 0 and json.loads(result.stdout) == []
    result = cli(
        daemon, "projects", "list", "--url", url, "--token", TOKEN, env={"SUPAMANAGER_URL": "http://x.invalid"}
    )
    assert result.returncode == 0
    result = cli(daemon, "projects", "list", env={"SUPAMANAGER_URL": "http://127.0.0.1:9"})
    assert result.returncode == 3 and "cannot reach supamanagerd" in result.stderr
    result = cli(daemon, "projects", "create")  # --name is required
    assert result.returncode == 2


def test_backups_list_and_delete_with_a_final_backup(daemon):
    created = cli(daemon, "projects", "create", "--name", "b", "--wait")
    assert created.returncode == 0, created.stderr
    ref = created.stdout.split()[3]
    archive = daemon.root / "backups" / ref / "archive" / "1796100000"
    archive.mkdir(parents=True)
    (archive / "backup.json").write_text(
        json.dumps(
            {"id": 1796100000, "inserted_at": "2026-12-01T04:40:00Z", "status": "COMPLETED", "base_end": 1796100007}
        )
    )
    listed = cli(daemon, "backups", "list", ref)
    assert listed.returncode == 0, listed.stderr
    assert "1796100000" in listed.stdout and "COMPLETED" in listed.stdout
    assert "reach 1796100007" in listed.stdout
    as_json = json.loads(cli(daemon, "backups", "list", ref, "--json").stdout)
    assert [b["id"] for b in as_json["backups"]] == [1796100000]
    restored = cli(daemon, "backups", "restore", ref, "-t", "1796100050", "--wait")
    assert restored.returncode == 0, restored.stderr
    assert json.loads((daemon.root / f"vars-{ref}-restore.json").read_text())["recovery_target_time"] == "1796100050"
    restored = cli(daemon, "backups", "restore", ref, "--id", "1796100000", "--json")
    assert restored.returncode == 0, restored.stderr
    waited = cli(daemon, "operations", "wait", json.loads(restored.stdout)["operation_id"])
    assert waited.returncode == 0, waited.stderr
    assert json.loads((daemon.root / f"vars-{ref}-restore.json").read_text())["backup_id"] == "1796100000"
    assert cli(daemon, "backups", "restore", ref).returncode != 0  # a target is required
    # the schedule: none by default; --set gives the project its own daily time
    shown = cli(daemon, "backups", "schedule", ref)
    assert shown.returncode == 1 and "no backup schedule" in shown.stderr, shown.stderr
    bad = cli(daemon, "backups", "schedule", ref, "--set", "4am")
    assert bad.returncode == 1 and "schedule_for" in bad.stderr, bad.stderr
    set_to = cli(daemon, "backups", "schedule", ref, "--set", "04:30:00")
    assert set_to.returncode == 0 and "daily backup at 04:30:00 UTC" in set_to.stdout, set_to.stderr
    shown = json.loads(cli(daemon, "backups", "schedule", ref, "--json").stdout)
    assert shown["schedule_for"] == "04:30:00"
    # a restore point is a backup: the daemon takes it of a healthy project only (this one is UNKNOWN)
    point = cli(daemon, "backups", "restore-point", ref, "before-upgrade")
    assert point.returncode == 1 and "healthy project" in point.stderr, point.stderr
    missing = cli(daemon, "backups", "restore-point", ref)
    assert missing.returncode == 1 and "no restore point" in missing.stderr, missing.stderr
    assert "--backup" not in cli(daemon, "projects", "delete", "--help").stdout.replace("--no-backup", "")
    deleted = cli(daemon, "projects", "delete", ref, "--wait")  # a final backup by default
    assert deleted.returncode == 0, deleted.stderr
    recorded = json.loads((daemon.root / f"vars-{ref}-delete.json").read_text())
    assert recorded["delete_backup"] is True
