"""A create that fails on the real playbooks and the real engine, through a real `supamanagerd`.

One service's healthcheck always fails, so the create gets as far as real containers, a network
and volumes before it fails: the rollback through delete.yml has something to remove, and every
check that nothing is left could fail. The same run shows 409 on restart, restore and delete while
the create runs, the event stream from the first task to the failure, and the failure metric.
(test_daemon_api.py covers the same behaviours on the fake playbooks, in seconds.)
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from conftest import TOKEN
from daemonproc import Daemon
from test_daemon_e2e import COLLECTION, PLAYBOOK_VARS, finished, labelled

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHECK_OUTPUT = "imgproxy-check-says-no"


@pytest.fixture
def failing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    # imgproxy depends on nothing and starts at once; a check that always fails makes it unhealthy.
    failing_check = {"imgproxy": {"test": ["CMD", "sh", "-c", f"echo {CHECK_OUTPUT}; exit 1"], "retries": 1}}
    # The create fails on Docker's verdict (unhealthy after one failed check), not at
    # supabase_health_timeout: 90 s bounds a create that would wait it out.
    playbook_vars = {
        **PLAYBOOK_VARS,
        "supabase_logs_enabled": False,
        "supabase_healthcheck_overrides": failing_check,
        "supabase_health_timeout": 90,
    }
    d = Daemon(tmp_path, COLLECTION, root, playbook_vars=playbook_vars)
    yield d
    d.stop()


def read_stream(daemon: Daemon, op_id: str) -> list[tuple[str, dict]]:
    """Every event of the operation's stream, from the first, until the daemon ends the stream."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{daemon.port}/v1/operations/{op_id}/events",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream", "Last-Event-ID": "0"},
    )
    events, kind = [], None
    with urllib.request.urlopen(req, timeout=900) as resp:  # noqa: S310 - our own daemon on localhost
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    return events


def metric(daemon: Daemon, name: str) -> float:
    req = urllib.request.Request(
        f"http://127.0.0.1:{daemon.port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own daemon on localhost
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def test_a_failed_real_create_is_init_failed_rolled_back_and_streamed(failing):
    failing.start()
    failure_metric = 'supamanager_jobs_total{kind="create",result="failure"}'
    assert metric(failing, failure_metric) == 0
    status, project, headers = failing.request("POST", "/v1/projects", {"name": "doomed"})
    assert status == 201, project
    ref, op_id = project["ref"], headers["X-Operation-Id"]

    # While the create runs, every other change to the project waits its turn: 409.
    for method, path in (("POST", "restart"), ("POST", "restore"), ("DELETE", "")):
        status, body, _ = failing.request(method, f"/v1/projects/{ref}/{path}".rstrip("/"))
        assert (status, body["code"]) == (409, "operation_in_progress"), (method, path, body)
        assert op_id in body["message"]

    # The create gets as far as real containers: the checks after the rollback can fail.
    deadline = time.monotonic() + 900
    while not labelled("container", ref):
        assert not finished(failing.operation(op_id)), failing.operation(op_id)
        assert time.monotonic() < deadline, "the create started no container"
        time.sleep(0.5)
    assert labelled("network", ref) and labelled("volume", ref)

    events = read_stream(failing, op_id)
    op = failing.operation(op_id)
    assert finished(op)
    assert op["state"] == "failed"
    verdict = "given up by Docker (unhealthy, or exited and not restarting), not waiting out the 90s: "
    assert f"{verdict}imgproxy: running, health unhealthy, last check: {CHECK_OUTPUT}" in op["error"]
    assert op["error"].endswith("(rolled back)")

    # The stream: the whole story in order, ending with the failure; the same events as the record.
    types = [kind for kind, _ in events]
    assert types[0] in ("queued", "started")
    assert types.index("started") < types.index("step") < types.index("task_failed")
    assert types.index("task_failed") < types.index("rollback") < types.index("failed") == len(types) - 1
    assert [data["id"] for _, data in events] == [s["id"] for s in op["steps"]]

    status, stored, _ = failing.request("GET", f"/v1/projects/{ref}")
    assert (status, stored["status"]) == (200, "INIT_FAILED")
    for kind in ("container", "network", "volume"):
        assert labelled(kind, ref) == [], kind
    assert not (failing.root / "projects" / ref).exists()
    registry = failing.root / "ports.json"
    assert not registry.exists() or ref not in json.loads(registry.read_text())["projects"]
    assert metric(failing, failure_metric) == 1
