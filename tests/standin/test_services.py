"""The service stand-ins: health with the real database role, refusal without their variables,
JWT checks, table reads, and a fast exit on SIGTERM. One db and one network for the module."""

import time

import psycopg
import pytest

from tests.standin import kit

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker

SERVICES = [s for s in kit.IMAGES if s != "db"]
# (meta is the real postgres-meta: its /health does not ask the database; see test_meta_* below.)
DB_SERVICES = ["auth", "rest", "realtime", "storage", "analytics"]
# Where each service says whether it reaches its database (what its healthcheck asks).
HEALTH_URL = {
    "auth": (9999, "/health"),
    "rest": (3000, "/"),
    "realtime": (4000, "/api/tenants/realtime-dev/health"),
    "storage": (5000, "/status"),
    "analytics": (4000, "/health"),
}
# One variable per service that upstream cannot run without.
REQUIRED = {
    "auth": "GOTRUE_JWT_SECRET",
    "rest": "PGRST_DB_URI",
    "realtime": "API_JWT_SECRET",
    "storage": "DATABASE_URL",
    "analytics": "DB_PASSWORD",
    "supavisor": "VAULT_ENC_KEY",
    "functions": "JWT_SECRET",
    "studio": "SUPABASE_ANON_KEY",
    "kong": "KONG_DECLARATIVE_CONFIG",
    "vector": "LOGFLARE_PUBLIC_ACCESS_TOKEN",
}


@pytest.fixture(scope="module")
def running(stack, db):
    """Every service started as upstream's compose file starts it, healthy."""
    containers = {service: kit.start_service(stack, service) for service in SERVICES}
    for service, container in containers.items():
        container.wait_ok(*kit.HEALTHCHECKS[service])
    return containers


@pytest.fixture(scope="module")
def todos(db):
    """A table with rows, readable by anon through a policy, as a project's own migration would do."""
    conn = psycopg.connect(host=db.ip, user="postgres", password=kit.PASSWORD, dbname="postgres", autocommit=True)
    with conn:
        conn.execute("create table public.todos (id serial primary key, task text, secret boolean default false)")
        conn.execute("insert into public.todos (task, secret) values ('write tests', false), ('hidden', true)")
        conn.execute("alter table public.todos enable row level security")
        conn.execute("create policy anon_reads_public on public.todos for select to anon using (not secret)")
    return "todos"


@pytest.mark.parametrize("service", SERVICES)
def test_upstream_healthcheck_passes(running, service):
    assert running[service].exec(*kit.HEALTHCHECKS[service]).returncode == 0


@pytest.mark.parametrize("service", DB_SERVICES)
def test_wrong_database_password_is_unhealthy(stack, db, service):
    container = kit.start_service(stack, service, name=f"{service}-wrongpw", password="wrong-password")
    port, path = HEALTH_URL[service]
    headers = {"Authorization": f"Bearer {kit.ANON_KEY}"}
    if service == "analytics":
        # Like Logflare, it opens its port only once the database answers: upstream's plain curl fails.
        deadline = time.monotonic() + 90
        while "password authentication failed" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "password authentication failed" in container.logs()
        with pytest.raises(OSError):
            kit.http("GET", container.url(port, path), timeout=3)
    else:
        _, _, body = kit.wait_http(container.url(port, path), status=503, headers=headers)
        assert "password authentication failed" in str(body)
    assert container.exec(*kit.HEALTHCHECKS[service]).returncode != 0
    assert container.state()["Status"] == "running"


@pytest.mark.parametrize("service", sorted(REQUIRED))
def test_missing_required_variable_exits_with_a_message(stack, service):
    container = kit.start_service(stack, service, name=f"{service}-missing", drop=[REQUIRED[service]])
    assert container.wait_exit() != 0
    assert REQUIRED[service] in container.logs()


@pytest.mark.parametrize(
    ("service", "port", "path"),
    [
        ("auth", 9999, "/user"),
        ("rest", 3000, "/"),
        ("rest", 3000, "/todos"),
        ("storage", 5000, "/bucket"),
        ("realtime", 4000, "/api/tenants/realtime-dev/health"),
        ("functions", 9000, "/hello"),
    ],
)
def test_token_signed_with_another_secret_gets_401(running, service, port, path):
    status, _, _ = kit.http("GET", running[service].url(port, path), {"Authorization": f"Bearer {kit.BAD_KEY}"})
    assert status == 401


