"""Usage per project, collected for every project of the host at a cost that does not grow with a
Docker call per container: each cycle asks Docker twice (`GET /containers/json` for the ids and
labels, `GET /volumes` for the mountpoints) and reads the rest from files and the projects' own
databases:

- CPU seconds and memory (current, peak, limit) per container from its cgroup files: v2's unified
  files (`memory.current`, `memory.peak`, `memory.max`, `cpu.stat`) or v1's (`memory.usage_in_bytes`,
  `memory.max_usage_in_bytes`, `memory.limit_in_bytes`, `cpuacct.usage`), chosen by what exists;
- network bytes per container from `/proc/<pid>/net/dev` of a process of its cgroup (`cgroup.procs`):
  its own network namespace's interfaces but `lo`;
- disk per volume: the blocks in use under its mountpoint, as `du` counts them (hard links once), and
  how full the file system holding it is (`statvfs`, as `df` counts Use%);
- the database's size (`pg_database_size`), its client connections and the WAL its backup agent has
  not archived yet (the replication slot `supamanager_backup`), over the daemon's pools;
- API requests from the project's gateway: one HTTP GET per project and cycle of Kong's prometheus
  plugin (`/metrics` of the status listener, port 8100 on the project network, not published; its
  address is in the container list), its cumulative `kong_http_status{service,...}` counters summed
  by kind (rest, auth, storage, realtime, by the role's Kong service names) and the requests since
  the previous point (`api_requests`) taken from them.

A point per project and cycle goes into the store, which keeps `usage_retention_days` of them.
A container gone between the list and the read, a volume the daemon may not read or a database
that does not answer leaves that figure out (None), never the cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from .. import models
from ..projectdb import ProjectDatabases, ProjectDbError, Target
from ..store import Store
from .docker import PROJECT_LABEL, SERVICE_LABEL, DockerClient, DockerError

log = logging.getLogger(__name__)

CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
PROC_ROOT = pathlib.Path("/proc")
# v1 reports "no limit" as the largest page-aligned number; anything this large is no limit.
_NO_LIMIT = 1 << 62
# Only these have a database to ask: the others are stopped, starting or gone.
_DATABASE_UP = frozenset({models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY})
# Databases asked at once in a cycle: a host of many projects is not asked all at the same moment.
_DATABASES_AT_ONCE = 4
# The backup agent's slot (roles/project, pg_receivewal): WAL the database holds for it, not yet
# archived; no row (null) without the agent.
_DATABASE_SQL = (
    "select pg_database_size(current_database()) as size,"
    " (select count(*) from pg_stat_activity where backend_type = 'client backend') as connections,"
    " (select pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint from pg_replication_slots"
    " where slot_name = 'supamanager_backup') as wal_lag"
)

# The gateway's status listener (roles/project KONG_STATUS_LISTEN), where the prometheus plugin serves.
KONG_STATUS_PORT = 8100
# Kong 2.8's per-service request counter; 3.x renamed it kong_http_requests_total (same labels).
_KONG_SAMPLE = re.compile(r"(?:kong_http_status|kong_http_requests_total)\{([^}]*)\} ([0-9.eE+]+)")
_SERVICE_LABEL = re.compile(r'service="([^"]*)"')
# The official usage.api-counts' kinds, by the role's Kong service names (kong.yml.j2).
API_KINDS = {
    "rest": ("rest-v1", "graphql-v1"),
    "auth": ("auth-v1", "auth-v1-open-verify", "auth-v1-open-callback", "auth-v1-open-authorize"),
    "storage": ("storage-v1",),
    "realtime": ("realtime-v1-ws", "realtime-v1-rest"),
}
_KIND_OF = {service: kind for kind, services in API_KINDS.items() for service in services}


def api_request_counters(text: str) -> dict[str, int]:
    """Kong's cumulative request counts by kind, and `total` over every service (functions, meta and
    the dashboard included), from its prometheus text."""
    counts = dict.fromkeys((*API_KINDS, "total"), 0)
    for labels, value in _KONG_SAMPLE.findall(text):
        service = _SERVICE_LABEL.search(labels)
        n = int(float(value))
        counts["total"] += n
        kind = _KIND_OF.get(service.group(1) if service else "")
        if kind:
            counts[kind] += n
    return counts


def api_requests_since(counters: dict[str, int] | None, previous: dict[str, int] | None) -> dict[str, int] | None:
    """The requests between two counter readings, by kind; a counter that went down began again (the
    gateway restarted): all of it is new. None without both readings."""
    if counters is None or previous is None:
        return None
    return {k: v - previous[k] if v >= previous.get(k, 0) else v for k, v in counters.items()}


def gateway_address(containers: Iterable[dict[str, Any]], ref: str) -> str | None:
    """The (IPv4: Docker's `IPAddress`) address of the project's running kong container on its network,
    from the container list."""
    for raw in containers:
        labels = raw.get("Labels") or {}
        if labels.get(PROJECT_LABEL) != ref or labels.get(SERVICE_LABEL) != "kong" or raw.get("State") != "running":
            continue
        for network in ((raw.get("NetworkSettings") or {}).get("Networks") or {}).values():
            if network.get("IPAddress"):
                return network["IPAddress"]
    return None


@dataclasses.dataclass(frozen=True)
class CgroupReading:
    cpu_seconds: float
    memory_bytes: int
    memory_peak_bytes: int | None
    memory_limit_bytes: int | None
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None


def _read_int(path: pathlib.Path) -> int:
    return int(path.read_text().strip())


def _optional(read: Callable[[], int | None]) -> int | None:
    try:
        return read()
    except FileNotFoundError:
        return None


class Cgroups:
    """Reads a container's cgroup files under root (v2 when root has cgroup.controllers, else v1),
    in the cgroupfs driver's layout (`docker/<id>`) or the systemd driver's
    (`system.slice/docker-<id>.scope`)."""

    def __init__(self, root: pathlib.Path = CGROUP_ROOT, proc: pathlib.Path = PROC_ROOT) -> None:
        self.root = root
        self.proc = proc
        self.version = 2 if (root / "cgroup.controllers").exists() else 1

    def _dir(self, controller: str | None, container_id: str) -> pathlib.Path:
        base = self.root if controller is None else self.root / controller
        for candidate in (base / "docker" / container_id, base / "system.slice" / f"docker-{container_id}.scope"):
            if candidate.is_dir():
                return candidate
        raise FileNotFoundError(f"no cgroup for container {container_id}")

    def read(self, container_id: str) -> CgroupReading | None:
        """The container's figures now; None when it has no cgroup (stopped, or gone since the list)."""
        try:
            return self._read_v2(container_id) if self.version == 2 else self._read_v1(container_id)
        except FileNotFoundError:
            return None

    def _network(self, group: pathlib.Path) -> dict[str, int | None]:
        """Bytes received and sent by the namespace of the cgroup's first process (all of a
        container's processes share it); None when it has none left."""
        try:
            pid = (group / "cgroup.procs").read_text().split()[0]
            lines = (self.proc / pid / "net" / "dev").read_text().splitlines()[2:]
        except (OSError, IndexError):
            return {"network_rx_bytes": None, "network_tx_bytes": None}
        rx = tx = 0
        for line in lines:
            name, _, counters = line.partition(":")
            fields = counters.split()
            if name.strip() != "lo" and len(fields) >= 9:
                rx, tx = rx + int(fields[0]), tx + int(fields[8])
        return {"network_rx_bytes": rx, "network_tx_bytes": tx}

    def _read_v1(self, container_id: str) -> CgroupReading:
        memory = self._dir("memory", container_id)
        cpu = self._dir("cpuacct", container_id)
        limit = _read_int(memory / "memory.limit_in_bytes")
        return CgroupReading(
            cpu_seconds=_read_int(cpu / "cpuacct.usage") / 1e9,
            memory_bytes=_read_int(memory / "memory.usage_in_bytes"),
            memory_peak_bytes=_optional(lambda: _read_int(memory / "memory.max_usage_in_bytes")),
            memory_limit_bytes=None if limit >= _NO_LIMIT else limit,
            **self._network(memory),
        )

    def _read_v2(self, container_id: str) -> CgroupReading:
        group = self._dir(None, container_id)
        stat = dict(line.split(None, 1) for line in (group / "cpu.stat").read_text().splitlines() if " " in line)
        limit = (group / "memory.max").read_text().strip()
        return CgroupReading(
            cpu_seconds=int(stat["usage_usec"]) / 1e6,
            memory_bytes=_read_int(group / "memory.current"),
            # memory.peak came with Linux 5.19.
            memory_peak_bytes=_optional(lambda: _read_int(group / "memory.peak")),
            memory_limit_bytes=None if limit == "max" else int(limit),
            **self._network(group),
        )


def disk_usage(path: pathlib.Path) -> int | None:
    """Bytes of the blocks in use under path, as `du -s` counts them (each inode once, no symlink
    followed); None when path cannot be read (a daemon that is not root may not enter a volume)."""
    try:
        top = path.lstat()
        entries = list(os.scandir(path))
    except OSError:
        return None
    seen = {(top.st_dev, top.st_ino)}
    total = top.st_blocks * 512
    while entries:
        entry = entries.pop()
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed while we walked
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
        if entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):  # closed to us or removed: du counts what it can too
                entries.extend(os.scandir(entry.path))
    return total


