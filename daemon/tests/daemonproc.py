"""A real `supamanagerd` process for the tests, and helpers to look at its processes."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from conftest import TOKEN
from openapi_check import check_documented

BIN = pathlib.Path(sys.executable).parent / "supamanagerd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value: object) -> str:
    """A TOML value: JSON's strings, numbers and booleans; lists; dicts as inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def on_fake_playbooks(tmp: pathlib.Path, **settings: object) -> Daemon:
    """A started daemon on conftest's fake playbooks and no Docker engine: for the tests of a client
    (the official CLI, the edge) in front of the API, not of the jobs behind it."""
    from conftest import _write_fake_collection

    root = tmp / "root"
    (root / "projects").mkdir(parents=True)
    collection = _write_fake_collection(tmp / "collection")
    daemon = Daemon(tmp, collection, root, docker_socket=str(tmp / "no-docker.sock"), **settings)
    daemon.start()
    return daemon


class Daemon:
    """A supamanagerd process with a config file, and a tiny HTTP client for it."""

    def __init__(
        self, tmp: pathlib.Path, collection: pathlib.Path, root: pathlib.Path, token: str = TOKEN, **extra: object
    ) -> None:
        self.token = token
        self.root = root
        self.port = free_port()
        self.data = tmp / "data"
        self.config = tmp / "supamanagerd.toml"
        lines = [
            f'collection_dir = "{collection}"',
            f'root = "{root}"',
            "poll_interval = 1",
            "shutdown_timeout = 10",
        ]
        extra.setdefault("image_registry", "standin.local")
        lines += [f"{k} = {toml_value(v)}" for k, v in extra.items() if not isinstance(v, dict)]
        for key, table in ((k, v) for k, v in extra.items() if isinstance(v, dict)):
            lines += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
        self.config.write_text("\n".join(lines) + "\n")
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
        env.update(
            SUPAMANAGER_PORT=str(self.port),
            SUPAMANAGER_DATA_DIR=str(self.data),
            SUPAMANAGER_API_TOKEN=self.token,
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(BIN), "--config", str(self.config)], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, f"supamanagerd exited: {self.log.read_text()}"
            assert time.monotonic() < deadline, "supamanagerd did not answer in 30 s"
            time.sleep(0.2)

    def request(self, method: str, path: str, body: object = None, token: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - our own daemon on localhost
                result = resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as err:
            result = err.code, json.loads(err.read() or b"null"), err.headers
        # Every answer of the real daemon must match its OpenAPI document.
        check_documented(method, path, *result)
        return result

    def operation(self, op_id: str) -> dict:
        status, op, _ = self.request("GET", f"/v1/operations/{op_id}")
        assert status == 200, op
        return op

    def wait(self, op_id: str, predicate, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            op = self.operation(op_id)
            if predicate(op):
                return op
            assert time.monotonic() < deadline, (
                f"operation {op['kind']} still {op['state']} after {timeout}s, at step {op['step']!r}"
            )
            time.sleep(0.3)

    def runjob_pid(self, op_id: str) -> int | None:
        db = sqlite3.connect(self.data / "supamanager.sqlite3")
        try:
            row = db.execute("SELECT pid FROM operations WHERE id = ?", (op_id,)).fetchone()
        finally:
            db.close()
        return row[0] if row else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains text (a job dir: unique to this test)."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_gone(text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while processes_mentioning(text):
        assert time.monotonic() < deadline, f"processes still running for {text}"
        time.sleep(0.2)