def test_auth_checks_the_admin_role(running):
    url = running["auth"].url(9999, "/admin/users")
    assert kit.http("GET", url, {"Authorization": f"Bearer {kit.SERVICE_KEY}"})[0] == 200
    assert kit.http("GET", url, {"Authorization": f"Bearer {kit.ANON_KEY}"})[0] == 403


def test_auth_settings_report_the_switches_it_was_started_with(running, stack, db):
    """GoTrue's /settings: what a settings change (sign-ups, providers) is observed through."""
    _, _, default = kit.wait_http(running["auth"].url(9999, "/settings"))
    assert default["disable_signup"] is False and default["external"]["email"] is True
    assert default["external"]["github"] is False and default["mailer_autoconfirm"] is False
    env = {"GOTRUE_DISABLE_SIGNUP": "true", "GOTRUE_EXTERNAL_GITHUB_ENABLED": "true"}
    env["GOTRUE_MAILER_AUTOCONFIRM"] = "true"
    changed = kit.start_service(stack, "auth", name="auth-settings", env=env)
    _, _, settings = kit.wait_http(changed.url(9999, "/settings"))
    assert settings["disable_signup"] is True and settings["mailer_autoconfirm"] is True
    assert settings["external"]["github"] is True and settings["external"]["google"] is False


def test_rest_reads_rows_as_the_role_of_the_key(running, todos):
    rest = running["rest"]
    status, _, rows = kit.http(
        "GET", rest.url(3000, f"/{todos}?select=task"), {"Authorization": f"Bearer {kit.ANON_KEY}"}
    )
    assert (status, rows) == (200, [{"task": "write tests"}]), "anon sees only what the policy allows"
    status, _, rows = kit.http(
        "GET", rest.url(3000, f"/{todos}?select=id,task&order=id.desc"), {"Authorization": f"Bearer {kit.SERVICE_KEY}"}
    )
    assert status == 200
    assert [r["task"] for r in rows] == ["hidden", "write tests"], "service_role bypasses row level security"
    status, _, rows = kit.http(
        "GET", rest.url(3000, f"/{todos}?task=eq.hidden"), {"Authorization": f"Bearer {kit.SERVICE_KEY}"}
    )
    assert [r["task"] for r in rows] == ["hidden"]
    status, _, spec = kit.http("GET", rest.url(3000, "/"), {"Authorization": f"Bearer {kit.ANON_KEY}"})
    assert status == 200
    assert f"/{todos}" in spec["paths"]
    assert kit.http("GET", rest.url(3000, "/no_such_table"))[0] == 404


def test_rest_inserts_with_privileges_of_the_role(running, todos):
    rest = running["rest"]
    headers = {"Authorization": f"Bearer {kit.SERVICE_KEY}", "Prefer": "return=representation"}
    status, _, rows = kit.http("POST", rest.url(3000, f"/{todos}"), headers, body={"task": "from rest"})
    assert status == 201
    assert rows[0]["task"] == "from rest"
    status, _, _ = kit.http(
        "POST", rest.url(3000, f"/{todos}"), {"Authorization": f"Bearer {kit.ANON_KEY}"}, {"task": "x"}
    )
    assert status in (401, 403)


def test_rest_updates_and_calls_functions(running, todos, db):
    rest = running["rest"]
    service = {"Authorization": f"Bearer {kit.SERVICE_KEY}", "Prefer": "return=representation"}
    status, _, rows = kit.http("PATCH", rest.url(3000, f"/{todos}?task=eq.hidden"), service, {"task": "renamed"})
    assert (status, [r["task"] for r in rows]) == (200, ["renamed"])
    with psycopg.connect(host=db.ip, user="postgres", password=kit.PASSWORD, dbname="postgres", autocommit=True) as c:
        c.execute("create function public.add_them(a int, b int) returns int language sql as 'select a + b'")
    status, _, result = kit.http("POST", rest.url(3000, "/rpc/add_them"), service, {"a": 2, "b": 3})
    assert (status, result) == (200, 5)
    assert kit.http("POST", rest.url(3000, "/rpc/no_such_fn"), service, {})[0] == 404