def filesystem_used_ratio(path: pathlib.Path) -> float | None:
    """How full the file system holding path is, as `df` counts Use% (used / (used + available to
    users)); None when it cannot be asked."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    used = st.f_blocks - st.f_bfree
    usable = used + st.f_bavail
    return round(used / usable, 4) if usable > 0 else None


def _volume_name(ref: str, name: str) -> str:
    """The role's volume name `supamanager-<ref>-<volume>` as the volume's short name (db-data, ...)."""
    prefix = f"supamanager-{ref}-"
    return name[len(prefix) :] if name.startswith(prefix) else name


def _sum(values: Iterable[int | float | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(max(known), 4) if known else None


def project_point(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    database: dict[str, int] | None,
    *,
    at: float,
    previous: dict[str, Any] | None,
    api_counters: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One project's usage point from its containers' readings, its volumes' sizes, its database's
    answer and its gateway's request counters; cpu_share (cores in use on average) and api_requests
    (requests since) from the previous point."""
    cpu = _sum(c["cpu_seconds"] for c in containers)
    share = None
    if previous and cpu is not None and previous.get("cpu_seconds") is not None:
        elapsed = at - previous["at"]
        used = cpu - previous["cpu_seconds"]
        if elapsed > 0 and used >= 0:  # a container restarted since: its counter began again
            share = round(used / elapsed, 4)
    return {
        "at": at,
        "cpu_seconds": cpu,
        "cpu_share": share,
        "memory_bytes": _sum(c["memory_bytes"] for c in containers),
        "memory_peak_bytes": _sum(c["memory_peak_bytes"] for c in containers),
        "memory_limit_bytes": _sum(c["memory_limit_bytes"] for c in containers)
        if containers and all(c["memory_limit_bytes"] is not None for c in containers)
        else None,
        "network_rx_bytes": _sum(c.get("network_rx_bytes") for c in containers),
        "network_tx_bytes": _sum(c.get("network_tx_bytes") for c in containers),
        "disk_bytes": _sum(v["bytes"] for v in volumes),
        "filesystem_used_ratio": _max(v.get("filesystem_used_ratio") for v in volumes),
        "memory_limit_ratio": _max(
            c["memory_bytes"] / c["memory_limit_bytes"] for c in containers if c["memory_limit_bytes"]
        ),
        "database_size_bytes": None if database is None else database["size"],
        "connections": None if database is None else database["connections"],
        "wal_archive_lag_bytes": None if database is None else database.get("wal_lag"),
        "api_request_counters": api_counters,
        "api_requests": api_requests_since(api_counters, (previous or {}).get("api_request_counters")),
        "containers": containers,
        "volumes": volumes,
    }


