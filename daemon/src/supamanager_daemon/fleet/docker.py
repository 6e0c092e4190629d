"""A minimal Docker Engine API client over a unix socket (or plain tcp://), counting its calls."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp

PROJECT_LABEL = "supamanager.project"
SERVICE_LABEL = "supamanager.service"


class DockerError(Exception):
    pass


class NotFoundError(DockerError):
    """The object to remove is not there (any more)."""


class DockerClient:
    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        """socket_path: a unix socket's path, or an engine URL (unix:///path, tcp://host:port: plain HTTP)."""
        self.socket_path = socket_path.removeprefix("unix://")
        self.calls = 0  # every API request made, for the bench's calls-per-cycle figure
        if socket_path.startswith("tcp://"):
            self._base = "http://" + socket_path.removeprefix("tcp://")
            connector: aiohttp.BaseConnector = aiohttp.TCPConnector()
        else:
            self._base = "http://docker"
            connector = aiohttp.UnixConnector(path=self.socket_path)
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def _request(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        self.calls += 1
        try:
            async with self._session.request(method, f"{self._base}{path}", params=params) as resp:
                if resp.status == 404 and method == "DELETE":
                    raise NotFoundError(f"docker {method} {path}: gone already")
                if resp.status not in (200, 204):
                    raise DockerError(f"docker {method} {path}: HTTP {resp.status}: {(await resp.text())[:200]}")
                return await resp.json() if resp.status == 200 and method == "GET" else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DockerError(f"docker {method} {path}: {exc or type(exc).__name__}") from exc

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self._request("GET", path, params)

    @staticmethod
    def _labelled(ref: str | None) -> dict[str, str]:
        label = PROJECT_LABEL if ref is None else f"{PROJECT_LABEL}={ref}"
        return {"filters": json.dumps({"label": [label]})}

    async def project_containers(self, ref: str | None = None) -> list[dict[str, Any]]:
        """All containers (running or not) labelled with a project, or with one project: one request."""
        return await self._get("/containers/json", {"all": "1", **self._labelled(ref)})

    async def project_networks(self) -> list[dict[str, Any]]:
        """Every network labelled with a project: one request."""
        return await self._get("/networks", self._labelled(None))

    async def project_volumes(self) -> list[dict[str, Any]]:
        """Every volume labelled with a project: one request."""
        return (await self._get("/volumes", self._labelled(None))).get("Volumes") or []

    async def container_logs(self, container_id: str, since: float, until: float, tail: int) -> bytes:
        """A container's stdout and stderr between two times (Unix seconds), with Docker's timestamps: the
        engine's raw multiplexed stream (fleet/logs.py reads it); at most the last tail lines of each."""
        self.calls += 1
        params = {"stdout": "1", "stderr": "1", "timestamps": "1", "since": f"{since:.6f}", "until": f"{until:.6f}",
                  "tail": str(tail)}  # fmt: skip
        path = f"/containers/{quote(container_id, safe='')}/logs"
        try:
            async with self._session.get(f"{self._base}{path}", params=params) as resp:
                if resp.status != 200:
                    raise DockerError(f"docker GET {path}: HTTP {resp.status}: {(await resp.text())[:200]}")
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DockerError(f"docker GET {path}: {exc or type(exc).__name__}") from exc

    async def remove_container(self, container_id: str) -> None:
        """Stop and remove a container (force), leaving its named volumes."""
        await self._request("DELETE", f"/containers/{quote(container_id, safe='')}", {"force": "1"})

    async def remove_network(self, network_id: str) -> None:
        await self._request("DELETE", f"/networks/{quote(network_id, safe='')}")

    async def remove_volume(self, name: str) -> None:
        await self._request("DELETE", f"/volumes/{quote(name, safe='')}")
