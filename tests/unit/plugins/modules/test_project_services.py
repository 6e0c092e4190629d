"""Unit tests of supamanager.supabase.project_services' logic: labels, healthcheck commands, the
dependency order, the port gate, and the start order of Starter against a fake engine.

The fake engine stands in for start timing only (which service starts when, what a probe returns);
tests/integration/role/test_project.py runs the module against the real engine and the stand-in
images (create, pause, resume, restart, delete), and tests/integration/modules/test_docker_api.py
the Docker client.
"""

import socket
import threading
import time

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils._docker_api import DockerError
from ansible_collections.supamanager.supabase.plugins.modules import project_services as ps


def test_depends_on_label():
    assert ps.parse_depends_on("db:service_healthy:false,rest:service_started:true") == {
        "db": "service_healthy",
        "rest": "service_started",
    }
    assert ps.parse_depends_on("vector") == {"vector": "service_started"}
    assert ps.parse_depends_on("") == {}
    assert ps.parse_depends_on(None) == {}


def test_probe_command_is_what_docker_runs():
    assert ps.probe_command({"Test": ["CMD", "pg_isready", "-U", "postgres"]}) == ["pg_isready", "-U", "postgres"]
    assert ps.probe_command({"Test": ["CMD-SHELL", "curl -f http://x"]}) == ["/bin/sh", "-c", "curl -f http://x"]
    assert ps.probe_command({"Test": ["NONE"]}) is None
    assert ps.probe_command({"Test": ["CMD"]}) is None
    assert ps.probe_command(None) is None
    assert ps.probe_command({}) is None


def test_health_from_the_container_list():
    assert ps.health_of({"Status": "Up 3 seconds (healthy)"}) == "healthy"
    assert ps.health_of({"Status": "Up 3 minutes (unhealthy)"}) == "unhealthy"
    assert ps.health_of({"Status": "Up 1 second (health: starting)"}) == "starting"
    assert ps.health_of({"Status": "Up 1 second"}) == "none"
    assert ps.health_of({}) == "none"


def test_dependency_order_levels_and_cycle():
    deps = {"vector": {}, "db": {"vector": "x"}, "rest": {"db": "x"}, "kong": {"rest": "x", "db": "x"}, "img": {}}
    assert ps.dependency_order(deps) == [["img", "vector"], ["db"], ["rest"], ["kong"]]
    # A dependency that is not part of the project (logs disabled) does not hold anything back.
    assert ps.dependency_order({"auth": {"analytics": "x"}}) == [["auth"]]
    with pytest.raises(ps.ServicesError, match="cycle: a, b"):
        ps.dependency_order({"a": {"b": "x"}, "b": {"a": "x"}, "c": {}})


def container_info(port=None, address="127.0.0.1"):
    return {
        "Config": {"ExposedPorts": {f"{port}/tcp": {}} if port else {}},
        "NetworkSettings": {"Networks": {"n": {"IPAddress": address}} if address else {}},
    }


