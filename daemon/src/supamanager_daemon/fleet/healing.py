"""Self-healing: restart a failing service of an active project, with exponential backoff.

The poller hands each poll's container view here (no Docker call of our own). A service whose
container has been unhealthy, exited or dead for `heal_delay` seconds, in a project that is
ACTIVE_UNHEALTHY, meant to be active, not busy with an operation and not marked "do not heal", is
restarted by an operation of kind `heal`: restart.yml with `supabase_restart_services` set to the
service and the services the rendered docker-compose.yml says must restart after it
(`depends_on: {<it>: {restart: true}}`), waiting for their health. Why a playbook rather than a
Docker API call: a heal changes what runs, so it is an operation like the others (recorded,
serialized per project, idempotent, the same for an AWX user), and Compose applies the rendered
file's dependency rules itself; a heal is rare, so the seconds ansible-playbook costs do not matter.

After a failed heal the next one waits `heal_backoff` seconds, twice as long after each further
failure, at most `heal_backoff_max`; after `heal_attempts` heals the service is given up (log line,
metric, the reason in its record) until it has been healthy again for
`heal_backoff_max` seconds, or a person restarts the project. The per-service record is stored
(table `healing`), so a daemon restart neither forgets the count nor the "do not heal" mark; only
"unhealthy since" is in memory (after a restart the delay counts again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import pathlib
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from .. import models
from ..errors import Conflict, DomainError
from .status import ContainerView

log = logging.getLogger(__name__)

# Docker states of a container whose service needs a restart (Docker itself restarts a crashed
# `unless-stopped` container: `restarting` is left to it).
FAILING_STATES = ("exited", "dead")
SERVICE_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def failing_services(containers: Iterable[ContainerView]) -> set[str]:
    """Services whose container is unhealthy, exited or dead."""
    return {
        c.service for c in containers if c.state in FAILING_STATES or (c.state == "running" and c.health == "unhealthy")
    }


def dependencies(compose: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """service -> {dependency: its depends_on options}, from a compose file (list or map form)."""
    graph: dict[str, dict[str, dict[str, Any]]] = {}
    for name, spec in (compose.get("services") or {}).items():
        deps = (spec or {}).get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {} for d in deps}
        graph[name] = {d: (opts or {}) for d, opts in deps.items()}
    return graph


def restart_set(graph: dict[str, dict[str, dict[str, Any]]], service: str) -> list[str]:
    """The service, then every service that must restart after it (`restart: true`), transitively."""
    order = [service]
    for current in order:  # grows while iterating: a breadth-first walk
        for name in sorted(graph):
            if graph[name].get(current, {}).get("restart") is True and name not in order:
                order.append(name)
    return order


def heal_order(failing: Iterable[str], graph: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Failing services whose dependencies are all fine first: healing db may cure its dependents."""
    failing = set(failing)
    roots = sorted(s for s in failing if not failing & set(graph.get(s, {})))
    return roots + sorted(failing - set(roots))


