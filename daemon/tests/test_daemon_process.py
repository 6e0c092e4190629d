"""The real `supamanagerd` process: kill -9 in the middle of a job, SIGTERM with a job running.

The fake playbooks of conftest.py hold a job at a known step, so the interruption lands where the
test wants it; the end-to-end test repeats the crash against the real create playbook.
"""

from __future__ import annotations

import pathlib
import signal
import sqlite3
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
    status, stored, _ = daemon.request("GET", f"/v1/projects/{project['ref']}")
    assert status == 200
    assert stored["status"] not in ("COMING_UP", "INIT_FAILED")
    assert not pathlib.Path(job_dir).exists()


def test_sigterm_stops_within_the_timeout_and_requeues_the_job(daemon):
    hold = daemon.root / "hold"
    hold.touch()
    daemon.start()
    _, project, headers = daemon.request("POST", "/v1/projects", {"name": "term"})
    op_id = headers["X-Operation-Id"]
    daemon.wait(op_id, lambda op: op["step"] == "Hold while asked to")
    job_dir = str(daemon.data / "jobs" / op_id)

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