def test_listening_gate(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert ps.listening(container_info(port)) is True
    # Closed now: refused.
    assert ps.listening(container_info(port)) is False
    assert ps.listening(container_info(None)) is None
    assert ps.listening(container_info(port, address=None)) is None
    # An address that cannot be reached from here (a timeout, not a refusal): cannot tell.

    def unreachable(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(ps.socket, "create_connection", unreachable)
    assert ps.listening(container_info(port)) is None


class FakeEngine:
    """Containers that become ready a given time after they start; exec runs the 'healthcheck'."""

    def __init__(self, services):
        # services: name -> (depends_on label, has healthcheck, seconds until ready after start)
        self.t0 = time.time()
        self.lock = threading.Lock()
        self.started_at = {}
        self.running = {}
        self.services = services
        self.execs = {}
        self.stopped = []
        self.restarted = []
        self.calls = 0
        self.check_timeout = 1.0  # seconds, the healthcheck's Timeout that inspect reports

    def containers(self, label):
        out = []
        for name, (depends, _, _) in self.services.items():
            labels = {"com.docker.compose.service": name}
            if depends:
                labels["com.docker.compose.depends_on"] = depends
            out.append(
                {
                    "Id": name,
                    "Names": [f"/p-{name}"],
                    "Labels": labels,
                    "State": "running" if self.running.get(name) else "exited",
                    "Status": "Up (healthy)" if self.running.get(name) and self.ready(name) else "Exited",
                }
            )
        return out

    def ready(self, name):
        at = self.started_at.get(name)
        return at is not None and time.time() - at >= self.services[name][2]

    def inspect(self, name):
        _, checked, _ = self.services[name]
        running = bool(self.running.get(name))
        # Docker's: a container that never ran is "created", one that ran and stopped "exited"
        status = "running" if running else "exited" if name in self.started_at else "created"
        return {
            "State": {"Running": running, "Status": status},
            "Config": {
                "Healthcheck": {"Test": ["CMD", "check"], "Timeout": int(self.check_timeout * 10**9)}
                if checked
                else None
            },
        }

    def start(self, name):
        with self.lock:
            self.started_at[name] = time.time()
            self.running[name] = True

    def stop(self, name):
        with self.lock:
            self.stopped.append(name)
            self.running[name] = False

    def restart(self, name):
        with self.lock:
            self.restarted.append(name)
        self.start(name)

    def exec_start(self, name, cmd):
        assert cmd == ["check"]
        self.execs[name] = self.execs.get(name, 0) + 1
        return name

    def exec_inspect(self, exec_id):
        return {"Running": False, "ExitCode": 0 if self.ready(exec_id) else 1}


SERVICES = {
    "vector": ("", True, 0.2),
    "db": ("vector:service_healthy:false", True, 0.4),
    "rest": ("db:service_healthy:false", False, 0),
    "storage": ("db:service_healthy:false,rest:service_started:false", True, 0.2),
    "imgproxy": ("", True, 0.1),
}


def test_starter_starts_each_service_once_its_dependencies_are_ready():
    engine = FakeEngine(SERVICES)
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05)
    assert starter.run() == []
    assert sorted(starter.acted) == sorted(SERVICES)
    start = engine.started_at
    # Each dependant started only after its dependency's probe passed, not before.
    assert start["db"] >= start["vector"] + 0.2
    assert start["rest"] >= start["db"] + 0.4
    assert start["storage"] >= start["rest"]
    # Independent services start at once.
    assert abs(start["imgproxy"] - start["vector"]) < 0.2
    # Faster than the healthcheck tick would allow: the whole chain in about its services' own time.
    assert max(starter.ready_at.values()) < 2.5
    assert engine.execs["db"] >= 2  # probed while it came up


def test_starter_leaves_healthy_running_services_alone():
    engine = FakeEngine(SERVICES)
    for name in SERVICES:
        engine.start(name)
    engine.started_at = {name: 0 for name in SERVICES}
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05)
    assert starter.run() == []
    assert starter.acted == []


def test_starter_reports_what_never_got_ready():
    engine = FakeEngine({"db": ("", True, 3600), "rest": ("db:service_healthy:false", False, 0)})
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 0.5, probe_interval=0.05)
    assert starter.run() == ["db", "rest"]
    assert "rest" not in engine.started_at  # never started: its dependency never got ready


def test_starter_records_engine_errors():
    engine = FakeEngine({"db": ("", True, 0)})

    def refuse(name):
        raise DockerError("no such image")

    engine.start = refuse
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 5, probe_interval=0.05)
    assert starter.run() == ["db"]
    assert starter.errors == {"db": "no such image"}


def test_stop_all_stops_dependants_first():
    engine = FakeEngine(SERVICES)
    for name in SERVICES:
        engine.start(name)
    project = ps.Project(engine, "p")
    assert ps.stop_all(engine, project) == sorted(SERVICES)
    order = engine.stopped
    assert order.index("storage") < order.index("rest") < order.index("db") < order.index("vector")


def test_restart_followers_follow_depends_on_restart_true():
    labels = {
        "db": "",
        "supavisor": "db:service_healthy:true,analytics:service_healthy:false",
        "auth": "db:service_healthy:false",
        "edge": "supavisor:service_started:true",
    }
    assert ps.restart_followers(labels, ["db"]) == {"db", "supavisor", "edge"}
    assert ps.restart_followers(labels, ["auth"]) == {"auth"}


def test_a_restart_of_some_services_leaves_the_others_alone():
    engine = FakeEngine(SERVICES)
    for name in SERVICES:
        engine.start(name)
    engine.started_at = {name: 0 for name in SERVICES}
    project = ps.Project(engine, "p")
    assert ps.stop_all(engine, project, only={"db", "storage"}) == ["db", "storage"]
    project.refresh()
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05, only={"db", "storage"})
    assert starter.run() == []
    assert sorted(starter.acted) == ["db", "storage"]
    assert sorted(starter.ready_at) == ["db", "storage"]
    assert ps.wait_docker_healthy(project, time.time() + 5, only={"db", "storage"}) == ([], {})


