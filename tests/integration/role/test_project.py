"""One full project through the playbooks: create, the gateway and pooler contract, status,
idempotence, secrets kept out of the output, then pause / resume / restart / delete with data
that survives. The read-only checks share one created project (module-scoped fixture).
"""

import datetime
import json
import re
import stat
import time
import urllib.error
import urllib.request

import jwt
import pytest

from tests.conftest import VENV_BIN, pooler_query, run
from tests.integration.role.conftest import changed_count, changed_tasks, docker_names, one_line, random_ref

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker

SERVICES = {
    "vector",
    "db",
    "analytics",
    "auth",
    "rest",
    "realtime",
    "storage",
    "imgproxy",
    "meta",
    "functions",
    "kong",
    "studio",
    "supavisor",
}
SECRET_NAMES = [
    "POSTGRES_PASSWORD",
    "JWT_SECRET",
    "ANON_KEY",
    "SERVICE_ROLE_KEY",
    "DASHBOARD_PASSWORD",
    "SECRET_KEY_BASE",
    "VAULT_ENC_KEY",
    "PG_META_CRYPTO_KEY",
    "LOGFLARE_PUBLIC_ACCESS_TOKEN",
    "LOGFLARE_PRIVATE_ACCESS_TOKEN",
    "S3_PROTOCOL_ACCESS_KEY_ID",
    "S3_PROTOCOL_ACCESS_KEY_SECRET",
    "DB_ENC_KEY",
    "DASHBOARD_USERNAME",
]
SHIPPED = {"kong", "auth", "rest", "realtime", "storage", "functions", "db"}
# Run in a container: does anything there speak the Docker API (the socket, or the engine over TCP
# on the project network's gateway, i.e. the host)?
DOCKER_API_PROBE = """
import socket, sys
found = []
targets = [(socket.AF_UNIX, p) for p in ("/var/run/docker.sock", "/run/docker.sock")]
targets += [(socket.AF_INET, (sys.argv[1], port)) for port in (2375, 2376)]
for family, address in targets:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(address)
        s.sendall(b"GET /_ping HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n")
        if b"OK" in s.recv(4096):
            found.append(str(address))
    except OSError:
        pass
print(",".join(found))
"""


def leaked_secrets(project):
    """Names of the project's secrets that appear in any playbook output collected so far."""
    values = [project["env"][name] for name in SECRET_NAMES]
    assert all(len(v) >= 8 for v in values)
    return [
        name
        for name, value in zip(SECRET_NAMES, values, strict=True)
        if any(value in out for out in project["outputs"])
    ]


@pytest.fixture(scope="module")
def project(host):
    ref = random_ref("p")
    created = host.playbook("create", ref)
    project = {"ref": ref, "create": created, "env": host.dotenv(ref), "outputs": [created.stdout + created.stderr]}
    yield project
    # Whatever tests ran, in whatever order: none of their playbook runs printed a secret.
    assert leaked_secrets(project) == [], "a playbook run of this module printed a secret"


def http(port, path, headers=None):
    """Status code of a GET through the project's gateway on 127.0.0.1."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def containers(ref):
    out = run(
        ["docker", "ps", "-a", "--filter", f"label=supamanager.project={ref}", "--format", "{{json .}}"], env=None
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return {row["Names"].removeprefix(f"supamanager-{ref}-"): row for row in rows}


def started_at(ref):
    """service -> when Docker last started its container."""
    names = [row["Names"] for row in containers(ref).values()]
    inspected = json.loads(run(["docker", "inspect", *names], env=None).stdout)
    return {c["Config"]["Labels"]["supamanager.service"]: c["State"]["StartedAt"] for c in inspected}


def docker_time(value):
    """Docker's RFC 3339 time with nanoseconds ("2026-12-02T16:03:38.41963399Z") as a datetime."""
    whole, _, fraction = value.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def test_create_returns_with_every_service_healthy_by_dockers_own_check(project):
    """Runs first, right after the create returned: the role's own readiness probes let dependants
    start early, but the create waits until Docker's healthchecks report healthy too."""
    ref = project["ref"]
    found = containers(ref)
    assert set(found) == SERVICES
    inspected = json.loads(run(["docker", "inspect", *[row["Names"] for row in found.values()]], env=None).stdout)
    health = {
        c["Config"]["Labels"]["supamanager.service"]: (c["State"].get("Health") or {}).get("Status") for c in inspected
    }
    # rest has no healthcheck (upstream has none, its image no shell): the gateway check covers it.
    assert health == {name: None if name == "rest" else "healthy" for name in SERVICES}
    for name, row in found.items():
        assert row["State"] == "running", name
        assert f"supamanager.service={name}" in row["Labels"]
    assert docker_names("network", ref) == [f"supamanager-{ref}"]
    assert docker_names("volume", ref) == sorted(
        f"supamanager-{ref}-{v}" for v in ["db-data", "db-config", "storage-data", "deno-cache"]
    )


