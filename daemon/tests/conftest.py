"""Fixtures for the daemon's tests: settings in temp dirs, the app through aiohttp's test client.

`fake_collection` is a tiny stand-in for the collection: real playbooks run by the real
ansible-runner, which only write files, so the job machinery (steps, failures, 409, extra vars,
crash recovery) is tested in seconds. The end-to-end tests use the real playbooks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time

import psycopg
import pytest
from aiohttp import web
from supamanager_daemon.app import create_app
from supamanager_daemon.settings import Settings

from tests.xdist_engines import port_blocks

REPO = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "test-0123456789-abcdefghijklmnopqrstuvwxyz"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

_ANSIBLE_CFG = """[defaults]
inventory = inventory.yml
retry_files_enabled = false
interpreter_python = auto_silent
"""
_INVENTORY = """all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""
# Every fake playbook: hold while <root>/hold exists, fail when <root>/fail or <root>/fail-<kind>
# exists, record its vars.
_PLAYBOOK = """---
- name: Fake {kind}
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the ref
      ansible.builtin.assert:
        that: project_ref is match('^[a-z]{{20}}$')
    - name: Record the extra vars
      ansible.builtin.copy:
        dest: "{{{{ supamanager_root }}}}/vars-{{{{ project_ref }}}}-{kind}.json"
        content: "{{{{ {{'registry': supabase_image_registry, 'root': supamanager_root,
          'delete_volumes': delete_volumes | default(None), 'delete_backup': delete_backup | default(None),
          'backup_id': backup_id | default(None), 'recovery_target_time': recovery_target_time | default(None),
          'rollback': delete_as_rollback | default(None), 'extra': fake_extra | default(None),
          'password': supabase_postgres_password | default(None),
          'backup_kind': supabase_backup_kind | default(None),
          'restore_point': supabase_backup_restore_point | default(None),
          'public_host': supabase_public_host, 'instance_size': supabase_instance_size | default(None),
          'auth_settings_change': supabase_auth_settings_change | default(None),
          'postgrest_settings_change': supabase_postgrest_settings_change | default(None),
          'storage_settings_change': supabase_storage_settings_change | default(None),
          'postgres_settings_change': supabase_postgres_settings_change | default(None)}} | to_json }}}}"
        mode: "0600"
{body}
    - name: Hold while asked to
      ansible.builtin.wait_for:
        path: "{{{{ supamanager_root }}}}/hold"
        state: absent
        timeout: 120
        sleep: 1
    - name: Fail when asked to
      ansible.builtin.fail:
        msg: simulated failure of {kind}
      when: (supamanager_root ~ '/fail') is exists or (supamanager_root ~ '/fail-{kind}') is exists
"""
_CREATE_BODY = """    - name: Make the project's directory
      ansible.builtin.file:
        path: "{{ supamanager_root }}/projects/{{ project_ref }}"
        state: directory
        mode: "0700"
    - name: Write the project's env file
      ansible.builtin.copy:
        dest: "{{ supamanager_root }}/projects/{{ project_ref }}/.env"
        content: "ANON_KEY=anon.{{ project_ref }}\\nSERVICE_ROLE_KEY=service.{{ project_ref }}\\n\\
          DISABLE_SIGNUP=false\\nSMTP_PASS=fake\\nPGRST_DB_SCHEMAS=public,storage\\nPGRST_DB_MAX_ROWS=1000\\n\\
          FILE_SIZE_LIMIT=52428800\\nENABLE_IMAGE_TRANSFORMATION=true\\nPG_WORK_MEM=4MB\\n"
        mode: "0600"
    - name: Write project.json as the role does
      ansible.builtin.copy:
        dest: "{{ supamanager_root }}/projects/{{ project_ref }}/project.json"
        content: "{{ {'ref': project_ref, 'services': ['db', 'kong'], 'api_url': 'http://localhost:54321',
          'ports': {'kong_http': 54321}, 'instance_size': supabase_instance_size | default(''),
          'auth_settings': {'disable_signup': 'DISABLE_SIGNUP', 'smtp_pass': 'SMTP_PASS',
                            'jwt_exp': 'JWT_EXPIRY'},
          'postgrest_settings': {'db_schema': 'PGRST_DB_SCHEMAS', 'max_rows': 'PGRST_DB_MAX_ROWS',
                                 'db_extra_search_path': 'PGRST_DB_EXTRA_SEARCH_PATH', 'db_pool': 'PGRST_DB_POOL'},
          'storage_settings': {'file_size_limit': 'FILE_SIZE_LIMIT',
                               'image_transformation_enabled': 'ENABLE_IMAGE_TRANSFORMATION',
                               's3_protocol_enabled': 'S3_PROTOCOL_ENABLED'},
          'postgres_settings': {'work_mem': 'PG_WORK_MEM', 'max_connections': 'PG_MAX_CONNECTIONS',
                                'statement_timeout': 'PG_STATEMENT_TIMEOUT'}} | to_json }}"
        mode: "0644"
"""
# The fake resume takes a new size as the role does: into project.json.
_RESUME_BODY = """    - name: Keep the new size in project.json as the role does
      ansible.builtin.copy:
        dest: "{{ supamanager_root }}/projects/{{ project_ref }}/project.json"
        content: "{{ (lookup('ansible.builtin.file', supamanager_root ~ '/projects/' ~ project_ref ~ '/project.json')
          | from_json) | combine({'instance_size': supabase_instance_size}) | to_json }}"
        mode: "0644"
      when: supabase_instance_size is defined
"""


