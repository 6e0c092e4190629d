"""A project's services on the session's live project (conftest.live_project: real playbooks,
stand-ins). Edge functions: the official CLI 2.117.0 deploys with `--use-api`, supabase-js invokes
through the project's gateway, the stand-in's real Deno runs the function. Auth settings:
supabase-management-js changes them, GoTrue's /settings through the gateway shows it, only the auth
container is new; PostgREST's and Postgres's settings take effect in their service alone, a Postgres
setting it cannot start with is rolled back (the suite's one rollback).
Advisors: tables, views, functions and indexes made to trip each lint are named, and no longer once
fixed; buckets come from the storage table. The document's shapes and the refusals are in
test_conformance.py; the files' contract in test_functions_units.py. (In this file, not one
of their own: a file of its own could land on a worker without a live project and create one.)"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import LIVE_TOKEN
from test_clients import supabase
from test_daemon_sizes import containers

pytestmark = [pytest.mark.slow, pytest.mark.docker]

GREETING = "export const greeting = (name: string) => `Hello ${name}`;\n"
HELLO = """import { greeting } from "../_shared/greeting.ts";
Deno.serve(async (req: Request) => {
  const body = req.method === "POST" ? await req.json().catch(() => ({})) : {};
  const env = { a: Deno.env.get("A") ?? null, b: Deno.env.get("B") ?? null };
  return Response.json({ message: greeting(body.name ?? "nobody"), edition: EDITION, deno: Deno.version.deno, ...env });
});
"""

INVOKE = """
const { createClient } = require("@supabase/supabase-js");
const client = createClient(process.env.API_URL, process.env.ANON_KEY);
client.functions.invoke(process.env.FUNCTION, { body: { name: "supabase-js" } }).then(({ data, error }) => {
  console.log(JSON.stringify({ data, error: error ? String(error.message) : null }));
});
"""


def write_function(tmp, edition: int) -> None:
    functions = tmp / "supabase" / "functions"
    (functions / "_shared").mkdir(parents=True, exist_ok=True)
    (functions / "hello").mkdir(exist_ok=True)
    (functions / "_shared" / "greeting.ts").write_text(GREETING)
    (functions / "hello" / "index.ts").write_text(f"const EDITION = {edition};\n" + HELLO)


def gateway(api_url: str, path: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(f"{api_url}{path}", data=b"{}", method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the project's gateway on localhost
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def functions_container(ref: str) -> dict:
    out = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=supamanager.project={ref}", "--filter",
         "label=supamanager.service=functions"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    (cid,) = out.stdout.split()
    inspect = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True, timeout=60)
    state = json.loads(inspect.stdout)[0]
    return {"id": state["Id"], "started": state["State"]["StartedAt"]}


def test_the_official_cli_deploys_and_supabase_js_invokes_through_the_gateway(live_project, supabase_clients, tmp_path):
    ref, daemon = live_project.ref, live_project
    info = json.loads((daemon.root / "projects" / ref / "project.json").read_text())
    api_url = info["api_url"]
    keys = {k["name"]: k["api_key"] for k in daemon.request("GET", f"/v1/projects/{ref}/api-keys?reveal=true")[1]}

    def cli(*args: str) -> str:
        out = supabase(supabase_clients, daemon, LIVE_TOKEN, *args, "--project-ref", ref, tmp=tmp_path)
        assert out.returncode == 0, f"supabase {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    def invoke() -> dict:
        env = {**os.environ, "NODE_PATH": str(supabase_clients.node_modules), "API_URL": api_url}
        env.update(ANON_KEY=keys["anon"], FUNCTION="hello")
        # Node 20 (Debian's) has its WebSocket behind a flag; supabase-js's realtime client wants one.
        args = [str(supabase_clients.node), "--experimental-websocket", "-e", INVOKE]
        out = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.splitlines()[-1])

    write_function(tmp_path, edition=1)
    before = functions_container(ref)
    cli("functions", "deploy", "hello", "--use-api")
    got = invoke()
    # What the function returns, run by Deno, with its import of ../_shared (the CLI uploaded both files).
    assert got["error"] is None and got["data"]["message"] == "Hello supabase-js", got
    assert (got["data"]["edition"], got["data"]["deno"]) == (1, "2.9.8")
    # verify_jwt (the CLI's default): the main router wants the project's JWT.
    assert gateway(api_url, "/functions/v1/hello")[0] == 401
    assert gateway(api_url, "/functions/v1/hello", "not.a.jwt")[0] == 401
    hello = daemon.request("GET", f"/v1/projects/{ref}/functions/hello")[1]
    assert (hello["version"], hello["verify_jwt"], hello["entrypoint_path"]) == (
        1,
        True,
        "supabase/functions/hello/index.ts",
    )

    # A second deploy, without JWT verification: served at once, by the same runtime (not restarted).
    write_function(tmp_path, edition=2)
    cli("functions", "deploy", "hello", "--use-api", "--no-verify-jwt")
    status, body = gateway(api_url, "/functions/v1/hello")
    assert (status, body["edition"]) == (200, 2), body
    assert functions_container(ref) == before
    assert daemon.request("GET", f"/v1/projects/{ref}/functions/hello")[1]["version"] == 2

    # Secrets: reach the function without a restart, listed as digests, gone once unset.
    value = "secret-" + secrets.token_hex(8)
    cli("secrets", "set", "A=1", f"B={value}")
    status, body = gateway(api_url, "/functions/v1/hello")
    assert (status, body["a"], body["b"]) == (200, "1", value), body
    listed = cli("secrets", "list")
    assert hashlib.sha256(b"1").hexdigest() in listed and value not in listed
    cli("secrets", "unset", "A", "--yes")
    assert gateway(api_url, "/functions/v1/hello")[1]["a"] is None
    assert functions_container(ref) == before
    stored = daemon.root / "secrets" / ref / "functions" / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # never in the daemon's log, its store or any job's files (runner artifacts)
    for path in [daemon.log, *daemon.data.rglob("*")]:
        assert not path.is_file() or value.encode() not in path.read_bytes(), path

    assert "hello" in cli("functions", "list")
    cli("functions", "delete", "hello")
    assert daemon.request("GET", f"/v1/projects/{ref}/functions")[1] == []
    assert gateway(api_url, "/functions/v1/hello", keys["anon"])[0] == 404
    assert not (daemon.root / "projects" / ref / "volumes" / "functions" / "hello").exists()


# What trips each advisor lint in the public schema (exposed), and what does not.
LINT_TRIPS = """
create table advisor_parent (id int primary key);
create table advisor_child (id int primary key, parent_id int references advisor_parent (id));
create index advisor_child_a on advisor_child (id, parent_id);
create index advisor_child_b on advisor_child (id, parent_id);
create table advisor_safe (id int primary key);
alter table advisor_safe enable row level security;
create view advisor_view as select id from advisor_parent;
create view advisor_invoker with (security_invoker = true) as select id from advisor_parent;
create function advisor_fn() returns int language sql as 'select 1';
create function advisor_fixed() returns int language sql set search_path = '' as 'select 1';
"""
LINT_CLEANUP = """
drop view advisor_view, advisor_invoker;
drop table advisor_child, advisor_parent, advisor_safe;
drop function advisor_fn(), advisor_fixed();
"""


def test_the_advisors_name_what_trips_their_lints_and_forget_it_once_fixed(live_project):
    ref, daemon = live_project.ref, live_project

    def sql(query: str) -> None:
        status, answer, _ = daemon.request("POST", f"/v1/projects/{ref}/database/query", {"query": query})
        assert status == 201, answer

    def found(kind: str) -> set[tuple[str, str]]:
        status, answer, _ = daemon.request("GET", f"/v1/projects/{ref}/advisors/{kind}")
        assert status == 200, answer
        return {(lint["name"], lint["metadata"]["name"]) for lint in answer["lints"] if "advisor" in lint["cache_key"]}

    sql(LINT_TRIPS)
    try:
        assert found("security") == {
            ("rls_disabled_in_public", "advisor_parent"),
            ("rls_disabled_in_public", "advisor_child"),
            ("security_definer_view", "advisor_view"),
            ("function_search_path_mutable", "advisor_fn"),
        }
        assert found("performance") == {
            ("unindexed_foreign_keys", "advisor_child"),
            ("duplicate_index", "advisor_child"),
            ("unused_index", "advisor_child"),
        }
        _, answer, _ = daemon.request("GET", f"/v1/projects/{ref}/advisors/performance")
        (fkey,) = [lint for lint in answer["lints"] if lint["name"] == "unindexed_foreign_keys"]
        assert (fkey["metadata"]["fkey_name"], fkey["metadata"]["fkey_columns"]) == (
            "advisor_child_parent_id_fkey",
            [2],
        )
        assert {lint["cache_key"] for lint in answer["lints"] if lint["name"] == "unused_index"} >= {
            "unused_index_public_advisor_child_advisor_child_a",
            "unused_index_public_advisor_child_advisor_child_b",
        }
        # Fixed: an index for the foreign key, RLS on, the duplicate gone, a fixed search_path.
        sql(
            "create index advisor_child_parent on advisor_child (parent_id); drop index advisor_child_b;"
            " alter table advisor_parent enable row level security;"
            " alter table advisor_child enable row level security;"
            " alter function advisor_fn() set search_path = ''; alter view advisor_view set (security_invoker = true)"
        )
        assert found("security") == set()
        assert ("unindexed_foreign_keys", "advisor_child") not in found("performance")
        assert ("duplicate_index", "advisor_child") not in found("performance")
    finally:
        sql(LINT_CLEANUP)


# The table storage-api migrates (as supabase_storage_admin, which postgres may become), with a bucket
# made with the service key (no owner) and one a user owns.
BUCKETS = """
set local role supabase_storage_admin;
create table if not exists storage.buckets (id text primary key, name text not null unique, owner uuid,
  created_at timestamptz default now(), updated_at timestamptz default now(), public boolean default false);
