"""Orphans on the real engine: a labelled container, network and volume of a ref the daemon does not
know are listed (API and CLI) and removed on request, the volume only with the flag, while the
objects of a project it knows stay. The CLI runs as a process against the test server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import secrets
import subprocess
import sys
import time

import pytest
from conftest import AUTH, TOKEN
from supamanager_daemon import keys
from supamanager_daemon.app import create_app

pytestmark = pytest.mark.docker
IMAGE = "standin.local/base:bookworm"
CLI = pathlib.Path(sys.executable).parent / "supamanager"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def labelled(kind: str, ref: str) -> list[str]:
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    base = ["ps", "-a"] if kind == "container" else [kind, "ls"]
    return docker(*base, "--filter", f"label=supamanager.project={ref}", "--format", fmt).split()


@pytest.fixture
def objects():
    """Make a labelled container (on its network, with its volume) for a ref; remove all afterwards."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{IMAGE} is missing: run tests/standin/build")
    made: list[tuple[str, str]] = []

    def make(ref: str) -> dict[str, str]:
        names = {
            "container": f"smtest-{ref}-db",
            "network": f"smtest-{ref}",
            "volume": f"smtest-{ref}-db-data",
        }
        label = f"supamanager.project={ref}"
        docker("network", "create", "--label", label, names["network"])
        made.append(("network", names["network"]))
        docker("volume", "create", "--label", label, names["volume"])
        made.append(("volume", names["volume"]))
        docker(
            "run", "-d", "--name", names["container"], "--label", label, "--label", "supamanager.service=db",
            "--network", names["network"], "-v", f"{names['volume']}:/data", "--stop-timeout", "1",
            "--entrypoint", "sleep", IMAGE, "infinity",
        )  # fmt: skip
        made.insert(0, ("container", names["container"]))
        return names

    yield make
    for kind, name in made:
        cmd = ["rm", "-f", name] if kind == "container" else [kind, "rm", name]
        subprocess.run(["docker", *cmd], capture_output=True, timeout=60)


async def cli(client, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
    env.update(SUPAMANAGER_URL=str(client.make_url("")).rstrip("/"), SUPAMANAGER_API_TOKEN=TOKEN)
    proc = await asyncio.create_subprocess_exec(
        str(CLI), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_orphans_are_listed_and_cleaned_on_request_volumes_only_with_the_flag(aiohttp_client, settings, objects):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, poll_interval=0.5)))
    known = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))
    lost = "lost" + secrets.token_hex(6)
    await client.app[keys.STORE].create_project(ref=known, name="known", organization_slug="default", region="r")
    kept = objects(known)
    gone = objects(lost)
    known_id = docker("inspect", "-f", "{{.Id}}", kept["container"])

    # The poll notices the orphaned container from its own view and says so; it removes nothing.
    deadline = time.monotonic() + 120
    while lost not in client.app[keys.POLLER].orphan_refs:
        assert time.monotonic() < deadline, "the poll did not notice the orphaned container"
        await asyncio.sleep(0.2)
    metrics = await (await client.get("/metrics")).text()
    assert "supamanager_orphan_projects 0" not in metrics
    assert known not in client.app[keys.POLLER].orphan_refs

    resp = await client.get("/v1/orphans", headers=AUTH)
    assert resp.status == 200
    found = await resp.json()
    mine = {kind: [o["name"] for o in found[kind] if o["ref"] == lost] for kind in found}
    assert mine == {"containers": [gone["container"]], "networks": [gone["network"]], "volumes": [gone["volume"]]}
    assert [o for kind in found for o in found[kind] if o["ref"] == known] == []
    [container] = [o for o in found["containers"] if o["ref"] == lost]
    assert (container["service"], container["state"]) == ("db", "running")

    rc, out, err = await cli(client, "orphans", "list")
    assert rc == 0, err
    assert gone["container"] in out and gone["volume"] in out and kept["container"] not in out

    rc, out, err = await cli(client, "orphans", "clean", "--ref", lost)
    assert rc == 0, err
    assert f"removed container {gone['container']}" in out
    assert f"removed network {gone['network']}" in out
    assert f"kept volume {gone['volume']}" in out
    assert labelled("container", lost) == [] and labelled("network", lost) == []
    assert labelled("volume", lost) == [gone["volume"]]

    rc, out, err = await cli(client, "orphans", "clean", "--ref", lost, "--volumes", "--json")
    assert rc == 0, err
    assert json.loads(out)["removed"] == {"containers": [], "networks": [], "volumes": [gone["volume"]]}
    assert labelled("volume", lost) == []

    # The known project's objects are all still there, the container the same one, still running.
    assert docker("inspect", "-f", "{{.Id}} {{.State.Running}}", kept["container"]) == f"{known_id} true"
    assert labelled("network", known) == [kept["network"]]
    assert labelled("volume", known) == [kept["volume"]]
    rc, out, err = await cli(client, "orphans", "clean", "--ref", lost)
    assert (rc, out.strip()) == (0, "no orphans"), err
