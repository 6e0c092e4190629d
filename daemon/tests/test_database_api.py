"""The Database routes end to end: a real supamanagerd, the real playbooks, the real engine, the
stand-in images (a real PostgreSQL behind the supavisor stand-in, the real postgres-meta behind the
gateway stand-in), and the official CLI. The session's live project (conftest.live_project, shared
with test_conformance.py) serves every test; the last but one pauses it, the last deletes it (with
the default final backup) and restores the deleted project. Each bad input is a clear 4xx and
changes nothing.
"""

# ruff: noqa: S608 - the SQL here is the test's own, with a constant table-name marker
from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import time

import psycopg
import pytest
from conftest import LIVE_DB_PASS, live_pooler
from test_clients import supabase
from test_usability_cli import cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Marks the SQL of this module: none of it may reach the daemon's log.
MARK = "sqlmark" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def api(live_project):
    return live_project


def finished(op: dict) -> bool:
    return op["state"] in ("succeeded", "failed")


def official_cli(api, clients, tmp_path, *args):
    """The official CLI with the profile `supamanager profile` prints, as a user runs it."""
    proc = supabase(clients, api, api.token, *args, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def query(api, sql, path="query", **extra):
    return api.request("POST", f"/v1/projects/{api.ref}/database/{path}", {"query": sql, **extra})[:2]


def exists(api, table):
    status, rows = query(api, "select to_regclass($1) is not null as present", parameters=[table])
    assert status == 201, rows
    return rows[0]["present"]


def containers(api) -> dict[str, str]:
    """service -> container id of the project's containers."""
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=supamanager.project={api.ref}", "--format",
         '{{.Label "supamanager.service"}} {{.ID}}'],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def test_the_password_given_at_create_opens_the_database_through_the_pooler(api):
    # The official CLI created the project with --db-password LIVE_DB_PASS (conftest.live_project).
    with live_pooler(api, autocommit=False) as conn:
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError):
        live_pooler(api, LIVE_DB_PASS + "x", autocommit=False)
    secrets_file = api.root / "secrets" / api.ref / "secrets.json"
    # Compared as booleans: a failure must not print a password.
    kept = json.loads(secrets_file.read_text())["POSTGRES_PASSWORD"] == LIVE_DB_PASS
    assert kept, "the kept password is not the one given at create"
    for path in (secrets_file, api.root / "projects" / api.ref / ".env"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    in_log = LIVE_DB_PASS in api.log.read_text()
    in_store = LIVE_DB_PASS in (api.data / "supamanager.sqlite3").read_bytes().decode("latin-1")
    assert not in_log and not in_store, "the password reached the daemon's log or its store"


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
    out = official_cli(api, supabase_clients, tmp_path, "gen", "types", "typescript", "--project-id", api.ref)
    assert f"{MARK}: {{" in out and "export type Database" in out


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
    status, before, _ = api.request("GET", path)
    assert status == 200
    status, body, _ = api.request("POST", path, {"query": f"create table public.{MARK}_m (id int)", "name": "first"})
    assert status == 200, body
    status, listed, _ = api.request("GET", path)
    assert status == 200 and [m.get("name") for m in listed] == [*(m.get("name") for m in before), "first"]
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


def test_a_revoked_token_is_401_at_once_and_its_query_changes_nothing(api):
    status, created, _ = api.request("POST", "/v1/tokens", {"name": "sql-" + secrets.token_hex(4)})
    assert status == 201
    token = created["token"]
    status, rows, _ = api.request("POST", f"/v1/projects/{api.ref}/database/query", {"query": "select 1 as one"}, token)
    assert (status, rows) == (201, [{"one": 1}])
    assert api.request("DELETE", f"/v1/tokens/{created['id']}")[0] == 200
    status, body, _ = api.request(
        "POST", f"/v1/projects/{api.ref}/database/query", {"query": f"create table public.{MARK}_rev (id int)"}, token
    )
    assert status == 401 and body["message"]
    assert not exists(api, f"public.{MARK}_rev")


def test_no_sql_reaches_the_daemon_log(api):
    assert MARK not in api.log.read_text()


def next_second() -> int:
    """A recovery target (unix seconds) later than every commit so far; returns once it has passed
    (commit times have microseconds: a commit once the next second has begun is after the target)."""
    target = int(time.time()) + 1
    while time.time() < target + 0.05:
        time.sleep(0.05)
    return target


def restore_operation(api) -> str:
    """The id of the project's newest restore operation, read from the daemon's store (read-only):
    the official CLI prints none."""
    with sqlite3.connect(f"file:{api.data / 'supamanager.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT id FROM operations WHERE ref = ? AND kind = 'restore_backup' ORDER BY created_at DESC LIMIT 1",
            (api.ref,),
        ).fetchone()
    assert row, "no restore operation was recorded"
    return row[0]


def test_x_a_backup_taken_with_the_cli_is_listed_and_the_official_cli_restores_a_second_of_it(
    api, supabase_clients, tmp_path
):
    """`supamanager backups restore-point <ref> <name> --wait` runs the real backup.yml on the live
    project (it stays ACTIVE_HEALTHY; the backup carries the name); `supamanager backups list` and the
    official CLI's `supabase backups list` show it COMPLETED with the WAL streamed (on by default);
    `supabase backups restore -t` with a second before the window is refused with the reason and
    changes nothing; with a second between two writes it restores the running project in place (its
    volume present: stopped, restored, ACTIVE_HEALTHY again) with exactly the rows written before that
    second; no secret of the project in any of it."""
    # Only a healthy project is backed up by the daemon; a loaded host may show it unhealthy a while.
    deadline = time.monotonic() + 600
    while api.request("GET", f"/v1/projects/{api.ref}")[1]["status"] != "ACTIVE_HEALTHY":
        assert time.monotonic() < deadline, "the live project did not become healthy"
        time.sleep(2)
    made = cli(api, "backups", "restore-point", api.ref, "before-pitr", "--wait", timeout=900)
    assert made.returncode == 0, made.stderr[-3000:]
    listed = json.loads(cli(api, "backups", "list", api.ref, "--json").stdout)
    assert [b["status"] for b in listed["backups"]] == ["COMPLETED"]
    backup_id = listed["backups"][0]["id"]
    point = json.loads(cli(api, "backups", "restore-point", api.ref, "before-pitr", "--show", "--json").stdout)
    assert (point["status"], point["backup_id"]) == ("AVAILABLE", backup_id) and point["completed_on"]
    shown = cli(api, "backups", "list", api.ref)
    assert str(backup_id) in shown.stdout and "COMPLETED" in shown.stdout
    official = json.loads(
        official_cli(api, supabase_clients, tmp_path, "backups", "list", "--project-ref", api.ref, "-o", "json")
    )
    assert [(b["id"], b["status"]) for b in official["backups"]] == [(backup_id, "COMPLETED")]
    assert official["pitr_enabled"] is True  # the backup agent streams the WAL (supabase_backup_wal_enabled)
    status, project, _ = api.request("GET", f"/v1/projects/{api.ref}")
    assert (status, project["status"]) == (200, "ACTIVE_HEALTHY")
    manifest = json.loads((api.root / "backups" / api.ref / "archive" / str(backup_id) / "backup.json").read_text())
    assert (manifest["kind"], manifest["restore_point"]) == ("manual", "before-pitr")
    # `supabase backups restore -t` reaches restore-pitr; a second before the window is refused with
    # the reason, and nothing runs
    early = supabase(
        supabase_clients, api, api.token, "backups", "restore", "--project-ref", api.ref, "-t", "1000000000",
        "--yes", tmp=tmp_path,
    )  # fmt: skip
    assert early.returncode != 0
    assert "before the recovery window" in early.stdout + early.stderr, early.stderr[-2000:]
    status, project, _ = api.request("GET", f"/v1/projects/{api.ref}")
    assert (status, project["status"]) == (200, "ACTIVE_HEALTHY")
    assert json.loads(cli(api, "backups", "list", api.ref, "--json").stdout) == listed
    # A real point-in-time restore of the running project: rows t1 < t2 < target < t3.
    table = f"public.{MARK}_pitr"
    assert query(api, f"create table {table} (id serial primary key, note text not null)")[0] == 201
    for note in ("t1", "t2"):
        assert query(api, f"insert into {table} (note) values ('{note}')")[0] == 201
    target = next_second()
    assert query(api, f"insert into {table} (note) values ('t3')")[0] == 201
    restored = supabase(
        supabase_clients, api, api.token, "backups", "restore", "--project-ref", api.ref, "-t", str(target),
        "--yes", tmp=tmp_path,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr[-3000:]
    op = api.wait(restore_operation(api), finished, timeout=1500)
    assert op["state"] == "succeeded", op["error"]
    assert op["params"] == {"recovery_time_target_unix": target}
    status, project, _ = api.request("GET", f"/v1/projects/{api.ref}")
    assert (status, project["status"]) == (200, "ACTIVE_HEALTHY")
    assert query(api, f"select note from {table} order by id") == (201, [{"note": "t1"}, {"note": "t2"}])
    # the restore ends with a backup on the restored database's new history
    after = json.loads(cli(api, "backups", "list", api.ref, "--json").stdout)["backups"]
    assert [b["status"] for b in after] == ["COMPLETED", "COMPLETED"] and after[-1]["id"] > backup_id
    for text in (made.stdout, made.stderr, shown.stdout, json.dumps(official), early.stdout, early.stderr):
        assert LIVE_DB_PASS not in text
    for text in (restored.stdout, restored.stderr, json.dumps(op)):
        assert LIVE_DB_PASS not in text


def test_y_a_new_password_recreates_only_the_services_that_use_it_and_the_data_stays(api):
    assert query(api, f"select count(*) as n from public.{MARK}") == (201, [{"n": 1}])
    path = f"/v1/projects/{api.ref}/database/password"
    status, body, _ = api.request("PATCH", path, {"password": "short"})
    assert (status, body["code"]) == (400, "invalid_value") and "short" not in json.dumps(body)
    before = containers(api)
    new = "new-Pass_" + secrets.token_hex(8)
    status, body, headers = api.request("PATCH", path, {"password": new})
    assert status == 200 and body["message"], body
    op = api.wait(headers["X-Operation-Id"], finished, timeout=900)
    assert op["state"] == "succeeded", op["error"]
    with live_pooler(api, new, autocommit=False) as conn:
        assert conn.execute(f"select id from public.{MARK}").fetchall() == [(9007199254740993,)]
    with pytest.raises(psycopg.OperationalError):
        live_pooler(api, autocommit=False)
    # The daemon's own SQL path follows (it reads .env for each request).
    assert query(api, f"select count(*) as n from public.{MARK}") == (201, [{"n": 1}])
    after = containers(api)
    assert after.keys() == before.keys()
    kept = {name for name in before if before[name] == after[name]}
    assert {"kong", "imgproxy"} <= kept, (before, after)
    assert not kept & {"db", "auth", "rest", "storage", "meta", "supavisor"}, (before, after)
    in_log = new in api.log.read_text()
    assert not in_log, "the new password reached the daemon's log"


def test_zz_a_paused_project_answers_400_and_its_data_stays(api):
    status, _, headers = api.request("POST", f"/v1/projects/{api.ref}/pause")
    assert status in (200, 202)
    assert api.wait(headers["X-Operation-Id"], finished, timeout=600)["state"] == "succeeded"
    status, body = query(api, f"drop table public.{MARK}")
    assert (status, body["code"]) == (400, "project_paused"), body
    status, body, _ = api.request("GET", f"/v1/projects/{api.ref}/database/migrations")
    assert (status, body["code"]) == (400, "project_paused")
    status, body, _ = api.request("PATCH", f"/v1/projects/{api.ref}/database/password", {"password": "x" * 12})
    assert (status, body["code"]) == (400, "project_paused")


def test_zzz_delete_takes_the_final_backup_and_the_deleted_project_is_restored_with_its_rows(api):
    """The end of the live project's life (test_zz paused it): DELETE takes the final backup by
    default (a paused project's: its database started alone); the deleted project is 404, its
    backups still listed (the API, the CLI); `supamanager backups restore <ref> --id <final> --wait`
    brings it back under its ref, healthy, with its keys and its rows. The session's teardown then
    deletes it without a backup."""
    status, keys_before, _ = api.request("GET", f"/v1/projects/{api.ref}/api-keys")
    assert status == 200
    status, _, headers = api.request("DELETE", f"/v1/projects/{api.ref}")
    assert status == 200
    op = api.wait(headers["X-Operation-Id"], finished, timeout=900)
    assert op["state"] == "succeeded", op["error"]
    assert api.request("GET", f"/v1/projects/{api.ref}")[0] == 404
    assert subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=supamanager.project={api.ref}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip() == ""  # fmt: skip
    listed = json.loads(cli(api, "backups", "list", api.ref, "--json").stdout)
    final = listed["backups"][-1]
    assert final["status"] == "COMPLETED"
    manifest = json.loads((api.root / "backups" / api.ref / "archive" / str(final["id"]) / "backup.json").read_text())
    assert manifest["kind"] == "final"

    restored = cli(api, "backups", "restore", api.ref, "--id", str(final["id"]), "--wait", timeout=1500)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    status, project, _ = api.request("GET", f"/v1/projects/{api.ref}")
    assert (status, project["status"]) == (200, "ACTIVE_HEALTHY"), project
    assert query(api, f"select id::text from public.{MARK}") == (201, [{"id": "9007199254740993"}])
    assert api.request("GET", f"/v1/projects/{api.ref}/api-keys")[1] == keys_before
