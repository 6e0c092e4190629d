"""The Database routes end to end: a real supamanagerd, the real playbooks, the real engine, the
stand-in images (a real PostgreSQL behind the supavisor stand-in, the real postgres-meta behind the
gateway stand-in). One project serves every test of the module (created once); the last test
pauses it. Each bad input is a clear 4xx and changes nothing.
"""

# ruff: noqa: S608 - the SQL here is the test's own, with a constant table-name marker
from __future__ import annotations

import os
import pathlib
import secrets
import subprocess

import psycopg
import pytest
from conftest import REPO
from daemonproc import Daemon

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COLLECTION = pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO))
PLAYBOOK_VARS = {
    "supabase_port_range_start": 28100,
    "supabase_port_range_end": 28999,
    # Nothing here needs the log services; a loaded CI host needs patience for the rest.
    "supabase_logs_enabled": False,
    "supabase_health_timeout": 900,
    "supabase_healthcheck_interval": "20s",
}
# The official CLI takes only tokens of this form.
CLI_TOKEN = "sbp_" + secrets.token_hex(20)
# Marks the SQL of this module: none of it may reach the daemon's log.
MARK = "sqlmark" + secrets.token_hex(4)


def finished(op: dict) -> bool:
    return op["state"] in ("succeeded", "failed")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("database-api")
    root = tmp / "root"
    root.mkdir()
    daemon = Daemon(
        tmp,
        COLLECTION,
        root,
        token=CLI_TOKEN,
        sql_statement_timeout=3,
        sql_max_result_bytes=100_000,
        playbook_vars=PLAYBOOK_VARS,
    )
    daemon.start()
    ref = None
    try:
        status, body, headers = daemon.request("POST", "/v1/projects", {"name": "sql", "db_pass": "sql-test-pass-1234"})
        assert status == 201, body
        ref = body["ref"]
        op = daemon.wait(headers["X-Operation-Id"], finished, timeout=900)
        assert op["state"] == "succeeded", op["error"]
        daemon.ref = ref
        yield daemon
    finally:
        if ref:
            status, _, headers = daemon.request("DELETE", f"/v1/projects/{ref}")
            if status in (200, 202):
                daemon.wait(headers["X-Operation-Id"], finished, timeout=600)
        daemon.stop()


def query(api, sql, path="query", **extra):
    return api.request("POST", f"/v1/projects/{api.ref}/database/{path}", {"query": sql, **extra})[:2]


def exists(api, table):
    status, rows = query(api, "select to_regclass($1) is not null as present", parameters=[table])
    assert status == 201, rows
    return rows[0]["present"]


def test_query_creates_a_table_and_answers_typed_rows(api):
    status, rows = query(api, f"create table public.{MARK} (id bigint primary key, doc jsonb, note text)")
    assert (status, rows) == (201, [])
    status, rows = query(
        api,
        f"insert into public.{MARK} values (9007199254740993, '{{\"a\": [1, 2]}}', $1) returning *",
        parameters=["hello"],
    )
    assert (status, rows) == (201, [{"id": 9007199254740993, "doc": {"a": [1, 2]}, "note": "hello"}])


def test_types_name_the_table_created_through_the_query_endpoint(api):
    assert exists(api, f"public.{MARK}") or query(api, f"create table public.{MARK} (id bigint primary key)")
    status, body, _ = api.request("GET", f"/v1/projects/{api.ref}/types/typescript?included_schemas=public")
    assert status == 200, body
    assert f"{MARK}: {{" in body["types"] and "export type Database" in body["types"]


