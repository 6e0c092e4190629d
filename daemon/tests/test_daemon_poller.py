"""The poller against the real Docker engine: containers labelled for a project, changed behind the
daemon's back (stopped, removed), show up in the project's status within a few poll intervals."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import subprocess
import time

import pytest
from conftest import AUTH, wait_operation
from supamanager_daemon import keys
from supamanager_daemon.app import create_app

pytestmark = pytest.mark.docker
IMAGE = "standin.local/base:bookworm"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.fixture
def containers():
    """Start labelled containers for a ref; remove every one of them afterwards."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{IMAGE} is missing: run tests/standin/build")
    prefix = f"smtest-{secrets.token_hex(4)}"
    made: list[str] = []

    def start(ref: str, service: str) -> str:
        name = f"{prefix}-{service}"
        docker(
            "run", "-d", "--name", name,
            "--label", f"supamanager.project={ref}", "--label", f"supamanager.service={service}",
            "--label", f"smtest={prefix}",
            "--health-cmd", "true", "--health-interval", "1s", "--health-start-period", "0s",
            "--stop-timeout", "1", "--entrypoint", "sleep", IMAGE, "infinity",
        )  # fmt: skip
        made.append(name)
        return name

    yield start
    if made:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True, timeout=60)


async def wait_status(client, ref: str, want: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        project = await (await client.get(f"/v1/projects/{ref}", headers=AUTH)).json()
        if project["status"] == want:
            return project
        assert time.monotonic() < deadline, f"status {project['status']}, wanted {want}"
        await asyncio.sleep(0.2)


async def test_poller_follows_containers_changed_behind_its_back(aiohttp_client, settings, containers):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, poll_interval=0.5)))
    resp = await client.post("/v1/projects", json={"name": "polled"}, headers=AUTH)
    ref = (await resp.json())["ref"]
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"

    db = containers(ref, "db")
    kong = containers(ref, "kong")
    await wait_status(client, ref, "ACTIVE_HEALTHY")
    health = await (await client.get(f"/v1/projects/{ref}/health?services=db,rest", headers=AUTH)).json()
    assert [(h["name"], h["healthy"]) for h in health] == [("db", True), ("rest", False)]

    # One Docker API call per poll, whatever the number of projects and containers.
    poller, dock = client.app[keys.POLLER], client.app[keys.DOCKER]
    calls, polls = dock.calls, poller.polls
    await asyncio.sleep(2)
    assert dock.calls - calls == poller.polls - polls > 0

    docker("stop", "-t", "1", kong)
    await wait_status(client, ref, "ACTIVE_UNHEALTHY")
    docker("stop", "-t", "1", db)
    await wait_status(client, ref, "INACTIVE")
    docker("rm", kong)
    docker("start", db)
    # kong was seen before: its absence keeps the project unhealthy even with db healthy.
    await wait_status(client, ref, "ACTIVE_UNHEALTHY")
    docker("rm", "-f", db)
    await wait_status(client, ref, "REMOVED")
