"""The real `supamanagerd` process: kill -9 in the middle of a job, SIGTERM with a job running.

The fake playbooks of conftest.py hold a job at a known step, so the interruption lands where the
test wants it; test_daemon_e2e.py repeats both on the real playbooks: kill -9 during a create, and
SIGTERM during a restart (requeued, run again to success at the next start).
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import stat
import time

import pytest
from daemonproc import Daemon, processes_mentioning, wait_gone


@pytest.fixture
def daemon(tmp_path, fake_collection):
    root = tmp_path / "root"
    (root / "projects").mkdir(parents=True)
    d = Daemon(tmp_path, fake_collection, root)
    yield d
    (root / "hold").unlink(missing_ok=True)
    d.stop()


@pytest.mark.docker
def test_kill_9_during_a_job_resumes_it_at_the_next_start(daemon):
    hold = daemon.root / "hold"
    hold.touch()
    daemon.start()
    status, project, headers = daemon.request("POST", "/v1/projects", {"name": "crash"})
    assert status == 201
    op_id = headers["X-Operation-Id"]
    daemon.wait(op_id, lambda op: op["step"] == "Hold while asked to")
    job_dir = str(daemon.data / "jobs" / op_id)
    assert processes_mentioning(job_dir), "no job process while the job runs"

    daemon.proc.kill()  # SIGKILL: no cleanup of any kind
    daemon.proc.wait()
    # The job dies with the daemon: no playbook keeps running unsupervised.
    wait_gone(job_dir)
    hold.unlink()

    daemon.start()
    op = daemon.wait(op_id, lambda op: op["state"] in ("succeeded", "failed"))
    assert op["state"] == "succeeded", op
    assert op["attempts"] == 2
    assert "requeued" in [s["type"] for s in op["steps"]]
    # The fake create starts no container: once the poller has looked at Docker the project is
    # REMOVED, which a failed create never shows (it keeps INIT_FAILED). test_daemon_e2e.py repeats
    # this crash with the real playbooks and sees ACTIVE_HEALTHY.
    deadline = time.monotonic() + 30
    while (stored := daemon.request("GET", f"/v1/projects/{project['ref']}")[1])["status"] != "REMOVED":
        assert time.monotonic() < deadline, stored
        time.sleep(0.3)
    assert not pathlib.Path(job_dir).exists()


def test_sigterm_stops_within_the_timeout_and_requeues_the_job(daemon):
    """The real playbooks' happy path of it: test_daemon_e2e.py, restart_interrupted_while_a_create_waits."""
    hold = daemon.root / "hold"
    hold.touch()
    daemon.start()
    _, project, headers = daemon.request("POST", "/v1/projects", {"name": "term"})
    op_id = headers["X-Operation-Id"]
    daemon.wait(op_id, lambda op: op["step"] == "Hold while asked to")
    job_dir = str(daemon.data / "jobs" / op_id)
    # The daemon's umask (077), however it is started: what it writes is its owner's only.
    written = [p for p in daemon.data.rglob("*") if not p.is_symlink()]
    assert {p.name for p in written} >= {"supamanager.sqlite3", "extravars", "job.json"}
    assert {oct(stat.S_IMODE(p.stat().st_mode) & 0o077) for p in written} == {"0o0"}, written

    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(30) == 0
    assert time.monotonic() - started < 10 + 8  # shutdown_timeout + slack
    assert not processes_mentioning(job_dir)
    db = sqlite3.connect(daemon.data / "supamanager.sqlite3")
    assert db.execute("SELECT state FROM operations WHERE id = ?", (op_id,)).fetchone() == ("queued",)
    db.close()

    hold.unlink()
    daemon.start()
    op = daemon.wait(op_id, lambda op: op["state"] in ("succeeded", "failed"))
    assert op["state"] == "succeeded", op
    assert daemon.request("GET", f"/v1/projects/{project['ref']}")[0] == 200


def test_a_job_left_alive_by_a_crash_is_reaped_at_the_next_start(daemon):
    hold = daemon.root / "hold"
    hold.touch()
    daemon.start()
    _, project, headers = daemon.request("POST", "/v1/projects", {"name": "orphan"})
    op_id = headers["X-Operation-Id"]
    daemon.wait(op_id, lambda op: op["step"] == "Hold while asked to")
    pid = daemon.runjob_pid(op_id)
    # A stopped runner child cannot act on the SIGTERM it gets when the daemon dies: it outlives the
    # crash, as one stuck in the kernel would. The next daemon must kill it before running the job again.
    os.kill(pid, signal.SIGSTOP)
    daemon.proc.kill()
    daemon.proc.wait()
    time.sleep(1)
    assert alive(pid), "the stopped runner child should have outlived the daemon"

    daemon.start()  # recover(): SIGTERM, shutdown_timeout (10 s), then SIGKILL to its process group
    deadline = time.monotonic() + 60
    while alive(pid):
        assert time.monotonic() < deadline, f"runner child {pid} of the crashed daemon is still there"
        time.sleep(0.2)
    hold.unlink()
    op = daemon.wait(op_id, lambda op: op["state"] in ("succeeded", "failed"))
    assert op["state"] == "succeeded", op
    assert op["attempts"] == 2
    assert daemon.runjob_pid(op_id) is None
    assert daemon.request("GET", f"/v1/projects/{project['ref']}")[0] == 200


def alive(pid: int) -> bool:
    """True while pid has not exited (a zombie has: only its parent has not collected it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
