"""The edge proxy with real Caddy and real TLS: routing by name, redirects, unknown names, live
route changes under load, and certificates from a real ACME server (Debian's pebble) on loopback.

Upstreams here are trivial local HTTP services; test_edge_project.py
sends a real project's traffic through the edge.
"""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from .conftest import DOMAIN, MAX_BODY, POOLER_HOST, Edge, FakePooler, free_port, stop_edge


def test_each_name_reaches_its_own_upstream_and_nothing_else(edge, upstreams):
    a, b = upstreams("a"), upstreams("b")
    edge.route("ta", [f"ta.{DOMAIN}"], a.address)
    edge.route("tb", [f"tb.{DOMAIN}"], b.address)
    try:
        for name, upstream in (("ta", "a"), ("tb", "b")):
            code, out, err = edge.curl(f"{name}.{DOMAIN}", "/x")
            assert code == 0, err
            assert json.loads(out) == {"upstream": upstream, "host": f"{name}.{DOMAIN}:{edge.https_port}"}
        # The certificate is for that name, from the edge's CA (curl verified it); a Host other than
        # the SNI is refused, so one project's certificate never carries another's traffic.
        status, _ = edge.get(f"ta.{DOMAIN}", headers={"Host": f"tb.{DOMAIN}"})
        assert status == 421
    finally:
        edge.unroute("ta")
        edge.unroute("tb")


def test_the_daemon_route_of_the_edge_role_reaches_its_upstream(edge):
    code, out, err = edge.curl(f"api.{DOMAIN}", "/v1/projects")
    assert code == 0, err
    assert json.loads(out)["upstream"] == "supamanagerd"
    assert json.loads((edge.dir / "routes" / "supamanagerd-api.json").read_text())["hosts"] == [f"api.{DOMAIN}"]


def test_a_body_over_the_cap_gets_413_and_one_within_reaches_the_upstream(edge, upstreams, tmp_path):
    upstream = upstreams("capped")
    edge.route("tcap", [f"tcap.{DOMAIN}"], upstream.address)
    try:
        (tmp_path / "over").write_bytes(b"x" * (MAX_BODY + 1))
        (tmp_path / "within").write_bytes(b"x" * MAX_BODY)
        write_out = ("-o", str(tmp_path / "out"), "-w", "%{http_code}")
        # With a Content-Length (Caddy 2.6 alone says 502 to this one) and in chunks.
        for framing in ((), ("-H", "Transfer-Encoding: chunked")):
            code, out, err = edge.curl(
                f"tcap.{DOMAIN}", "/", "--data-binary", f"@{tmp_path / 'over'}", *framing, *write_out
            )
            assert (code, out) == (0, "413"), err
            assert json.loads((tmp_path / "out").read_text()) == {"message": f"Request body over {MAX_BODY} bytes"}
        code, out, err = edge.curl(f"tcap.{DOMAIN}", "/", "--data-binary", f"@{tmp_path / 'within'}", *write_out)
        assert (code, out) == (0, "200"), err
        assert json.loads((tmp_path / "out").read_text())["received"] == MAX_BODY
    finally:
        edge.unroute("tcap")


def test_http_redirects_to_https_for_a_served_name_and_404_otherwise(edge, upstreams):
    edge.route("tr", [f"tr.{DOMAIN}"], upstreams("r").address)
    try:
        code, out, err = edge.curl(
            f"tr.{DOMAIN}", "/rest/v1/?a=1", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", scheme="http"
        )
        assert code == 0, err
        assert out == f"308 https://tr.{DOMAIN}:{edge.https_port}/rest/v1/?a=1"
        code, out, err = edge.curl(f"nobody.{DOMAIN}", "/", "-o", "/dev/null", "-w", "%{http_code}", scheme="http")
        assert (code, out) == (0, "404")
    finally:
        edge.unroute("tr")


