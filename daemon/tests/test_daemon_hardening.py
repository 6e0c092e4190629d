"""Hardening of the daemon for a shared host: what a crash leaves, pid reuse, hostile input."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading

import pytest
from conftest import AUTH, TOKEN
from daemonproc import BIN
from supamanager_daemon import cli, logging_json, models
from supamanager_daemon.app import create_app
from supamanager_daemon.auth import FailedAuthLimiter
from supamanager_daemon.operations.jobs import RUNJOB_MODULE, JobScheduler
from supamanager_daemon.settings import SettingsError, ensure_api_token
from supamanager_daemon.store import Store

REF = "abcdefghijklmnopqrst"


@pytest.fixture
async def store(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    s = Store(settings.db_path)
    await s.open()
    yield s
    await s.close()


def scheduler(settings, store, enqueued):
    jobs = JobScheduler(settings, store)
    jobs.enqueue = lambda op: enqueued.append(op["id"])  # recover() only; no playbook runs
    return jobs


async def test_recover_never_signals_a_process_that_reused_the_pid(settings, store, tmp_path):
    """The pid recorded for a running operation now belongs to another process, even one that
    looks like a job (another daemon's, with another job dir): it is left alone."""
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(op["id"])
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", RUNJOB_MODULE, str(tmp_path / "other")]
    )
    try:
        await store.set_pid(op["id"], other.pid)
        enqueued = []
        await scheduler(settings, store, enqueued).recover()
        assert enqueued == [op["id"]]
        assert other.poll() is None, "recover() signalled an unrelated process"
    finally:
        other.kill()
        other.wait()


async def test_recover_removes_the_job_dirs_of_operations_that_ended(settings, store):
    """A daemon that died between finishing an operation and removing its job dir left secrets there."""
    _, done = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(done["id"])
    await store.finish_operation(done["id"], ok=True, error=None)
    _, active = await store.create_project(
        ref="bcdefghijklmnopqrstu", name="m", organization_slug="default", region="r"
    )
    for op_id in (done["id"], active["id"], "unknown-operation"):
        (settings.jobs_dir / op_id).mkdir(parents=True)
        (settings.jobs_dir / op_id / "secrets.json").write_text('{"db_pass": "Secret-pass-1234"}')
    enqueued = []
    await scheduler(settings, store, enqueued).recover()
    assert enqueued == [active["id"]]
    assert sorted(p.name for p in settings.jobs_dir.iterdir()) == [active["id"]]
    assert (await store.get_operation(done["id"]))["state"] == models.SUCCEEDED


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("change-me", "9 characters long"),
        ("0123456789", "10 characters long"),
        ("change-me-change-me-change-me-change-me", "looks like a placeholder"),
        ("my-api-token-for-the-supamanager-daemon", "looks like a placeholder"),
        ("a" * 40, "looks like a placeholder"),
    ],
)
def test_the_daemon_refuses_to_start_with_a_weak_token(tmp_path, token, why):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
    env.update(SUPAMANAGER_API_TOKEN=token, SUPAMANAGER_DATA_DIR=str(tmp_path / "data"), SUPAMANAGER_PORT="0")
    proc = subprocess.run([str(BIN)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert why in proc.stderr and "openssl rand -hex 32" in proc.stderr
    assert token not in proc.stderr


def test_a_token_file_with_a_weak_token_is_refused_too(settings):
    settings.data_dir.mkdir(parents=True)
    settings.token_file.write_text("change-me\n")
    with pytest.raises(SettingsError, match="9 characters long"):
        ensure_api_token(dataclasses.replace(settings, api_token=None))


async def test_failed_authentication_is_limited_per_address(client, settings):
    limit = settings.auth_failures_per_minute
    for _ in range(limit):
        resp = await client.get("/v1/projects", headers={"Authorization": "Bearer wrong-token"})
        assert resp.status == 401
    resp = await client.get("/v1/projects", headers={"Authorization": "Bearer wrong-token"})
    assert resp.status == 429
    assert (await resp.json())["code"] == "too_many_failed_attempts"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Not even the right token gets through from that address now: the limit cannot be probed.
    assert (await client.get("/v1/projects", headers=AUTH)).status == 429
    # Open routes stay open.
    assert (await client.get("/healthz")).status == 200


async def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(aiohttp_client, settings):
    """The edge (Caddy) dials from 127.0.0.1 and sets X-Forwarded-For to its client's address:
    with 127.0.0.1 trusted, that address is the limit's key, and a hop the client wrote itself
    before it changes nothing. tests/integration/edge/test_edge_daemon.py runs it through the real
    edge and the official CLI."""
    client = await aiohttp_client(create_app(dataclasses.replace(settings, trusted_proxies="127.0.0.1, ::1")))
    limit = settings.auth_failures_per_minute
    wrong = {"Authorization": "Bearer wrong-token"}
    for i in range(limit):
        # The client's own claims (the first hops) vary; the proxy's hop (the last) does not.
        resp = await client.get("/v1/projects", headers={**wrong, "X-Forwarded-For": f"10.9.9.{i}, 10.0.0.1"})
        assert resp.status == 401
    limited = await client.get("/v1/projects", headers={**AUTH, "X-Forwarded-For": "10.0.0.1"})
    assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await client.get("/v1/projects", headers={**AUTH, "X-Forwarded-For": "10.0.0.2"})).status == 200
    # Trusted hops are skipped; a request with no X-Forwarded-For is the proxy's own.
    assert (await client.get("/v1/projects", headers={**AUTH, "X-Forwarded-For": "10.0.0.1, 127.0.0.1"})).status == 429
    assert (await client.get("/v1/projects", headers=AUTH)).status == 200


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(client, settings):
    for i in range(settings.auth_failures_per_minute):
        resp = await client.get("/v1/projects", headers={"Authorization": "Bearer x", "X-Forwarded-For": f"10.1.0.{i}"})
        assert resp.status == 401
    assert (await client.get("/v1/projects", headers={**AUTH, "X-Forwarded-For": "10.2.0.1"})).status == 429


async def test_a_malformed_forwarded_hop_counts_as_the_proxy(aiohttp_client, settings):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, trusted_proxies="127.0.0.1")))
    for _ in range(settings.auth_failures_per_minute):
        resp = await client.get("/v1/projects", headers={"Authorization": "Bearer x", "X-Forwarded-For": "not-an-ip"})
        assert resp.status == 401
    assert (await client.get("/v1/projects", headers=AUTH)).status == 429  # the proxy's own address
    assert (await client.get("/v1/projects", headers={**AUTH, "X-Forwarded-For": "10.0.0.3"})).status == 200


