"""A real project (stand-in images, real engine) behind the real edge: the one project create of
the edge's tests. Its URLs follow its HTTPS address, its key works through the edge and only on its
own name, its database is reached through the edge's TLS Postgres front as postgres.<ref>, and
delete removes its routes and certificate.
"""

import json

import pytest

from tests.integration.role.conftest import random_ref

from .conftest import DOMAIN, FakePooler


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
    code, out, err = edge.curl(
        name, "/rest/v1/", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"apikey: {env['ANON_KEY']}"
    )
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
        code, out, err = edge.curl(f"other.{DOMAIN}", "/rest/v1/", "-H", f"apikey: {env['ANON_KEY']}")
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

    host.playbook("delete", ref, delete_volumes=True, **project_vars)
    assert not (edge.dir / "routes" / f"project-{ref}.json").exists()
    code, _, err = edge.curl(name, "/rest/v1/")
    assert code == 35, err  # no certificate for the deleted project's name
    code, _, err = edge.psql(f"postgres.{ref}", password)
    assert code == 2 and f"Tenant or user not found: postgres.{ref}" in err, err
