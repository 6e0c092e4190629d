"""The daemon behind the host's real edge (roles/edge: Caddy, its internal CA), reached by the
official CLI 2.117.0 at https://<api host>, the api_url of its profile, while supamanagerd itself
listens on loopback; with the edge as its trusted proxy, failed authentication is limited per
client address, not per edge.

No DNS: a small CONNECT proxy stands for the name api.edge.test (the CLI honours HTTPS_PROXY) and
dials the edge from a loopback source address of the test's choice, so two clients have two
addresses. The daemon runs conftest.py's fake playbooks (no project is created here)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading

import pytest
from conftest import REPO
from daemonproc import free_port, on_fake_playbooks
from test_usability_cli import cli

pytestmark = pytest.mark.slow

API_HOST = "api.edge.test"


class ConnectProxy:
    """HTTP CONNECT to API_HOST:<edge port> -> a tunnel to 127.0.0.1:<edge port> from `source`."""

    def __init__(self, edge_port: int, source: str) -> None:
        self.edge_port, self.source = edge_port, source
        self.tunnels: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b" ", 2)[1].decode() if head.startswith(b"CONNECT ") else ""
            self.tunnels.append(target)
            if target != f"{API_HOST}:{self.edge_port}":  # no other traffic leaves this machine
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", self.edge_port), 10, source_address=(self.source, 0))
            with upstream:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                pump = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
                pump.start()
                _copy(client, upstream)
                pump.join(30)

    def close(self) -> None:
        self.server.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    # The edge dials the daemon from 127.0.0.1: its X-Forwarded-For is trusted, nobody else's.
    d = on_fake_playbooks(tmp_path_factory.mktemp("edge-daemon"), trusted_proxies="127.0.0.1")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory, daemon):
    """The real edge role (playbooks/edge.yml), supervised, routing API_HOST to the daemon."""
    tmp = tmp_path_factory.mktemp("edge")
    port = free_port()
    variables = {
        "supamanager_root": str(tmp / "root"),
        "supamanager_edge_base_domain": "edge.test",
        "supamanager_edge_tls": "internal",
        "supamanager_edge_https_port": port,
        "supamanager_edge_http_port": free_port(),
        "supamanager_edge_listen_address": "127.0.0.1",
        "supamanager_edge_service_manager": "supervised",
        "supamanager_edge_install": False,
        "supamanager_edge_ask_port": free_port(),
        "supamanager_edge_api_host": API_HOST,
        "supamanager_edge_api_upstream": f"127.0.0.1:{daemon.port}",
    }
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env = {k: v for k, v in env.items() if not k.startswith("SUPAMANAGER_")}

    def playbook(**extra):
        varfile = tmp / f"vars-{secrets.token_hex(3)}.json"
        varfile.write_text(json.dumps({**variables, **extra}))
        return subprocess.run(
            ["ansible-playbook", str(REPO / "playbooks" / "edge.yml"), "-e", f"@{varfile}"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    started = playbook()
    assert started.returncode == 0, started.stdout[-3000:]
    edge = {"port": port, "ca": tmp / "root" / "edge" / "data" / "pki" / "authorities" / "local" / "root.crt"}
    yield edge
    playbook(supamanager_edge_state="absent", supamanager_edge_remove_data=True)


@pytest.fixture
def proxies(edge):
    made: list[ConnectProxy] = []

    def make(source: str) -> ConnectProxy:
        made.append(ConnectProxy(edge["port"], source))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def official_cli(supabase_clients, daemon, edge, proxy, token, tmp_path, *args):
    """The official CLI with the profile `supamanager profile` prints for the edge's address."""
    url = f"https://{API_HOST}:{edge['port']}"
    made = cli(daemon, "profile", env={"SUPAMANAGER_URL": url})
    assert made.returncode == 0, made.stderr
    (tmp_path / "p.yaml").write_text(made.stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "SUPAMANAGER_"))}
    env.update(
        SUPABASE_ACCESS_TOKEN=token, HOME=str(tmp_path), SUPABASE_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1",
        HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY="",
        # The edge's CA, never the host's trust store: Node's variable and the CLI's own.
        NODE_EXTRA_CA_CERTS=str(edge["ca"]), SSL_CERT_FILE=str(edge["ca"]),
    )  # fmt: skip
    return subprocess.run(
        [str(supabase_clients.supabase), "--profile", str(tmp_path / "p.yaml"), *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def through_edge(edge, source: str, token: str) -> tuple[int, dict[str, str]]:
    """GET /v1/projects at https://API_HOST through the edge, from a loopback source address."""
    context = ssl.create_default_context(cafile=str(edge["ca"]))
    raw = socket.create_connection(("127.0.0.1", edge["port"]), 30, source_address=(source, 0))
    with context.wrap_socket(raw, server_hostname=API_HOST) as tls:
        tls.sendall(
            f"GET /v1/projects HTTP/1.1\r\nHost: {API_HOST}:{edge['port']}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}


@pytest.fixture(scope="module")
def cli_token(daemon):
    made = cli(daemon, "tokens", "create", "edge-cli")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_the_official_cli_reaches_the_daemon_through_the_edge(
    supabase_clients, daemon, edge, proxies, cli_token, tmp_path
):
    proxy = proxies("127.0.0.1")
    out = official_cli(supabase_clients, daemon, edge, proxy, cli_token, tmp_path, "orgs", "list", "-o", "json")
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert [org["id"] for org in json.loads(out.stdout)] == ["default"]
    # It went by name through the edge (the only way to api.edge.test), and the edge's TLS. The
    # proxy refuses any other tunnel (the CLI also asks api.github.com for a newer release).
    assert f"{API_HOST}:{edge['port']}" in proxy.tunnels


def test_twenty_wrong_tokens_from_one_address_get_429_and_another_address_still_gets_in(
    supabase_clients, daemon, edge, proxies, cli_token, tmp_path
):
    limit = 20  # the daemon's default SUPAMANAGER_AUTH_FAILURES_PER_MINUTE
    statuses = [through_edge(edge, "127.0.0.2", "sbp_" + "0" * 40)[0] for _ in range(limit)]
    assert statuses == [401] * limit
    status, headers = through_edge(edge, "127.0.0.2", "sbp_" + "0" * 40)
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60, headers
    # Not even the right token from that address: the limit is the address's, not the token's.
    assert through_edge(edge, "127.0.0.2", cli_token)[0] == 429
    # Another client of the same edge is not affected: the official CLI from 127.0.0.3.
    out = official_cli(
        supabase_clients, daemon, edge, proxies("127.0.0.3"), cli_token, tmp_path, "orgs", "list", "-o", "json"
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert [org["id"] for org in json.loads(out.stdout)] == ["default"]