def test_gateway_enforces_keys(project):
    env = project["env"]
    port = env["KONG_HTTP_PORT"]
    anon, service = env["ANON_KEY"], env["SERVICE_ROLE_KEY"]
    forged = jwt.encode(
        {"role": "anon", "iss": "supabase", "iat": int(time.time()), "exp": int(time.time()) + 3600},
        "not-the-secret-" * 3,
        algorithm="HS256",
    )
    assert http(port, "/rest/v1/") == 401
    assert http(port, "/rest/v1/", {"apikey": anon}) == 200
    assert http(port, "/rest/v1/", {"apikey": anon, "Authorization": f"Bearer {anon}"}) == 200
    assert http(port, "/rest/v1/", {"apikey": anon, "Authorization": f"Bearer {forged}"}) == 401
    assert http(port, "/pg/tables", {"apikey": anon}) == 403
    assert http(port, "/pg/tables", {"apikey": service}) == 200
    assert http(port, "/auth/v1/health", {"apikey": anon}) == 200


def test_pooler_port_reaches_the_database(project):
    assert pooler_query(project["env"], "select 1") == [(1,)]


def test_project_directory(project, host, venv_env):
    directory = host.project_dir(project["ref"])
    assert stat.S_IMODE((directory / ".env").stat().st_mode) == 0o600
    for relative in [
        "docker-compose.yml",
        "volumes/api/kong.yml",
        "volumes/logs/vector.yml",
        "volumes/pooler/pooler.exs",
        "volumes/db/roles.sql",
    ]:
        assert (directory / relative).is_file(), relative
    run(
        [str(VENV_BIN / "docker-compose"), "--env-file", ".env", "-f", "docker-compose.yml", "config", "--quiet"],
        env=venv_env,
        cwd=directory,
    )
    # Files 0600, directories (the functions' secrets) 0700: the owner's only, either way.
    keys = host.root / "secrets" / project["ref"]
    for path in keys.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path.name


def test_status_reports_healthy_project(project, host):
    status = host.status(project["ref"])
    assert status["ref"] == project["ref"]
    assert status["status"] == "ACTIVE_HEALTHY"
    assert set(status["services"]) == SERVICES
    assert status["services"]["rest"] == {"state": "running", "health": "none"}
    assert all(s == {"state": "running", "health": "healthy"} for n, s in status["services"].items() if n != "rest")
    env = project["env"]
    assert status["ports"] == {
        "kong_http": int(env["KONG_HTTP_PORT"]),
        "kong_https": int(env["KONG_HTTPS_PORT"]),
        "postgres": int(env["POSTGRES_PORT"]),
        "pooler_transaction": int(env["POOLER_PROXY_PORT_TRANSACTION"]),
        "vector_fluent": int(env["VECTOR_FLUENT_PORT"]),
    }


def test_no_container_holds_the_docker_socket_or_reaches_the_engine(project):
    ref = project["ref"]
    gateway = run(
        ["docker", "network", "inspect", "-f", "{{ (index .IPAM.Config 0).Gateway }}", f"supamanager-{ref}"], env=None
    ).stdout.strip()
    for name in SERVICES:
        container = f"supamanager-{ref}-{name}"
        mounts = json.loads(run(["docker", "inspect", "-f", "{{ json .Mounts }}", container], env=None).stdout)
        assert not [m for m in mounts if "docker.sock" in m["Source"] + m["Destination"]], name
        options = run(["docker", "inspect", "-f", "{{ json .HostConfig.SecurityOpt }}", container], env=None).stdout
        assert "label=disable" not in options, name
        probe = run(["docker", "exec", container, "python3", "-c", DOCKER_API_PROBE, gateway], env=None)
        assert probe.stdout.strip() == "", (name, probe.stdout)


