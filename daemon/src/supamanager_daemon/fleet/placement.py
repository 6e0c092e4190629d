"""Placement and admission: which host a new project goes to, and when a create may start on it.

Placement is arithmetic on what the inventory says a host has (supamanager_memory_mb, _cpus,
_max_projects) and what its projects take (their database size plus project_memory_mb): the host of
the region with the most free memory, then CPUs, then the fewest projects. A full host takes no more.

Admission holds creates back while this machine is overloaded: a create on a local host
(ansible_connection=local; every such host shares this machine's CPUs and memory) starts only while
the 1-minute load per CPU is below admit_load and admit_memory_mb are available, at most one every
admit_spacing seconds. When no job of ours runs on the machine, waiting cannot lower the load: the
create starts. A remote host is held back by its own job limit only (supamanager_max_jobs). Without an
inventory the one host is this machine: its creates pass the same gate (operations/jobs.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ..errors import Forbidden, InvalidRequest
from .hosts import Fleet, Host

log = logging.getLogger(__name__)


class NoCapacity(Forbidden):
    """No host of the region has room for one more project."""

    code = "no_capacity"


@dataclasses.dataclass(frozen=True)
class Need:
    memory_mb: int
    cpus: float


@dataclasses.dataclass
class Used:
    projects: int = 0
    memory_mb: int = 0
    cpus: float = 0.0


def project_need(size: str | None, sizes: Mapping[str, Any], project_memory_mb: int) -> Need:
    """What one project takes: its database's size (none counts as nano, upstream's smallest) plus the rest."""
    entry = sizes.get(size or "nano") or sizes.get("nano") or {}
    return Need(int(entry.get("memory_mb", 512)) + project_memory_mb, float(entry.get("cpus", 0.5)))


def used_by_host(projects: Iterable[tuple[str, Need]]) -> dict[str, Used]:
    """(host, need) of every project -> what each host holds."""
    used: dict[str, Used] = {}
    for host, need in projects:
        u = used.setdefault(host, Used())
        u.projects += 1
        u.memory_mb += need.memory_mb
        u.cpus += need.cpus
    return used


@dataclasses.dataclass(frozen=True)
class Free:
    memory_mb: float
    cpus: float
    projects: float

    def fits(self, need: Need) -> bool:
        return self.projects >= 1 and self.memory_mb >= need.memory_mb and self.cpus >= need.cpus


def free_on(host: Host, used: Used | None) -> Free:
    used = used or Used()
    return Free(
        memory_mb=math.inf if host.memory_mb is None else host.memory_mb - used.memory_mb,
        cpus=math.inf if host.cpus is None else host.cpus - used.cpus,
        projects=math.inf if host.max_projects is None else host.max_projects - used.projects,
    )


def choose_host(
    fleet: Fleet, region: str | None, used: Mapping[str, Used], need: Need, exclude: Collection[str] = ()
) -> Host:
    """The host for a new project (or one that moves): in its region (any when region is None), not in
    exclude (draining hosts, a moving project's own), the one with the most free memory, then CPUs, then
    the fewest projects. InvalidRequest for a region no host serves, NoCapacity when none has room."""
    served = fleet.in_region(region)
    candidates = [h for h in served if h.name not in exclude]
    if not served:
        raise InvalidRequest(
            f"no host serves region {region!r}; regions: {', '.join(fleet.regions)}",
            code="unknown_region",
            field="region",
        )
    fitting = [(free_on(h, used.get(h.name)), h) for h in candidates]
    fitting = [(f, h) for f, h in fitting if f.fits(need)]
    if not fitting:
        where = f"region {region}" if region else "the fleet"
        raise NoCapacity(
            f"no host of {where} has room for a project ({need.memory_mb} MiB, {need.cpus:g} CPUs):"
            " add a host to the inventory or delete a project",
            region=region,
        )
    return min(
        fitting, key=lambda fh: (-fh[0].memory_mb, -fh[0].cpus, used.get(fh[1].name, Used()).projects, fh[1].name)
    )[1]


def machine_probe() -> tuple[float, int]:
    """This machine's 1-minute load per CPU and its available memory (MiB)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    available = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) // 1024
                    break
    except OSError:  # pragma: no cover - Linux has it
        available = 1 << 30
    return load, available


class Admission:
    """The gate a create passes before its playbook starts on a local host (see the module's text)."""

    def __init__(
        self,
        load_per_cpu: float,
        memory_mb: int,
        spacing: float,
        probe: Callable[[], tuple[float, int]] = machine_probe,
        check_every: float = 2.0,
    ) -> None:
        self.load_per_cpu = load_per_cpu
        self.memory_mb = memory_mb
        self.spacing = spacing
        self.probe = probe
        self.check_every = check_every
        self._gate = asyncio.Lock()
        self._last_start = -math.inf
        self.waited = 0  # creates that had to wait, for /metrics and tests

    def overloaded(self) -> str | None:
        load, available = self.probe()
        if load >= self.load_per_cpu:
            return f"load {load:.2f} per CPU (limit {self.load_per_cpu:g})"
        if available < self.memory_mb:
            return f"{available} MiB available (needs {self.memory_mb})"
        return None

    async def admit(self, host: Host, busy: Callable[[], int], waiting: Callable[[str], Any] | None = None) -> None:
        """Return when a create may start on host; busy() counts our jobs running on this machine."""
        if not host.local:
            return
        async with self._gate:
            noted = False
            while busy() > 0:
                why = self.overloaded()
                pause = self._last_start + self.spacing - time.monotonic()
                if why is None and pause <= 0:
                    break
                if not noted:
                    noted = True
                    self.waited += 1
                    reason = why or f"the last create started less than {self.spacing:g} s ago"
                    log.info("a create on host %s waits: %s", host.name, reason)
                    if waiting is not None:
                        await waiting(reason)
                await asyncio.sleep(self.check_every if why else max(min(self.check_every, pause), 0.05))
            self._last_start = time.monotonic()
