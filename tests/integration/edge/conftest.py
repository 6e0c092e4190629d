"""Fixtures for the edge's tests: real Caddy (Debian's caddy package) run by the real edge role.

Each edge gets its own directory, unprivileged loopback ports and a supervised Caddy (this machine
has no systemd); teardown runs the role with state absent. Names resolve only through the tests'
own connections to 127.0.0.1 (curl --resolve, or a socket with the name as SNI): never public DNS.
"""

import http.client
import json
import os
import secrets
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import REPO, run

COLLECTIONS = REPO / ".venv" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.supamanager.supabase.plugins.module_utils import _edge_config  # noqa: E402

DOMAIN = "edge.test"
POOLER_HOST = f"pooler.{DOMAIN}"
# The shared edge's cap on request bodies (the role's default is 50 MiB).
MAX_BODY = 65536


def front_address():
    """A loopback address of its own for an edge's Postgres front (Linux routes all of 127/8 to lo):
    there the front takes the standard ports, 5432 (which the official CLI forces) and 6543, that
    no other test or session on this machine listens on at that address."""
    return f"127.{100 + secrets.randbelow(150)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Edge:
    """One edge on this machine: its role variables, directory and ports."""

    def __init__(self, root, env, **extra):
        self.root = root
        self.env = env
        self.https_port, self.http_port = free_port(), free_port()
        self.vars = {
            "supamanager_root": str(root),
            "supamanager_edge_base_domain": DOMAIN,
            "supamanager_edge_tls": "internal",
            "supamanager_edge_https_port": self.https_port,
            "supamanager_edge_http_port": self.http_port,
            "supamanager_edge_listen_address": "127.0.0.1",
            "supamanager_edge_service_manager": "supervised",
            # Debian's caddy is installed by scripts/system-packages (bindep.txt).
            "supamanager_edge_install": False,
            "supamanager_edge_ask_port": free_port(),
            **extra,
        }
        self.dir = root / "edge"

    def playbook(self, check=True, **extra):
        varfile = self.root.parent / f"edge-vars-{secrets.token_hex(3)}.json"
        varfile.write_text(json.dumps({**self.vars, **extra}))
        return run(
            ["ansible-playbook", str(REPO / "playbooks" / "edge.yml"), "-e", f"@{varfile}"],
            env=self.env,
            check=check,
            timeout=600,
        )

    def route(self, name, hosts, upstream):
        """Add or change a route the way the module does (module_utils, admin API): its result."""
        return _edge_config.apply(str(self.dir), {"name": name, "hosts": hosts, "upstream": upstream})

    def unroute(self, name):
        return _edge_config.apply(str(self.dir), state="absent", name=name)

    def pooler_route(self, name, tenant, session, transaction):
        """A route whose pooler sends postgres.<tenant> to these two addresses."""
        pooler = {"tenant": tenant, "session": session, "transaction": transaction}
        return _edge_config.apply(
            str(self.dir), {"name": name, "hosts": [f"{name}.{DOMAIN}"], "upstream": session, "pooler": pooler}
        )

    def psql(self, user, password, mode="session", sql="select 1", sslmode="verify-full", cafile=None):
        """The real psql (postgresql-15 client) to the Postgres front: (exit code, stdout, stderr).

        host is the pooler's name (what verify-full checks the certificate against); hostaddr
        stands for the DNS record that points it at this machine."""
        port = self.vars[f"supamanager_edge_pooler_{mode}_port"]
        address = self.vars.get("supamanager_edge_pooler_listen_address") or "127.0.0.1"
        conninfo = (
            f"host={self.vars['supamanager_edge_pooler_host']} hostaddr={address} port={port} user={user} "
            f"dbname=postgres sslmode={sslmode} sslrootcert={cafile or self.ca_file} connect_timeout=20"
        )
        # Only what psql needs: no ~/.pgpass, no service file, no PG* of the caller's.
        env = {"PATH": os.environ["PATH"], "PGPASSWORD": password, "PGPASSFILE": "/dev/null", "LC_ALL": "C"}
        proc = subprocess.run(
            ["psql", conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        return proc.returncode, proc.stdout.strip(), proc.stderr.strip()

    @property
    def ca_file(self):
        return self.dir / "data" / "pki" / "authorities" / "local" / "root.crt"

    def context(self, cafile=None):
        return ssl.create_default_context(cafile=str(cafile or self.ca_file))

    def connection(self, name, cafile=None, timeout=30):
        return Connection(name, self.https_port, self.context(cafile), timeout)

    def get(self, name, path="/", headers=None, cafile=None):
        """One HTTPS request to <name> on this edge: (status, body)."""
        conn = self.connection(name, cafile)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def curl(self, name, path="/", *args, scheme="https"):
        """The real curl, with --resolve to 127.0.0.1 and the edge's CA: (exit code, stdout, stderr)."""
        port = self.https_port if scheme == "https" else self.http_port
        cmd = [
            "curl",
            "-sS",
            "--max-time",
            "30",
            "--resolve",
            f"{name}:{port}:127.0.0.1",
            "--cacert",
            str(self.ca_file),
            *args,
            f"{scheme}://{name}:{port}{path}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr


class Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with <name> as SNI and Host, as a client that resolved <name> to this host."""

    def __init__(self, name, port, context, timeout):
        super().__init__(name, port, context=context, timeout=timeout)
        self._name = name

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._name)


class Upstream:
    """A trivial local HTTP service standing for a project's gateway: answers 200 with its own name."""

    def __init__(self, name):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = json.dumps({"upstream": upstream.name, "host": self.headers.get("Host")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                try:
                    received = self.read_body()
                    body = json.dumps({"upstream": upstream.name, "received": received}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (OSError, ValueError):
                    pass  # the edge cut a body over its cap short and closed the connection

            def read_body(self):
                """The whole body, chunked or not, before any answer (so an answer never races the cut)."""
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                received = 0
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    received += len(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return received

            def log_message(self, *args):
                pass

        self.name = name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakePooler:
    """A TCP service standing for a project's pooler: it reads the StartupMessage the front
    forwards, remembers its user name, and refuses it with an ErrorResponse naming itself, which
    psql prints. Used where a real project is not needed; test_edge_project.py reaches a real one."""

    def __init__(self, name):
        fake = self
        self.name, self.users = name, []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = self.request.recv(4, socket.MSG_WAITALL)
                body = self.request.recv(struct.unpack("!I", head)[0] - 4, socket.MSG_WAITALL)
                items = body[4:].split(b"\0")
                user = dict(zip(items[0:-2:2], items[1:-2:2], strict=True)).get(b"user", b"").decode()
                fake.users.append(user)
                fields = b"SFATAL\0C28000\0M" + f"fake pooler {fake.name} got {user}".encode() + b"\0\0"
                self.request.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def caddy_installed():
    assert shutil.which("caddy"), "Debian's caddy package is missing: scripts/system-packages installs it (bindep.txt)"


def start_edge(tmp_path_factory, venv_env, name, **extra):
    edge = Edge(tmp_path_factory.mktemp(name) / "root", venv_env, **extra)
    edge.playbook()
    return edge


def stop_edge(edge):
    edge.playbook(check=False, supamanager_edge_state="absent", supamanager_edge_remove_data=True)


@pytest.fixture(scope="session")
def edge(tmp_path_factory, venv_env, caddy_installed):
    """One edge with Caddy's internal CA, shared by the session's edge tests. Its daemon route
    (supamanager_edge_api_host) goes to a trivial upstream standing for supamanagerd; its
    Postgres front listens for POOLER_HOST on a loopback address of its own, at 5432 (session:
    the port the official CLI forces) and a free port (transaction)."""
    daemon = Upstream("supamanagerd")
    try:
        e = start_edge(
            tmp_path_factory,
            venv_env,
            "edge",
            supamanager_edge_api_host=f"api.{DOMAIN}",
            supamanager_edge_api_upstream=daemon.address,
            supamanager_edge_pooler_host=POOLER_HOST,
            supamanager_edge_pooler_listen_address=front_address(),
            supamanager_edge_pooler_session_port=5432,
            supamanager_edge_pooler_transaction_port=free_port(),
            supamanager_edge_max_body_bytes=MAX_BODY,
        )
        try:
            yield e
        finally:
            stop_edge(e)
    finally:
        daemon.close()


@pytest.fixture
def upstreams():
    made = []

    def make(name, kind=None):
        made.append((kind or Upstream)(name))
        return made[-1]

    yield make
    for u in made:
        u.close()


# The project role's fixtures (a temporary host, the stand-in images under a private prefix).
from tests.integration.role.conftest import host, private_registry  # noqa: E402, F401