def test_meta_lists_the_database_tables(running, todos):
    status, _, tables = kit.http("GET", running["meta"].url(8080, "/tables?included_schemas=public"))
    assert status == 200
    assert {"schema": "public", "name": todos} in [{"schema": t["schema"], "name": t["name"]} for t in tables]
    status, _, everything = kit.http("GET", running["meta"].url(8080, "/tables"))
    assert "pg_catalog" not in {t["schema"] for t in everything}


def test_meta_generates_typescript_types_from_the_real_schema(running, todos):
    url = running["meta"].url(8080, "/generators/typescript?included_schemas=public")
    status, _, types = kit.http("GET", url, timeout=60)
    assert status == 200
    # The real generator: the table with each column typed from the catalog.
    assert f"{todos}: {{" in types and "export type Database" in types
    assert "task: string | null" in types and "secret: boolean | null" in types and "id: number" in types


def test_meta_with_a_wrong_database_password_answers_the_database_error(stack, db):
    container = kit.start_service(stack, "meta", name="meta-wrongpw", password="wrong-password")
    container.wait_ok("curl", "-sf", "-o", "/dev/null", "http://localhost:8080/health")
    status, _, body = kit.http("GET", container.url(8080, "/tables"), timeout=30)
    assert status >= 400 and "password authentication failed" in str(body)


def test_realtime_knows_only_its_seeded_tenant(running):
    url = running["realtime"].url(4000, "/api/tenants/other/health")
    assert kit.http("GET", url, {"Authorization": f"Bearer {kit.ANON_KEY}"})[0] == 404


def test_storage_keeps_objects_in_the_file_backend(running):
    storage = running["storage"]
    url = storage.url(5000, "/object/avatars/a/b.txt")
    assert kit.http("POST", url, {"Authorization": f"Bearer {kit.SERVICE_KEY}"}, b"hello")[0] == 200
    assert kit.http("GET", url, {"Authorization": f"Bearer {kit.ANON_KEY}"})[2] == "hello"
    assert storage.exec("cat", "/var/lib/storage/stub/avatars/a/b.txt").stdout == "hello"
    # FILE_SIZE_LIMIT (1024 here; the role's storage settings set it): a larger object is refused, as upstream
    big = storage.url(5000, "/object/avatars/big.bin")
    status, _, body = kit.http("POST", big, {"Authorization": f"Bearer {kit.SERVICE_KEY}"}, b"x" * 1025)
    assert (status, body["error"]) == (413, "Payload too large")
    assert kit.http("POST", big, {"Authorization": f"Bearer {kit.SERVICE_KEY}"}, b"x" * 1024)[0] == 200


def test_functions_answer_for_existing_functions_only(running):
    functions = running["functions"]
    headers = {"Authorization": f"Bearer {kit.ANON_KEY}"}
    status, _, body = kit.http("GET", functions.url(9000, "/hello/x?y=1"), headers)
    # What the sample function itself answers, run by a real Deno in a user worker of its own with
    # the environment the main service passed on.
    assert (status, body["hello"], body["deno"]) == (200, "/hello/x", "2.9.8"), body
    assert body["url"] == kit.service_env("functions")["SUPABASE_URL"]
    assert kit.http("GET", functions.url(9000, "/nope"), headers)[0] == 404
    assert kit.http("GET", functions.url(9000, "/hello"))[0] == 401


def test_functions_refuse_a_missing_main_service(stack):
    container = stack.run(
        "functions",
        "start",
        "--main-service",
        "/home/deno/functions/absent",
        name="fn-nomain",
        env=kit.service_env("functions"),
    )
    assert container.wait_exit() != 0
    assert "could not find an appropriate entrypoint" in container.logs()


def test_analytics_needs_its_schema_and_a_token(stack, db, running):
    analytics = running["analytics"]
    url = analytics.url(4000, "/api/logs?source_name=x")
    assert kit.http("POST", url, {"x-api-key": "public-token"}, {"event_message": "m"})[0] == 200
    assert kit.http("POST", url, {"x-api-key": "wrong"}, {"event_message": "m"})[0] == 401
    other = kit.start_service(stack, "analytics", name="analytics-noschema", env={"DB_SCHEMA": "_nope"})
    deadline = time.monotonic() + 90
    while "check failed" not in other.logs() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "check failed" in other.logs()
    assert other.exec(*kit.HEALTHCHECKS["analytics"]).returncode != 0


