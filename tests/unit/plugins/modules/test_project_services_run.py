"""Unit tests of supamanager.supabase.project_services' run() and main(): what each state does, check
mode, idempotence, and each failure's message, against the fake engine of test_project_services.py.

The fake stands in for the engine's failures and timing only; tests/integration/role/test_project.py
runs the module against the real engine and the stand-in images (create, pause, resume, restart,
delete), with the real `docker compose create`.
"""

import http.server
import os
import threading
import time

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils._docker_api import DockerError
from ansible_collections.supamanager.supabase.plugins.modules import project_services as ps

from tests.unit.plugins.modules.test_entry_points import LONG_NAME
from tests.unit.plugins.modules.test_project_services import SERVICES, FakeEngine

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker

# Ready as soon as they start (the start order and timing are test_project_services.py's).
QUICK = {"db": ("", True, 0), "rest": ("db:service_healthy:false", False, 0)}


class Engine(FakeEngine):
    """FakeEngine with what a delete uses (networks, volumes, removal) and a settable health."""

    def __init__(self, services, running=False):
        super().__init__(services)
        self.nets = ["p_default"]
        self.vols = ["supamanager-p-db-data"]
        self.removed = []
        self.states = {}  # name -> inspect State to report instead of the computed one
        self.attached = []  # containers on the network that are not the project's
        self.mounts = {}  # name -> the Mounts its list entry shows
        self.disconnected = []
        self.refusals = 0  # times the engine still counts an endpoint of a removed container
        # name -> [(seconds after its start, inspect State it reports from then on), ...]: Docker's
        # health verdicts and exits over time
        self.after_start = {}
        if running:
            for name in services:
                self.start(name)
            self.started_at = dict.fromkeys(services, 0)

    def containers(self, label):
        assert label == "supamanager.project=p"
        listed = [c for c in super().containers(label) if c["Id"] not in self.removed]
        return [dict(c, Mounts=self.mounts.get(c["Id"], [])) for c in listed]

    def inspect(self, name):
        info = super().inspect(name)
        info["State"]["ExitCode"] = 0  # Docker's for a container that never ran, too
        info["State"].update(self.states.get(name, {}))
        at = self.started_at.get(name)
        for after, state in self.after_start.get(name, []):
            if at is not None and time.time() - at >= after:
                info["State"].update(state)
        # Docker keeps the restart count beside State, not in it
        info["RestartCount"] = info["State"].pop("RestartCount", 0)
        return info

    def remove(self, name, volumes=False):
        assert volumes is True  # anonymous volumes go with their container
        self.removed.append(name)

    def networks(self, label):
        return [{"Id": f"id-{n}", "Name": n} for n in self.nets]

    def network(self, network_id):
        if network_id.removeprefix("id-") not in self.nets:
            raise DockerError("no such network", 404)
        return {"Containers": dict.fromkeys(self.attached)}

    def disconnect(self, network_id, container):
        self.attached.remove(container)
        self.disconnected.append(container)

    def remove_network(self, network_id):
        if self.attached or self.refusals:
            self.refusals = max(0, self.refusals - 1)
            raise DockerError("network p_default has active endpoints", 403)
        self.nets.remove(network_id.removeprefix("id-"))

    def volumes(self, label):
        return [{"Name": v} for v in self.vols]

    def remove_volume(self, name):
        self.vols.remove(name)


class Module:
    """What run() uses of AnsibleModule. The compose command's outcome is given (rc, stdout, stderr)."""

    def __init__(self, check_mode=False, compose=(0, "", ""), **params):
        self.params = {
            "project": "p",
            "project_dir": None,
            "existing": False,
            "files": [],
            "directories": [],
            "state": "present",
            "timeout": 30,
            "probe_interval": 0.05,
            "remove_volumes": False,
            "gateway_url": None,
            "gateway_headers": {},
            "secrets": [],
            "docker_host": None,
            "compose_command": ["docker", "compose"],
            "services": [],
            "max_restarts": None,
            "secret_env": [],
            "only_recreated": False,
        }
        self.params.update(params)
        self.check_mode = check_mode
        self.compose = compose
        self.commands = []
        self.no_log_values = set()

    def run_command(self, cmd, cwd=None, environ_update=None):
        self.commands.append((cmd, cwd, environ_update))
        if self.on_compose:
            self.on_compose()
        return self.compose

    on_compose = None