class UsageCollector:
    """Every `interval` seconds, a usage point for every project of the store, into the store."""

    def __init__(
        self,
        store: Store,
        docker: DockerClient,
        databases: ProjectDatabases,
        target: Callable[[dict[str, Any]], Target | None],
        *,
        interval: float,
        retention_seconds: float,
        cgroups: Cgroups | None = None,
        gateway_port: int = KONG_STATUS_PORT,
    ) -> None:
        self.store = store
        self.docker = docker
        self.databases = databases
        self.target = target  # the project's database (projectdb.project_target), None when it has none
        self.interval = interval
        self.retention_seconds = retention_seconds
        self.cgroups = cgroups or Cgroups()
        self.gateway_port = gateway_port
        self.cycles = 0
        self.errors = 0
        self.last_error: str | None = None
        self.latest: dict[str, dict[str, Any]] = {}  # ref -> its newest point (metrics.py)
        self._task: asyncio.Task | None = None
        self._at_once = asyncio.Semaphore(_DATABASES_AT_ONCE)

    async def _database(self, project: dict[str, Any]) -> dict[str, int] | None:
        if project["status"] not in _DATABASE_UP:
            return None
        try:
            target = await asyncio.to_thread(self.target, project)
            if target is None:
                return None
            async with self._at_once:
                rows = await self.databases.query(project["ref"], target, _DATABASE_SQL, read_only=True)
        except (ProjectDbError, OSError) as exc:
            log.info("usage of project %s: no database figures: %s", project["ref"], exc)
            return None
        lag = rows[0].get("wal_lag")
        return {
            "size": int(rows[0]["size"]),
            "connections": int(rows[0]["connections"]),
            "wal_lag": None if lag is None else max(0, int(lag)),
        }

    async def _api_counters(self, project: dict[str, Any], containers: list[dict[str, Any]]) -> dict[str, int] | None:
        """The gateway's request counters: one GET of its metrics; None when it has none to give."""
        address = gateway_address(containers, project["ref"])
        if address is None:
            return None
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(f"http://{address}:{self.gateway_port}/metrics") as resp,
            ):
                if resp.status != 200:
                    raise aiohttp.ClientError(f"HTTP {resp.status}")
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("usage of project %s: no request counts: %s", project["ref"], exc)
            return None
        return api_request_counters(text)

    def _read_host(self, refs: set[str], containers: list[dict[str, Any]], volumes: list[dict[str, Any]]):
        """Cgroup readings and volume sizes of the projects refs, by ref (in a thread: it reads
        files). Labelled objects of other refs (orphans, another daemon's) are not read."""
        by_ref: dict[str, tuple[list, list]] = {}
        for raw in containers:
            labels = raw.get("Labels") or {}
            ref = labels.get(PROJECT_LABEL)
            if ref not in refs or raw.get("State") != "running":
                continue
            reading = self.cgroups.read(raw["Id"])
            if reading is None:  # gone between the list and the read
                continue
            service = labels.get(SERVICE_LABEL) or (raw.get("Names") or ["?"])[0].lstrip("/")
            by_ref.setdefault(ref, ([], []))[0].append({"service": service, **dataclasses.asdict(reading)})
        for volume in volumes:
            ref = (volume.get("Labels") or {}).get(PROJECT_LABEL)
            if ref not in refs or not volume.get("Mountpoint"):
                continue
            mountpoint = pathlib.Path(volume["Mountpoint"])
            size = disk_usage(mountpoint)
            if size is not None:
                by_ref.setdefault(ref, ([], []))[1].append(
                    {
                        "name": _volume_name(ref, volume["Name"]),
                        "bytes": size,
                        "filesystem_used_ratio": filesystem_used_ratio(mountpoint),
                    }
                )
        for found, sized in by_ref.values():
            found.sort(key=lambda c: c["service"])
            sized.sort(key=lambda v: v["name"])
        return by_ref

    async def collect_once(self) -> dict[str, dict[str, Any]]:
        """One cycle: a point per known project, stored; returns them by ref."""
        projects = await self.store.list_projects()
        at = time.time()
        try:
            containers = await self.docker.project_containers()
            volumes = await self.docker.project_volumes()
        except DockerError as exc:
            self.errors += 1
            if self.last_error != str(exc):
                log.warning("cannot collect usage: %s", exc)
            self.last_error = str(exc)
            return {}
        self.last_error = None
        by_ref = await asyncio.to_thread(self._read_host, {p["ref"] for p in projects}, containers, volumes)
        databases = await asyncio.gather(*(self._database(p) for p in projects))
        counters = await asyncio.gather(*(self._api_counters(p, containers) for p in projects))
        points = {}
        for project, database, api in zip(projects, databases, counters, strict=True):
            ref = project["ref"]
            found, sized = by_ref.get(ref, ([], []))
            points[ref] = project_point(found, sized, database, at=at, previous=self.latest.get(ref), api_counters=api)
        await self.store.add_usage(points, at, self.retention_seconds)
        self.latest = points
        self.cycles += 1
        return points

    async def _loop(self) -> None:
        while True:
            try:
                await self.collect_once()
            except Exception:
                self.errors += 1
                log.exception("usage collection failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="usage")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
