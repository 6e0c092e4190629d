# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""The edge proxy's configuration: settings and route files in, one Caddy JSON config out.

An edge directory (default <supamanager_root>/edge/) holds:
  settings.json      what the edge role decided (ports, TLS mode, admin socket, storage); no secret
  routes/<name>.json one per route: {"name", "hosts", "upstream"} and, for a project, "pooler":
                     {"tenant": ref, "session": host:port, "transaction": host:port}; the project
                     role writes its own
  caddy.json         built from the two above by build_config(); Caddy runs it (caddy run --config)
  pooler-routes.json every route's pooler by tenant, built by pooler_routes(); the Postgres front
                     (roles/edge/files/pooler_front.py) reads it again whenever it changes
The same caddy.json is loaded into a running Caddy through its admin API (POST /load, a graceful
switch: open connections are not dropped), so a restart and a live change give the same result.
Private to this collection.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import re
import socket
import ssl
import time

from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically

ROUTE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# A DNS name of lowercase labels (no wildcard: every name served is one we route).
HOST_NAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
UPSTREAM = re.compile(r"(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\]|[a-z0-9.-]+):(\d{1,5})")
TLS_MODES = ("internal", "acme", "files")
# A project ref (roles/project/tasks/validate.yml): the suffix of a pooler user name, postgres.<ref>.
TENANT = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")
POOLER_MODES = ("session", "transaction")


class EdgeConfigError(Exception):
    """A setting or route that cannot be served; nothing was changed."""


def check_route(route):
    """Validate one route dict; returns it normalised (sorted unique hosts)."""
    name = route.get("name", "")
    if not isinstance(name, str) or not ROUTE_NAME.fullmatch(name):
        raise EdgeConfigError(f"route name {name!r} is not a lowercase slug of 1-63 characters")
    hosts = route.get("hosts") or []
    if not hosts:
        raise EdgeConfigError(f"route {name}: at least one host name is needed")
    for host in hosts:
        if not isinstance(host, str) or not HOST_NAME.fullmatch(host):
            raise EdgeConfigError(f"route {name}: {host!r} is not a lowercase DNS name")
    upstream = route.get("upstream", "")
    match = UPSTREAM.fullmatch(upstream) if isinstance(upstream, str) else None
    if not match or not 0 < int(match.group(3)) < 65536:
        raise EdgeConfigError(f"route {name}: upstream {upstream!r} is not host:port")
    checked = {"name": name, "hosts": sorted(set(hosts)), "upstream": upstream}
    if route.get("pooler"):
        checked["pooler"] = _check_pooler(name, route["pooler"])
    return checked


def _check_pooler(name, pooler):
    if not isinstance(pooler, dict) or set(pooler) - {"tenant", *POOLER_MODES}:
        raise EdgeConfigError(f"route {name}: pooler takes tenant, session and transaction only")
    tenant = pooler.get("tenant", "")
    if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
        raise EdgeConfigError(f"route {name}: pooler tenant {tenant!r} is not a project ref")
    checked = {"tenant": tenant}
    for mode in POOLER_MODES:
        address = pooler.get(mode)
        match = UPSTREAM.fullmatch(address) if isinstance(address, str) else None
        if not match or not 0 < int(match.group(3)) < 65536:
            raise EdgeConfigError(f"route {name}: pooler {mode} {address!r} is not host:port")
        checked[mode] = address
    return checked


def pooler_routes(routes):
    """What the Postgres front reads: {"tenants": {ref: {"session", "transaction"}}} (pure, unit-tested)."""
    tenants, owner = {}, {}
    for route in sorted((check_route(r) for r in routes), key=lambda r: r["name"]):
        pooler = route.get("pooler")
        if not pooler:
            continue
        if pooler["tenant"] in tenants:
            first = owner[pooler["tenant"]]
            raise EdgeConfigError(
                f"pooler tenant {pooler['tenant']} is claimed by both route {first} and route {route['name']}"
            )
        tenants[pooler["tenant"]] = {mode: pooler[mode] for mode in POOLER_MODES}
        owner[pooler["tenant"]] = route["name"]
    return {"tenants": tenants}