class Recreating(Engine):
    """A running project in which `docker compose create` (recreate()) makes new containers of some
    services: a new id each (<name>@2), created, not running."""

    def __init__(self, services):
        super().__init__(services, running=True)
        self.new = set()

    def recreate(self, *names):
        for name in names:
            self.new.add(name)
            self.running[name] = False
            self.started_at.pop(name, None)

    def containers(self, label):
        out = super().containers(label)
        for c in out:
            c["Id"] = c["Id"] + "@2" if c["Id"] in self.new else c["Id"]
        return out

    def inspect(self, name):
        return super().inspect(name.split("@")[0])

    def start(self, name):
        super().start(name.split("@")[0])

    def restart(self, name):
        super().restart(name.split("@")[0])

    def exec_start(self, name, cmd):
        return super().exec_start(name.split("@")[0], cmd)


def test_a_missing_project_dir_or_compose_file_is_refused_before_the_engine_is_asked(tmp_path):
    engine = Engine(SERVICES)
    with pytest.raises(ps.ServicesError, match="project_dir is required for state=present"):
        ps.run(Module(), engine)
    with pytest.raises(ps.ServicesError, match=r"Project p does not exist here \(.* has no docker-compose.yml\)"):
        ps.run(Module(state="stopped", existing=True, project_dir=str(tmp_path)), engine)
    assert (engine.started_at, engine.stopped, engine.removed) == ({}, [], [])


def test_check_mode_says_what_would_change_and_touches_nothing(tmp_path):
    stopped = Engine(SERVICES)
    files = [{"dest": ".env", "content": "A=1\n", "mode": "0600"}]
    module = Module(check_mode=True, project_dir=str(tmp_path / "p"), files=files)
    result = ps.run(module, stopped)
    assert result["changed"] is True and result["written"] == [".env"]
    assert not (tmp_path / "p").exists() and module.commands == [] and stopped.started_at == {}
    assert ps.run(Module(check_mode=True, state="stopped"), stopped)["changed"] is False
    assert ps.run(Module(check_mode=True, state="absent"), stopped)["changed"] is True

    running = Engine(SERVICES, running=True)
    assert ps.run(Module(check_mode=True, state="stopped"), running)["changed"] is True
    assert ps.run(Module(check_mode=True, state="restarted"), running)["changed"] is True
    assert ps.run(Module(check_mode=True, project_dir=str(tmp_path)), running)["changed"] is False
    assert (running.stopped, running.removed) == ([], [])


def test_absent_stops_dependants_first_removes_the_project_then_finds_nothing_to_do():
    engine = Engine(SERVICES, running=True)
    result = ps.run(Module(state="absent"), engine)
    assert result["changed"] is True and result["stopped"] == sorted(SERVICES)
    assert engine.stopped.index("storage") < engine.stopped.index("db") < engine.stopped.index("vector")
    assert result["removed"] == [*sorted(f"p-{name}" for name in SERVICES), "p_default"]
    # The database volume stays unless remove_volumes says otherwise.
    assert engine.vols == ["supamanager-p-db-data"]
    again = ps.run(Module(state="absent", remove_volumes=True), engine)
    assert again["removed"] == ["supamanager-p-db-data"] and engine.vols == []
    last = ps.run(Module(state="absent", remove_volumes=True), engine)
    assert (last["changed"], last["stopped"], last["removed"]) == (False, [], [])


def test_absent_with_the_volumes_kills_what_holds_nothing_that_outlives_them(tmp_path):
    """With remove_volumes only a container writing to the host outside the project directory (the backup
    agent's WAL) is stopped; the others are killed as they are removed (the engine's forced removal)."""
    engine = Engine(SERVICES, running=True)
    project_dir = tmp_path / "projects" / "p"
    bind = {"Type": "bind", "RW": True}
    engine.mounts = {
        "db": [{"Type": "volume", "Name": "supamanager-p-db-data", "RW": True}, dict(bind, RW=False, Source="/etc")],
        "storage": [dict(bind, Source=str(tmp_path / "backups" / "p" / "wal"))],
        "rest": [dict(bind, Source=str(project_dir / "volumes" / "snippets"))],
    }
    result = ps.run(Module(state="absent", remove_volumes=True, project_dir=str(project_dir)), engine)
    assert engine.stopped == ["storage"] and sorted(engine.removed) == sorted(SERVICES)
    assert result["stopped"] == sorted(SERVICES) and engine.vols == []
    # Without the volumes, every container stops first, dependants before what they depend on.
    engine = Engine(SERVICES, running=True)
    ps.run(Module(state="absent", project_dir=str(project_dir)), engine)
    assert sorted(engine.stopped) == sorted(SERVICES)
    # Where the project's directory is not known, any writable bind mount counts as the host's.
    assert ps.writes_to_host({"Mounts": [dict(bind, Source=str(project_dir / "a"))]}, None) is True
    assert ps.writes_to_host({"Mounts": [dict(bind, Source=str(project_dir / "a"))]}, str(project_dir)) is False
    assert ps.writes_to_host({}, str(project_dir)) is False