# The fake hostname.yml records the custom hostname in project.json, as the role does once the URLs follow it.
_HOSTNAME_BODY = """    - name: Record the custom hostname in project.json
      ansible.builtin.copy:
        dest: "{{ supamanager_root }}/projects/{{ project_ref }}/project.json"
        content: "{{ lookup('ansible.builtin.file', supamanager_root ~ '/projects/' ~ project_ref ~ '/project.json')
          | from_json | combine({'custom_hostname': supabase_custom_hostname}) | to_json }}"
        mode: "0644"
"""

# The fake backup publishes a manifest as the role's project_backup does (the schedule reads it).
_BACKUP_BODY = """    - name: Make the backup's directory
      ansible.builtin.file:
        path: "{{ supamanager_root }}/backups/{{ project_ref }}/archive/{{ now().timestamp() | int }}"
        state: directory
        mode: "0700"
      register: fake_backup_dir
    - name: Publish the backup's manifest
      ansible.builtin.copy:
        dest: "{{ fake_backup_dir.path }}/backup.json"
        content: "{{ {'id': fake_backup_dir.path | basename | int, 'status': 'COMPLETED',
          'inserted_at': '2026-12-01T00:00:00Z', 'kind': supabase_backup_kind,
          'base_end': (fake_backup_dir.path | basename | int) + 1,
          'restore_point': supabase_backup_restore_point | default(None)} | to_json }}"
        mode: "0600"
"""


def _write_fake_collection(root: pathlib.Path) -> pathlib.Path:
    (root / "playbooks").mkdir(parents=True)
    (root / "ansible.cfg").write_text(_ANSIBLE_CFG)
    (root / "inventory.yml").write_text(_INVENTORY)
    for kind, playbook in (
        ("create", "create.yml"),
        ("pause", "pause.yml"),
        ("resume", "resume.yml"),
        ("restart", "restart.yml"),
        ("delete", "delete.yml"),
        ("restore", "restore.yml"),
        ("password", "password.yml"),
        ("backup", "backup.yml"),
        ("hostname", "hostname.yml"),
        ("settings", "settings.yml"),
    ):
        body = {"create": _CREATE_BODY, "backup": _BACKUP_BODY, "resume": _RESUME_BODY, "hostname": _HOSTNAME_BODY}.get(
            kind, ""
        )
        (root / "playbooks" / playbook).write_text(_PLAYBOOK.format(kind=kind, body=body))
    return root


@pytest.fixture
def fake_collection(tmp_path: pathlib.Path) -> pathlib.Path:
    return _write_fake_collection(tmp_path / "collection")