def read_compose(root: pathlib.Path, ref: str) -> dict[str, Any]:
    """The project's rendered docker-compose.yml, or {} when it cannot be read."""
    try:
        data = yaml.safe_load((root / "projects" / ref / "docker-compose.yml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclasses.dataclass(frozen=True)
class Policy:
    delay: float  # seconds a service fails before its first heal
    backoff: float  # seconds before the second heal; doubles after each failure
    backoff_max: float  # longest wait between two heals; also how long healthy before the count resets
    attempts: int  # heals before giving up; 0: never heal
    timeout: float  # how long one heal waits for the services' health

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            delay=settings.heal_delay,
            backoff=settings.heal_backoff,
            backoff_max=settings.heal_backoff_max,
            attempts=settings.heal_attempts,
            timeout=settings.heal_timeout,
        )

    def wait_after(self, failures: int) -> float:
        """Seconds between the end of the n-th failed heal and the next one."""
        return min(self.backoff * 2 ** max(0, failures - 1), self.backoff_max)


@dataclasses.dataclass
class Record:
    """What the healer knows of one service of one project (stored as JSON)."""

    attempts: int = 0  # heals started since the service was last healthy for a while
    failures: int = 0  # of those, the ones that failed
    next_at: float = 0.0  # unix time: no heal before this
    last_op: str | None = None  # the heal in flight, until its outcome is read
    gave_up: bool = False
    reason: str | None = None  # why the last heal failed, or why healing gave up
    healthy_since: float | None = None  # unix time the service was first seen fine again
    operations: list[str] = dataclasses.field(default_factory=list)  # the heals' ids, oldest first

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def choose_heal(project: dict[str, Any]) -> str:
    """The kind chooser for Store.start_operation: only an unhealthy project meant to run is healed."""
    if project["status"] != models.ACTIVE_UNHEALTHY or project["desired_state"] != "active":
        raise Conflict(f"project {project['ref']} is {project['status']}: not healed", code="not_healable")
    return "heal"


class Healer:
    """Decides, after each poll, which service to heal; starts at most one heal per project."""

    def __init__(
        self,
        store: Any,
        root: pathlib.Path,
        policy: Policy,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self.root = root
        self.policy = policy
        self.enqueue: Callable[[dict[str, Any]], None] | None = None  # the job scheduler's, once it runs
        self.on_give_up: Callable[[str, str], None] | None = None  # the metrics'
        self._failing_since: dict[str, dict[str, float]] = {}  # ref -> service -> monotonic time
        self.started = 0

    async def observe(
        self,
        projects: list[dict[str, Any]],
        grouped: dict[str, list[ContainerView]],
        statuses: dict[str, str],
    ) -> list[dict[str, Any]]:
        """Look at one poll's view; returns the heal operations it started."""
        active = {op["ref"]: op["kind"] for op in await self.store.active_operations()}
        states = await self.store.healing_states()
        started = []
        for project in projects:
            ref = project["ref"]
            state = states.get(ref, {"enabled": True, "services": {}})
            records = {name: Record.from_json(r) for name, r in state["services"].items()}
            before = {name: r.to_json() for name, r in records.items()}
            op = None
            if ref in active:
                # An operation owns the project: what it does to the containers is not a failure,
                # and one a person started (a restart, a pause) makes the healer start afresh.
                self._failing_since.pop(ref, None)
                if active[ref] != "heal":
                    records.clear()
            else:
                failing = failing_services(grouped.get(ref, []))
                await self._read_outcomes(ref, records)
                self._track(ref, failing, records)
                healable = (
                    self.policy.attempts > 0
                    and state["enabled"]
                    and statuses.get(ref) == models.ACTIVE_UNHEALTHY
                    and project["desired_state"] == "active"
                )
                if failing and healable:
                    op = await self._maybe_heal(ref, failing, records)
            after = {name: r.to_json() for name, r in records.items()}
            if op is not None:
                started.append(op)
            elif after != before:
                await self.store.set_healing_services(ref, after)
        return started

    async def _read_outcomes(self, ref: str, records: dict[str, Record]) -> None:
        """Account for heals that ended since the last poll."""
        for service, record in records.items():
            if record.last_op is None:
                continue
            op = await self.store.get_operation(record.last_op)
            if op is None or op["state"] in models.ACTIVE_STATES:
                continue
            record.last_op = None
            if op["state"] == models.SUCCEEDED:
                record.reason = None
                continue
            record.failures += 1
            record.reason = op["error"] or "the restart failed"
            record.next_at = self.clock() + self.policy.wait_after(record.failures)
            if record.attempts >= self.policy.attempts:
                record.gave_up = True
                record.reason = f"gave up after {record.attempts} restart(s): {record.reason}"
                log.warning("healing project %s: %s %s", ref, service, record.reason)
                if self.on_give_up is not None:
                    self.on_give_up(ref, service)

    def _track(self, ref: str, failing: set[str], records: dict[str, Record]) -> None:
        """Remember since when each service fails; forget a record once its service was fine long enough."""
        now, mono = self.clock(), self.monotonic()
        since = self._failing_since.setdefault(ref, {})
        for service in list(since):
            if service not in failing:
                del since[service]
        for service in failing:
            since.setdefault(service, mono)
        for service, record in list(records.items()):
            if service in failing or record.last_op is not None:
                record.healthy_since = None
            elif record.healthy_since is None:
                record.healthy_since = now
            elif now - record.healthy_since >= self.policy.backoff_max:
                del records[service]

    async def _maybe_heal(self, ref: str, failing: set[str], records: dict[str, Record]) -> dict[str, Any] | None:
        if any(r.last_op is not None for r in records.values()):
            return None
        graph = dependencies(await asyncio.to_thread(read_compose, self.root, ref))
        now, mono = self.clock(), self.monotonic()
        since = self._failing_since.get(ref, {})
        for service in heal_order(failing, graph):
            if mono - since.get(service, mono) < self.policy.delay:
                continue
            if not SERVICE_RE.fullmatch(service) or (graph and service not in graph):
                continue  # a label the rendered file does not know: nothing we may restart
            record = records.setdefault(service, Record())
            if record.gave_up or record.attempts >= self.policy.attempts or now < record.next_at:
                continue
            services = restart_set(graph, service) if graph else [service]
            params = {"service": service, "services": services, "attempt": record.attempts + 1}
            record.attempts += 1
            record.healthy_since = None
            record.reason = None
            planned = {name: r.to_json() for name, r in records.items()}

            def remember(op: dict[str, Any], planned=planned, service=service) -> dict[str, Any]:
                planned[service]["last_op"] = op["id"]
                planned[service]["operations"].append(op["id"])
                return planned

            try:
                _project, op = await self.store.start_operation(ref, choose_heal, params, healing=remember)
            except DomainError as exc:  # raced with a request, or the project changed meanwhile
                record.attempts -= 1
                log.info("not healing project %s: %s", ref, exc.message)
                return None
            record.last_op = op["id"]
            record.operations.append(op["id"])
            self.started += 1
            log.warning(
                "healing project %s: restarting %s (attempt %d of %d)",
                ref,
                ", ".join(services),
                record.attempts,
                self.policy.attempts,
            )
            if self.enqueue is not None:
                self.enqueue(op)
            return op
        return None


def _iso(stamp: float | None) -> str | None:
    if not stamp:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def public_state(state: dict[str, Any]) -> dict[str, Any]:
    """A project's healing state as GET /v1/projects/{ref}/healing shows it."""
    services = {}
    for name, data in sorted(state["services"].items()):
        record = Record.from_json(data)
        services[name] = {
            "attempts": record.attempts,
            "failures": record.failures,
            "gave_up": record.gave_up,
            "reason": record.reason,
            "next_attempt_at": _iso(record.next_at) if record.failures and not record.gave_up else None,
            "in_flight": record.last_op,
            "operations": record.operations,
        }
    return {"enabled": state["enabled"], "services": services}