def test_a_removal_the_engine_refuses_fails_the_delete_once_the_others_went_and_leaves_the_network():
    """Containers are removed at once; one the engine refuses is the failure, and the network stays
    (a delete run again removes the rest)."""
    engine = Engine(SERVICES, running=True)
    remove = engine.remove

    def refuse_db(name, volumes=False):
        if name == "db":
            raise DockerError("DELETE /containers/db: 409 removal of container db is already in progress", 409)
        remove(name, volumes)

    engine.remove = refuse_db
    with pytest.raises(DockerError, match="already in progress"):
        ps.run(Module(state="absent"), engine)
    assert sorted(engine.removed) == sorted(set(SERVICES) - {"db"}) and engine.nets == ["p_default"]


def test_absent_disconnects_a_foreign_container_and_outlasts_a_lingering_endpoint(monkeypatch):
    """Someone else's container on the project's network is disconnected (it keeps running), and a removal
    the engine refuses for an endpoint that lingers (Docker 20.10) is tried again; the daemon e2e shows
    both on the real engine."""
    monkeypatch.setattr(ps, "NETWORK_RETRY_DELAY", 0)
    engine = Engine(SERVICES, running=True)
    engine.attached, engine.refusals = ["foreign"], 2
    result = ps.run(Module(state="absent"), engine)
    assert engine.disconnected == ["foreign"] and "foreign" not in engine.removed
    assert engine.nets == [] and result["removed"][-1] == "p_default"
    assert ps.remove_network(engine, "id-p_default") is None  # gone meanwhile: nothing to do
    # An engine that keeps refusing: the last refusal is the failure.
    engine = Engine(SERVICES, running=True)
    engine.refusals = ps.NETWORK_TRIES
    with pytest.raises(DockerError, match="active endpoints"):
        ps.run(Module(state="absent"), engine)


def test_stopped_reports_each_service_and_an_engine_that_refuses_a_stop():
    engine = Engine(SERVICES, running=True)
    result = ps.run(Module(state="stopped"), engine)
    assert result["changed"] is True and result["stopped"] == sorted(SERVICES)
    assert result["services"]["db"] == {"container": "p-db", "state": "exited", "health": "none"}
    assert ps.run(Module(state="stopped"), engine)["changed"] is False

    refusing = Engine(SERVICES, running=True)

    def refuse(name):
        raise DockerError(f"POST /containers/{name}/stop: 500 device busy", 500)

    refusing.stop = refuse
    with pytest.raises(ps.ServicesError, match=r"^storage: POST /containers/storage/stop: 500 device busy$"):
        ps.run(Module(state="stopped"), refusing)


def test_present_creates_through_compose_then_starts_and_a_second_run_changes_nothing(tmp_path):
    engine = Engine(QUICK)
    module = Module(project_dir=str(tmp_path), docker_host="unix:///run/docker-9.sock")
    result = ps.run(module, engine)
    assert result["changed"] is True and result["started"] == sorted(QUICK)
    assert {s["health"] for s in result["services"].values()} == {"healthy"}
    assert sorted(result["ready_s"]) == sorted(QUICK)
    cmd, cwd, env = module.commands[0]
    assert cmd[:2] == ["docker", "compose"] and cmd[-4:] == ["create", "--remove-orphans", "--pull", "missing"]
    assert ["--env-file", str(tmp_path / ".env")] == cmd[cmd.index("--env-file") :][:2]
    assert (cwd, env) == (str(tmp_path), {"DOCKER_HOST": "unix:///run/docker-9.sock"})
    again = ps.run(Module(project_dir=str(tmp_path)), engine)
    assert (again["changed"], again["started"]) == (False, [])