def test_studio_healthcheck_fails_when_studio_does_not_answer_200(running):
    proc = running["studio"].exec(
        "node", "-e", "fetch('http://studio:3000/nope').then((r) => {if (r.status !== 200) throw new Error(r.status)})"
    )
    assert proc.returncode != 0


def test_imgproxy_health_fails_when_not_listening(running):
    proc = running["imgproxy"].exec("imgproxy", "health", env={"IMGPROXY_BIND": ":5999"})
    assert proc.returncode != 0


def test_vector_refuses_an_input_that_names_no_component(stack, tmp_path):
    config = tmp_path / "vector.yml"
    config.write_text(
        "api: {enabled: true, address: 0.0.0.0:9001}\n"
        "sources: {docker_host: {type: docker_logs}}\n"
        "transforms: {router: {type: route, inputs: [docker_host], route: {db: 'true'}}}\n"
        "sinks: {a: {type: http, inputs: [router.db]}, b: {type: http, inputs: [router.kong]}}\n"
    )
    container = stack.run(
        "vector", *kit.VECTOR_COMMAND, name="vector-badinput", volumes=[f"{config}:/etc/vector/vector.yml:ro"]
    )
    assert container.wait_exit() != 0
    assert 'input "router.kong" for sink "b"' in container.logs()


def test_vector_counts_what_the_fluentd_log_driver_sends(stack, running):
    """Docker's own fluentd log driver (the role's way to ship logs, with no Docker socket in vector)
    delivers a container's lines to the stand-in's fluent source; docker logs still shows them."""
    vector = running["vector"]
    tag = f"standin-fluent-{stack.id}"
    talker = stack.run(
        "vector",
        "-c",
        "for i in 1 2 3; do echo line $i; done",
        name="fluent-talker",
        entrypoint="bash",
        extra=[
            "--log-driver=fluentd",
            f"--log-opt=fluentd-address={vector.ip}:24224",
            "--log-opt=fluentd-async=true",
            f"--log-opt=tag={tag}",
        ],
    )
    assert talker.wait_exit() == 0
    deadline = time.monotonic() + 60
    while (records := kit.http("GET", vector.url(9001, "/standin/records"))[2]).get(tag, 0) < 3:
        assert time.monotonic() < deadline, records
        time.sleep(0.3)
    assert records[tag] == 3
    # Docker 20.10's dual logging keeps a local copy for docker logs.
    assert "line 3" in talker.logs()


@pytest.mark.parametrize(
    ("service", "env", "port", "path"),
    [
        ("auth", {"GOTRUE_DB_NAMESPACE": "no_such_schema"}, 9999, "/health"),
        (
            "realtime",
            {"DB_AFTER_CONNECT_QUERY": "SET search_path TO _no_such_schema"},
            4000,
            "/api/tenants/realtime-dev/health",
        ),
    ],
)
def test_a_schema_the_service_migrates_into_must_be_usable(stack, db, service, env, port, path):
    container = kit.start_service(stack, service, name=f"{service}-noschema", env=env)
    headers = {"Authorization": f"Bearer {kit.ANON_KEY}"}
    kit.wait_http(container.url(port, path), status=503, headers=headers)
    assert container.exec(*kit.HEALTHCHECKS[service]).returncode != 0


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "meta"])
def test_pid_1_exits_within_a_second_on_sigterm(running, service):
    container = running[service]
    # functions: the stand-in hands PID 1 over to Deno, which runs the runtime (runtime.js).
    program = "runtime.js" if service == "functions" else "standin.py"
    assert program in container.exec("cat", "/proc/1/cmdline").stdout
    assert container.stop_within_a_second(), container.logs()


def test_meta_is_the_real_postgres_meta_and_stops_on_sigterm(running):
    container = running["meta"]
    assert container.exec("cat", "/proc/1/cmdline").stdout == "node\x00dist/server/server.js\x00"
    # Upstream's own graceful shutdown, within the role's stop timeout (10 s) and without a SIGKILL.
    kit.docker("stop", "-t", "10", container.name)
    assert container.state()["ExitCode"] != 137, container.logs()