def check_settings(settings):
    tls = settings.get("tls", {})
    if tls.get("mode") not in TLS_MODES:
        raise EdgeConfigError(f"TLS mode {tls.get('mode')!r} is not one of {', '.join(TLS_MODES)}")
    for key in ("http_port", "https_port"):
        if not isinstance(settings.get(key), int) or not 0 < settings[key] < 65536:
            raise EdgeConfigError(f"{key} {settings.get(key)!r} is not a port")
    if tls.get("on_demand") and not isinstance(tls.get("ask_port"), int):
        raise EdgeConfigError("on-demand certificates need ask_port (the loopback port of the ask endpoint)")
    if tls["mode"] == "acme" and not tls.get("acme_directory"):
        raise EdgeConfigError("TLS mode acme needs acme_directory")
    if tls["mode"] == "files" and not tls.get("certificate_files"):
        raise EdgeConfigError("TLS mode files needs certificate_files (certificate and key paths)")
    pooler = settings.get("pooler") or {}
    if pooler.get("host"):
        if not HOST_NAME.fullmatch(pooler["host"]):
            raise EdgeConfigError(f"pooler host {pooler['host']!r} is not a lowercase DNS name")
        if pooler.get("managed_certificate") and tls["mode"] == "files":
            raise EdgeConfigError("with TLS mode files the pooler host needs its own certificate and key files")


def _static(status, headers=None):
    handler = {"handler": "static_response", "status_code": status}
    if headers:
        handler["headers"] = headers
    return handler


def _too_large(max_bytes):
    return {
        **_static(413, {"Content-Type": ["application/json"]}),
        "body": json.dumps({"message": f"Request body over {max_bytes} bytes"}),
    }