def test_a_failed_compose_create_is_reported_and_nothing_starts(tmp_path):
    engine = Engine(SERVICES)
    module = Module(project_dir=str(tmp_path), compose=(1, "", "pull access denied for supabase/x\n"))
    with pytest.raises(ps.ServicesError, match=r"^docker compose create failed: pull access denied for supabase/x$"):
        ps.run(module, engine)
    assert engine.started_at == {}


def test_a_project_without_containers_or_a_service_it_lacks_is_refused(tmp_path):
    with pytest.raises(ps.ServicesError, match="project p has no containers"):
        ps.run(Module(state="restarted"), Engine({}))
    engine = Engine(SERVICES, running=True)
    with pytest.raises(ps.ServicesError, match="project p has no service auth, kong"):
        ps.run(Module(state="restarted", services=["db", "kong", "auth"]), engine)
    assert engine.stopped == []


def test_restarted_with_services_restarts_only_those_and_their_followers():
    engine = Engine(SERVICES, running=True)
    result = ps.run(Module(state="restarted", services=["storage"]), engine)
    assert result["stopped"] == [] and result["started"] == ["storage"] == engine.restarted
    assert result["changed"] is True and engine.stopped == []


def test_only_recreated_starts_and_judges_what_compose_made_anew_and_restarts_its_followers(tmp_path):
    """A settings change's wait (only_recreated): the recreated db is started, the pooler that restarts after
    it is restarted in place once db is ready, and an untouched service that Docker calls unhealthy is not
    judged. (Real engine: daemon/tests/test_functions.py, the settings changes on the live project.)"""
    services = {
        "db": ("", True, 0.2),
        "supavisor": ("db:service_healthy:true", True, 0),
        "rest": ("db:service_healthy:false", True, 0),
        "imgproxy": ("", True, 0),
    }
    engine = Recreating(services)
    engine.states["imgproxy"] = {"Health": {"Status": "unhealthy", "Log": [{"Start": "t1"}]}}
    module = Module(project_dir=str(tmp_path), only_recreated=True)
    module.on_compose = lambda: engine.recreate("db")
    result = ps.run(module, engine)
    assert result["recreated"] == ["db"]
    # the follower in place: stopped at once, started again once db is ready (main's restart of a follower)
    assert result["started"] == ["db", "supavisor"] and engine.stopped == ["supavisor"]
    assert engine.started_at["supavisor"] >= engine.started_at["db"] + 0.2  # once db was ready again
    assert "rest" not in engine.restarted + engine.stopped and result["changed"] is True
    # nothing recreated: nothing started, nothing judged
    nothing = ps.run(Module(project_dir=str(tmp_path), only_recreated=True), Recreating(services))
    assert (nothing["recreated"], nothing["started"], nothing["changed"]) == ([], [], False)


def test_a_service_that_never_gets_ready_is_named_with_its_state_exit_code_and_last_check(tmp_path):
    engine = Engine({"db": ("", True, 3600), "rest": ("db:service_healthy:false", False, 0)})
    engine.states["db"] = {
        "Status": "exited",
        "ExitCode": 3,
        "Health": {"Status": "unhealthy", "Log": [{"Output": "pg_isready: no response\n"}]},
    }
    start = time.time()
    with pytest.raises(ps.ServicesError) as failed:
        ps.run(Module(project_dir=str(tmp_path), timeout=1), engine)
    assert str(failed.value) == (
        "not ready within 1s: db: exited, health unhealthy, exit code 3, last check: pg_isready: no response; "
        "rest: created, health none"
    )
    assert "rest" not in engine.started_at and time.time() - start < 10


def test_engine_errors_while_starting_are_named_after_the_services(tmp_path):
    engine = Engine({"db": ("", True, 0)})

    def refuse(name):
        raise DockerError("no such image: supabase/postgres")

    def gone(name):
        raise DockerError(f"GET /containers/{name}/json: 404 no such container", 404)

    engine.start = refuse
    with pytest.raises(ps.ServicesError) as failed:
        ps.run(Module(project_dir=str(tmp_path), timeout=1), engine)
    assert str(failed.value) == ("not ready within 1s: db: created, health none (db: no such image: supabase/postgres)")
    project = ps.Project(engine, "p")
    engine.inspect = gone
    assert ps.describe_not_ready(engine, project, ["db", "auth"]) == (
        "auth: missing; db: GET /containers/db/json: 404 no such container"
    )