def test_logs_reach_vector_through_the_log_driver_and_docker_logs_still_works(project):
    ref = project["ref"]
    vector = f"supamanager-{ref}-vector"
    wanted = {f"supamanager-{ref}-{name}" for name in SHIPPED}
    deadline = time.monotonic() + 120
    while True:
        out = run(["docker", "exec", vector, "wget", "-qO-", "http://127.0.0.1:9001/standin/records"], env=None)
        records = json.loads(out.stdout)
        if wanted <= {tag for tag, count in records.items() if count > 0} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert wanted <= set(records), records
    # Only this project's containers send here.
    assert all(tag.startswith(f"supamanager-{ref}-") for tag in records), records
    # Docker's dual logging: with the fluentd driver, docker logs still reads the container's lines
    # (without it: "configured logging driver does not support reading").
    logs = run(["docker", "logs", f"supamanager-{ref}-db"], env=None)
    assert "standin db-entrypoint:" in logs.stdout + logs.stderr


def test_every_published_port_is_on_loopback(project):
    published = []
    for name in SERVICES:
        out = run(
            ["docker", "inspect", "-f", "{{ json .NetworkSettings.Ports }}", f"supamanager-{project['ref']}-{name}"],
            env=None,
        ).stdout
        for bindings in (json.loads(out) or {}).values():
            published += [(name, b["HostIp"]) for b in bindings or []]
    assert sorted(name for name, _ip in published) == ["kong", "kong", "supavisor", "supavisor", "vector"]
    assert {ip for _name, ip in published} == {"127.0.0.1"}


def test_generated_instead_of_upstream_constants(project):
    env = project["env"]
    assert len(env["DB_ENC_KEY"]) == 16 and env["DB_ENC_KEY"] != "supabaserealtime"
    assert env["DASHBOARD_USERNAME"] != "supabase"
    assert env["ENABLE_PHONE_AUTOCONFIRM"] == "false"


def test_second_create_changes_nothing(project, host):
    # At -vv, so that the secrets check below also covers the verbose output users may ask for.
    again = host.playbook("create", project["ref"], verbosity=2)
    project["outputs"].append(again.stdout + again.stderr)
    assert changed_count(again.stdout) == 0, changed_tasks(again.stdout)


def test_status_of_absent_project(host):
    status = host.status(random_ref("absent"))
    assert status["status"] == "REMOVED"
    assert status["services"] == {}


def test_status_of_a_project_whose_containers_are_gone_is_removed(host):
    # Its files remain (a restore creates the containers again from them): REMOVED, as the daemon says.
    ref = random_ref("gone")
    host.project_dir(ref).mkdir(parents=True)
    (host.project_dir(ref) / "project.json").write_text(json.dumps({"ref": ref, "services": ["db", "kong"]}))
    status = host.status(ref)
    assert status["status"] == "REMOVED"
    assert status["services"] == {name: {"state": "missing", "health": "none"} for name in ("db", "kong")}


def test_pause_of_absent_project_fails_clearly(host):
    proc = host.playbook("pause", random_ref("absent"), check=False)
    assert proc.returncode != 0
    assert "does not exist" in proc.stdout


def test_a_failed_create_of_a_project_that_existed_rolls_nothing_back(project, host):
    """A create re-run on an existing project that fails (here imgproxy's check always fails, so Docker
    marks it unhealthy) removes nothing: every container, the network, volumes, files, secrets, ports
    and rows stay. It leaves imgproxy failing; the lifecycle test that follows converges it again."""
    ref, env = project["ref"], project["env"]
    pooler_query(env, "create table kept_on_failure (note text)")
    pooler_query(env, "insert into kept_on_failure values ('before the failed create')")
    before = containers(ref)
    volumes, networks = docker_names("volume", ref), docker_names("network", ref)
    files = sorted(p.name for p in host.project_dir(ref).iterdir())
    ports = json.loads((host.root / "ports.json").read_text())["projects"][ref]
    failing = {"imgproxy": {"test": ["CMD", "sh", "-c", "echo imgproxy-check-says-no; exit 1"], "retries": 1}}
    failed = host.playbook(
        "create", ref, check=False, supabase_healthcheck_overrides=failing, supabase_health_timeout=90
    )
    project["outputs"].append(failed.stdout + failed.stderr)
    assert failed.returncode != 0
    out = one_line(failed.stdout)
    assert "imgproxy: running, health unhealthy, last check: imgproxy-check-says-no" in out
    assert "The project existed before this run: its volumes, files and secrets are kept." in out
    after = containers(ref)
    assert sorted(after) == sorted(before)
    assert {name: row["State"] for name, row in after.items()} == dict.fromkeys(before, "running")
    assert after["imgproxy"]["ID"] != before["imgproxy"]["ID"]  # the run got as far as recreating it
    assert (docker_names("volume", ref), docker_names("network", ref)) == (volumes, networks)
    assert sorted(p.name for p in host.project_dir(ref).iterdir()) == files
    assert (host.root / "secrets" / ref / "came-up").exists()
    assert json.loads((host.root / "ports.json").read_text())["projects"][ref] == ports
    assert pooler_query(env, "select note from kept_on_failure") == [("before the failed create",)]


