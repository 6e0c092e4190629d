"""The official clients, installed from tests/clients/package-lock.json (the CLI `supabase` 2.117.0
and supabase-management-js 2.0.2), against a real `supamanagerd` process. The daemon runs the fake
playbooks of conftest.py, so these tests show what the clients send and accept; the lifecycle with
the real playbooks and stand-in images is test_daemon_e2e.py. Every answer the test reads itself is
also checked against both documents (daemonproc.Daemon.request)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
from conftest import TOKEN
from daemonproc import on_fake_playbooks
from test_usability_cli import cli

pytestmark = pytest.mark.slow

SECRET_DB_PASS = "password123"  # what the CLI's own e2e fixtures use


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = on_fake_playbooks(tmp_path_factory.mktemp("clients"), db_pass_var="supabase_postgres_password")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def access_token(daemon):
    """A named token made through `supamanager tokens create`: `sbp_` + 40 hex, as the CLI insists."""
    out = cli(daemon, "tokens", "create", "official-cli")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert re.fullmatch(r"sbp_[a-f0-9]{40}", token)
    return token


def supabase(clients, daemon, token: str, *args: str, tmp) -> subprocess.CompletedProcess:
    profile = tmp / "p.yaml"
    if not profile.exists():
        # With pooler_host, which the official CLI checks (an RFC 1123 name) when it reads the file.
        out = cli(daemon, "profile", "--pooler-host", "pooler.example.com")
        assert out.returncode == 0, out.stderr
        assert 'pooler_host: "example.com"' in out.stdout
        profile.write_text(out.stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "SUPAMANAGER_"))}
    env.update(SUPABASE_ACCESS_TOKEN=token, HOME=str(tmp), SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1")
    return subprocess.run(
        [str(clients.supabase), "--profile", str(profile), *args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_pinned_supabase_cli_and_management_js_are_installed(supabase_clients):
    out = subprocess.run(
        [str(supabase_clients.supabase), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "2.117.0"
    script = "console.log(JSON.stringify(Object.keys(require('supabase-management-js'))))"
    env = {**os.environ, "NODE_PATH": str(supabase_clients.node_modules)}
    out = subprocess.run(
        [str(supabase_clients.node), "-e", script], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert "SupabaseManagementAPI" in json.loads(out.stdout)


def test_the_official_cli_lists_organizations_creates_lists_shows_keys_and_deletes(
    supabase_clients, daemon, access_token, tmp_path
):
    def run(*args: str) -> subprocess.CompletedProcess:
        out = supabase(supabase_clients, daemon, access_token, *args, tmp=tmp_path)
        assert out.returncode == 0, f"supabase {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out

    assert re.search(r"^\s*default\s*\|\s*Default organization\s*$", run("orgs", "list").stdout, re.M)

    created = json.loads(
        run(
            "projects", "create", "from-cli", "--org-id", "default", "--db-password", SECRET_DB_PASS,
            "--region", "us-east-1", "-o", "json",
        ).stdout
    )  # fmt: skip
    ref = created["ref"]
    assert (created["organization_slug"], created["name"]) == ("default", "from-cli")
    # The password reached the job (the fake create records its vars; the role takes it from there).
    vars_file = daemon.root / f"vars-{ref}-create.json"
    deadline = time.monotonic() + 120
    while not vars_file.exists():
        assert time.monotonic() < deadline, "the create never ran"
        time.sleep(0.5)
    assert json.loads(vars_file.read_text())["password"] == SECRET_DB_PASS
    assert SECRET_DB_PASS not in (daemon.data / "supamanager.sqlite3").read_bytes().decode("latin-1")

    listed = json.loads(run("projects", "list", "-o", "json").stdout)
    assert [p["ref"] for p in listed] == [ref]
    # api-keys wants the keys file the create writes: wait for the create to end.
    ops_done = lambda: daemon.request("GET", f"/v1/projects/{ref}")[1]["status"] != "COMING_UP"  # noqa: E731
    while not ops_done():
        assert time.monotonic() < deadline, "the create never ended"
        time.sleep(0.5)
    keys = run("projects", "api-keys", "--project-ref", ref).stdout
    assert f"anon.{ref}" in keys and f"service.{ref}" in keys

    out = run("projects", "delete", ref, "--yes")
    assert "from-cli" in out.stdout + out.stderr
    while daemon.request("GET", f"/v1/projects/{ref}")[0] != 404:
        assert time.monotonic() < deadline, "the delete never ended"
        time.sleep(0.5)


MGMT_JS = """
const { SupabaseManagementAPI } = require("supabase-management-js");
const api = new SupabaseManagementAPI({ accessToken: process.env.TOKEN, baseUrl: process.env.BASE_URL });
(async () => {
  const out = {};
  out.orgs = (await api.listAllOrganizations()).data;
  out.org = (await api.getAnOrganization("default")).data;
  const created = (await api.createAProject({ name: "from-js", organization_slug: "default",
    db_pass: "password123", region: "us-east-1" })).data;
  out.created = created;
  out.projects = (await api.listAllProjects()).data;
  out.project = (await api.getProject(created.ref)).data;
  for (let i = 0; i < 240 && out.project.status === "COMING_UP"; i++) {
    await new Promise((r) => setTimeout(r, 500));
    out.project = (await api.getProject(created.ref)).data;
  }
  out.keys = (await api.getProjectApiKeys(created.ref, {})).data;
  out.deleted = (await api.deleteAProject(created.ref)).data;
  try { await api.getAnOrganization("nope"); } catch (e) { out.missing = e.message; }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def test_supabase_management_js_does_the_same_flow(supabase_clients, daemon, access_token):
    env = {
        **os.environ,
        "NODE_PATH": str(supabase_clients.node_modules),
        "TOKEN": access_token,
        "BASE_URL": f"http://127.0.0.1:{daemon.port}",
    }
    out = subprocess.run(
        [str(supabase_clients.node), "-e", MGMT_JS], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert {"id": "default", "slug": "default", "name": "Default organization"} in got["orgs"]
    assert got["org"]["plan"] == "free"
    ref = got["created"]["ref"]
    assert ref in [p["ref"] for p in got["projects"]]
    # The create ended (the poller then says UNKNOWN: this daemon has no Docker to ask).
    assert got["project"]["status"] != "COMING_UP"
    assert {k["name"] for k in got["keys"]} == {"anon", "service_role"}
    assert got["deleted"]["ref"] == ref and isinstance(got["deleted"]["id"], int)
    assert "missing" in got


def test_a_revoked_token_is_refused_at_once_and_the_configured_one_keeps_working(supabase_clients, daemon, tmp_path):
    made = cli(daemon, "tokens", "create", "short-lived")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert supabase(supabase_clients, daemon, token, "orgs", "list", tmp=tmp_path).returncode == 0
    listed = cli(daemon, "tokens", "list")
    assert "short-lived" in listed.stdout and token not in listed.stdout
    revoked = cli(daemon, "tokens", "revoke", "short-lived")
    assert revoked.returncode == 0, revoked.stderr
    out = supabase(supabase_clients, daemon, token, "orgs", "list", tmp=tmp_path)
    assert out.returncode != 0
    assert "401" in out.stdout + out.stderr or "nauthorized" in out.stdout + out.stderr
    # Only a digest is stored; the configured token still works.
    assert token not in (daemon.data / "supamanager.sqlite3").read_bytes().decode("latin-1")
    status, orgs, _ = daemon.request("GET", "/v1/organizations")
    assert status == 200 and orgs
    assert token != TOKEN