def test_ready_by_its_probe_but_unhealthy_by_docker_fails_naming_it(tmp_path):
    engine = Engine({"db": ("", True, 0)})
    listed = engine.containers

    def unhealthy(label):
        return [dict(c, Status="Up 3 seconds (unhealthy)") for c in listed(label)]

    engine.containers = unhealthy
    with pytest.raises(ps.ServicesError, match=r"^not healthy by Docker's healthcheck within 1s: db: running, health"):
        ps.run(Module(project_dir=str(tmp_path), timeout=1), engine)


def unhealthy(start, output):
    """The inspect State of a container Docker found unhealthy in a check that began at start."""
    return {"Health": {"Status": "unhealthy", "Log": [{"Start": start, "ExitCode": 1, "Output": output}]}}


def test_docker_s_unhealthy_verdict_fails_the_start_at_once_with_the_last_check(tmp_path):
    """compose up --wait's fail-fast: once Docker marks a starting service unhealthy (its check failed
    `retries` times in a row) the start fails then, not at the deadline; what waits for it never starts.
    (Real engine: tests/integration/role/test_two_projects.py and daemon/tests/test_daemon_real_failure.py.)"""
    engine = Engine({"db": ("", True, 3600), "rest": ("db:service_healthy:false", False, 0), "imgproxy": QUICK["db"]})
    engine.after_start["db"] = [(0.3, unhealthy("2026-12-02T09:00:05.1Z", "pg_isready: no response\n"))]
    start = time.time()
    with pytest.raises(ps.ServicesError) as failed:
        ps.run(Module(project_dir=str(tmp_path), timeout=60), engine)
    assert str(failed.value) == (
        "given up by Docker (unhealthy, or exited and not restarting), not waiting out the 60s: "
        "db: running, health unhealthy, last check: pg_isready: no response; not ready yet: rest"
    )
    assert time.time() - start < 10
    assert "rest" not in engine.started_at


@pytest.mark.parametrize("checked", [True, False])
def test_a_container_that_exited_for_good_fails_the_start_at_once(tmp_path, checked):
    """Exited and not restarting (Docker would show Restarting while a restart policy brings it back)."""
    engine = Engine({"db": ("", checked, 3600)})
    engine.after_start["db"] = [(0.0, {"Running": False, "Status": "exited", "ExitCode": 2})]
    start = time.time()
    with pytest.raises(ps.ServicesError) as failed:
        ps.run(Module(project_dir=str(tmp_path), timeout=60), engine)
    assert str(failed.value).endswith("not waiting out the 60s: db: exited, health none, exit code 2")
    assert time.time() - start < 10


def test_a_container_docker_restarts_or_a_service_still_starting_is_waited_for(tmp_path):
    """No verdict yet: a restart policy bringing a crashed container back (Restarting), and failed checks
    while the health is still starting (a slow start, or its start period). Both come up in time."""
    engine = Engine({"db": ("", True, 1.0), "auth": ("", True, 1.0)})
    engine.after_start["db"] = [
        (0.0, {"Running": False, "Status": "restarting", "Restarting": True, "ExitCode": 1}),
        (0.5, {"Running": True, "Status": "running", "Restarting": False}),
    ]
    starting = {"Status": "starting", "FailingStreak": 0, "Log": [{"Start": "t1", "ExitCode": 1, "Output": "no"}]}
    engine.after_start["auth"] = [(0.2, {"Health": starting})]
    result = ps.run(Module(project_dir=str(tmp_path), timeout=60), engine)
    assert sorted(result["ready_s"]) == ["auth", "db"]
    assert min(result["ready_s"].values()) >= 1.0


