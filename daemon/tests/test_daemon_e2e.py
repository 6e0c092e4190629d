"""End to end: the real daemon process, the real playbooks, the real Docker engine, stand-in images.

One project lives through everything, to keep the suite short: a create interrupted by kill -9
and resumed by the next daemon, a resumed create that fails after the project came up (its
rollback keeps the data) and the restore that brings it back, then pause, pause again (400),
restore, a container stopped behind the daemon's back, a restart interrupted by SIGTERM while a
second project's create waits for the one job slot (max_jobs = 1), and delete. Its name is a
template that must never run.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import sqlite3
import subprocess
import time

import jwt
import pytest
from conftest import REPO, python_env
from daemonproc import Daemon, processes_mentioning, wait_gone

from tests.conftest import pooler_query
from tests.standin import kit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# The collection whose playbooks run: this checkout, unless a test run points elsewhere.
COLLECTION = pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO))
if not (COLLECTION / "playbooks" / "create.yml").is_file():
    pytest.skip("the project playbooks are not there yet", allow_module_level=True)

SERVICES = ["auth", "db", "pooler", "realtime", "rest", "storage"]
PLAYBOOK_VARS = {
    # A port range of our own, below the kernel's ephemeral range (32768-60999): a paused
    # project's ports are free, and an outgoing connection of a parallel suite could take them.
    "supabase_port_range_start": 27100,
    "supabase_port_range_end": 27999,
    # Not about backups: without the backup agent (on by default), one container and start wave less
    # per project; the live project (conftest.live_project) and tests/integration/role/test_backup.py run it.
    "supabase_backup_wal_enabled": False,
    # Upstream's 5 s, not the role's 20 s: every create and resume here waits one interval at its end.
    "supabase_healthcheck_interval": "5s",
}


def docker_lines(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=60).stdout
    return [line for line in out.splitlines() if line.strip()]


def labelled(kind: str, ref: str) -> list[str]:
    """Names of containers, networks or volumes labelled with the project."""
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    base = ["ps", "-a"] if kind == "container" else [kind, "ls"]
    return docker_lines(*base, "--filter", f"label=supamanager.project={ref}", "--format", fmt)


def container_states(ref: str) -> dict[str, str]:
    lines = docker_lines(
        "ps", "-a", "--filter", f"label=supamanager.project={ref}",
        "--format", '{{.Label "supamanager.service"}} {{.State}}',
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in lines)


def wait_status(daemon: Daemon, ref: str, want: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, project, _ = daemon.request("GET", f"/v1/projects/{ref}")
        assert status == 200, project
        if project["status"] == want:
            return project
        assert time.monotonic() < deadline, f"status {project['status']}, wanted {want}"
        time.sleep(0.5)


def assert_succeeded(daemon: Daemon, headers) -> None:
    op = daemon.wait(headers["X-Operation-Id"], finished, timeout=600)
    assert op["state"] == "succeeded", f"{op['kind']}: {op['error']}"


def finished(op: dict) -> bool:
    return op["state"] in ("succeeded", "failed")


def dotenv(root: pathlib.Path, ref: str) -> dict[str, str]:
    lines = (root / "projects" / ref / ".env").read_text().splitlines()
    return {k: v.strip("'") for k, v in (line.split("=", 1) for line in lines if "=" in line and line[0] != "#")}


def resume_a_create_that_fails(e2e: Daemon, tmp_path: pathlib.Path, ref: str, op_id: str) -> None:
    """As if the daemon had died after the create's playbook brought the project up, before it
    recorded that; the resumed attempt fails (an override the role refuses at once). Its rollback
    removes the containers but keeps the volumes, and the project is INIT_FAILED."""
    e2e.stop()
    db = sqlite3.connect(e2e.data / "supamanager.sqlite3")
    with db:
        db.execute("UPDATE operations SET state = 'running', finished_at = NULL, pid = NULL WHERE id = ?", (op_id,))
        db.execute("UPDATE projects SET status = 'COMING_UP' WHERE ref = ?", (ref,))
    db.close()
    config = e2e.config.read_text()
    refused = {"SMTP_PASS": "x'\nDOCKER_SOCKET_LOCATION=/"}
    failing = Daemon(tmp_path, COLLECTION, e2e.root, playbook_vars={**PLAYBOOK_VARS, "supabase_env_overrides": refused})
    try:
        failing.start()
        op = failing.wait(op_id, finished, timeout=600)
        # The third attempt: the kill -9 above made the second.
        assert (op["state"], op["attempts"]) == ("failed", 3), op
        assert "supabase_env_overrides refused" in op["error"] and op["error"].endswith("(rolled back)"), op["error"]
        assert labelled("container", ref) == []
    finally:
        failing.stop()
        e2e.config.write_text(config)
    assert sorted(labelled("volume", ref)) == [
        f"supamanager-{ref}-{v}" for v in ("db-config", "db-data", "deno-cache", "storage-data")
    ]


@pytest.fixture
def e2e(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    # One job at a time: the restart below holds the slot while a second project's create waits.
    d = Daemon(tmp_path, COLLECTION, root, max_jobs=1, playbook_vars=PLAYBOOK_VARS)
    refs: list[str] = []
    d.refs = refs
    yield d
    d.stop()
    # Whatever a failed assertion left behind goes, through the real delete playbook.
    for ref in refs:
        if labelled("container", ref) or labelled("network", ref) or labelled("volume", ref):
            subprocess.run(
                [
                    str(REPO / ".venv" / "bin" / "ansible-playbook"),
                    str(COLLECTION / "playbooks" / "delete.yml"),
                    "-e", json.dumps({"project_ref": ref, "supamanager_root": str(root), "delete_volumes": True,
                                     "delete_backup": False}),
                ],
                cwd=COLLECTION, env={**python_env(), "ANSIBLE_CONFIG": str(COLLECTION / "ansible.cfg")},
                capture_output=True, timeout=600,
            )  # fmt: skip


def restart_interrupted_while_a_create_waits(e2e: Daemon, ref: str) -> None:
    """A restart holds the one job slot (max_jobs = 1) while a second project's create waits queued;
    SIGTERM in the middle of the restart puts it back in the queue. The next daemon runs the restart
    again (attempt 2), to success, then the create, which never ran before. The create fails at
    once, cheaply: a container that is not its project's holds the name of its database container.
    (test_daemon_api.py and test_daemon_process.py: the same on the fake playbooks, in seconds.)"""
    status, body, headers = e2e.request("POST", f"/v1/projects/{ref}/restart")
    assert (status, body["status"]) == (200, "RESTARTING")
    restart_id = headers["X-Operation-Id"]
    status, second, headers = e2e.request("POST", "/v1/projects", {"name": "second"})
    assert status == 201, second
    second_ref, create_id = second["ref"], headers["X-Operation-Id"]
    e2e.refs.append(second_ref)
    blocker = f"supamanager-{second_ref}-db"
    docker_lines("create", "--name", blocker, kit.BASE_IMAGE, "true")
    try:
        # SIGTERM while the restart's containers restart.
        e2e.wait(restart_id, lambda op: (op["step"] or "").startswith("Restart the services"), timeout=600)
        assert e2e.operation(create_id)["state"] == "queued"
        e2e.proc.send_signal(signal.SIGTERM)
        assert e2e.proc.wait(60) == 0
        wait_gone(str(e2e.data / "jobs" / restart_id), timeout=30)
        db = sqlite3.connect(e2e.data / "supamanager.sqlite3")
        try:
            rows = db.execute("SELECT id, state FROM operations WHERE id IN (?, ?)", (restart_id, create_id))
            assert dict(rows.fetchall()) == {restart_id: "queued", create_id: "queued"}
        finally:
            db.close()

        e2e.start()
        restarted = e2e.wait(restart_id, finished, timeout=600)
        assert (restarted["state"], restarted["attempts"]) == ("succeeded", 2), restarted["error"]
        types = [s["type"] for s in restarted["steps"]]
        assert types[:2] == ["queued", "started"] and types[-1] == "succeeded", types
        starts = [i for i, kind in enumerate(types) if kind == "started"]
        assert len(starts) == 2 and starts[0] < types.index("requeued") < starts[1], types
        created = e2e.wait(create_id, finished, timeout=600)
        assert (created["state"], created["attempts"]) == ("failed", 1), created
        assert "docker compose create failed" in created["error"], created["error"]
        assert created["error"].endswith("(rolled back)"), created["error"]
        # queued, then any waits at the admission gate of creates on this machine (dce4106), then started
        kinds = [s["type"] for s in created["steps"]]
        assert kinds[0] == "queued" and set(kinds[1 : kinds.index("started")]) <= {"step"}, kinds
        # Step ids increase across operations: the create started after the restart had ended.
        started = next(s["id"] for s in created["steps"] if s["type"] == "started")
        assert started > restarted["steps"][-1]["id"]
        assert wait_status(e2e, second_ref, "INIT_FAILED")["status"] == "INIT_FAILED"
        # The rollback removed what the create made and left the container that is not its project's.
        assert labelled("container", second_ref) == []
        assert docker_lines("ps", "-a", "--filter", f"name=^{blocker}$", "--format", "{{.Names}}") == [blocker]
    finally:
        subprocess.run(["docker", "rm", "-f", blocker], capture_output=True, timeout=60)


def test_project_lifecycle_over_http_with_a_crash(e2e, tmp_path):
    marker = tmp_path / f"pwned-{secrets.token_hex(4)}"
    name = f"{{{{ lookup('pipe', 'touch {marker}') }}}} $(touch {marker})"
    e2e.start()

    status, project, headers = e2e.request("POST", "/v1/projects", {"name": name, "db_pass": "Ignored-pass-1234"})
    assert status == 201, project
    ref, op_id = project["ref"], headers["X-Operation-Id"]
    e2e.refs.append(ref)
    assert project["status"] == "COMING_UP"
    status, body, _ = e2e.request("POST", f"/v1/projects/{ref}/pause")
    assert (status, body["code"]) == (409, "operation_in_progress")

    # kill -9 once the create has started containers: mid-create.
    deadline = time.monotonic() + 600
    while not labelled("container", ref):
        assert finished(e2e.operation(op_id)) is False, e2e.operation(op_id)
        assert time.monotonic() < deadline, "the create started no container"
        time.sleep(0.5)
    e2e.proc.kill()
    e2e.proc.wait()
    wait_gone(str(e2e.data / "jobs" / op_id), timeout=30)

    e2e.start()
    op = e2e.wait(op_id, finished, timeout=900)
    assert op["state"] == "succeeded", op["error"]
    assert op["attempts"] == 2
    project = wait_status(e2e, ref, "ACTIVE_HEALTHY")
    assert project["name"] == name
    assert set(container_states(ref).values()) == {"running"}
    # The five host ports the role allocated (vector_fluent: on loopback, for the engine's log
    # driver), from the configured range, as the port registry holds them.
    ports = project["endpoints"]["ports"]
    assert set(ports) == {"kong_http", "kong_https", "postgres", "pooler_transaction", "vector_fluent"}, project
    assert len(set(ports.values())) == 5
    start, end = PLAYBOOK_VARS["supabase_port_range_start"], PLAYBOOK_VARS["supabase_port_range_end"]
    assert all(start <= port <= end for port in ports.values()), ports
    assert ports == json.loads((e2e.root / "ports.json").read_text())["projects"][ref]

    status, health, _ = e2e.request("GET", f"/v1/projects/{ref}/health?services={','.join(SERVICES)}")
    assert status == 200
    assert [(h["name"], h["healthy"]) for h in health] == [(s, True) for s in SERVICES], health

    status, api_keys, _ = e2e.request("GET", f"/v1/projects/{ref}/api-keys")
    assert status == 200
    roles = {k["name"]: jwt.decode(k["api_key"], options={"verify_signature": False})["role"] for k in api_keys}
    assert roles == {"anon": "anon", "service_role": "service_role"}
    assert all(k["type"] == "legacy" for k in api_keys)
    env = dict(
        line.split("=", 1) for line in (e2e.root / "projects" / ref / ".env").read_text().splitlines() if "=" in line
    )
    project_secrets = [env[k].strip("'\"") for k in ("POSTGRES_PASSWORD", "JWT_SECRET", "SERVICE_ROLE_KEY")]

    # A resumed create that fails after the first attempt came up keeps the volumes and their rows;
    # restore brings the project back on them.
    pooler_query(dotenv(e2e.root, ref), "create table kept (note text); insert into kept values ('written')")
    resume_a_create_that_fails(e2e, tmp_path, ref, op_id)
    e2e.start()
    assert wait_status(e2e, ref, "INIT_FAILED")["status"] == "INIT_FAILED"
    status, body, headers = e2e.request("POST", f"/v1/projects/{ref}/restore")
    assert (status, body["status"]) == (200, "RESTORING"), body
    assert_succeeded(e2e, headers)
    wait_status(e2e, ref, "ACTIVE_HEALTHY")
    assert pooler_query(dotenv(e2e.root, ref), "select note from kept") == [("written",)]

    # pause, and pause again
    status, body, headers = e2e.request("POST", f"/v1/projects/{ref}/pause")
    assert (status, body["status"]) == (200, "PAUSING")
    assert_succeeded(e2e, headers)
    wait_status(e2e, ref, "INACTIVE")
    assert set(container_states(ref).values()) == {"exited"}
    status, body, _ = e2e.request("POST", f"/v1/projects/{ref}/pause")
    assert (status, body["code"]) == (400, "already_paused")

    # restore
    status, body, headers = e2e.request("POST", f"/v1/projects/{ref}/restore")
    assert (status, body["status"]) == (200, "RESTORING")
    assert_succeeded(e2e, headers)
    wait_status(e2e, ref, "ACTIVE_HEALTHY")

    # a container stopped behind the daemon's back shows within a few polls
    rest = docker_lines(
        "ps", "-q", "--filter", f"label=supamanager.project={ref}", "--filter", "label=supamanager.service=rest"
    )
    subprocess.run(["docker", "stop", *rest], check=True, capture_output=True, timeout=60)
    wait_status(e2e, ref, "ACTIVE_UNHEALTHY", timeout=30)

    # restart brings it back, after a SIGTERM in the middle of it
    restart_interrupted_while_a_create_waits(e2e, ref)
    wait_status(e2e, ref, "ACTIVE_HEALTHY")

    # delete: gone, and nothing of it is left on the host, even with a container that is not the
    # project's on its network (compose down leaves the network then; it is disconnected, not removed).
    [network] = labelled("network", ref)
    foreign = f"foreign-{ref}"
    docker_lines("run", "-d", "--rm", "--name", foreign, "--network", network, kit.BASE_IMAGE, "sleep", "600")
    try:
        status, body, headers = e2e.request("DELETE", f"/v1/projects/{ref}?backup=false")
        assert (status, body["ref"], body["name"]) == (200, ref, name)
        assert isinstance(body["id"], int)
        assert_succeeded(e2e, headers)
        assert docker_lines("inspect", "-f", "{{.State.Running}} {{len .NetworkSettings.Networks}}", foreign) == [
            "true 0"
        ]
    finally:
        subprocess.run(["docker", "rm", "-f", foreign], capture_output=True, timeout=60)
    assert e2e.request("GET", f"/v1/projects/{ref}")[0] == 404
    for kind in ("container", "network", "volume"):
        assert labelled(kind, ref) == [], kind
    assert not (e2e.root / "projects" / ref).exists()
    registry = e2e.root / "ports.json"
    assert ref not in (registry.read_text() if registry.exists() else "")

    assert not marker.exists(), "the project name was evaluated"
    assert not processes_mentioning(str(e2e.data / "jobs"))
    # No secret in the daemon's log, its database or its data dir (job dirs are gone).
    log = e2e.log.read_text()
    stored = b"".join(p.read_bytes() for p in e2e.data.rglob("*") if p.is_file())
    for secret in ["Ignored-pass-1234", *project_secrets]:
        assert secret not in log
        assert secret.encode() not in stored
