"""Keeps every project's status current: one Docker query per poll, whatever the number of projects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .. import models
from ..store import Store
from .docker import DockerClient, DockerError
from .status import group_by_project, observed_status

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, store: Store, docker: DockerClient, interval: float) -> None:
        self.store = store
        self.docker = docker
        self.interval = interval
        self.polls = 0
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Called after each poll with (seconds it took, whether Docker answered): the metrics.
        self.on_poll = None
        # Gets each poll's view to restart failing services (healing.py); no Docker call of its own.
        self.healer = None
        # Called with (ref, new status, previous status) for each project a poll moved (notifications.py).
        self.on_status_changed = None
        # Refs of labelled containers no project of ours owns, as the last poll saw them (orphans.py).
        self.orphan_refs: list[str] = []

    async def poll_once(self) -> list[str]:
        """Query Docker once and store the statuses; returns the refs whose status changed."""
        async with self._lock:
            snapshot_at = time.time()
            started = time.monotonic()
            projects = await self.store.list_projects()
            grouped = None
            try:
                grouped = group_by_project(await self.docker.project_containers())
            except DockerError as exc:
                if self.last_error != str(exc):
                    log.warning("cannot poll Docker: %s", exc)
                self.last_error = str(exc)
                observed = {p["ref"]: (models.UNKNOWN, None) for p in projects}
            else:
                self.last_error = None
                observed = {}
                for project in projects:
                    containers = grouped.get(project["ref"], [])
                    status = observed_status(project["status"], containers, project["services"])
                    # Learn which services a healthy project has, to notice one vanishing later.
                    learn = None
                    if status == models.ACTIVE_HEALTHY and not project["services"]:
                        learn = sorted({c.service for c in containers})
                    observed[project["ref"]] = (status, learn)
            self.polls += 1
            if self.on_poll is not None:
                self.on_poll(time.monotonic() - started, self.last_error is None)
            changed = await self.store.apply_observed(observed, snapshot_at)
            previous = {p["ref"]: p["status"] for p in projects}
            for ref in changed:
                log.info("project %s is now %s", ref, observed[ref][0])
                if self.on_status_changed is not None:
                    self.on_status_changed(ref, observed[ref][0], previous.get(ref))
            if grouped is not None:
                self._note_orphans(sorted(set(grouped) - {p["ref"] for p in projects}))
                if self.healer is not None:
                    try:
                        await self.healer.observe(projects, grouped, {r: s for r, (s, _) in observed.items()})
                    except Exception:
                        log.exception("healing failed")
            return changed

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
