"""Instance sizes on the session's live project (conftest.live_project, created by the official CLI
with `--size micro`, the smallest it offers): the create's size is in every container's limits (the
database 1 GiB, no swap); a memory-hungry statement is stopped by that container's own cgroup (its OOM kill
count goes up, the same container recovers, the engine's other projects stay as they were); a resize
(PATCH .../billing/addons ci_large) recreates the database with 8 GiB and waits for health. No
project of its own; DELETE .../billing/addons (back to nano) is checked on the fake playbooks
(test_conformance.py).

Runs before test_daemon_usage.py and test_database_api.py (name order): they find it large.
"""

from __future__ import annotations

import json
import pathlib
import time

import psycopg
import pytest
from conftest import live_pooler
from test_daemon_usage import CGROUP, docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MIB = 2**20
# What three string_aggs of 700 MiB each need in one backend (each stays under PostgreSQL's 1 GB
# allocation limit): more than micro's 1 GiB.
HUNGRY = (
    "select length(string_agg(repeat('x', 1048576), '')), length(string_agg(repeat('y', 1048576), '')),"
    " length(string_agg(repeat('z', 1048576), '')) from generate_series(1, 700)"
)


def containers(ref: str) -> dict[str, dict]:
    """service -> docker inspect of each running container of the project."""
    ids = docker("ps", "-q", "--no-trunc", "--filter", f"label=supamanager.project={ref}").split()
    return {c["Config"]["Labels"]["supamanager.service"]: c for c in json.loads(docker("inspect", *ids))}


def memory_cgroup(container_id: str) -> tuple[int, int]:
    """The container's memory limit and its OOM kill count, from its cgroup (v1 or v2)."""
    if (CGROUP / "cgroup.controllers").exists():
        for group in (CGROUP / "docker" / container_id, CGROUP / "system.slice" / f"docker-{container_id}.scope"):
            if group.is_dir():
                events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
                return int((group / "memory.max").read_text()), int(events["oom_kill"])
    for group in (CGROUP / "memory" / "docker" / container_id,
                  CGROUP / "memory" / "system.slice" / f"docker-{container_id}.scope"):  # fmt: skip
        if group.is_dir():
            control = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
            return int((group / "memory.limit_in_bytes").read_text()), int(control["oom_kill"])
    raise AssertionError(f"no memory cgroup for {container_id}")


def resize(api, method: str, path: str, body=None) -> dict:
    status, answer, headers = api.request(method, f"/v1/projects/{api.ref}/billing/addons{path}", body)
    assert status == 200, answer
    op = api.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=900)
    assert (op["kind"], op["state"]) == ("resize", "succeeded"), op
    return op


def healthy(api, timeout: float = 300) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        now = containers(api.ref)
        if all(c["State"].get("Health", {}).get("Status", "healthy") == "healthy" for c in now.values()):
            return now
        assert time.monotonic() < deadline, {s: c["State"] for s, c in now.items()}
        time.sleep(1)


def other_projects(ref: str) -> dict[str, tuple[str, str]]:
    """Container id -> (state, health) of every other project's container on this engine."""
    ids = [
        cid for cid, project in (line.split() for line in docker(
            "ps", "-a", "--no-trunc", "--filter", "label=supamanager.project",
            "--format", '{{.ID}} {{.Label "supamanager.project"}}').splitlines())
        if project != ref
    ]  # fmt: skip
    inspected = json.loads(docker("inspect", *ids)) if ids else []
    return {c["Id"]: (c["State"]["Status"], c["State"].get("Health", {}).get("Status", "")) for c in inspected}


def test_a_small_size_is_held_by_its_own_cgroup_and_a_resize_recreates_the_database(live_project):
    api = live_project
    small = healthy(api)
    db = small["db"]
    # the create's size (the official CLI's --size micro): the database 1 GiB without swap and one
    # CPU, every other service its fixed ceiling
    limit, kills = memory_cgroup(db["Id"])
    assert limit == 1024 * MIB and db["HostConfig"]["MemorySwap"] == 1024 * MIB  # no swap
    assert db["HostConfig"]["NanoCpus"] == 10**9
    assert all(c["HostConfig"]["Memory"] > 0 and c["HostConfig"]["NanoCpus"] > 0 for c in small.values())
    info = json.loads((pathlib.Path(api.root) / "projects" / api.ref / "project.json").read_text())
    assert info["instance_size"] == "micro"
    status, addons, _ = api.request("GET", f"/v1/projects/{api.ref}/billing/addons")
    assert status == 200 and addons["selected_addons"][0]["variant"]["id"] == "ci_micro", addons
    others_before = other_projects(api.ref)

    with pytest.raises(psycopg.Error), live_pooler(api) as conn:
        conn.execute(HUNGRY)
    # the kernel killed inside that container's cgroup; the container is the same and recovers
    # (PostgreSQL ends the other sessions and recovers; the services reconnect)
    assert memory_cgroup(db["Id"])[1] > kills
    after = healthy(api)
    assert after["db"]["Id"] == db["Id"] and after["db"]["RestartCount"] == db["RestartCount"]
    assert set(after) == set(small)
    deadline = time.monotonic() + 120
    while True:
        try:
            with live_pooler(api) as conn:
                assert conn.execute("select 1").fetchone() == (1,)
            break
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the database did not come back"
            time.sleep(1)
    # the engine's other projects (those of this session, if any) saw nothing: same containers, same states
    assert other_projects(api.ref) == others_before

    # a resize: the database is recreated with the new limits, the services but the pooler (which
    # restarts after it) are left alone, and the project is healthy again
    resize(api, "PATCH", "", {"addon_type": "compute_instance", "addon_variant": "ci_large"})
    large = healthy(api)
    assert memory_cgroup(large["db"]["Id"])[0] == 8192 * MIB and large["db"]["Id"] != db["Id"]
    for service in set(small) - {"db", "supavisor"}:
        assert large[service]["Id"] == small[service]["Id"], service
    assert api.request("GET", f"/v1/projects/{api.ref}")[1]["status"] == "ACTIVE_HEALTHY"
    status, addons, _ = api.request("GET", f"/v1/projects/{api.ref}/billing/addons")
    assert addons["selected_addons"][0]["variant"]["id"] == "ci_large", addons