def test_an_unknown_name_gets_no_certificate(edge, upstreams):
    edge.route("tk", [f"tk.{DOMAIN}"], upstreams("k").address)
    try:
        code, _, err = edge.curl(f"unknown.{DOMAIN}")
        assert code == 35, err  # curl: TLS handshake failed
        with pytest.raises(ssl.SSLError):
            edge.get(f"unknown.{DOMAIN}")
        # Not even an unverified client gets a certificate (of another project or any other).
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        with pytest.raises(ssl.SSLError):
            handshake(edge, f"unknown.{DOMAIN}", unverified)
    finally:
        edge.unroute("tk")


def handshake(edge, name, context):
    """A bare TLS handshake with <name> as SNI: the server's certificate (DER)."""
    with (
        socket.create_connection(("127.0.0.1", edge.https_port), 10) as sock,
        context.wrap_socket(sock, server_hostname=name) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def test_adding_and_removing_a_route_drops_no_request_of_another(edge, upstreams):
    """While clients stream requests to A (one keep-alive connection, and a new connection per
    request), B's route is added and removed ten times through the admin API: A loses nothing.

    A configuration switch closes the old server's idle keep-alive connections (Go's graceful
    shutdown); a request sent on such a connection at that instant gets the connection closed with
    no response, and HTTP/1.1 clients send it again on a new connection (RFC 9112 9.3.1: a reused
    connection closed before any response byte; browsers, Go, curl and urllib3 do). The keep-alive
    client here does the same and counts it: every request gets its 200, any other error fails.
    """
    a, b = upstreams("a"), upstreams("b")
    edge.route("sa", [f"sa.{DOMAIN}"], a.address)
    stop = threading.Event()
    counts = {"keepalive": 0, "fresh": 0, "resent_after_idle_close": 0}
    failures = []

    def check(status, body):
        assert status == 200 and json.loads(body)["upstream"] == "a", (status, body)

    def keepalive():
        conn = edge.connection(f"sa.{DOMAIN}")
        while not stop.is_set():
            try:
                try:
                    conn.request("GET", "/")
                    response = conn.getresponse()
                # Closed before any response byte: seen as EOF, or as a reset when the request's
                # bytes reached the already closed socket (the same case; it showed under load).
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    counts["resent_after_idle_close"] += 1
                    conn.close()
                    conn = edge.connection(f"sa.{DOMAIN}")
                    conn.request("GET", "/")
                    response = conn.getresponse()
                check(response.status, response.read())
                counts["keepalive"] += 1
            except Exception as exc:  # every other failure is counted and shown
                failures.append(f"keep-alive: {exc!r}")
                conn.close()
                conn = edge.connection(f"sa.{DOMAIN}")
        conn.close()

    def fresh():
        while not stop.is_set():
            try:
                check(*edge.get(f"sa.{DOMAIN}"))
                counts["fresh"] += 1
            except Exception as exc:
                failures.append(f"new connection: {exc!r}")

    threads = [threading.Thread(target=keepalive), threading.Thread(target=fresh)]
    for t in threads:
        t.start()
    changes = 0
    try:
        time.sleep(0.5)  # both clients are streaming before the first change
        for _ in range(10):
            assert edge.route("sb", [f"sb.{DOMAIN}"], b.address)["loaded"]
            status, body = edge.get(f"sb.{DOMAIN}")
            assert status == 200 and json.loads(body)["upstream"] == "b"
            assert edge.unroute("sb")["loaded"]
            changes += 2
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        edge.unroute("sa")
    print(f"route changes {changes}, requests to A: {counts}, failures: {len(failures)}")
    assert not failures, failures[:5]
    assert counts["keepalive"] > 20 and counts["fresh"] > 5, counts
    with pytest.raises(ssl.SSLError):
        edge.get(f"sb.{DOMAIN}")


def test_the_postgres_front_routes_by_the_ref_of_the_user_name_and_only_over_tls(edge, upstreams):
    """The real psql with sslmode=verify-full (the edge's CA, the pooler host's name) through the
    front: postgres.<ref> reaches the pooler of <ref>'s route, on the mode of the port it used;
    an unknown ref, a user name without one and a plain-text connection get a Postgres error and
    reach no pooler. (test_edge_project.py reaches a real project's database the same way.)"""
    names = ("a-session", "a-transaction", "b-session", "b-transaction")
    poolers = {name: upstreams(name, FakePooler) for name in names}
    edge.pooler_route("pga", "tenant-a", poolers["a-session"].address, poolers["a-transaction"].address)
    edge.pooler_route("pgb", "tenant-b", poolers["b-session"].address, poolers["b-transaction"].address)
    try:
        code, _, err = edge.psql("postgres.tenant-a", "unused")
        assert code == 2 and "FATAL:  fake pooler a-session got postgres.tenant-a" in err, err
        code, _, err = edge.psql("authenticator.tenant-b", "unused", mode="transaction")
        assert code == 2 and "FATAL:  fake pooler b-transaction got authenticator.tenant-b" in err, err
        for user in ("postgres.tenant-c", "postgres", "postgres.Tenant-A"):
            code, _, err = edge.psql(user, "unused")
            assert code == 2 and f"FATAL:  Tenant or user not found: {user}" in err, err
        code, _, err = edge.psql("postgres.tenant-a", "unused", sslmode="disable")
        assert code == 2 and f"FATAL:  SSL is required: connect to {POOLER_HOST} with sslmode=require" in err, err
        assert {name: p.users for name, p in poolers.items()} == {
            "a-session": ["postgres.tenant-a"],
            "a-transaction": [],
            "b-session": [],
            "b-transaction": ["authenticator.tenant-b"],
        }
    finally:
        edge.unroute("pga")
        edge.unroute("pgb")
    # A removed route's ref is unknown at the next connection.
    code, _, err = edge.psql("postgres.tenant-a", "unused")
    assert code == 2 and "Tenant or user not found: postgres.tenant-a" in err, err
    assert poolers["a-session"].users == ["postgres.tenant-a"]


def test_a_front_left_on_old_settings_by_a_crash_is_restarted_by_the_next_run(edge):
    """A run that wrote the front's settings and died before restarting it leaves the front on the
    old ones; the next run finds its command line's stamp stale and replaces it (and changes
    nothing else). Stands in for that crash by writing the new settings by hand."""
    settings_file = edge.dir / "pooler-front.json"
    old_pid = (edge.dir / "pooler-supervisor.pid").read_text()
    new_port = free_port()
    settings = json.loads(settings_file.read_text())
    settings["transaction_port"] = new_port
    settings_file.write_text(json.dumps(settings, indent=4, sort_keys=True) + "\n")  # as to_nice_json writes it
    edge.vars["supamanager_edge_pooler_transaction_port"] = new_port
    rerun = edge.playbook()
    # Only the stale supervisor's stop and the new one's start: the settings file was already right.
    assert re.search(r"changed=2 ", rerun.stdout), rerun.stdout[-3000:]
    assert (edge.dir / "pooler-supervisor.pid").read_text() != old_pid
    code, _, err = edge.psql("postgres.nosuch", "unused", mode="transaction")
    assert code == 2 and "Tenant or user not found: postgres.nosuch" in err, err


@pytest.fixture(scope="module")
def acme_edge(tmp_path_factory, venv_env, caddy_installed):
    """An edge whose certificates come from a real ACME server on loopback: Debian's pebble, with
    pebble-challtestsrv as its DNS (every name is 127.0.0.1) so that it validates the challenges
    against this edge's own ports."""
    assert shutil.which("pebble"), "Debian's pebble is missing: scripts/system-packages installs it (bindep.txt)"
    base = tmp_path_factory.mktemp("acme")
    edge = Edge(base / "root", venv_env)
    # pebble's own HTTPS (its directory) needs a certificate: one for 127.0.0.1, made here.
    cert, key = base / "pebble.pem", base / "pebble.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=pebble", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    acme_port, management_port, dns_port, dns_management = free_port(), free_port(), free_port(), free_port()
    (base / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme_port}",
                    "managementListenAddress": f"127.0.0.1:{management_port}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": edge.http_port,
                    "tlsPort": edge.https_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log = (base / "pebble.log").open("w")
    dns = subprocess.Popen(
        ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{dns_management}",
         "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pebble = subprocess.Popen(
        ["pebble", "-config", str(base / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        pebble_tls = ssl.create_default_context(cafile=str(cert))
        root = None
        for _ in range(60):
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", management_port, context=pebble_tls, timeout=5)
                conn.request("GET", "/roots/0")
                root = conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.5)
        assert root and b"BEGIN CERTIFICATE" in root, "pebble did not start"
        (base / "pebble-root.pem").write_bytes(root)
        edge.vars.update(
            supamanager_edge_tls="acme",
            supamanager_edge_acme_directory=f"https://127.0.0.1:{acme_port}/dir",
            supamanager_edge_acme_trusted_roots=[str(cert)],
            supamanager_edge_acme_email="ops@example.com",
            supamanager_edge_pooler_host=POOLER_HOST,
            supamanager_edge_pooler_session_port=free_port(),
            supamanager_edge_pooler_transaction_port=free_port(),
        )
        edge.playbook()
        edge.acme_root = base / "pebble-root.pem"
        try:
            yield edge
        finally:
            stop_edge(edge)
    finally:
        for proc in (pebble, dns):
            proc.terminate()
            proc.wait(30)
        log.close()


def test_certificates_come_from_acme_on_demand_and_only_for_routed_names(acme_edge, upstreams):
    acme_edge.route("acme", [f"acme.{DOMAIN}"], upstreams("acme").address)
    # The first handshake asks our endpoint, then pebble issues the certificate (HTTP-01 or
    # TLS-ALPN-01 against this edge); the client trusts only pebble's root.
    status, body = acme_edge.get(f"acme.{DOMAIN}", cafile=acme_edge.acme_root)
    assert status == 200 and json.loads(body)["upstream"] == "acme"
    with (
        socket.create_connection(("127.0.0.1", acme_edge.https_port), 10) as sock,
        acme_edge.context(acme_edge.acme_root).wrap_socket(sock, server_hostname=f"acme.{DOMAIN}") as tls,
    ):
        issuer = dict(item[0] for item in tls.getpeercert()["issuer"])
    assert "Pebble" in issuer["commonName"], issuer
    with pytest.raises(ssl.SSLError):
        acme_edge.get(f"stranger.{DOMAIN}", cafile=acme_edge.acme_root)
    log = (acme_edge.dir / "caddy.log").read_text()
    assert f'"identifier":"acme.{DOMAIN}"' in log
    # The ask endpoint said no: the edge never asked the ACME server for the stranger's name.
    assert f'"identifier":"stranger.{DOMAIN}"' not in log

    # The Postgres front's certificate comes from the same ACME server: Caddy obtains it when it
    # starts, and the front answers TLS once it is in storage ("no certificate ... yet" until then).
    deadline = time.monotonic() + 90
    while True:
        code, _, err = acme_edge.psql("postgres.nosuch", "unused", cafile=acme_edge.acme_root)
        if "no certificate" not in err or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # Refused after the handshake, for the unknown ref: verify-full accepted pebble's certificate.
    assert code == 2 and "Tenant or user not found: postgres.nosuch" in err, err


def test_state_absent_stops_caddy_and_the_front_and_a_second_run_changes_nothing(acme_edge):
    """Stops this module's edge (its fixture then removes it): the last test that uses it."""
    pids = [int((acme_edge.dir / name).read_text()) for name in ("supervisor.pid", "pooler-supervisor.pid")]
    ports = [acme_edge.https_port, acme_edge.vars["supamanager_edge_pooler_session_port"]]
    first = acme_edge.playbook(supamanager_edge_state="absent")
    assert re.search(r"changed=[1-9]", first.stdout), first.stdout
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"supervisor {pid} still runs"
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), 5).close()
    # Documented: the configuration and Caddy's storage stay (supamanager_edge_remove_data removes them).
    assert all((acme_edge.dir / name).exists() for name in ("settings.json", "caddy.json", "pooler-front.json", "data"))
    second = acme_edge.playbook(supamanager_edge_state="absent")
    assert re.search(r"changed=0 ", second.stdout), second.stdout