insert into storage.buckets (id, name, public) values ('avatars', 'avatars', true);
insert into storage.buckets (id, name, owner) values ('private', 'private', '00000000-0000-4000-8000-000000000001');
"""


def test_the_buckets_are_those_of_the_storage_table(live_project):
    ref, daemon = live_project.ref, live_project
    status, answer, _ = daemon.request("POST", f"/v1/projects/{ref}/database/query", {"query": BUCKETS})
    assert status == 201, answer
    try:
        status, buckets, _ = daemon.request("GET", f"/v1/projects/{ref}/storage/buckets")
        assert status == 200, buckets
        assert [(b["id"], b["name"], b["owner"], b["public"]) for b in buckets] == [
            ("avatars", "avatars", "", True),
            ("private", "private", "00000000-0000-4000-8000-000000000001", False),
        ]
        assert all(b["created_at"].startswith("20") and "T" in b["created_at"] for b in buckets)
    finally:
        query = "set local role supabase_storage_admin; drop table storage.buckets"
        assert daemon.request("POST", f"/v1/projects/{ref}/database/query", {"query": query})[0] == 201


UPDATE_AUTH = """
const { SupabaseManagementAPI } = require("supabase-management-js");
const api = new SupabaseManagementAPI({ accessToken: process.env.TOKEN, baseUrl: process.env.BASE_URL });
api.updateAuthServiceConfig(process.env.REF, JSON.parse(process.env.CHANGE)).then((r) => {
  console.log(JSON.stringify({ status: r.status, data: r.data, operation: r.headers.get("x-operation-id") }));
}).catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def update_auth(daemon, supabase_clients, change: dict) -> tuple[dict, dict]:
    """supabase-management-js's updateAuthServiceConfig, then the operation to its end: (its answer, the operation)."""
    env = {
        **os.environ,
        "NODE_PATH": str(supabase_clients.node_modules),
        "TOKEN": LIVE_TOKEN,
        "BASE_URL": f"http://127.0.0.1:{daemon.port}",
        "REF": daemon.ref,
        "CHANGE": json.dumps(change),
    }
    out = subprocess.run(
        [str(supabase_clients.node), "-e", UPDATE_AUTH], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["status"] == 200, got
    op = daemon.wait(got["operation"], lambda o: o["state"] in ("succeeded", "failed"), timeout=900)
    return got["data"], op


def auth_settings(api_url: str, anon: str) -> dict:
    """GoTrue's /settings through the project's gateway."""
    req = urllib.request.Request(f"{api_url}/auth/v1/settings", headers={"apikey": anon})  # noqa: S310
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the project's gateway on localhost
        return json.loads(resp.read())


def healthy_within(daemon, seconds: float = 300) -> str:
    """The project's status once the poll says ACTIVE_HEALTHY (or the last one seen)."""
    deadline = time.monotonic() + seconds
    while (status := daemon.request("GET", f"/v1/projects/{daemon.ref}")[1]["status"]) != "ACTIVE_HEALTHY":
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    return status


DEFAULT_SMTP_PASS = "fake_mail_password"  # the role's .env default (tasks/env.yml)


@pytest.fixture
def auth_put_back(request, live_project, supabase_clients):
    """The role's auth defaults back for what the test changes, when a later test shares the live project
    (a settings change costs a recreate and a healthcheck tick: none is paid for a project about to go)."""
    yield
    later = request.session.items[request.session.items.index(request.node) + 1 :]
    if not any("live_project" in item.fixturenames for item in later):
        return
    got = live_project.request("GET", f"/v1/projects/{live_project.ref}/config/auth")[1]
    if got["disable_signup"] or got["smtp_pass"] != hashlib.sha256(DEFAULT_SMTP_PASS.encode()).hexdigest():
        _, op = update_auth(live_project, supabase_clients, {"disable_signup": False, "smtp_pass": DEFAULT_SMTP_PASS})
        assert op["state"] == "succeeded", op


def settings_change(daemon, method: str, path: str, change: dict) -> dict:
    """A settings route of the daemon, then its operation to its end."""
    status, answer, headers = daemon.request(method, f"/v1/projects/{daemon.ref}/{path}", change)
    assert status == 200, answer
    return daemon.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=900)


