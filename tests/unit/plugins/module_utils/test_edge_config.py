"""Unit tests of the edge's config builder and route files (module_utils/_edge_config.py).

Loading into a running Caddy is covered by tests/integration/edge/ with the real Caddy.
"""

import json

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils import _edge_config as ec

SETTINGS = {
    "http_port": 80,
    "https_port": 443,
    "listen_address": "",
    "admin_socket": "/srv/edge/admin.sock",
    "storage": "/srv/edge/data",
    "tls": {"mode": "internal", "on_demand": True, "ask_port": 5480},
    "limits": {"max_body_bytes": 1000, "read_header_timeout": "10s"},
}
ROUTE = {"name": "project-shop", "hosts": ["shop.example.com"], "upstream": "127.0.0.1:54321"}


def servers(config):
    return config["apps"]["http"]["servers"]


def test_a_route_proxies_its_names_and_everything_else_is_404():
    config = ec.build_config(SETTINGS, [ROUTE])
    # routes[0] refuses a body announced over the cap (test_a_body_over_the_cap_...).
    routes = servers(config)["edge-https"]["routes"]
    assert routes[1]["match"] == [{"host": ["shop.example.com"]}]
    assert routes[1]["handle"] == [
        {"handler": "request_body", "max_size": 1000},
        {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:54321"}]},
    ]
    assert routes[-1] == {"handle": [{"handler": "static_response", "status_code": 404}]}
    assert servers(config)["edge-https"]["strict_sni_host"] is True
    assert servers(config)["edge-https"]["read_header_timeout"] == "10s"
    assert config["admin"] == {"listen": "unix//srv/edge/admin.sock"}
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_http_redirects_only_served_names_and_keeps_a_non_default_port():
    config = ec.build_config({**SETTINGS, "https_port": 8443}, [ROUTE])
    redirect, fallback = servers(config)["edge-http"]["routes"]
    assert redirect["match"] == [{"host": ["shop.example.com"]}]
    assert redirect["handle"][0]["headers"]["Location"] == ["https://{http.request.host}:8443{http.request.uri}"]
    assert fallback["handle"][0]["status_code"] == 404
    default_port = ec.build_config(SETTINGS, [ROUTE])
    assert servers(default_port)["edge-http"]["routes"][0]["handle"][0]["headers"]["Location"] == [
        "https://{http.request.host}{http.request.uri}"
    ]


def test_the_ask_endpoint_allows_exactly_the_routed_names():
    config = ec.build_config(SETTINGS, [ROUTE, {**ROUTE, "name": "project-b", "hosts": ["b.example.com"]}])
    ask = servers(config)["edge-ask"]
    assert ask["listen"] == ["127.0.0.1:5480"]
    assert ask["routes"][0]["match"][0]["query"] == {"domain": ["b.example.com", "shop.example.com"]}
    assert config["apps"]["tls"]["automation"]["on_demand"] == {"ask": "http://127.0.0.1:5480/ask"}
    assert config["apps"]["tls"]["automation"]["policies"] == [{"issuers": [{"module": "internal"}], "on_demand": True}]
    empty = ec.build_config(SETTINGS, [])
    assert servers(empty)["edge-ask"]["routes"] == [{"handle": [{"handler": "static_response", "status_code": 404}]}]


def test_acme_and_files_modes():
    acme = {
        "mode": "acme",
        "acme_directory": "https://ca.test/dir",
        "acme_email": "ops@example.com",
        "acme_trusted_roots": ["/r.pem"],
    }
    config = ec.build_config({**SETTINGS, "tls": acme}, [ROUTE])
    assert config["apps"]["tls"]["automation"]["policies"] == [
        {
            "issuers": [
                {
                    "module": "acme",
                    "ca": "https://ca.test/dir",
                    "email": "ops@example.com",
                    "trusted_roots_pem_files": ["/r.pem"],
                }
            ]
        }
    ]
    files = {"mode": "files", "certificate_files": [{"certificate": "/c.pem", "key": "/k.pem"}]}
    config = ec.build_config({**SETTINGS, "tls": files}, [ROUTE])
    assert config["apps"]["tls"] == {"certificates": {"load_files": [{"certificate": "/c.pem", "key": "/k.pem"}]}}
    assert servers(config)["edge-https"]["automatic_https"]["skip_certificates"] == ["shop.example.com"]


@pytest.mark.parametrize(
    "route, message",
    [
        ({**ROUTE, "name": "Shop"}, "lowercase slug"),
        ({**ROUTE, "hosts": []}, "at least one host"),
        ({**ROUTE, "hosts": ["*.example.com"]}, "not a lowercase DNS name"),
        ({**ROUTE, "hosts": ["shop.example.com\nx"]}, "not a lowercase DNS name"),
        ({**ROUTE, "upstream": "127.0.0.1"}, "not host:port"),
        ({**ROUTE, "upstream": "127.0.0.1:0"}, "not host:port"),
        ({**ROUTE, "upstream": "127.0.0.1:80 x"}, "not host:port"),
    ],
)
def test_bad_routes_are_refused(route, message):
    with pytest.raises(ec.EdgeConfigError, match=message):
        ec.build_config(SETTINGS, [route])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({**SETTINGS, "tls": {"mode": "self"}}, "TLS mode"),
        ({**SETTINGS, "https_port": 70000}, "https_port"),
        ({**SETTINGS, "tls": {"mode": "internal", "on_demand": True}}, "ask_port"),
        ({**SETTINGS, "tls": {"mode": "acme"}}, "acme_directory"),
        ({**SETTINGS, "tls": {"mode": "files"}}, "certificate_files"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ec.EdgeConfigError, match=message):
        ec.build_config(settings, [])


POOLER = {"tenant": "shop", "session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"}


def test_the_pooler_routes_map_each_tenant_to_its_two_ports():
    other = {**ROUTE, "name": "project-b", "hosts": ["b.example.com"], "pooler": {**POOLER, "tenant": "bee"}}
    plain = {**ROUTE, "name": "api", "hosts": ["api.example.com"]}
    assert ec.pooler_routes([{**ROUTE, "pooler": POOLER}, other, plain]) == {
        "tenants": {
            "shop": {"session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"},
            "bee": {"session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"},
        }
    }
    with pytest.raises(ec.EdgeConfigError, match="pooler tenant shop is claimed by both"):
        ec.pooler_routes([{**ROUTE, "pooler": POOLER}, {**other, "pooler": POOLER}])


@pytest.mark.parametrize(
    "pooler, message",
    [
        ({**POOLER, "tenant": "Shop"}, "is not a project ref"),
        ({**POOLER, "tenant": "shop\n"}, "is not a project ref"),
        ({**POOLER, "tenant": 7}, "is not a project ref"),
        ({**POOLER, "session": "127.0.0.1"}, "pooler session"),
        ({**POOLER, "transaction": "127.0.0.1:65536"}, "pooler transaction"),
        ({**POOLER, "user": "x"}, "tenant, session and transaction only"),
        ("shop", "tenant, session and transaction only"),
    ],
)
def test_bad_pooler_routes_are_refused(pooler, message):
    with pytest.raises(ec.EdgeConfigError, match=message):
        ec.check_route({**ROUTE, "pooler": pooler})


def test_the_pooler_host_gets_a_certificate_from_the_edge_issuer_unless_it_has_its_own():
    managed = {**SETTINGS, "pooler": {"host": "pooler.example.com", "managed_certificate": True}}
    tls = ec.build_config(managed, [ROUTE])["apps"]["tls"]
    assert tls["certificates"] == {"automate": ["pooler.example.com"]}
    # Its own policy comes first and is not on demand: the name is known in advance.
    assert tls["automation"]["policies"][0] == {"subjects": ["pooler.example.com"], "issuers": [{"module": "internal"}]}
    assert tls["automation"]["policies"][1]["on_demand"] is True
    own = {**SETTINGS, "pooler": {"host": "pooler.example.com", "managed_certificate": False}}
    assert "certificates" not in ec.build_config(own, [ROUTE])["apps"]["tls"]
    files = {"mode": "files", "certificate_files": [{"certificate": "/c.pem", "key": "/k.pem"}]}
    with pytest.raises(ec.EdgeConfigError, match="pooler host needs its own certificate"):
        ec.build_config({**managed, "tls": files}, [ROUTE])
    with pytest.raises(ec.EdgeConfigError, match="pooler host 'pooler' is not"):
        ec.build_config({**SETTINGS, "pooler": {"host": "pooler"}}, [ROUTE])


def test_one_name_cannot_belong_to_two_routes():
    with pytest.raises(ec.EdgeConfigError, match="claimed by both"):
        ec.build_config(SETTINGS, [ROUTE, {**ROUTE, "name": "project-other"}])


def test_no_route_serves_the_pooler_host():
    """A vanity subdomain or custom hostname that is the Postgres front's name is refused."""
    settings = {**SETTINGS, "pooler": {"host": "pooler.example.com", "managed_certificate": True}}
    with pytest.raises(ec.EdgeConfigError, match="is the Postgres front's"):
        ec.build_config(settings, [{**ROUTE, "hosts": ["shop.example.com", "pooler.example.com"]}])


def edge_dir(tmp_path):
    settings = {**SETTINGS, "admin_socket": str(tmp_path / "admin.sock"), "storage": str(tmp_path / "data")}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    return tmp_path


def test_apply_writes_the_route_and_config_and_is_idempotent_without_caddy(tmp_path):
    root = edge_dir(tmp_path)
    first = ec.apply(str(root), ROUTE)
    assert (first["changed"], first["running"], first["loaded"], first["hosts"]) == (
        True,
        False,
        False,
        ["shop.example.com"],
    )
    assert json.loads((root / "routes" / "project-shop.json").read_text()) == ROUTE
    assert json.loads((root / "caddy.json").read_text()) == ec.build_config(
        json.loads((root / "settings.json").read_text()), [ROUTE]
    )
    assert ec.apply(str(root), ROUTE)["changed"] is False


def test_apply_keeps_the_pooler_routes_file_with_the_routes(tmp_path):
    root = edge_dir(tmp_path)
    added = ec.apply(str(root), {**ROUTE, "pooler": POOLER})
    assert added["pooler_routes_changed"] is True
    assert json.loads((root / "pooler-routes.json").read_text()) == {
        "tenants": {"shop": {"session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"}}
    }
    assert ec.apply(str(root), {**ROUTE, "pooler": POOLER})["changed"] is False
    removed = ec.apply(str(root), state="absent", name="project-shop")
    assert removed["pooler_routes_changed"] is True
    assert json.loads((root / "pooler-routes.json").read_text()) == {"tenants": {}}


def test_removing_a_route_removes_its_file_and_its_certificates(tmp_path):
    root = edge_dir(tmp_path)
    ec.apply(str(root), ROUTE)
    cert_dir = root / "data" / "certificates" / "local" / "shop.example.com"
    cert_dir.mkdir(parents=True)
    (cert_dir / "shop.example.com.crt").write_text("x")
    other = root / "data" / "certificates" / "local" / "other.example.com"
    other.mkdir()
    removed = ec.apply(str(root), state="absent", name="project-shop")
    assert removed["route_changed"] and removed["hosts"] == []
    assert not (root / "routes" / "project-shop.json").exists()
    assert not cert_dir.exists() and other.exists()
    assert ec.apply(str(root), state="absent", name="project-shop")["changed"] is False


def test_check_mode_writes_nothing(tmp_path):
    root = edge_dir(tmp_path)
    result = ec.apply(str(root), ROUTE, check_mode=True)
    assert result["changed"] and not (root / "routes").exists() and not (root / "caddy.json").exists()


def test_an_edge_that_was_never_set_up_is_a_clear_error(tmp_path):
    with pytest.raises(ec.EdgeConfigError, match="apply the edge role"):
        ec.apply(str(tmp_path), ROUTE)


def test_require_running_fails_when_caddy_does_not_answer(tmp_path):
    root = edge_dir(tmp_path)
    with pytest.raises(ec.EdgeConfigError, match="does not answer"):
        ec.apply(str(root), require_running=True)
    assert not (root / "caddy.json").exists()


def test_a_body_over_the_cap_is_answered_413_whatever_caddy_reports():
    errors = servers(ec.build_config(SETTINGS, [ROUTE]))["edge-https"]["errors"]["routes"]
    assert errors == [
        {
            "match": [{"expression": "{http.error.message}.contains('request body too large')"}],
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": 413,
                    "headers": {"Content-Type": ["application/json"]},
                    "body": '{"message": "Request body over 1000 bytes"}',
                }
            ],
        }
    ]
    early = servers(ec.build_config(SETTINGS, [ROUTE]))["edge-https"]["routes"][0]
    assert early["match"] == [
        {
            "host": ["shop.example.com"],
            "expression": "{http.request.header.Content-Length} != ''"
            " && int({http.request.header.Content-Length}) > 1000",
        }
    ]
    assert early["handle"] == errors[0]["handle"] and early["terminal"] is True
    uncapped = ec.build_config({**SETTINGS, "limits": {}}, [ROUTE])
    assert "errors" not in servers(uncapped)["edge-https"]
    assert len(servers(uncapped)["edge-https"]["routes"]) == 2


def test_a_name_a_route_no_longer_serves_loses_its_certificate(tmp_path):
    root = edge_dir(tmp_path)
    ec.apply(str(root), {**ROUTE, "hosts": ["shop.example.com", "www.shop.test"]})
    local = root / "data" / "certificates" / "local"
    for host in ("shop.example.com", "www.shop.test"):
        (local / host).mkdir(parents=True)
        (local / host / f"{host}.crt").write_text("x")
    assert ec.apply(str(root), ROUTE)["route_changed"] is True
    assert (local / "shop.example.com").exists() and not (local / "www.shop.test").exists()


def test_obtaining_certificates_needs_a_running_caddy_and_gives_up_after_its_timeout(tmp_path):
    root = edge_dir(tmp_path)
    with pytest.raises(ec.EdgeConfigError, match="no certificate can be obtained"):
        ec.apply(str(root), ROUTE, obtain=True)
    # Nothing listens on this port: each handshake fails until the deadline.
    settings = {**SETTINGS, "listen_address": "127.0.0.1", "https_port": 1}
    with pytest.raises(ec.EdgeConfigError, match=r"no certificate for shop\.example\.com within 0s"):
        ec.obtain_certificates(settings, ["shop.example.com"], timeout=0)
