"""Edge functions on the session's live project (conftest.live_project: real playbooks, stand-ins):
the official CLI 2.117.0 deploys with `--use-api`, supabase-js invokes through the project's
gateway, the stand-in's real Deno runs the function. The document's shapes and the refusals are in
test_conformance.py; the files' contract in test_functions_units.py."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import urllib.error
import urllib.request

import pytest
from conftest import LIVE_TOKEN
from test_clients import supabase

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