def sql(daemon, query: str) -> list[dict]:
    status, rows, _ = daemon.request("POST", f"/v1/projects/{daemon.ref}/database/query", {"query": query})
    assert status == 201, rows
    return rows


def rest_rows(api_url: str, key: str, table: str) -> int:
    """How many rows a REST read of the table answers through the project's gateway."""
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    req = urllib.request.Request(f"{api_url}/rest/v1/{table}?select=n", headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the project's gateway on localhost
        return len(json.loads(resp.read()))


def test_postgrest_and_postgres_settings_take_effect_in_their_service_alone_and_a_bad_one_is_rolled_back(
    live_project,
):
    """One change each (values later tests can live with: no put-back): PostgREST's max_rows caps a REST read
    through the gateway, a Postgres setting is what SHOW reads; each recreates its own service (db: the pooler
    restarts after it, in place). A max_connections Postgres cannot start with is rolled back: the database
    runs with what it had, its data kept. (Storage's settings take the same path; the suite's budget leaves
    them to test_conformance.py, test_render.py and the stand-in's own test of FILE_SIZE_LIMIT.)"""
    ref, daemon = live_project.ref, live_project
    api_url = json.loads((daemon.root / "projects" / ref / "project.json").read_text())["api_url"]
    keys = {k["name"]: k["api_key"] for k in daemon.request("GET", f"/v1/projects/{ref}/api-keys?reveal=true")[1]}
    service = keys["service_role"]
    sql(daemon, "create table public.settings_rows as select n from generate_series(1, 1000) as n;"
                " grant select on public.settings_rows to service_role")  # fmt: skip
    try:
        assert rest_rows(api_url, service, "settings_rows") == 1000
        before = {name: c["Id"] for name, c in containers(ref).items()}

        op = settings_change(daemon, "PATCH", "postgrest", {"max_rows": 999})
        assert (op["state"], op["params"]) == ("succeeded", {"postgrest": ["max_rows"]}), op
        assert rest_rows(api_url, service, "settings_rows") == 999
        after_rest = {name: c["Id"] for name, c in containers(ref).items()}
        assert sorted(n for n in before if after_rest[n] != before[n]) == ["rest"]
        assert daemon.request("GET", f"/v1/projects/{ref}/postgrest")[1]["max_rows"] == 999

        op = settings_change(daemon, "PUT", "config/database/postgres", {"work_mem": "8MB"})
        assert op["state"] == "succeeded", op
        assert sql(daemon, "show work_mem") == [{"work_mem": "8MB"}]
        after_db = {name: c["Id"] for name, c in containers(ref).items()}
        assert sorted(n for n in before if after_db[n] != after_rest[n]) == ["db"]

        # Postgres refuses to start with fewer connections than it reserves for superusers: rolled back.
        op = settings_change(daemon, "PUT", "config/database/postgres", {"max_connections": 2})
        assert op["state"] == "failed" and "rolled back" in op["error"], op
        assert "given up by Docker" in op["error"] and "restart policy" in op["error"], op  # seen at once
        assert daemon.request("GET", f"/v1/projects/{ref}/config/database/postgres")[1] == {"work_mem": "8MB"}
        assert sql(daemon, "show work_mem") == [{"work_mem": "8MB"}]
        assert sql(daemon, "select count(*) as n from public.settings_rows") == [{"n": 1000}]  # the data stays
        assert healthy_within(daemon) == "ACTIVE_HEALTHY"
    finally:
        sql(daemon, "drop table if exists public.settings_rows")


# Last in this file: the put-back (a settings change more) is paid only when a later test shares the project.
def test_an_auth_settings_change_recreates_only_auth_and_one_auth_cannot_take_is_rolled_back(
    live_project, supabase_clients, auth_put_back
):
    ref, daemon = live_project.ref, live_project
    api_url = json.loads((daemon.root / "projects" / ref / "project.json").read_text())["api_url"]
    keys = {k["name"]: k["api_key"] for k in daemon.request("GET", f"/v1/projects/{ref}/api-keys?reveal=true")[1]}
    assert auth_settings(api_url, keys["anon"])["disable_signup"] is False
    before = {name: c["Id"] for name, c in containers(ref).items()}
    smtp_pass = "smtp-" + secrets.token_hex(8)

    answer, op = update_auth(daemon, supabase_clients, {"disable_signup": True, "smtp_pass": smtp_pass})
    assert answer["disable_signup"] is True and answer["smtp_pass"] == hashlib.sha256(smtp_pass.encode()).hexdigest()
    assert (op["kind"], op["state"]) == ("settings", "succeeded"), op
    assert auth_settings(api_url, keys["anon"])["disable_signup"] is True
    changed = {name: c["Id"] for name, c in containers(ref).items()}
    assert sorted(n for n in before if changed[n] != before[n]) == ["auth"]
    got = daemon.request("GET", f"/v1/projects/{ref}/config/auth")[1]
    assert (got["disable_signup"], got["smtp_pass"]) == (True, answer["smtp_pass"])
    assert healthy_within(daemon) == "ACTIVE_HEALTHY"

    # A site URL the auth stand-in refuses to start with (its test marker): auth crashes at start,
    # the kept settings are put back, the project runs on as before (the issue's own rollback case;
    # the Postgres one above is the same rescue with the data at stake).
    refused = {"site_url": "http://standin-refuses-this.invalid"}
    status, _, headers = daemon.request("PATCH", f"/v1/projects/{ref}/config/auth", refused)
    assert status == 200
    op = daemon.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=900)
    assert op["state"] == "failed" and "rolled back" in op["error"], op
    assert "given up by Docker" in op["error"] and "restart policy" in op["error"], op  # seen at once, not waited out
    got = daemon.request("GET", f"/v1/projects/{ref}/config/auth")[1]
    assert "standin-refuses-this" not in got["site_url"] and got["disable_signup"] is True
    assert auth_settings(api_url, keys["anon"])["disable_signup"] is True
    after = {name: c["Id"] for name, c in containers(ref).items()}
    assert sorted(n for n in before if after[n] != changed[n]) == ["auth"]
    assert healthy_within(daemon) == "ACTIVE_HEALTHY"

    # The kept settings and .env are 0600; the SMTP password is in no log, store or job file.
    for private in (daemon.root / "secrets" / ref / "auth-settings.json", daemon.root / "projects" / ref / ".env"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    for path in [daemon.log, *daemon.data.rglob("*")]:
        assert not path.is_file() or smtp_pass.encode() not in path.read_bytes(), path