def test_with_max_restarts_a_container_that_keeps_crashing_fails_the_start_at_once(tmp_path):
    """max_restarts (the settings change's): a service the restart policy brings back more often than that
    during the wait, counted from what it had when the wait began, fails then, not at the deadline. (Real
    engine: daemon/tests/test_functions.py, a Postgres setting the database cannot start with, rolled back.)"""
    engine = Engine({"auth": ("", True, 3600)})
    engine.states["auth"] = {"RestartCount": 4}  # from before this run: not this wait's crashes
    engine.after_start["auth"] = [
        (0.1, {"Running": False, "Status": "restarting", "Restarting": True, "ExitCode": 1, "RestartCount": 5}),
        (0.3, {"RestartCount": 7}),
    ]
    start = time.time()
    with pytest.raises(ps.ServicesError) as failed:
        ps.run(Module(project_dir=str(tmp_path), timeout=60, max_restarts=2), engine)
    assert str(failed.value).startswith("given up by Docker (unhealthy, or exited and not restarting), not waiting")
    assert str(failed.value).endswith("auth: restarting, health none, restarted 7 times by its restart policy")
    assert time.time() - start < 10


def test_max_restarts_judges_the_wait_for_docker_s_healthy_too():
    engine = Engine({"auth": ("", True, 0)}, running=True)
    project = ps.Project(engine, "p")
    listed = engine.containers
    # Between two crashes: the list says restarting
    engine.containers = lambda label: [dict(c, State="restarting", Status="Restarting (1)") for c in listed(label)]
    engine.states["auth"] = {"RestartCount": 3}
    assert ps.wait_docker_healthy(project, time.time() + 0.3, restarts_allowed={"auth": 3}) == (["auth"], {})
    assert ps.wait_docker_healthy(project, time.time() + 5, restarts_allowed={"auth": 2}) == (
        ["auth"],
        {"auth": "crashing"},
    )
    assert ps.given_up({"Status": "running", "RestartCount": 9}, "") is None  # no limit: waited for
    assert ps.state_of({"State": {"Status": "restarting"}, "RestartCount": 3}) == {
        "Status": "restarting",
        "RestartCount": 3,
    }


def test_an_unhealthy_verdict_from_before_the_run_is_not_taken_for_a_new_one(tmp_path):
    """A running service unhealthy before this run (a create re-run): its probe passing makes it ready; only a
    check Docker runs during the wait can fail it. So too in the wait for Docker's own healthy."""
    engine = Engine({"db": ("", True, 0)}, running=True)
    engine.states["db"] = unhealthy("old", "down then")
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 10, probe_interval=0.02)
    assert starter.run() == [] and starter.gave_up == {}
    assert starter.since == {"db": "old"}

    listed = engine.containers
    engine.containers = lambda label: [dict(c, Status="Up 1 hour (unhealthy)") for c in listed(label)]
    assert ps.wait_docker_healthy(project, time.time() + 0.5) == (["db"], {})  # only the old verdict: waited out
    # A check after the wait began that failed too: Docker's verdict, at once.
    threading.Timer(0.3, engine.states.update, ({"db": unhealthy("new", "down now")},)).start()
    start = time.time()
    assert ps.wait_docker_healthy(project, time.time() + 30, since=starter.since) == (["db"], {"db": "unhealthy"})
    assert time.time() - start < 10
    # The module's run: the same verdict in its wait for Docker's healthy fails it, naming the check.
    threading.Timer(0.5, engine.states.update, ({"db": unhealthy("newer", "down again")},)).start()
    start = time.time()
    with pytest.raises(
        ps.ServicesError, match=r"^given up by Docker .* db: running, health unhealthy, last check: down again$"
    ):
        ps.run(Module(project_dir=str(tmp_path), timeout=30), engine)
    assert time.time() - start < 10


class Gateway(http.server.BaseHTTPRequestHandler):
    """A project's gateway on loopback, answering the server's status."""

    def do_GET(self):
        assert self.headers["apikey"] == "anon"
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.status = 200
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_gateway_must_answer_200_before_the_deadline(tmp_path, gateway):
    url = f"http://127.0.0.1:{gateway.server_address[1]}/rest/v1/"
    engine = Engine(SERVICES, running=True)
    result = ps.run(Module(project_dir=str(tmp_path), gateway_url=url, gateway_headers={"apikey": "anon"}), engine)
    assert "gateway" in result["timings"]
    gateway.status = 503
    module = Module(project_dir=str(tmp_path), timeout=1, gateway_url=url, gateway_headers={"apikey": "anon"})
    with pytest.raises(ps.ServicesError, match=rf"^the gateway {url} did not answer 200 within 1s: HTTP Error 503"):
        ps.run(module, engine)


