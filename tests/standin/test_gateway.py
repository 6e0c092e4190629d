"""kong stand-in: upstream's entrypoint renders the config, then routes, keys, ACLs and basic auth."""

import base64
import ssl
import urllib.request

import pytest

from tests.standin import kit

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker

# Upstream hosts of the sample config, answered by one echo server that reports what it received.
ECHO = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers),
                           "port": self.server.server_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
servers = [ThreadingHTTPServer(("0.0.0.0", p), H) for p in (9999, 3000, 8080, 4000)]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
"""


@pytest.fixture(scope="module")
def kong(stack):
    stack.run(
        "echo",
        "python3",
        "-c",
        ECHO,
        image=kit.image_of("base"),
        aliases=["auth", "rest", "meta", "studio", "realtime-dev.supabase-realtime"],
        extra=["--init"],
    )
    env = kit.service_env("kong")
    container = kit.start_service(stack, "kong", env=env)
    container.wait_ok("kong", "health")
    container.env = env
    return container


def call(kong, path, headers=None, method="GET"):
    return kit.http(method, kong.url(8000, path), headers)


def test_rendered_config_has_the_keys_substituted(kong):
    rendered = kong.exec("cat", "/home/kong/kong.yml").stdout
    assert "$SUPABASE_ANON_KEY" not in rendered
    assert kit.ANON_KEY in rendered


def test_no_key_gets_401(kong):
    status, _, body = call(kong, "/rest/v1/todos")
    assert status == 401
    assert body == {"message": "No API key found in request"}


def test_unknown_key_gets_401(kong):
    assert call(kong, "/rest/v1/todos", {"apikey": kit.BAD_KEY})[0] == 401


def test_anon_key_on_an_admin_only_route_gets_403(kong):
    status, _, body = call(kong, "/pg/tables", {"apikey": kit.ANON_KEY})
    assert status == 403
    assert body == {"message": "You cannot consume this service"}


def test_service_key_reaches_meta_with_the_path_stripped(kong):
    status, _, body = call(kong, "/pg/tables?included_schemas=public", {"apikey": kit.SERVICE_KEY})
    assert status == 200
    assert (body["port"], body["path"]) == (8080, "/tables?included_schemas=public")


def test_apikey_becomes_the_bearer_when_the_client_sends_none(kong):
    status, _, body = call(kong, "/rest/v1/todos?select=id", {"apikey": kit.ANON_KEY})
    assert status == 200
    assert (body["port"], body["path"]) == (3000, "/todos?select=id")
    assert body["headers"]["Authorization"] == f"Bearer {kit.ANON_KEY}"
    assert body["headers"]["X-Consumer-Username"] == "anon"


def test_hide_credentials_false_keeps_the_apikey_for_the_upstream(kong):
    _, _, body = call(kong, "/pg/tables", {"apikey": kit.SERVICE_KEY})
    assert {k.lower(): v for k, v in body["headers"].items()}["apikey"] == kit.SERVICE_KEY


def test_a_client_bearer_is_passed_through(kong):
    user_jwt = kit.make_jwt("authenticated", sub="user-1")
    _, _, body = call(kong, "/rest/v1/todos", {"apikey": kit.ANON_KEY, "Authorization": f"Bearer {user_jwt}"})
    assert body["headers"]["Authorization"] == f"Bearer {user_jwt}"


def test_open_route_needs_no_key_and_maps_to_the_service_path(kong):
    status, _, body = call(kong, "/auth/v1/verify?token=t")
    assert status == 200
    assert (body["port"], body["path"]) == (9999, "/verify?token=t")


def test_request_termination(kong):
    status, _, body = call(kong, "/realtime/v1/api/tenants/x", {"apikey": kit.SERVICE_KEY})
    assert (status, body) == (403, {"message": "Access is forbidden."})


def test_dashboard_needs_basic_auth(kong):
    user, password = kong.env["DASHBOARD_USERNAME"], kong.env["DASHBOARD_PASSWORD"]
    status, headers, _ = call(kong, "/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    wrong = base64.b64encode(f"{user}:nope".encode()).decode()
    assert call(kong, "/", {"Authorization": f"Basic {wrong}"})[0] == 401
    right = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, _, body = call(kong, "/project/default", {"Authorization": f"Basic {right}"})
    assert status == 200
    assert (body["port"], body["path"]) == (3000, "/project/default")
    assert "Authorization" not in body["headers"], "hide_credentials: true"


def test_https_port_serves_the_same_routes(kong):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), urllib.request.ProxyHandler({}))
    with opener.open(f"https://{kong.ip}:8443/auth/v1/verify", timeout=10) as resp:
        assert resp.status == 200


def test_unreachable_upstream_gets_a_gateway_error(stack, kong, tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text(
        "_format_version: '2.1'\nservices:\n  - name: gone\n    url: http://nowhere-standin:1/\n"
        "    routes:\n      - name: gone\n        paths:\n          - /gone\n"
    )
    container = stack.run(
        "kong",
        env=kong.env,
        name="kong-gone",
        volumes=[f"{config}:/home/kong/kong.yml:ro"],
    )
    container.wait_ok("kong", "health")
    assert kit.http("GET", container.url(8000, "/gone"))[0] in (502, 503)
    assert kit.http("GET", container.url(8000, "/elsewhere"))[0] == 404


def test_a_plugin_missing_from_kong_plugins_refuses_to_start(stack, kong, tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text(
        "_format_version: '2.1'\nservices:\n  - name: s\n    url: http://rest:3000/\n"
        "    plugins:\n      - name: post-function\n"
    )
    container = stack.run("kong", env=kong.env, name="kong-plugin", volumes=[f"{config}:/home/kong/kong.yml:ro"])
    assert container.wait_exit() != 0
    assert "plugin 'post-function'" in container.logs()