@pytest.fixture
def settings(tmp_path: pathlib.Path, fake_collection: pathlib.Path) -> Settings:
    root = tmp_path / "root"
    for ref_dir in ("projects",):
        (root / ref_dir).mkdir(parents=True)
    return Settings(
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        root=root,
        image_registry="standin.local",
        collection_dir=fake_collection,
        poll_interval=3600,
        max_jobs=2,
        max_body_bytes=4096,
        shutdown_timeout=10,
        playbook_vars={"fake_extra": "{{ 7 * 6 }}"},
        db_pass_var="supabase_postgres_password",
        # Fake playbooks start no containers: every create starts at once, whatever this machine's load
        # (admission: test_fleet.py).
        admit_spacing=0,
        admit_load=1000.0,
        admit_memory_mb=0,
    )


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def wait_operation(client, op_id: str, timeout: float = 300) -> dict:
    """Poll GET /v1/operations/{id} until the operation ends (generous: a loaded host runs a fake task in 10 s)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get(f"/v1/operations/{op_id}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        op = await resp.json()
        if op["state"] in ("succeeded", "failed"):
            return op
        assert time.monotonic() < deadline, f"operation still {op['state']} after {timeout}s: {op}"
        await asyncio.sleep(0.2)


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    return env


@dataclasses.dataclass(frozen=True)
class SupabaseClients:
    """The official clients from tests/clients/package-lock.json, installed with npm ci."""

    node: pathlib.Path  # the node binary
    supabase: pathlib.Path  # the Supabase CLI (2.117.0): run it as [node, supabase, ...] or directly
    node_modules: pathlib.Path  # NODE_PATH for scripts that `require("supabase-management-js")`


@pytest.fixture(scope="session")
def supabase_clients() -> SupabaseClients:
    """Run tests/clients/install (npm ci, once per lock file) and give the paths of node and the CLI."""
    clients = REPO / "tests" / "clients"
    subprocess.run([str(clients / "install")], check=True, timeout=600)
    node = shutil.which("node")
    assert node, "node is not installed (Debian: apt-get install nodejs npm)"
    return SupabaseClients(
        node=pathlib.Path(node),
        supabase=clients / "node_modules" / ".bin" / "supabase",
        node_modules=clients / "node_modules",
    )


# The one real project of the session for the routes answered over a project's database (SQL,
# migrations, types, login roles, pooler): test_conformance.py checks their answers against the
# document, test_database_api.py their behaviour and the official CLI's flows on it.
LIVE_TOKEN = "sbp_" + secrets.token_hex(20)  # the official CLI takes only tokens of this form
LIVE_DB_PASS = "live-db-Pass_" + secrets.token_hex(6)
# Seconds between usage points of the live daemon (test_daemon_usage.py waits for a fresh one).
LIVE_USAGE_INTERVAL = 5
# A block of 100 ports of 28100-28999 per session, chosen at random among this worker's blocks:
# sessions of other checkouts on this host use the same range, and a project's ports are free while
# it is stopped (a restore stops it).
_LIVE_PORTS = secrets.choice(port_blocks(28100, 29000, 100))
LIVE_PLAYBOOK_VARS = {
    "supabase_port_range_start": _LIVE_PORTS,
    "supabase_port_range_end": _LIVE_PORTS + 99,
    # Nothing here needs the log services; a loaded CI host needs patience for the rest.
    "supabase_logs_enabled": False,
    "supabase_health_timeout": 900,
    "supabase_healthcheck_interval": "20s",
    "supabase_healthcheck_start_period": "600s",
}


def live_pooler(api, password: str = LIVE_DB_PASS, user: str | None = None, autocommit: bool = True):
    """A connection to the live project's database through its pooler's port on the host, at the
    address the daemon's pooler config gives, as a client reaches it: a check from outside the code
    under test."""
    status, pooler, _ = api.request("GET", f"/v1/projects/{api.ref}/config/database/pooler")
    assert status == 200, pooler
    entry = pooler[0]
    return psycopg.connect(
        host="127.0.0.1", port=entry["db_port"], user=user or entry["db_user"], password=password,
        dbname=entry["db_name"], connect_timeout=10, autocommit=autocommit,
    )  # fmt: skip


@pytest.fixture(scope="session")
def live_project(tmp_path_factory, supabase_clients):
    """A real supamanagerd (real playbooks, the engine of DOCKER_HOST, stand-in images) and one
    project created through it by the official CLI (`projects create --db-password LIVE_DB_PASS
    --size micro`);
    deleted at the end of the session. The daemon's SQL limits are small (3 s, 100 kB) so that the
    tests can pass them. `daemon.ref` is the project."""
    from daemonproc import Daemon
    from test_clients import supabase

    tmp = tmp_path_factory.mktemp("live-project")
    root = tmp / "root"
    root.mkdir()
    daemon = Daemon(
        tmp,
        pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO)),
        root,
        token=LIVE_TOKEN,
        sql_statement_timeout=3,
        sql_max_result_bytes=100_000,
        usage_interval=LIVE_USAGE_INTERVAL,
        playbook_vars=LIVE_PLAYBOOK_VARS,
    )
    daemon.start()
    ref = None
    try:
        args = (
            "projects",
            "create",
            "live",
            "--org-id",
            "default",
            "--db-password",
            LIVE_DB_PASS,
            "--region",
            "us-east-1",
            # the smallest the CLI offers (nano is its default, sent as no size; test_daemon_sizes.py
            # runs a memory-hungry statement on it, then resizes it)
            "--size",
            "micro",
        )
        args += ("-o", "json")
        out = supabase(supabase_clients, daemon, LIVE_TOKEN, *args, tmp=tmp)
        assert out.returncode == 0, out.stderr[-3000:]
        ref = json.loads(out.stdout)["ref"]
        deadline = time.monotonic() + 900
        # A loaded host may show a check timing out (ACTIVE_UNHEALTHY) for a while: wait for healthy.
        while (project := daemon.request("GET", f"/v1/projects/{ref}")[1])["status"] not in (
            "ACTIVE_HEALTHY",
            "INIT_FAILED",
        ):
            assert time.monotonic() < deadline, f"not healthy in 900 s: {project}"
            time.sleep(1)
        assert project["status"] == "ACTIVE_HEALTHY", project.get("error")
        daemon.ref = ref
        yield daemon
    finally:
        if ref:
            # The last test of test_database_api.py took its final backup and restored it: none again.
            status, _, headers = daemon.request("DELETE", f"/v1/projects/{ref}?backup=false")
            if status == 200:
                daemon.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=600)
        daemon.stop()


# -- webhook receivers on 127.0.0.1 (test_notifications.py, and the failed create of test_daemon_api.py)
class Receiver:
    """A webhook receiver: answers `status` (or hangs), keeps what it got."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status, self.hang, self.got = status, hang, []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read(), time.monotonic()))
        self.arrived.set()
        if self.hang:
            await asyncio.sleep(5)  # longer than notify_timeout
        return web.Response(status=self.status)

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body, _ in self.got]


