"""A real project (stand-in images, real engine) behind the real edge: the one project create of
the edge's tests, made through a real supamanagerd on the real playbooks, so that the daemon knows
it. Its URLs follow its HTTPS address, its key works through the edge and only on its own name, its
database is reached through the edge's TLS Postgres front as postgres.<ref>, by psql and by the
official CLI's `link` then `db push --linked`, and delete removes its routes and certificate.
"""

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

from .conftest import DOMAIN, POOLER_HOST, FakePooler, front_address

# supamanagerd's test process helper (daemon/tests/daemonproc.py): a real daemon, its config file.
sys.path.insert(0, str(REPO / "daemon" / "tests"))
from daemonproc import Daemon

TOKEN = "sbp_" + secrets.token_hex(20)  # the official CLI takes only tokens of this form
DB_PASS = "edge-Pass_" + secrets.token_hex(6)
# The project's custom hostname: dnsmasq (the daemon's resolver) says it is this host's.
CUSTOM = f"www.{secrets.token_hex(3)}.custom.test"


def containers(ref):
    """{service: (container id, environment)} of the project's containers."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=supamanager.project={ref}"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    inspected = json.loads(
        subprocess.run(["docker", "inspect", *ids], check=True, capture_output=True, text=True).stdout
    )
    return {c["Config"]["Labels"]["supamanager.service"]: (c["Id"], c["Config"]["Env"]) for c in inspected}


@pytest.fixture(scope="module")
def official_cli():
    """The official Supabase CLI 2.117.0 of tests/clients (npm ci, once per lock file)."""
    clients = REPO / "tests" / "clients"
    subprocess.run([str(clients / "install")], check=True, timeout=600)
    return clients / "node_modules" / ".bin" / "supabase"


@pytest.fixture(scope="module")
def resolver():
    """Debian's dnsmasq on loopback, answering CUSTOM with this host's address (daemon/tests/conftest.py)."""
    from conftest import Dnsmasq

    server = Dnsmasq()
    try:
        yield server.serve({CUSTOM: "127.0.0.1"})
    finally:
        server.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, edge, host, resolver):
    """A real supamanagerd on the real playbooks and the host fixture's root, ports and images,
    whose playbooks add their routes to the shared edge, and whose pooler config names the edge's
    Postgres front."""
    project_vars = {
        # Without the logging pair (analytics, vector): 11 containers, lighter on a shared machine;
        # the edge's part does not depend on them. The role's default healthcheck interval (5s, not
        # the fixture's 2s) leaves a loaded machine's database the time to start before Docker's
        # retries mark it unhealthy.
        "supabase_logs_enabled": False,
        "supabase_healthcheck_interval": "5s",
        "supamanager_edge_base_domain": DOMAIN,
        "supamanager_edge_root": str(edge.dir),
    }
    playbook_vars = {k: v for k, v in host.vars.items() if k not in ("supamanager_root", "supabase_image_registry")}
    (host.root / "projects").mkdir(parents=True, exist_ok=True)
    d = Daemon(
        tmp_path_factory.mktemp("edge-daemon"),
        REPO,
        host.root,
        token=TOKEN,
        image_registry=host.vars["supabase_image_registry"],
        pooler_host=POOLER_HOST,
        pooler_port=edge.vars["supamanager_edge_pooler_transaction_port"],
        dns_resolver=resolver,
        edge_addresses="127.0.0.1",
        playbook_vars={**playbook_vars, **project_vars},
    )
    d.project_vars = project_vars
    d.start()
    try:
        yield d
    finally:
        d.stop()


def finished(op):
    return op["state"] in ("succeeded", "failed")


def supabase(cli, daemon, edge, workdir, *args):
    """The official CLI as a user on another machine runs it, with the profile `supamanager profile
    --edge-root` prints, in a mount namespace of its own whose /etc/hosts says where the edge's
    names are (never the machine's /etc/hosts): the pooler host is the front's loopback address;
    db.<ref>.<project host> and <ref>.<project host>, an address where nothing listens (the direct
    database address unreachable, as from a network without IPv6)."""
    profile = workdir / "profile.yaml"
    if not profile.exists():
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
        env.update(SUPAMANAGER_URL=f"http://127.0.0.1:{daemon.port}", SUPAMANAGER_API_TOKEN=daemon.token)
        made = subprocess.run(
            [str(REPO / ".venv" / "bin" / "supamanager"), "profile", "--edge-root", str(edge.dir)],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        profile.write_text(made.stdout)
        nowhere = front_address()
        names = {POOLER_HOST: edge.vars["supamanager_edge_pooler_listen_address"]}
        names.update({f"db.{daemon.ref}.{DOMAIN}": nowhere, f"{daemon.ref}.{DOMAIN}": nowhere})
        lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in names.items())]
        (workdir / "hosts").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "SUPAMANAGER_"))}
    env.update(
        SUPABASE_ACCESS_TOKEN=daemon.token, SUPABASE_DB_PASSWORD=DB_PASS, HOME=str(workdir),
        SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1",
    )  # fmt: skip
    # The arguments go to the script as "$@", never into its text.
    script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(workdir / "hosts")]
    return subprocess.run(
        [*command, str(cli), "--profile", str(profile), *args],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.docker
def test_a_project_answers_at_its_https_address_until_it_is_deleted(
    edge, host, daemon, upstreams, official_cli, tmp_path
):
    body = {"name": "edge", "organization_slug": "default", "db_pass": DB_PASS, "region": "local"}
    status, made, headers = daemon.request("POST", "/v1/projects", body)
    assert status == 201, made
    ref = daemon.ref = made["ref"]
    host.refs.add(ref)  # the host fixture's teardown deletes what a failed test leaves
    op = daemon.wait(headers["X-Operation-Id"], finished, timeout=1500)
    assert op["state"] == "succeeded", op.get("error")
    name = f"{ref}.{DOMAIN}"
    project_vars = daemon.project_vars
    url = f"https://{name}:{edge.https_port}"
    env = host.dotenv(ref)
    assert (env["API_EXTERNAL_URL"], env["SUPABASE_PUBLIC_URL"], env["SITE_URL"]) == (url, url, url)
    assert json.loads((host.project_dir(ref) / "project.json").read_text())["api_url"] == url
    route = json.loads((edge.dir / "routes" / f"project-{ref}.json").read_text())
    assert route == {
        "name": f"project-{ref}",
        "hosts": [name],
        "upstream": f"127.0.0.1:{env['KONG_HTTP_PORT']}",
        "pooler": {
            "tenant": ref,
            "session": f"127.0.0.1:{env['POSTGRES_PORT']}",
            "transaction": f"127.0.0.1:{env['POOLER_PROXY_PORT_TRANSACTION']}",
        },
    }

    # The edge's Postgres front: the real psql, TLS verified against the edge's CA and the pooler
    # host's name, reaches this project's database in both modes (what one writes, the other reads).
    password = env["POSTGRES_PASSWORD"]
    code, out, err = edge.psql(f"postgres.{ref}", password, "session", "create table edge_front as select 42 as mark")
    assert code == 0, err
    code, out, err = edge.psql(f"postgres.{ref}", password, "transaction", "select current_user, mark from edge_front")
    assert (code, out) == (0, "postgres|42"), err
    code, out, err = edge.psql(f"postgres.{ref}", "wrong-password")
    assert code == 2 and 'password authentication failed for user "postgres"' in err, err

    # The official CLI: link (the daemon's answers: the project, its keys, its pooler config naming
    # the front), then db push --linked, which finds db.<ref>.<project host> unreachable, takes the
    # pooler URL link wrote (port forced to 5432: the front's session port) and applies a
    # migration over TLS through the front.
    deadline = time.monotonic() + 600
    while daemon.request("GET", f"/v1/projects/{ref}")[1]["status"] != "ACTIVE_HEALTHY":
        assert time.monotonic() < deadline, "the daemon never saw the project healthy"
        time.sleep(1)
    linked = supabase(official_cli, daemon, edge, tmp_path, "link", "--project-ref", ref)
    assert linked.returncode == 0, linked.stdout + linked.stderr[-3000:]
    pooler_url = (tmp_path / "supabase" / ".temp" / "pooler-url").read_text()
    assert pooler_url.startswith(f"postgresql://postgres.{ref}@{POOLER_HOST}:"), pooler_url
    migrations = tmp_path / "supabase" / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    (migrations / "20261202000000_through_the_front.sql").write_text("create table pushed as select 7 as mark;\n")
    pushed = supabase(official_cli, daemon, edge, tmp_path, "db", "push", "--linked", "--yes")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr[-3000:]
    code, out, err = edge.psql(f"postgres.{ref}", password, "session", "select mark from pushed")
    assert (code, out) == (0, "7"), err
    sql = "select version from supabase_migrations.schema_migrations"
    assert edge.psql(f"postgres.{ref}", password, "session", sql)[1] == "20261202000000"

    code, out, err = edge.curl(name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}")
    assert (code, out) == (0, "401"), err
    apikey = ("-H", f"apikey: {env['ANON_KEY']}")
    code, out, err = edge.curl(name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err
    code, out, err = edge.curl(
        name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", scheme="http"
    )
    assert out == f"308 {url}/rest/v1/", err

    # Another name on the same edge reaches its own upstream, never this project; another ref on
    # the front reaches its own pooler, and this ref still this project's.
    other = upstreams("other")
    other_pooler = upstreams("other", FakePooler)
    edge.route("other", [f"other.{DOMAIN}"], other.address)
    edge.pooler_route("other-db", "other-ref", other_pooler.address, other_pooler.address)
    try:
        code, out, err = edge.curl(f"other.{DOMAIN}", "/rest/v1/", *apikey)
        assert code == 0, err
        assert json.loads(out)["upstream"] == "other"
        code, out, err = edge.psql("postgres.other-ref", password)
        assert code == 2 and "fake pooler other got postgres.other-ref" in err, err
        code, out, err = edge.psql(f"postgres.{ref}", password, "session", "select mark from edge_front")
        assert (code, out) == (0, "42"), err
        assert other_pooler.users == ["postgres.other-ref"]
    finally:
        edge.unroute("other")
        edge.unroute("other-db")

    # A custom hostname through the daemon's Domains routes: initialize, reverify (the name resolves
    # to this host, asked of dnsmasq), activate (an operation: playbooks/hostname.yml); the edge
    # serves it with its own certificate, the URLs follow it, and only the containers whose
    # environment held the old URL are recreated.
    before = containers(ref)
    held_url = {service for service, (_, environment) in before.items() if any(url in v for v in environment)}
    custom_url = f"https://{CUSTOM}:{edge.https_port}"
    custom_certificate = edge.dir / "data" / "certificates" / "local" / CUSTOM
    hostname = f"/v1/projects/{ref}/custom-hostname"
    status, made, _ = daemon.request("POST", f"{hostname}/initialize", {"custom_hostname": CUSTOM})
    assert (status, made["status"]) == (201, "2_initiated"), made
    status, verified, _ = daemon.request("POST", f"{hostname}/reverify")
    assert (status, verified["status"]) == (201, "3_challenge_verified"), verified
    status, _, headers = daemon.request("POST", f"{hostname}/activate")
    assert status == 201
    op = daemon.wait(headers["X-Operation-Id"], finished, timeout=900)
    assert (op["kind"], op["state"]) == ("custom_hostname", "succeeded"), op.get("error")
    status, served, _ = daemon.request("GET", hostname)
    assert (status, served["status"], served["data"]["result"]["ssl"]["status"]) == (
        200, "5_services_reconfigured", "active"
    )  # fmt: skip
    env = host.dotenv(ref)
    assert (env["API_EXTERNAL_URL"], env["SUPABASE_PUBLIC_URL"], env["SITE_URL"]) == (custom_url,) * 3
    assert json.loads((host.project_dir(ref) / "project.json").read_text())["custom_hostname"] == CUSTOM
    assert json.loads((edge.dir / "routes" / f"project-{ref}.json").read_text())["hosts"] == sorted([name, CUSTOM])
    code, out, err = edge.curl(CUSTOM, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err  # curl verified the certificate for the custom name
    assert (custom_certificate / f"{CUSTOM}.crt").exists()
    after = containers(ref)
    assert set(after) == set(before)
    recreated = {service for service in before if after[service][0] != before[service][0]}
    # Those of upstream's compose file that take API_EXTERNAL_URL, SITE_URL or SUPABASE_PUBLIC_URL.
    assert held_url == {"auth", "functions", "storage", "studio"}
    assert recreated == held_url, recreated
    assert all(any(custom_url in v for v in after[service][1]) for service in held_url)

    # A name under the edge's own base domain is refused before anything changes: as a custom
    # hostname by the daemon (400; one label under it is a vanity subdomain, below), and by the role
    # for an ansible-playbook user unless it is one label.
    status, refused, _ = daemon.request("POST", f"{hostname}/initialize", {"custom_hostname": f"shop.{DOMAIN}"})
    assert status == 400, refused
    deeper = f"www.shop.{DOMAIN}"
    proc = host.playbook("hostname", ref, check=False, supabase_custom_hostname=deeper, **project_vars)
    assert proc.returncode != 0 and "outside the edge's base domain" in proc.stdout, proc.stdout[-2000:]
    assert host.dotenv(ref)["API_EXTERNAL_URL"] == custom_url
    assert containers(ref) == after

    # Deleted: the URLs go back, the route and the certificate of the name are gone.
    status, _, headers = daemon.request("DELETE", hostname)
    assert status == 200
    assert daemon.wait(headers["X-Operation-Id"], finished, timeout=900)["state"] == "succeeded"
    assert host.dotenv(ref)["API_EXTERNAL_URL"] == url
    assert json.loads((edge.dir / "routes" / f"project-{ref}.json").read_text())["hosts"] == [name]
    assert not custom_certificate.exists()
    code, _, err = edge.curl(CUSTOM, "/rest/v1/")
    assert code == 35, err  # no certificate for it any more
    code, out, err = edge.curl(name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err
    assert daemon.request("GET", hostname)[1]["status"] == "1_not_started"

    # A vanity subdomain, <label>.<base domain>: the same operation routes it, obtains its
    # certificate and switches the URLs (its delete is the custom hostname's: test_conformance.py).
    vanity = f"/v1/projects/{ref}/vanity-subdomain"
    label = f"shop-{secrets.token_hex(3)}"
    vanity_name, vanity_url = f"{label}.{DOMAIN}", f"https://{label}.{DOMAIN}:{edge.https_port}"
    status, made, headers = daemon.request("POST", f"{vanity}/activate", {"vanity_subdomain": label})
    assert (status, made) == (201, {"custom_domain": vanity_name}), made
    op = daemon.wait(headers["X-Operation-Id"], finished, timeout=900)
    assert (op["kind"], op["state"]) == ("custom_hostname", "succeeded"), op.get("error")
    assert daemon.request("GET", vanity)[1] == {"status": "active", "custom_domain": vanity_name}
    assert host.dotenv(ref)["API_EXTERNAL_URL"] == vanity_url
    code, out, err = edge.curl(vanity_name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err

    status, _, headers = daemon.request("DELETE", f"/v1/projects/{ref}?backup=false")
    assert status == 200
    assert daemon.wait(headers["X-Operation-Id"], finished, timeout=900)["state"] == "succeeded"
    assert not (edge.dir / "routes" / f"project-{ref}.json").exists()
    for deleted in (name, vanity_name):
        code, _, err = edge.curl(deleted, "/rest/v1/")
        assert code == 35, err  # no certificate for the deleted project's names
    code, _, err = edge.psql(f"postgres.{ref}", password)
    assert code == 2 and f"Tenant or user not found: postgres.{ref}" in err, err
