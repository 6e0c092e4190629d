"""Failure paths of the job machinery and the poller that real playbooks cannot be made to show on
demand: a job past its timeout, a job process killed before its last line, a job that ignores the
stop request at shutdown, Docker out of reach, an unexpected poll error, a daemon without the event
stream. The fake playbooks of conftest.py run through the real runner child and ansible-runner; the
happy paths are covered with the real playbooks in test_daemon_e2e.py and test_usability_e2e.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import signal
import sqlite3
import time

import pytest
from aiohttp import web
from conftest import AUTH, TOKEN, wait_operation
from supamanager_daemon import cli, keys
from supamanager_daemon.app import create_app
from supamanager_daemon.fleet.poller import Poller
from supamanager_daemon.store import Store

HOLD_STEP = "Hold while asked to"


@pytest.fixture
def no_docker(settings, tmp_path):
    """The fake playbooks start no container: with Docker out of reach the poller reports UNKNOWN
    (not REMOVED), so pause and restart stay allowed after the create."""
    return dataclasses.replace(settings, docker_socket=str(tmp_path / "no-docker.sock"))


async def create_project(client) -> str:
    resp = await client.post("/v1/projects", json={"name": "failing"}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
    return (await resp.json())["ref"]


async def wait_step(client, op_id: str, step: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        op = await (await client.get(f"/v1/operations/{op_id}", headers=AUTH)).json()
        if op["step"] == step:
            return op
        assert op["state"] in ("queued", "running"), op
        assert time.monotonic() < deadline, f"operation at step {op['step']!r}, not {step!r}"
        await asyncio.sleep(0.2)


def alive(pid: int) -> bool:
    """True while pid is a process that has not exited (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def project_status(client, ref: str) -> str:
    return (await (await client.get(f"/v1/projects/{ref}", headers=AUTH)).json())["status"]


async def test_a_job_past_its_timeout_is_stopped_and_fails_with_the_reason(aiohttp_client, no_docker):
    settings = no_docker
    client = await aiohttp_client(create_app(settings))
    ref = await create_project(client)
    # From now on (a create takes longer than this on a loaded host):
    client.app[keys.JOBS].settings = dataclasses.replace(settings, job_timeout=4)
    (settings.root / "hold").touch()  # the pause playbook now waits far longer than the timeout
    resp = await client.post(f"/v1/projects/{ref}/pause", headers=AUTH)
    assert resp.status == 200
    op_id = resp.headers["X-Operation-Id"]
    op = await wait_operation(client, op_id, timeout=120)
    assert op["state"] == "failed"
    assert op["error"] == "timed out after 4 s"
    # The project keeps the reason (its status moves on with the next poll).
    assert (await client.app[keys.STORE].get_project(ref))["error"] == "timed out after 4 s"
    assert client.app[keys.JOBS].running == 0


async def test_a_job_process_that_dies_without_its_last_line_fails_the_operation(aiohttp_client, no_docker):
    settings = no_docker
    client = await aiohttp_client(create_app(settings))
    ref = await create_project(client)
    (settings.root / "hold").touch()
    resp = await client.post(f"/v1/projects/{ref}/restart", headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    await wait_step(client, op_id, HOLD_STEP)
    pid = (await client.app[keys.STORE].get_operation(op_id))["pid"]
    os.kill(pid, signal.SIGKILL)  # no "done" line: the runner child is gone mid-playbook
    op = await wait_operation(client, op_id)
    (settings.root / "hold").unlink()
    assert op["state"] == "failed"
    assert op["error"] == "job process exited with code -9"
    assert (await client.app[keys.STORE].get_project(ref))["error"] == "job process exited with code -9"
    assert not (settings.jobs_dir / op_id).exists()


async def test_shutdown_kills_a_job_that_does_not_stop_in_time_and_requeues_it(aiohttp_client, no_docker):
    settings = dataclasses.replace(no_docker, shutdown_timeout=1)
    client = await aiohttp_client(create_app(settings))
    ref = await create_project(client)
    (settings.root / "hold").touch()
    resp = await client.post(f"/v1/projects/{ref}/restart", headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    await wait_step(client, op_id, HOLD_STEP)
    pid = (await client.app[keys.STORE].get_operation(op_id))["pid"]
    # A stopped process cannot act on SIGTERM: only the forced kill after shutdown_timeout ends it.
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        await client.close()  # the app's cleanup: JobScheduler.shutdown()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        (settings.root / "hold").unlink()
    assert time.monotonic() - started < 1 + 5 + 10  # the timeout, the wait for the killed job, slack
    assert not alive(pid)
    db = sqlite3.connect(settings.db_path)
    try:
        state = db.execute("SELECT state FROM operations WHERE id = ?", (op_id,)).fetchone()
        reasons = [r[0] for r in db.execute("SELECT type FROM events WHERE op_id = ? ORDER BY id", (op_id,))]
    finally:
        db.close()
    assert state == ("queued",)
    assert reasons[-1] == "requeued"


async def test_docker_out_of_reach_makes_every_project_unknown(aiohttp_client, no_docker):
    client = await aiohttp_client(create_app(no_docker))
    refs = [await create_project(client) for _ in range(2)]
    store, poller = client.app[keys.STORE], client.app[keys.POLLER]
    # What a finished job leaves, until the next poll looks at Docker.
    await store.apply_observed({ref: ("ACTIVE_HEALTHY", None) for ref in refs}, time.time())
    assert sorted(await poller.poll_once()) == sorted(refs)
    for ref in refs:
        assert await project_status(client, ref) == "UNKNOWN"
    assert poller.last_error is not None and "no-docker.sock" in poller.last_error


class FlakyDocker:
    """A Docker client whose first answer is an unexpected error (a bug, not DockerError)."""

    def __init__(self) -> None:
        self.calls = 0

    async def project_containers(self, ref=None):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("unexpected")
        return []


async def test_the_poller_keeps_polling_after_an_unexpected_error(tmp_path, caplog):
    store = Store(tmp_path / "db.sqlite3")
    await store.open()
    docker = FlakyDocker()
    poller = Poller(store, docker, interval=0.05)
    poller.start()
    try:
        deadline = time.monotonic() + 30
        while poller.polls < 2:
            assert time.monotonic() < deadline, f"the poller stopped after {docker.calls} calls"
            await asyncio.sleep(0.05)
    finally:
        await poller.stop()
        await store.close()
    assert docker.calls >= 3  # the failed poll, then at least two good ones
    assert any(r.message == "poll failed" and r.exc_info for r in caplog.records)


@pytest.fixture
def no_event_stream():
    """A middleware that answers 404 for event streams, as a daemon older than the stream does."""

    @web.middleware
    async def middleware(request, handler):
        if request.path.endswith("/events"):
            return web.json_response({"message": "Not Found"}, status=404)
        return await handler(request)

    return middleware


async def test_cli_falls_back_to_polling_when_the_event_stream_is_missing(
    aiohttp_client, settings, no_event_stream, monkeypatch
):
    app = create_app(settings)
    app.middlewares.insert(0, no_event_stream)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/projects", json={"name": "polled"}, headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    api = cli.Client(str(client.make_url("/")), TOKEN)
    op = await asyncio.to_thread(cli.follow, api, op_id, 120, 0.2)
    assert op["state"] == "succeeded"
    lines = stderr.getvalue().splitlines()
    assert lines[0].startswith("event stream unavailable (HTTP 404")
    assert lines[0].endswith("; polling instead")
    # Every step still shows, once each and in order, from the operation's record.
    steps = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    names = [s["name"] for s in op["steps"] if s["type"] == "step"]
    assert steps == names
    assert steps[:2] == ["Check the ref", "Record the extra vars"]
