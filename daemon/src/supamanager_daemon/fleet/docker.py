"""A minimal Docker Engine API client over the unix socket, counting its calls."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

PROJECT_LABEL = "supamanager.project"
SERVICE_LABEL = "supamanager.service"


class DockerError(Exception):
    pass


class DockerClient:
    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.calls = 0  # every API request made, for the bench's calls-per-cycle figure
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=socket_path),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        self.calls += 1
        try:
            async with self._session.get(f"http://docker{path}", params=params) as resp:
                if resp.status != 200:
                    raise DockerError(f"docker GET {path}: HTTP {resp.status}: {(await resp.text())[:200]}")
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DockerError(f"docker GET {path}: {exc or type(exc).__name__}") from exc

    async def project_containers(self, ref: str | None = None) -> list[dict[str, Any]]:
        """All containers (running or not) labelled with a project, or with one project: one request."""
        label = PROJECT_LABEL if ref is None else f"{PROJECT_LABEL}={ref}"
        return await self._get("/containers/json", {"all": "1", "filters": json.dumps({"label": [label]})})