def test_a_restart_reads_the_gateway_s_port_and_key_from_env_and_masks_its_secrets(tmp_path, gateway):
    """${NAME} in the gateway check is filled from the project's .env (what runs), and the values of
    secret_env are Ansible's no_log values from then on (masked in every result and message)."""
    port = gateway.server_address[1]
    (tmp_path / ".env").write_text(f"# the role's\nKONG_HTTP_PORT={port}\nANON_KEY='anon'\nSITE_URL=http://x\n")
    engine = Engine(SERVICES, running=True)
    module = Module(
        state="restarted",
        project_dir=str(tmp_path),
        gateway_url="http://127.0.0.1:${KONG_HTTP_PORT}/rest/v1/",
        gateway_headers={"apikey": "${ANON_KEY}"},
        secret_env=["ANON_KEY", "JWT_SECRET"],
    )
    result = ps.run(module, engine)
    assert sorted(result["timings"]) == ["docker_healthy", "gateway", "restart"]
    assert module.no_log_values == {"anon"}
    assert ps.read_env(str(tmp_path)) == {"KONG_HTTP_PORT": str(port), "ANON_KEY": "anon", "SITE_URL": "http://x"}
    with pytest.raises(ps.ServicesError, match=r"^the project's .env has no KONG_HTTPS_PORT \(named by the gateway"):
        ps.run(Module(state="restarted", project_dir=str(tmp_path), gateway_url="http://h:${KONG_HTTPS_PORT}/"), engine)
    with pytest.raises(ps.ServicesError, match=r"^cannot read .*/none/.env: No such file or directory$"):
        ps.run(Module(state="restarted", project_dir=str(tmp_path / "none"), secret_env=["ANON_KEY"]), engine)
    with pytest.raises(ps.ServicesError, match=r"^project_dir is required to read .env"):
        ps.run(Module(state="restarted", gateway_url="http://h:${KONG_HTTP_PORT}/"), engine)


def test_probe_errors_are_retried_until_the_service_answers():
    """An exec that cannot start (the container restarting) or whose state cannot be read is tried again."""
    engine = Engine({"db": ("", True, 0.2)})
    failures = {"start": 1, "inspect": 1}
    exec_start, exec_inspect = engine.exec_start, engine.exec_inspect

    def flaky_start(name, cmd):
        if failures["start"]:
            failures["start"] -= 1
            raise DockerError("container is restarting")
        return exec_start(name, cmd)

    def flaky_inspect(exec_id):
        if failures["inspect"]:
            failures["inspect"] -= 1
            return {"Running": True}  # outlives its timeout: read again at the next tick
        if failures.get("read", 1):
            failures["read"] = 0
            raise DockerError("no such exec")
        return exec_inspect(exec_id)

    engine.exec_start, engine.exec_inspect = flaky_start, flaky_inspect
    engine.check_timeout = 0.05
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 10, probe_interval=0.02)
    assert starter.run() == []
    assert (failures["start"], failures["inspect"], failures["read"]) == (0, 0, 0)


def test_a_service_without_healthcheck_is_ready_once_it_runs():
    engine = Engine({"rest": ("", False, 0)})
    start = engine.start

    def slow_start(name):
        # The engine answers the start before the container runs.
        threading.Timer(0.2, start, (name,)).start()

    engine.start = slow_start
    project = ps.Project(engine, "p")
    starter = ps.Starter(engine, project, time.time() + 10, probe_interval=0.02)
    assert starter.run() == [] and starter.ready_at["rest"] >= 0.2


def test_main_reports_an_unreachable_engine_and_a_file_it_cannot_write(run_module, tmp_path):
    args = {"project": "p", "project_dir": str(tmp_path), "docker_host": f"unix://{tmp_path / 'none.sock'}"}
    rc, result = run_module(ps, dict(args, state="stopped"))
    assert rc == 1 and (result["project"], result["state"]) == ("p", "stopped")
    assert result["msg"].startswith(f"Docker engine at {tmp_path / 'none.sock'}: ")
    files = [{"dest": LONG_NAME, "content": "POSTGRES_PASSWORD=x\n", "mode": "0600"}]
    rc, result = run_module(ps, dict(args, files=files))
    assert rc == 1 and result["msg"].startswith(f"cannot write the files in {tmp_path}: ")
    assert os.listdir(tmp_path) == []
