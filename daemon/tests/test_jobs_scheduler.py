"""The job scheduler and the runner child on the paths a real playbook run does not take: a
playbook that is missing, a rollback that fails too, job machinery that cannot start, a shutdown
with jobs still waiting for a slot, noise on the runner's protocol, a daemon gone before the child
is set up. Their happy paths run through the real playbooks in test_daemon_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from supamanager_daemon import models
from supamanager_daemon.operations import runjob
from supamanager_daemon.operations.jobs import JobScheduler
from supamanager_daemon.store import Store

REF = "abcdefghijklmnopqrst"


@pytest.fixture
async def store(settings):
    s = Store(settings.data_dir / "db.sqlite3")
    await s.open()
    yield s
    await s.close()


async def run_create(settings, store) -> tuple[dict, dict]:
    """A create run to its end by the scheduler; returns the operation and the project."""
    finished = asyncio.Event()
    scheduler = JobScheduler(settings, store, on_finished=lambda _op: finished.set())
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    scheduler.enqueue(op)
    await asyncio.wait_for(finished.wait(), 60)
    return await store.get_operation(op["id"]), await store.get_project(REF)


async def test_a_missing_playbook_fails_the_create_and_the_failed_rollback_is_named(settings, store):
    for name in ("create.yml", "delete.yml"):
        (settings.collection_dir / "playbooks" / name).unlink()
    op, project = await run_create(settings, store)
    playbooks = settings.collection_dir / "playbooks"
    assert op["state"] == models.FAILED
    missing = "playbook {} not found"
    create, delete = missing.format(playbooks / "create.yml"), missing.format(playbooks / "delete.yml")
    assert op["error"] == f"{create} (rollback failed: {delete})"
    assert project["status"] == models.INIT_FAILED
    assert [e["type"] for e in await store.events(op["id"])][-2:] == ["rollback", "failed"]


async def test_job_machinery_that_cannot_start_fails_the_operation_with_the_reason(settings, store):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.jobs_dir.write_text("a file where the job directories go")
    op, project = await run_create(settings, store)
    assert op["state"] == models.FAILED
    assert op["error"].startswith("the job could not run: NotADirectoryError"), op["error"]
    assert project["status"] == models.INIT_FAILED


async def test_shutdown_leaves_a_job_waiting_for_a_slot_queued_in_the_store(settings, store):
    scheduler = JobScheduler(settings, store)
    for _ in range(settings.max_jobs):  # every slot taken, as by running jobs
        await scheduler._slots.acquire()
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    scheduler.enqueue(op)
    await asyncio.sleep(0)
    assert (scheduler.queued, scheduler.running) == (1, 0)
    await scheduler.shutdown()
    assert scheduler.queued == 0
    assert (await store.get_operation(op["id"]))["state"] == models.QUEUED
    # A job enqueued after the stop began never starts either.
    scheduler._slots.release()
    scheduler.enqueue(op)
    await asyncio.sleep(0.1)
    assert (await store.get_operation(op["id"]))["state"] == models.QUEUED


async def test_cancel_is_false_for_a_job_that_is_not_running_here(settings, store):
    assert JobScheduler(settings, store).cancel("no-such-operation") is False


class _Lines:
    """A process whose stdout yields the given protocol lines."""

    def __init__(self, lines: list[bytes]) -> None:
        async def stdout():
            for line in lines:
                yield line

        self.stdout = stdout()


async def test_lines_that_are_not_the_protocol_are_skipped(settings, store):
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(op["id"])
    lines = [b"Coverage.py warning: no data\n", b'{"event": "task", "name": "First", "n": 1}\n', b"\n"]
    lines.append(b'{"event": "done", "status": "successful", "rc": 0}\n')
    done = await JobScheduler(settings, store)._follow(op["id"], _Lines(lines), 4)
    assert done == {"event": "done", "status": "successful", "rc": 0}
    assert (await store.get_operation(op["id"]))["step"] == "First"


def test_the_runner_child_exits_when_the_daemon_died_before_it_was_set_up():
    with pytest.raises(SystemExit) as exited:
        runjob._die_with_parent(os.getpid())  # not our parent: as if the daemon had gone
    assert exited.value.code == 3


def test_a_failure_message_hides_no_log_output_and_renders_structured_messages():
    assert runjob._failure_message({"task": "Write .env", "res": {"censored": "hidden", "msg": "pw"}}) == (
        "Write .env: output hidden (no_log)"
    )
    assert runjob._failure_message({"res": {"msg": {"changed": False, "errors": ["a"]}}}) == (
        'task: {"changed": false, "errors": ["a"]}'
    )
    assert len(runjob._failure_message({"task": "t", "res": {"stderr": "x" * 5000}})) == runjob.ERROR_MAX


def test_a_runner_that_raises_ends_the_job_with_its_error(tmp_path):
    # ansible-runner raising (rather than reporting a failed run) cannot be provoked on demand; the
    # child runs in its own process, as the scheduler starts it (it sets the umask and signals).
    (tmp_path / "job.json").write_text(json.dumps({"playbook": "p.yml", "project_dir": str(tmp_path)}))
    script = (
        "import os, sys, ansible_runner\n"
        "from supamanager_daemon.operations import runjob\n"
        "def explode(**_kwargs):\n"
        "    raise RuntimeError('no such private data dir')\n"
        "ansible_runner.run = explode\n"
        "sys.exit(runjob.main([sys.argv[1], str(os.getppid())]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "event": "done",
        "status": "error",
        "rc": None,
        "tasks": 0,
        "error": "ansible-runner: RuntimeError: no such private data dir",
    }


def test_without_prctl_the_runner_child_still_checks_that_its_daemon_lives(monkeypatch):
    # A libc without prctl cannot be had on this host: ctypes refuses to load one instead.
    def no_libc(*_args, **_kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(runjob.ctypes, "CDLL", no_libc)
    assert runjob._die_with_parent(os.getppid()) is None
    with pytest.raises(SystemExit) as exited:
        runjob._die_with_parent(os.getpid())
    assert exited.value.code == 3


def test_a_runner_child_whose_daemon_is_gone_cancels_its_run(tmp_path):
    """The protocol pipe closed (the daemon died or dropped it): the child's next line fails and the run
    is cancelled rather than left going. ansible-runner is replaced to record what the child asks of it;
    test_daemon_process.py kills a real daemon under a real playbook."""
    (tmp_path / "job.json").write_text(json.dumps({"playbook": "p.yml", "project_dir": str(tmp_path)}))
    script = (
        "import os, sys, time, ansible_runner\n"
        "from supamanager_daemon.operations import runjob\n"
        "def run(event_handler, cancel_callback, **_kwargs):\n"
        "    time.sleep(0.5)  # the test closes the pipe meanwhile\n"
        "    event_handler({'event': 'playbook_on_task_start', 'event_data': {'task': 'Write .env'}})\n"
        "    open(os.path.join(sys.argv[1], 'cancelled'), 'w').write(str(cancel_callback()))\n"
        "    return type('Result', (), {'status': 'canceled', 'rc': 254})\n"
        "ansible_runner.run = run\n"
        "sys.exit(runjob.main([sys.argv[1], str(os.getppid())]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert (tmp_path / "cancelled").read_text() == "True"