@pytest.fixture
async def receivers(aiohttp_server):
    async def make(**options) -> tuple[Receiver, str]:
        receiver = Receiver(**options)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        return receiver, str(server.make_url("/hook"))

    return make


# dnsmasq's ports: this worker's block, below the kernel's ephemeral range (32768-60999), where an
# outgoing connection could take the port between two serves (CI: "Address already in use"), and
# below the port allocator test's 20000-28000.
_DNS_START = port_blocks(19000, 19200, 100)[0]
_DNS_PORTS = range(_DNS_START, _DNS_START + 100)
_dns_ports_taken: set[int] = set()


def _free_dns_port() -> int:
    """A port of this worker's block free for UDP and TCP both (dnsmasq binds both)."""
    for port in _DNS_PORTS:
        if port in _dns_ports_taken:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
        except OSError:
            continue
        _dns_ports_taken.add(port)
        return port
    raise AssertionError(f"no free port for dnsmasq in {_DNS_PORTS.start}..{_DNS_PORTS.stop - 1}")


class Dnsmasq:
    """Debian's dnsmasq on 127.0.0.1 at a free port, answering only the records it is given: the
    resolver the daemon's ownership check asks (settings.dns_resolver). Never public DNS."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def serve(self, addresses: dict[str, str] | None = None, txt: dict[str, str] | None = None) -> str:
        """(Re)start it with these A/AAAA and TXT records, on the same port each time; its host:port."""
        self.stop()
        if not self.port:
            self.port = _free_dns_port()
        port = self.port
        args = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null"]
        args += ["--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}", "--pid-file=", "--user=root"]
        # Every name under .test is answered here (a missing one: no such name), none is forwarded.
        args.append("--local=/test/")
        addresses = {"ready.dnsmasq.test": "127.0.0.1", **(addresses or {})}
        args += [f"--host-record={name},{address}" for name, address in addresses.items()]
        args += [f"--txt-record={name},{value}" for name, value in (txt or {}).items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        from supamanager_daemon.domains import dns

        deadline = time.monotonic() + 30
        while True:
            try:
                dns.query(("127.0.0.1", port), "ready.dnsmasq.test", dns.A, timeout=0.5)
                break
            except dns.DnsError:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                assert time.monotonic() < deadline, "dnsmasq did not answer"
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def dnsmasq():
    assert shutil.which("dnsmasq"), "Debian's dnsmasq-base is missing: scripts/system-packages installs it (bindep.txt)"
    server = Dnsmasq()
    yield server
    server.stop()
