"""The daemon's view of the fleet: the hosts (fleet/hosts.py), a Docker client per polled host, reloads.

A reload (SIGHUP, or POST /platform/fleet/reload) reads the inventory again and swaps the hosts at
once; a host whose docker_host changed gets a new client, a removed one's is closed. A reload that
fails keeps the hosts as they were and says why. Projects stay on the host the store names: a host
gone from the inventory leaves its projects UNKNOWN (never removed), until it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from ..settings import Settings
from .docker import DockerClient
from .hosts import Fleet, Host, load_inventory, single_host
from .placement import Need, Used, choose_host, project_need, used_by_host

log = logging.getLogger(__name__)


class FleetManager:
    def __init__(self, settings: Settings, sizes: dict[str, Any] | None = None) -> None:
        """Reads the inventory now: InventoryError (the daemon does not start, and says why)."""
        self.settings = settings
        # The daemon's own engine (settings.docker_socket), given at start: a host on it shares this
        # client and never closes it.
        self.local_client: DockerClient | None = None
        self.sizes = sizes or {}
        self.fleet: Fleet = self._load()
        self.clients: dict[str, DockerClient] = {}
        self.reloads = 0
        # Placement reads the hosts' usage and records the project: one create at a time, so that
        # two at once never both take a host's last room.
        self.placement_lock = asyncio.Lock()
        # Hosts being drained (fleet/drain.py): they take no new project, created or moved. In memory:
        # a daemon restart forgets the mark (drain again).
        self.draining: set[str] = set()

    @property
    def from_inventory(self) -> bool:
        return self.fleet.source is not None

    def _load(self) -> Fleet:
        s = self.settings
        if not s.inventory:
            return single_host(s.docker_socket, s.region, s.host_max_jobs)
        return load_inventory(
            s.inventory, default_region=s.region, default_max_jobs=s.host_max_jobs, local_socket=s.docker_socket
        )

    async def start(self, local_client: DockerClient) -> None:
        """A client for every polled host of the fleet read at construction."""
        self.local_client = local_client
        await self._switch(self.fleet)

    async def reload(self) -> Fleet:
        """Read the inventory again (InventoryError: nothing changes) and swap the hosts and clients."""
        fleet = await asyncio.to_thread(self._load)
        await self._switch(fleet)
        self.reloads += 1
        log.info("fleet: %d host(s) in %d region(s)", len(fleet.hosts), len(fleet.regions))
        return fleet

    async def _switch(self, fleet: Fleet) -> None:
        old = self.fleet
        self.fleet = fleet
        local = f"unix://{self.settings.docker_socket}"
        for name, client in list(self.clients.items()):
            host = fleet.hosts.get(name)
            if host is None or host.docker_host != old.hosts[name].docker_host:
                del self.clients[name]
                if client is not self.local_client:
                    await client.close()
        for host in fleet.hosts.values():
            if host.docker_host is not None and host.name not in self.clients:
                shared = host.docker_host == local
                self.clients[host.name] = self.local_client if shared else DockerClient(host.docker_host)

    async def close(self) -> None:
        for client in self.clients.values():
            if client is not self.local_client:
                await client.close()
        self.clients.clear()

    def host(self, name: str) -> Host | None:
        return self.fleet.hosts.get(name)

    def client(self, name: str) -> DockerClient | None:
        return self.clients.get(name)

    def client_of(self, project: dict[str, Any]) -> DockerClient | None:
        """The engine a project runs on; without an inventory, this machine's whatever the store says."""
        if not self.from_inventory:
            return self.local_client
        return self.clients.get(project.get("host", ""))

    @property
    def docker_api_calls(self) -> int:
        """Calls of the poll's clients (and the health reads'), each counted once."""
        clients = [c for c in [self.local_client, *self.clients.values()] if c is not None]
        return sum(c.calls for c in {id(c): c for c in clients}.values())

    # -- placement ----------------------------------------------------------------------------
    def need(self, size: str | None) -> Need:
        return project_need(size, self.sizes, self.settings.project_memory_mb)

    def usage(
        self, projects: list[dict[str, Any]], sizes: dict[str, str | None], moving: dict[str, str] | None = None
    ) -> dict[str, Used]:
        """What each host holds: projects (the store's rows) with their sizes by ref; a moving project
        (moving: ref -> target host) counts on its target too until its move ends."""
        by_ref = {p["ref"]: p for p in projects}
        held = [(p["host"], self.need(sizes.get(p["ref"]))) for p in projects]
        held += [(host, self.need(sizes.get(ref))) for ref, host in (moving or {}).items() if ref in by_ref]
        return used_by_host(held)

    def place(self, region: str | None, used: dict[str, Used], size: str | None, exclude: Collection[str] = ()) -> Host:
        """The host a new project of region (any host in the single-host fleet) and size goes to: never a
        draining host, nor one in exclude."""
        return choose_host(
            self.fleet, region if self.from_inventory else None, used, self.need(size), {*self.draining, *exclude}
        )
