"""A real project (stand-in images, real engine) behind the real edge: the one project create of
the edge's tests. Its URLs follow its HTTPS address, its key works through the edge and only on its
own name, its database is reached through the edge's TLS Postgres front as postgres.<ref>, and
delete removes its routes and certificate.
"""

import json
import subprocess

import pytest

from tests.integration.role.conftest import random_ref

from .conftest import DOMAIN, FakePooler


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


@pytest.mark.docker
def test_a_project_answers_at_its_https_address_until_it_is_deleted(edge, host, upstreams):
    ref = random_ref("e")
    name = f"{ref}.{DOMAIN}"
    edge_vars = {"supamanager_edge_base_domain": DOMAIN, "supamanager_edge_root": str(edge.dir)}
    # Without the logging pair (analytics, vector): 11 containers, lighter on a shared machine;
    # the edge's part does not depend on them. The role's default healthcheck interval (5s, not
    # the fixture's 2s) leaves a loaded machine's database the time to start before Docker's
    # retries mark it unhealthy.
    project_vars = {"supabase_logs_enabled": False, "supabase_healthcheck_interval": "5s", **edge_vars}
    host.playbook("create", ref, **project_vars)

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

    # A custom hostname (the role variable; supamanagerd's activate and delete run the same
    # playbook): the edge serves it with its own certificate, the URLs follow it, and only the
    # containers whose environment held the old URL are recreated.
    before = containers(ref)
    held_url = {service for service, (_, environment) in before.items() if any(url in v for v in environment)}
    custom = f"www.{ref}.custom.test"
    custom_url = f"https://{custom}:{edge.https_port}"
    custom_certificate = edge.dir / "data" / "certificates" / "local" / custom
    host.playbook("hostname", ref, supabase_custom_hostname=custom, **project_vars)
    env = host.dotenv(ref)
    assert (env["API_EXTERNAL_URL"], env["SUPABASE_PUBLIC_URL"], env["SITE_URL"]) == (custom_url,) * 3
    assert json.loads((host.project_dir(ref) / "project.json").read_text())["custom_hostname"] == custom
    assert json.loads((edge.dir / "routes" / f"project-{ref}.json").read_text())["hosts"] == sorted([name, custom])
    code, out, err = edge.curl(custom, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err  # curl verified the certificate for the custom name
    assert (custom_certificate / f"{custom}.crt").exists()
    after = containers(ref)
    assert set(after) == set(before)
    recreated = {service for service in before if after[service][0] != before[service][0]}
    # Those of upstream's compose file that take API_EXTERNAL_URL, SITE_URL or SUPABASE_PUBLIC_URL.
    assert held_url == {"auth", "functions", "storage", "studio"}
    assert recreated == held_url, recreated
    assert all(any(custom_url in v for v in after[service][1]) for service in held_url)

    # A name under the edge's own base domain is refused before anything changes.
    proc = host.playbook("hostname", ref, check=False, supabase_custom_hostname=f"shop.{DOMAIN}", **project_vars)
    assert proc.returncode != 0 and "outside the edge's base domain" in proc.stdout, proc.stdout[-2000:]
    assert host.dotenv(ref)["API_EXTERNAL_URL"] == custom_url
    assert containers(ref) == after

    # Removed: the URLs go back, the route and the certificate of the name are gone.
    host.playbook("hostname", ref, supabase_custom_hostname="", **project_vars)
    assert host.dotenv(ref)["API_EXTERNAL_URL"] == url
    assert json.loads((edge.dir / "routes" / f"project-{ref}.json").read_text())["hosts"] == [name]
    assert not custom_certificate.exists()
    code, _, err = edge.curl(custom, "/rest/v1/")
    assert code == 35, err  # no certificate for it any more
    code, out, err = edge.curl(name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", *apikey)
    assert (code, out) == (0, "200"), err

    host.playbook("delete", ref, delete_volumes=True, **project_vars)
    assert not (edge.dir / "routes" / f"project-{ref}.json").exists()
    code, _, err = edge.curl(name, "/rest/v1/")
    assert code == 35, err  # no certificate for the deleted project's name
    code, _, err = edge.psql(f"postgres.{ref}", password)
    assert code == 2 and f"Tenant or user not found: postgres.{ref}" in err, err