def test_a_restart_is_in_place_at_once_and_a_follower_restarts_once_its_leader_is_ready_again():
    services = dict(SERVICES, pool=("db:service_healthy:true,rest:service_started:false", True, 0.1))
    engine = FakeEngine(services)
    for name in services:
        engine.start(name)
    engine.started_at = dict.fromkeys(services, 0)
    began = time.time()
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05, restart=True)
    assert starter.run() == []
    assert sorted(starter.acted) == sorted(services)
    start = engine.started_at
    # Everything at once, as compose restarts, whatever its depends_on: no waiting for readiness...
    assert sorted(engine.restarted) == sorted(set(services) - {"pool"})
    assert max(start[n] for n in services if n != "pool") - began < 0.3
    # ...except the one whose depends_on says restart after db: stopped at once with the others, started
    # once db's probe passes again.
    assert engine.stopped == ["pool"] and start["pool"] >= start["db"] + 0.4
    # Only db is probed (the pool waits for it); Docker's own checks judge the rest (wait_docker_healthy).
    assert sorted(engine.execs) == ["db"] and sorted(starter.ready_at) == ["db"]
    assert sorted(starter.since) == sorted(services)  # every verdict judged from this run's checks on


def test_a_restart_probes_what_a_stopped_service_waits_for_and_starts_it_in_order():
    """A project with one service down (exited): the restart starts it as a resume would, once what it
    depends on passes its probe again; that dependency is probed, nothing else."""
    engine = FakeEngine(SERVICES)
    for name in SERVICES:
        engine.start(name)
    engine.started_at = dict.fromkeys(SERVICES, 0)
    engine.running["storage"] = False
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05, restart=True)
    assert starter.run() == []
    assert sorted(engine.restarted) == sorted(set(SERVICES) - {"storage"})
    assert engine.started_at["storage"] >= engine.started_at["db"] + 0.4
    assert sorted(engine.execs) == ["db", "storage"] and sorted(starter.ready_at) == ["db", "rest", "storage"]


def test_a_restart_of_a_stopped_project_starts_it_in_readiness_order():
    engine = FakeEngine(SERVICES)
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05, restart=True)
    assert starter.run() == []
    assert engine.restarted == [] and sorted(starter.acted) == sorted(SERVICES)
    assert engine.started_at["rest"] >= engine.started_at["db"] + 0.4


def slow_probes(engine, durations):
    """The fake engine's checks take durations[i] seconds (the last one from then on) and exit 0 once db is
    ready; its healthcheck timeout is 0.1 s. Returns the probes' bookkeeping."""
    probes = {"running": 0, "max": 0, "finish_at": {}, "ended_ok_after_timeout": 0}

    def exec_start(name, cmd):
        probes["running"] += 1
        probes["max"] = max(probes["max"], probes["running"])
        n = len(probes["finish_at"])
        exec_id = f"{name}-{n}"
        probes["finish_at"][exec_id] = time.time() + durations[min(n, len(durations) - 1)]
        return exec_id

    def exec_inspect(exec_id):
        finish_at = probes["finish_at"]
        if time.time() < finish_at[exec_id]:
            return {"Running": True}
        if finish_at[exec_id] > 0:
            probes["running"] -= 1
            finish_at[exec_id] = 0
        return {"Running": False, "ExitCode": 0 if engine.ready("db") else 1}

    engine.exec_start, engine.exec_inspect = exec_start, exec_inspect
    engine.check_timeout = 0.1
    return probes


def test_a_slow_probe_is_waited_for_never_doubled():
    """On a starved host a probe outlives its timeout: no second one starts in that container until it
    ends, and only a probe that passes within its timeout makes the service ready."""
    engine = FakeEngine({"db": ("", True, 0)})
    probes = slow_probes(engine, [0.3, 0.3, 0.01])  # two outlive the 0.1 s timeout (and exit 0), then fast
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 10, probe_interval=0.02)
    assert starter.run() == []
    assert probes["max"] == 1
    assert len(probes["finish_at"]) == 3  # the third, the first in time, made it ready
    assert starter.ready_at["db"] >= 0.6


def test_a_check_that_passes_only_after_its_timeout_never_counts_as_ready():
    """Docker counts a check that outlives its timeout as failed, whatever it exits with later: so does
    the readiness probe (a service whose every check is too slow is not ready)."""
    engine = FakeEngine({"db": ("", True, 0), "rest": ("db:service_healthy:false", False, 0)})
    probes = slow_probes(engine, [0.3])
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 1.5, probe_interval=0.02)
    assert starter.run() == ["db", "rest"]
    assert len(probes["finish_at"]) >= 2 and probes["max"] == 1
    assert "rest" not in engine.started_at


def test_a_start_of_some_services_brings_what_they_need_and_nothing_else():
    """present with services (the database alone, before its passwords are set): its dependencies start too."""
    engine = FakeEngine(SERVICES)
    project = ps.Project(engine, "p")
    only = ps.with_dependencies(project.deps(), ["db"])
    assert only == {"db", "vector"}
    assert ps.with_dependencies(project.deps(), ["storage"]) == {"storage", "rest", "db", "vector"}
    starter = ps.Starter(engine, project, time.time() + 30, probe_interval=0.05, only=only)
    assert starter.run() == []
    assert sorted(engine.started_at) == ["db", "vector"]
    assert ps.wait_docker_healthy(project, time.time() + 5, only=only) == ([], {})
