"""The daemon's backup schedule: a backup (kind backup, backup.yml) of each healthy project whose
newest backup is older than `backup_interval` seconds. Off by default (backup_interval 0).

The repository says when a project was last backed up (a backup's id is its start, in unix seconds),
so a backup taken by hand, by cron or by AWX counts, and a restart of the daemon does not back every
project up again. A project busy with another operation is backed up at a later tick. A scheduled
backup that fails is counted in supamanager_jobs_total{kind="backup",result="failure"}, one whose
checks fail is published FAILED and counted in supamanager_backups{status="FAILED"} (metrics.py);
either is tried again one interval after the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from .. import models
from ..errors import DomainError
from ..projects.files import read_backups
from ..settings import Settings
from ..store import Store

log = logging.getLogger(__name__)

# The longest wait between two looks at the projects (a long interval is still checked this often).
TICK_MAX = 60.0


class BackupSchedule:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        choose: Callable[[dict[str, Any]], str],
        enqueue: Callable[[dict[str, Any]], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.choose = choose
        self.enqueue = enqueue
        self.interval = settings.backup_interval
        # ref -> when the schedule last started a backup of it (a failed one publishes nothing).
        self._attempted: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    def _last_backup(self, ref: str) -> float:
        manifests = read_backups(self.settings, ref)
        return float(manifests[-1]["id"]) if manifests else 0.0

    async def run_once(self, now: float | None = None) -> list[str]:
        """Start the backups that are due; returns the refs whose backup was started."""
        now = time.time() if now is None else now
        started = []
        for project in await self.store.list_projects():
            ref = project["ref"]
            if project["status"] != models.ACTIVE_HEALTHY:
                continue
            last = max(await asyncio.to_thread(self._last_backup, ref), self._attempted.get(ref, 0.0))
            if now - last < self.interval:
                continue
            try:
                _project, op = await self.store.start_operation(ref, self.choose, {"scheduled": True})
            except DomainError as exc:  # busy (409), no longer healthy, or deleted meanwhile
                log.info("scheduled backup of %s deferred: %s", ref, exc)
                continue
            self._attempted[ref] = now
            self.enqueue(op)
            started.append(ref)
            log.info("scheduled backup of %s: operation %s", ref, op["id"])
        return started

    async def _loop(self) -> None:
        tick = min(self.interval, TICK_MAX)
        while True:
            await asyncio.sleep(tick)
            try:
                await self.run_once()
            except Exception:
                log.exception("the backup schedule failed")

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="backup-schedule")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