def build_config(settings, routes):
    """The whole Caddy JSON config for these settings and routes (a pure function: unit-tested)."""
    check_settings(settings)
    routes = sorted((check_route(r) for r in routes), key=lambda r: r["name"])
    seen = {}
    pooler_host = (settings.get("pooler") or {}).get("host")
    for route in routes:
        for host in route["hosts"]:
            if host in seen:
                raise EdgeConfigError(f"host {host} is claimed by both route {seen[host]} and route {route['name']}")
            if host == pooler_host:
                raise EdgeConfigError(f"host {host} is the Postgres front's: route {route['name']} cannot serve it")
            seen[host] = route["name"]
    hosts = sorted(seen)
    tls = settings["tls"]
    bind = settings.get("listen_address", "")
    https_port, http_port = settings["https_port"], settings["http_port"]
    port_suffix = "" if https_port == 443 else f":{https_port}"
    limits = settings.get("limits", {})

    proxy_routes = []
    for route in routes:
        handle = []
        if limits.get("max_body_bytes"):
            handle.append({"handler": "request_body", "max_size": limits["max_body_bytes"]})
        handle.append({"handler": "reverse_proxy", "upstreams": [{"dial": route["upstream"]}]})
        proxy_routes.append(
            {
                "@id": f"supamanager-route-{route['name']}",
                "match": [{"host": route["hosts"]}],
                "handle": handle,
                "terminal": True,
            }
        )
    if limits.get("max_body_bytes") and hosts:
        # A body announced over the cap is refused before any of it reaches the upstream; one
        # that grows over it in chunks is cut by request_body, and the error routes answer 413.
        announced = "{http.request.header.Content-Length}"
        proxy_routes.insert(
            0,
            {
                "match": [
                    {"host": hosts, "expression": f"{announced} != '' && int({announced}) > {limits['max_body_bytes']}"}
                ],
                "handle": [_too_large(limits["max_body_bytes"])],
                "terminal": True,
            },
        )
    # Anything else: 404. (An unknown name gets no certificate at all, so over TLS this is only
    # reached by a request whose Host is unknown; strict_sni_host refuses a Host other than the SNI.)
    proxy_routes.append({"handle": [_static(404)]})

    https_server = {
        "listen": [f"{bind}:{https_port}"],
        "routes": proxy_routes,
        "strict_sni_host": True,
        # HTTP/1.1 and HTTP/2 over TCP (no HTTP/3: one protocol stack to reason about and to test).
        "protocols": ["h1", "h2"],
        # Redirects come from our own HTTP server below: only for names we serve, and with the port.
        "automatic_https": {"disable_redirects": True},
    }
    if limits.get("max_body_bytes"):
        # Caddy 2.6 reports a body over the cap that the proxy was streaming as its upstream's
        # failure (502) or as 413, by how it was framed: both are 413.
        https_server["errors"] = {
            "routes": [
                {
                    "match": [{"expression": "{http.error.message}.contains('request body too large')"}],
                    "handle": [_too_large(limits["max_body_bytes"])],
                }
            ]
        }
    for key in ("read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "max_header_bytes"):
        if limits.get(key):
            https_server[key] = limits[key]
    if tls["mode"] == "files":
        # The user's certificates cover the names; Caddy must not try to obtain others.
        https_server["automatic_https"]["skip_certificates"] = hosts

    redirect_routes = []
    if hosts:
        location = "https://{http.request.host}" + port_suffix + "{http.request.uri}"
        redirect_routes.append(
            {"match": [{"host": hosts}], "handle": [_static(308, {"Location": [location]})], "terminal": True}
        )
    redirect_routes.append({"handle": [_static(404)]})
    servers = {
        "edge-https": https_server,
        # Plain HTTP: ACME HTTP-01 challenges (Caddy answers them on this port before any route), then redirects.
        "edge-http": {"listen": [f"{bind}:{http_port}"], "routes": redirect_routes},
    }

    automation_policy = {}
    if tls["mode"] == "internal":
        automation_policy["issuers"] = [{"module": "internal"}]
    elif tls["mode"] == "acme":
        issuer = {"module": "acme", "ca": tls["acme_directory"]}
        if tls.get("acme_email"):
            issuer["email"] = tls["acme_email"]
        if tls.get("acme_trusted_roots"):
            issuer["trusted_roots_pem_files"] = list(tls["acme_trusted_roots"])
        automation_policy["issuers"] = [issuer]
    tls_app = {}
    if tls["mode"] != "files":
        automation = {"policies": [automation_policy]}
        if tls.get("on_demand"):
            automation_policy["on_demand"] = True
            automation["on_demand"] = {"ask": f"http://127.0.0.1:{tls['ask_port']}/ask"}
            # The ask endpoint: 200 for a name we route, 404 for any other, on loopback only.
            ask_routes = []
            if hosts:
                ask_routes.append(
                    {
                        "match": [{"path": ["/ask"], "query": {"domain": hosts}}],
                        "handle": [_static(200)],
                        "terminal": True,
                    }
                )
            ask_routes.append({"handle": [_static(404)]})
            servers["edge-ask"] = {
                "listen": [f"127.0.0.1:{tls['ask_port']}"],
                "routes": ask_routes,
                "automatic_https": {"disable": True},
            }
        tls_app["automation"] = automation
    else:
        tls_app["certificates"] = {
            "load_files": [{"certificate": f["certificate"], "key": f["key"]} for f in tls["certificate_files"]]
        }

    pooler = settings.get("pooler") or {}
    if pooler.get("host") and pooler.get("managed_certificate"):
        # Caddy obtains and renews the pooler host's certificate, from the same issuer as the
        # projects' (the Postgres front reads it from storage); not on demand: the name is known now.
        tls_app["certificates"] = {"automate": [pooler["host"]]}
        automation["policies"].insert(0, {"subjects": [pooler["host"]], "issuers": automation_policy["issuers"]})

    config = {
        "admin": {"listen": f"unix/{settings['admin_socket']}"},
        "storage": {"module": "file_system", "root": settings["storage"]},
        "apps": {
            "http": {"http_port": http_port, "https_port": https_port, "servers": servers},
            "tls": tls_app,
            # The internal CA's root stays in storage: never installed into this host's trust store.
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
        },
    }
    if settings.get("log_file"):
        config["logging"] = {"logs": {"default": {"writer": {"output": "file", "filename": settings["log_file"]}}}}
    return config


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def admin_request(admin_socket, method, path, body=None, timeout=30):
    """One request to Caddy's admin API on its unix socket: (status, text)."""
    conn = _UnixHTTPConnection(admin_socket, timeout)
    try:
        # Caddy checks the Host of admin requests; on a unix socket it must be empty.
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "")
        data = json.dumps(body).encode() if body is not None else b""
        if body is not None:
            conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def caddy_answers(admin_socket):
    if not os.path.exists(admin_socket):
        return False
    try:
        return admin_request(admin_socket, "GET", "/config/", timeout=5)[0] == 200
    except OSError:
        return False


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def load_routes(routes_dir):
    routes = []
    if os.path.isdir(routes_dir):
        for entry in sorted(os.listdir(routes_dir)):
            if entry.endswith(".json"):
                routes.append(read_json(os.path.join(routes_dir, entry)))
    return routes


def remove_certificates(storage, hosts):
    """Forget a removed route's certificates (every issuer's), so its names get none any more.

    Caddy keeps certificates in <storage>/certificates/<issuer>/<name>/; the configuration switch
    that follows starts a new cache, so the next handshake for those names finds nothing.
    """
    base = os.path.join(storage, "certificates")
    if not os.path.isdir(base):
        return
    for issuer in os.listdir(base):
        for host in hosts:
            directory = os.path.join(base, issuer, host)
            if os.path.isdir(directory):
                for entry in os.listdir(directory):
                    os.unlink(os.path.join(directory, entry))
                os.rmdir(directory)


