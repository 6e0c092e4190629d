# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""A small Docker Engine API client over the engine's Unix socket. Private to this collection.

Only what project_services needs (list, inspect, start, stop, restart, remove, exec), with the standard
library alone: every call is one short HTTP request on its own connection, so threads may share
a client.
"""

from __future__ import annotations

import json
import os
import socket
from http.client import HTTPConnection
from urllib.parse import quote, urlencode

DEFAULT_HOST = "unix:///var/run/docker.sock"
# How long a stop or restart request may take: longer than any container's stop timeout.
STOP_WAIT = 600


class DockerError(Exception):
    """The engine answered with an error status, or could not be reached."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class _UnixConnection(HTTPConnection):
    def __init__(self, path, timeout):
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except Exception:
            sock.close()
            raise
        self.sock = sock


def socket_path(docker_host=None):
    """The socket path of docker_host (or DOCKER_HOST, or the default); only unix:// is supported."""
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if not host.startswith("unix://"):
        raise DockerError(f"only unix:// Docker hosts are supported, got {host!r}")
    return host[len("unix://") :]


class DockerAPI:
    def __init__(self, docker_host=None, timeout=60):
        self.path = socket_path(docker_host)
        self.timeout = timeout
        self.calls = 0

    def request(self, method, path, query=None, body=None, timeout=None, ok=(200, 201, 204, 304)):
        """Decoded JSON (or None for an empty answer); DockerError for any other status."""
        url = path + ("?" + urlencode(query) if query else "")
        conn = _UnixConnection(self.path, timeout or self.timeout)
        self.calls += 1
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as exc:
            raise DockerError(f"Docker engine at {self.path}: {exc}") from exc
        finally:
            conn.close()
        if resp.status not in ok:
            try:
                message = json.loads(raw.decode("utf-8")).get("message", "")
            except ValueError:
                message = raw.decode("utf-8", "replace")
            raise DockerError(f"{method} {path}: {resp.status} {message.strip()}", resp.status)
        return json.loads(raw.decode("utf-8")) if raw.strip() else None

    def version(self):
        return self.request("GET", "/version")

    def containers(self, label):
        """Every container (running or not) carrying label (k=v)."""
        return self.request("GET", "/containers/json", {"all": "1", "filters": json.dumps({"label": [label]})})

    def inspect(self, name):
        return self.request("GET", f"/containers/{quote(name)}/json")

    def start(self, name):
        self.request("POST", f"/containers/{quote(name)}/start")

    def stop(self, name):
        # The engine waits the container's own stop timeout (stop_grace_period) before it kills.
        self.request("POST", f"/containers/{quote(name)}/stop", timeout=STOP_WAIT)

    def restart(self, name):
        # In place: the engine stops the container (its own stop timeout, then a kill) and starts it again.
        self.request("POST", f"/containers/{quote(name)}/restart", timeout=STOP_WAIT)

    def remove(self, name, volumes=False):
        self.request(
            "DELETE", f"/containers/{quote(name)}", {"force": "1", "v": "1" if volumes else "0"}, ok=(200, 204, 404)
        )

    def remove_network(self, name):
        self.request("DELETE", f"/networks/{quote(name)}", ok=(200, 204, 404))

    def network(self, name):
        return self.request("GET", f"/networks/{quote(name)}")

    def disconnect(self, network, container):
        """Take container off network (forced: also one that has stopped); gone or off already is fine."""
        try:
            self.request(
                "POST",
                f"/networks/{quote(network)}/disconnect",
                body={"Container": container, "Force": True},
                ok=(200, 204, 404),
            )
        except DockerError as exc:
            if "is not connected" not in str(exc):  # Docker 20.10 answers 500 for it
                raise

    def remove_volume(self, name):
        self.request("DELETE", f"/volumes/{quote(name)}", ok=(200, 204, 404))

    def networks(self, label):
        return self.request("GET", "/networks", {"filters": json.dumps({"label": [label]})})

    def volumes(self, label):
        return self.request("GET", "/volumes", {"filters": json.dumps({"label": [label]})})["Volumes"] or []

    def exec_start(self, name, cmd):
        """Start cmd in the container (detached); the exec id, to poll with exec_inspect."""
        created = self.request(
            "POST",
            f"/containers/{quote(name)}/exec",
            body={"Cmd": cmd, "AttachStdout": False, "AttachStderr": False},
        )
        self.request("POST", "/exec/{}/start".format(created["Id"]), body={"Detach": True, "Tty": False})
        return created["Id"]

    def exec_inspect(self, exec_id):
        return self.request("GET", f"/exec/{exec_id}/json")