def test_lifecycle_keeps_the_data(project, host):
    """Runs last in this module: it pauses, restarts and re-creates the shared project."""
    ref, env = project["ref"], project["env"]
    pooler_query(env, "create table if not exists kept (note text)")
    pooler_query(env, "insert into kept values ('before pause')")

    def run_twice(name, **extra):
        first = host.playbook(name, ref, **extra)
        second = host.playbook(name, ref, **extra)
        project["outputs"].extend([first.stdout + first.stderr, second.stdout + second.stderr])
        assert changed_count(second.stdout) == 0, (name, changed_tasks(second.stdout))
        return changed_count(first.stdout), changed_count(second.stdout)

    assert run_twice("pause")[1] == 0
    assert {row["State"] for row in containers(ref).values()} == {"exited"}
    assert host.status(ref)["status"] == "INACTIVE"

    first, second = run_twice("resume")
    assert first > 0 and second == 0
    assert pooler_query(env, "select note from kept") == [("before pause",)]

    # A restart is in place (the same containers, each started again), as compose restarts.
    ids, before = {name: row["ID"] for name, row in containers(ref).items()}, started_at(ref)
    restarted = host.playbook("restart", ref, verbosity=2)
    project["outputs"].append(restarted.stdout + restarted.stderr)
    assert host.status(ref)["status"] == "ACTIVE_HEALTHY"
    after = started_at(ref)
    assert {name: row["ID"] for name, row in containers(ref).items()} == ids
    assert all(after[name] != before[name] for name in after)
    # ...with no stop phase of its own: the engine's restart stops and starts each container.
    phases = re.search(r"phases:\n((?: +\w+: [\d.]+\n)+)", restarted.stdout)
    assert set(re.findall(r"(\w+):", phases.group(1))) == {"restart", "docker_healthy", "gateway"}
    assert pooler_query(env, "select note from kept") == [("before pause",)]

    # The daemon's heal: only db, and the pooler, whose depends_on says restart after db: once db is ready again.
    before = after
    healed = host.playbook("restart", ref, supabase_restart_services=["db"])
    project["outputs"].append(healed.stdout + healed.stderr)
    after = started_at(ref)
    assert {name for name in after if after[name] != before[name]} == {"db", "supavisor"}
    assert docker_time(after["supavisor"]) > docker_time(after["db"])
    assert pooler_query(env, "select note from kept") == [("before pause",)]

    assert run_twice("delete")[1] == 0
    assert docker_names("container", ref) == [] and docker_names("network", ref) == []
    assert not host.project_dir(ref).exists()
    assert len(docker_names("volume", ref)) == 4

    recreated = host.playbook("create", ref)
    project["outputs"].append(recreated.stdout + recreated.stderr)
    env = host.dotenv(ref)
    assert pooler_query(env, "select note from kept") == [("before pause",)]

    assert run_twice("delete", delete_volumes=True)[1] == 0
    for kind in ["container", "network", "volume"]:
        assert docker_names(kind, ref) == [], kind
    assert not host.project_dir(ref).exists()
    assert ref not in json.loads((host.root / "ports.json").read_text()).get("projects", {})


def test_no_secret_in_any_output(project):
    """Every playbook run of the module so far printed no secret (some at -vv). The project fixture
    checks again at its teardown, so runs of tests that come after this one (or a -k selection
    without it) are covered too."""
    assert leaked_secrets(project) == []