def _read_text(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def _text(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@contextlib.contextmanager
def locked(root):
    """One writer of an edge directory at a time (two projects' jobs may add routes at once)."""
    fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def obtain_certificates(settings, hosts, timeout=120.0):
    """Make Caddy hold a certificate for each name: a TLS handshake with the name as SNI, again
    until it completes (on demand, Caddy obtains the certificate during the first one, after its
    ask endpoint said yes; with ACME that can take a while). Raises EdgeConfigError on timeout."""
    # Caddy's own address (every interface when empty: loopback is one of them).
    address = (settings.get("listen_address") or "127.0.0.1", settings["https_port"])
    context = ssl.create_default_context()
    # Whether the certificate is trusted is the client's business (internal CA, ACME staging...);
    # here, a completed handshake for the name is what shows that Caddy holds one for it.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for host in hosts:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(address, timeout=30) as sock, context.wrap_socket(
                    sock, server_hostname=host
                ):
                    break
            except (OSError, ssl.SSLError) as exc:
                if time.monotonic() > deadline:
                    raise EdgeConfigError(
                        f"the edge got no certificate for {host} within {timeout:.0f}s: {exc}"
                    ) from exc
                time.sleep(1)


def apply(
    root,
    route=None,
    state="present",
    name=None,
    check_mode=False,
    require_running=False,
    obtain=False,
    obtain_timeout=120.0,
):
    """Write (or remove) one route, rebuild caddy.json, and load it into Caddy when it runs.

    Returns the module result. Raises EdgeConfigError before anything is written when the
    settings, the route or the resulting config are invalid.
    """
    settings_path = os.path.join(root, "settings.json")
    if not os.path.exists(settings_path):
        raise EdgeConfigError(f"no edge at {root} (no settings.json): apply the edge role (playbooks/edge.yml) first")
    routes_dir = os.path.join(root, "routes")
    config_path = os.path.join(root, "caddy.json")
    with locked(root):
        settings = read_json(settings_path)
        routes = {r["name"]: r for r in load_routes(routes_dir)}
        route_changed = False
        route_name = route["name"] if route else name
        removed = None
        dropped = []
        if route is not None and state == "present":
            route = check_route(route)
            route_changed = routes.get(route["name"]) != route
            if route["name"] in routes:
                dropped = sorted(set(check_route(routes[route["name"]])["hosts"]) - set(route["hosts"]))
            routes[route["name"]] = route
        elif state == "absent" and route_name is not None:
            route_changed = route_name in routes
            removed = routes.pop(route_name, None)
        config = build_config(settings, list(routes.values()))
        config_text = _text(config)
        old_text = _read_text(config_path)
        config_changed = old_text != config_text
        pooler_path = os.path.join(root, "pooler-routes.json")
        pooler_text = _text(pooler_routes(list(routes.values())))
        pooler_changed = _read_text(pooler_path) != pooler_text
        running = caddy_answers(settings["admin_socket"])
        if require_running and not running:
            raise EdgeConfigError(
                f"Caddy does not answer on {settings['admin_socket']}: start the edge (playbooks/edge.yml)"
            )
        loaded = False
        if not check_mode:
            os.makedirs(routes_dir, mode=0o755, exist_ok=True)
            route_file = os.path.join(routes_dir, f"{route_name}.json") if route_name else None
            if route_changed and state == "present":
                write_atomically(route_file, _text(routes[route_name]), 0o644)
                # A name the route no longer serves (a custom hostname removed) keeps no certificate.
                remove_certificates(settings["storage"], dropped)
            elif route_changed:
                os.unlink(route_file)
                remove_certificates(settings["storage"], check_route(removed)["hosts"])
            if config_changed:
                write_atomically(config_path, config_text, 0o644)
            if pooler_changed:
                write_atomically(pooler_path, pooler_text, 0o644)
            if running:
                # Caddy compares with what it runs: an identical config is a no-op.
                status, text = admin_request(settings["admin_socket"], "POST", "/load", config)
                if status != 200:
                    raise EdgeConfigError(f"Caddy refused the configuration ({status}): {text.strip()[:500]}")
                loaded = True
        if obtain and route_name in routes and not check_mode:
            if not running:
                raise EdgeConfigError(
                    f"Caddy does not answer on {settings['admin_socket']}: no certificate can be obtained"
                )
            obtain_certificates(settings, routes[route_name]["hosts"], obtain_timeout)
    served = sorted(h for r in routes.values() for h in r["hosts"])
    return {
        "changed": route_changed or config_changed or pooler_changed,
        "route_changed": route_changed,
        "config_changed": config_changed,
        "pooler_routes_changed": pooler_changed,
        "running": running,
        "loaded": loaded,
        "config_path": config_path,
        "hosts": served,
    }
