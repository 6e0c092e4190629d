"""Keeps every project's status current: one Docker query per host per poll, the hosts asked at once,
whatever the number of projects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .. import models
from ..store import Store
from .docker import DockerClient, DockerError
from .hosts import DEFAULT_HOST
from .status import group_by_project, observed_status

if TYPE_CHECKING:
    from .manager import FleetManager

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, store: Store, docker: DockerClient, interval: float, fleet: FleetManager | None = None) -> None:
        self.store = store
        # The one engine without a fleet (every project is on it); with one, each host's own client.
        self.docker = docker
        self.fleet = fleet
        self.interval = interval
        self.polls = 0
        self.last_error: str | None = None
        # Per host: did it answer the last poll, and why not (metrics, /platform/fleet).
        self.host_up: dict[str, bool] = {}
        self.host_errors: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Called after each poll with (seconds it took, whether Docker answered): the metrics.
        self.on_poll = None
        # Gets each poll's view to restart failing services (healing.py); no Docker call of its own.
        self.healer = None
        # Called with (ref, new status, previous status) for each project a poll moved (notifications.py).
        self.on_status_changed = None
        # Called with (host, up, error, refs of its projects) when a host stops or starts answering.
        self.on_host_changed = None
        # Refs of labelled containers no project of ours owns, as the last poll saw them (orphans.py).
        self.orphan_refs: list[str] = []

    def _targets(self) -> dict[str, DockerClient | None]:
        """The hosts to ask, each with its client (None: a host without an engine URL, not polled)."""
        if self.fleet is None:
            return {DEFAULT_HOST: self.docker}
        return {name: self.fleet.client(name) for name in self.fleet.fleet.hosts}

    def _host_of(self, project: dict) -> str:
        return DEFAULT_HOST if self.fleet is None else project.get("host", DEFAULT_HOST)

    @staticmethod
    async def _ask(client: DockerClient | None) -> tuple[list | None, str | None]:
        if client is None:
            return None, "no docker_host: this host's engine is reached by its playbooks only"
        try:
            return await client.project_containers(), None
        except DockerError as exc:
            return None, str(exc)

    async def poll_once(self) -> list[str]:
        """Ask every host once, all at once, and store the statuses; returns the refs whose status changed.

        A host that does not answer puts its projects in UNKNOWN, and only those: nothing of it is
        counted as an orphan or handed to the healer until it answers again.
        """
        async with self._lock:
            snapshot_at = time.time()
            started = time.monotonic()
            projects = await self.store.list_projects()
            targets = self._targets()
            answers = dict(zip(targets, await asyncio.gather(*(self._ask(c) for c in targets.values())), strict=True))
            grouped: dict[str, list] = {}
            errors: dict[str, str] = {}
            for name, (raw, error) in answers.items():
                if error is not None:
                    errors[name] = error
                else:
                    for ref, views in group_by_project(raw).items():
                        grouped.setdefault(ref, []).extend(views)
            self._note_hosts({n: a for n, a in answers.items() if targets[n] is not None}, projects)
            observed = {}
            answered = []
            for project in projects:
                if self._host_of(project) not in answers or self._host_of(project) in errors:
                    observed[project["ref"]] = (models.UNKNOWN, None)
                    continue
                answered.append(project)
                containers = grouped.get(project["ref"], [])
                status = observed_status(project["status"], containers, project["services"])
                # Learn which services a healthy project has, to notice one vanishing later.
                learn = None
                if status == models.ACTIVE_HEALTHY and not project["services"]:
                    learn = sorted({c.service for c in containers})
                observed[project["ref"]] = (status, learn)
            polled_errors = {n: e for n, e in errors.items() if targets[n] is not None}
            if self.fleet is None:
                error = polled_errors.get(DEFAULT_HOST)
            else:
                error = "; ".join(f"{n}: {e}" for n, e in sorted(polled_errors.items())) or None
            if error and self.last_error != error:
                log.warning("cannot poll Docker: %s", error)
            self.last_error = error or None
            self.polls += 1
            if self.on_poll is not None:
                self.on_poll(time.monotonic() - started, self.last_error is None)
            changed = await self.store.apply_observed(observed, snapshot_at)
            previous = {p["ref"]: p["status"] for p in projects}
            for ref in changed:
                log.info("project %s is now %s", ref, observed[ref][0])
                if self.on_status_changed is not None:
                    self.on_status_changed(ref, observed[ref][0], previous.get(ref))
            if len(errors) < len(answers):
                known = {p["ref"] for p in projects}
                # A ref whose project sits on a host that did not answer is no orphan.
                self._note_orphans(sorted(set(grouped) - known))
                if self.healer is not None:
                    try:
                        statuses = {p["ref"]: observed[p["ref"]][0] for p in answered}
                        await self.healer.observe(answered, grouped, statuses)
                    except Exception:
                        log.exception("healing failed")
            return changed

    def _note_hosts(self, answers: dict[str, tuple[list | None, str | None]], projects: list[dict]) -> None:
        """Remember which polled hosts answered; tell (on_host_changed) when one stops or starts answering."""
        for name, (_raw, error) in answers.items():
            up = error is None
            was = self.host_up.get(name)
            self.host_up[name] = up
            if up:
                self.host_errors.pop(name, None)
            else:
                self.host_errors[name] = error
            if was is not None and was != up:
                refs = [p["ref"] for p in projects if self._host_of(p) == name]
                if up:
                    log.info("host %s answers again", name)
                else:
                    log.warning("host %s does not answer: %s; its %d project(s) are UNKNOWN", name, error, len(refs))
                if self.on_host_changed is not None:
                    self.on_host_changed(name, up, error, refs)
        for name in set(self.host_up) - set(answers):  # gone from the inventory
            self.host_up.pop(name, None)
            self.host_errors.pop(name, None)

    def _note_orphans(self, refs: list[str]) -> None:
        new = sorted(set(refs) - set(self.orphan_refs))
        if new:
            log.warning(
                "containers labelled for project(s) %s, which this daemon does not know (orphans)",
                ", ".join(new),
            )
        self.orphan_refs = refs

    def wake(self) -> None:
        """Poll soon (after a job finished), without waiting for the interval."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