def test_the_official_cli_generates_types_naming_the_table(api, supabase_clients, tmp_path):
    assert exists(api, f"public.{MARK}") or query(api, f"create table public.{MARK} (id bigint primary key)")
    profile = tmp_path / "profile.yaml"
    base = f"http://127.0.0.1:{api.port}"
    profile.write_text(f"name: supamanager\napi_url: {base}\ndashboard_url: {base}\nproject_host: localhost\n")
    env = {
        "PATH": f"{supabase_clients.node.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUPABASE_ACCESS_TOKEN": CLI_TOKEN,
        "DO_NOT_TRACK": "1",
    }
    cmd = [str(supabase_clients.supabase), "--profile", str(profile), "gen", "types", "typescript"]
    proc = subprocess.run(
        [*cmd, "--project-id", api.ref], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{MARK}: {{" in proc.stdout and "export type Database" in proc.stdout


def test_types_refuse_a_bad_schema_list(api):
    status, body, _ = api.request("GET", f"/v1/projects/{api.ref}/types/typescript?included_schemas=pub;lic")
    assert (status, body["code"]) == (400, "invalid_value")


def test_malformed_sql_is_400_with_postgres_message_and_changes_nothing(api):
    status, body = query(api, f"create table public.{MARK}_bad (id int); selec 1")
    assert status == 400
    assert body["message"] == 'syntax error at or near "selec"' and body["code"] == "sql_error"
    assert body["details"]["sqlstate"] == "42601"
    assert not exists(api, f"public.{MARK}_bad")


def test_a_statement_past_the_timeout_is_400_and_changes_nothing(api):
    status, body = query(api, f"create table public.{MARK}_slow (id int); select pg_sleep(30)")
    assert (status, body["code"]) == (400, "query_timeout"), body
    assert "3 s" in body["message"]
    assert not exists(api, f"public.{MARK}_slow")


def test_a_result_past_the_limit_is_400_and_changes_nothing(api):
    status, body = query(
        api,
        f"create table public.{MARK}_big as select repeat('x', 1000) as pad from generate_series(1, 1000);"
        f" select * from public.{MARK}_big",
    )
    assert (status, body["code"]) == (400, "result_too_large"), body
    assert not exists(api, f"public.{MARK}_big")


def test_read_only_refuses_a_write(api):
    status, body = query(api, f"create table public.{MARK}_ro (id int)", path="query/read-only")
    assert (status, body["code"]) == (400, "sql_error") and "read-only" in body["message"]
    status, body = query(api, f"create table public.{MARK}_ro (id int)", read_only=True)
    assert (status, body["code"]) == (400, "sql_error")
    assert not exists(api, f"public.{MARK}_ro")
    status, rows = query(api, "select 41 + 1 as n", path="query/read-only")
    assert (status, rows) == (201, [{"n": 42}])


def test_migrations_apply_in_one_transaction(api):
    path = f"/v1/projects/{api.ref}/database/migrations"
    assert api.request("GET", path)[:2] == (200, [])
    status, body, _ = api.request("POST", path, {"query": f"create table public.{MARK}_m (id int)", "name": "first"})
    assert status == 200, body
    status, listed, _ = api.request("GET", path)
    assert status == 200 and [m.get("name") for m in listed] == ["first"]
    status, body, _ = api.request(
        "POST", path, {"query": f"create table public.{MARK}_m2 (id int); insert into nowhere values (1)"}
    )
    assert (status, body["code"]) == (400, "sql_error") and "nowhere" in body["message"]
    assert api.request("GET", path)[1] == listed
    assert not exists(api, f"public.{MARK}_m2") and exists(api, f"public.{MARK}_m")


def test_login_role_opens_the_database_through_the_pooler(api):
    path = f"/v1/projects/{api.ref}/cli/login-role"
    status, role, _ = api.request("POST", path, {"read_only": False})
    assert status == 201 and role["role"] == "cli_login_postgres" and role["ttl_seconds"] > 0
    status, pooler, _ = api.request("GET", f"/v1/projects/{api.ref}/config/database/pooler")
    assert status == 200 and [p["database_type"] for p in pooler] == ["PRIMARY"]
    entry = pooler[0]
    assert entry["connection_string"] == entry["connectionString"]
    assert entry["db_user"] == f"postgres.{api.ref}" and f":{entry['db_port']}/" in entry["connection_string"]
    with psycopg.connect(
        host="127.0.0.1",
        port=entry["db_port"],
        user=f"{role['role']}.{api.ref}",
        password=role["password"],
        dbname=entry["db_name"],
        connect_timeout=10,
    ) as conn:
        conn.execute("set role postgres")
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    # The project's password (its .env) opens the database the pooler string names.
    env = dict(
        line.split("=", 1)
        for line in (api.root / "projects" / api.ref / ".env").read_text().splitlines()
        if "=" in line
    )
    password = env["POSTGRES_PASSWORD"].strip("'\"")
    url = entry["connection_string"].replace("[YOUR-PASSWORD]", password).replace("@localhost:", "@127.0.0.1:")
    with psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert api.request("DELETE", path)[:2] == (200, {"message": "ok"})
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=entry["db_port"],
            user=f"{role['role']}.{api.ref}",
            password=role["password"],
            dbname=entry["db_name"],
            connect_timeout=10,
        )


def test_legacy_keys_are_enabled(api):
    assert api.request("GET", f"/v1/projects/{api.ref}/api-keys/legacy")[:2] == (200, {"enabled": True})


def test_no_sql_reaches_the_daemon_log(api):
    assert MARK not in api.log.read_text()


def test_zz_a_paused_project_answers_400_and_its_data_stays(api):
    status, _, headers = api.request("POST", f"/v1/projects/{api.ref}/pause")
    assert status in (200, 202)
    assert api.wait(headers["X-Operation-Id"], finished, timeout=600)["state"] == "succeeded"
    status, body = query(api, f"drop table public.{MARK}")
    assert (status, body["code"]) == (400, "project_paused"), body
    status, body, _ = api.request("GET", f"/v1/projects/{api.ref}/database/migrations")
    assert (status, body["code"]) == (400, "project_paused")