def test_trusted_proxies_must_be_ip_addresses(tmp_path):
    from supamanager_daemon.settings import load_settings

    assert load_settings(environ={"SUPAMANAGER_TRUSTED_PROXIES": " 127.0.0.1,::1 "}).trusted_proxy_addresses == {
        "127.0.0.1",
        "::1",
    }
    assert load_settings(environ={}).trusted_proxy_addresses == frozenset()
    with pytest.raises(SettingsError, match=r"'trusted_proxies': 'edge\.example' is not an IP address"):
        load_settings(environ={"SUPAMANAGER_TRUSTED_PROXIES": "127.0.0.1,edge.example"})


def test_the_limiter_forgets_failures_after_a_minute_and_tracks_addresses_apart():
    now = [1000.0]
    limiter = FailedAuthLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None
    now[0] += 30
    assert limiter.retry_after("10.0.0.1") == 30
    now[0] += 30
    assert limiter.retry_after("10.0.0.1") is None


async def test_deeply_nested_json_is_400(client):
    body = "[" * 2000 + "]" * 2000  # within the 4 KiB body limit of the tests, past the recursion limit
    resp = await client.post("/v1/projects", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json()) == {"code": "malformed_json", "message": "request body is nested too deeply"}


async def test_a_huge_last_event_id_is_400(client):
    resp = await client.post("/v1/projects", json={"name": "x"}, headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    huge = "9" * 20  # more than SQLite's largest integer
    for headers, query in (({"Last-Event-ID": huge}, ""), ({}, f"?last_event_id={huge}")):
        resp = await client.get(f"/v1/operations/{op_id}/events{query}", headers={**AUTH, **headers})
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["code"] == "invalid_value"


async def test_an_organization_slug_with_a_trailing_newline_is_400(client):
    resp = await client.post("/v1/projects", json={"name": "x", "organization_slug": "default\n"}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["details"]["field"] == "organization_slug"


@pytest.mark.parametrize("name", ["a\x1b[2Jb", "a\x9bb", "invoice\u202egnp.exe", "a\u2066b", "a\nb"])
@pytest.mark.parametrize("path", ["/v1/projects", "/v1/organizations"])
async def test_names_with_control_or_bidi_characters_are_400(client, path, name):
    resp = await client.post(path, json={"name": name}, headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert (body["code"], body["details"]["field"]) == ("invalid_value", "name")
    assert "control or bidirectional" in body["message"]


def test_text_logs_are_redacted_too():
    stream = io.StringIO()
    handler = logging_json.configure("INFO", secrets=("s3cret-token-value-0123456789",), stream=stream, text=True)
    try:
        logging.getLogger("test").warning("the token is %s", "s3cret-token-value-0123456789")
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue()
    assert "WARNING test: the token is ***" in line and "s3cret" not in line


class _Recorder(http.server.BaseHTTPRequestHandler):
    """127.0.0.1 only: answers with `answer` (status, headers, body) and records what it got."""

    answer: tuple = (200, {}, b"[]")
    seen: list

    def do_GET(self):
        self.seen.append(dict(self.headers))
        status, headers, body = self.answer
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server(answer):
    handler = type("Handler", (_Recorder,), {"answer": answer, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_never_sends_its_token_on_to_a_redirect(capsys):
    with contextlib.ExitStack() as stack:
        elsewhere, seen_elsewhere = stack.enter_context(http_server((200, {}, b"[]")))
        redirect = (302, {"Location": f"{elsewhere}/v1/projects"}, b"")
        daemon_url, seen = stack.enter_context(http_server(redirect))
        code = cli.main(["projects", "list", "--url", daemon_url, "--token", TOKEN])
    assert len(seen) == 1 and seen[0]["Authorization"] == f"Bearer {TOKEN}"
    assert seen_elsewhere == []
    assert code == 1
    assert "redirects to" in capsys.readouterr().err


def test_the_cli_prints_names_with_control_and_bidi_characters_escaped(capsys):
    projects = [{"ref": "abcdefghijklmnopqrst", "name": "\x1b[2Jevil\u202etxt.exe", "status": "ACTIVE_HEALTHY"}]
    with http_server((200, {}, json.dumps(projects).encode())) as (url, _seen):
        assert cli.main(["projects", "list", "--url", url, "--token", TOKEN]) == 0
        table = capsys.readouterr().out
        assert cli.main(["projects", "list", "--json", "--url", url, "--token", TOKEN]) == 0
        as_json = capsys.readouterr().out
    for out in (table, as_json):
        assert "\x1b" not in out and "\u202e" not in out
        assert "\\u202e" in out
    assert json.loads(as_json)[0]["name"] == projects[0]["name"]


@pytest.fixture
async def capped(aiohttp_client, settings):
    capped = dataclasses.replace(settings, max_projects=2, max_event_streams=1)
    return await aiohttp_client(create_app(capped))


async def test_projects_are_capped_per_host(capped):
    for _ in range(2):
        assert (await capped.post("/v1/projects", json={"name": "x"}, headers=AUTH)).status == 201
    resp = await capped.post("/v1/projects", json={"name": "x"}, headers=AUTH)
    assert resp.status == 403
    assert (await resp.json())["code"] == "project_limit"


async def test_event_streams_are_capped(capped, settings):
    (settings.root / "hold").touch()  # the create stays running: its stream stays open
    try:
        resp = await capped.post("/v1/projects", json={"name": "x"}, headers=AUTH)
        op_id = resp.headers["X-Operation-Id"]
        first = await capped.get(f"/v1/operations/{op_id}/events", headers=AUTH)
        assert first.status == 200
        await first.content.readline()  # the stream is open
        second = await capped.get(f"/v1/operations/{op_id}/events", headers=AUTH)
        assert second.status == 503 and second.headers["Retry-After"]
        assert (await second.json())["code"] == "too_busy"
        first.close()
    finally:
        (settings.root / "hold").unlink()


async def test_operations_that_ended_long_ago_are_pruned(store):
    _, old = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(old["id"])
    await store.finish_operation(old["id"], ok=True, error=None)
    _, running = await store.create_project(
        ref="bcdefghijklmnopqrstu", name="m", organization_slug="default", region="r"
    )
    assert await store.prune_operations(30) == 0
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE operations SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", (old["id"],))
    db.close()
    assert await store.prune_operations(30) == 1
    assert await store.get_operation(old["id"]) is None
    assert await store.events(old["id"]) == []
    assert (await store.get_operation(running["id"]))["state"] == models.QUEUED
