"""The daemon's backup schedule: a daily backup (kind backup, backup.yml) of each healthy project at
its time of day (UTC): the one PATCH .../database/backups/schedule gave it (kept in the store), else
the daemon's `backup_schedule_for`; a project with neither is not backed up by the daemon (the
default).

A backup is due once the latest occurrence of the project's time is later than its newest backup and
than the schedule itself: a time set after today's occurrence has passed first runs the next day, as
upstream. The repository says when a project was last backed up (a backup's id is its start, in unix
seconds), so a backup taken by hand, by cron or by AWX counts, and a restart of the daemon does not
back every project up again; a day missed while the daemon was down is caught up at its next look.
A project busy with another operation is backed up at a later tick. A scheduled backup that fails is
counted in supamanager_jobs_total{kind="backup",result="failure"}, one whose checks fail is published
FAILED and counted in supamanager_backups{status="FAILED"} (metrics.py); either is tried again at the
next day's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
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

DAY = 86400
# Seconds between two looks at the projects (a schedule is kept to the minute).
TICK = 60.0


def unix(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def last_occurrence(schedule_for: str, now: float) -> float:
    """The latest moment at or before `now` (unix seconds) whose UTC time of day is `schedule_for`."""
    hours, minutes, seconds = (int(part) for part in schedule_for.split(":"))
    slot = now - now % DAY + hours * 3600 + minutes * 60 + seconds
    return slot if slot <= now else slot - DAY


def schedule_of(project: dict[str, Any], own: dict[str, str] | None, default: str) -> dict[str, str] | None:
    """A project's schedule {schedule_for, updated_at}: its own, else the daemon's default (in force
    since the project was created), else None."""
    if own is not None:
        return own
    if default:
        return {"schedule_for": default, "updated_at": project["created_at"]}
    return None


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
        # ref -> when the schedule last started a backup of it (a failed one publishes nothing).
        self._attempted: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    def _last_backup(self, ref: str) -> float:
        manifests = read_backups(self.settings, ref)
        return float(manifests[-1]["id"]) if manifests else 0.0

    async def run_once(self, now: float | None = None) -> list[str]:
        """Start the backups that are due; returns the refs whose backup was started."""
        now = time.time() if now is None else now
        # A deleted project is kept while its repository holds a backup (the role prunes it at the
        # end of its retention, supabase_backup_deleted_keep_days): then forgotten.
        for deleted in await self.store.deleted_projects():
            if not await asyncio.to_thread(read_backups, self.settings, deleted["ref"]):
                await self.store.forget_deleted_project(deleted["ref"])
        own = await self.store.backup_schedules()
        started = []
        for project in await self.store.list_projects():
            ref = project["ref"]
            schedule = schedule_of(project, own.get(ref), self.settings.backup_schedule_for)
            if schedule is None or project["status"] != models.ACTIVE_HEALTHY:
                continue
            slot = last_occurrence(schedule["schedule_for"], now)
            if slot < unix(schedule["updated_at"]):
                continue  # the time was set after its latest occurrence: the first one is still to come
            last = max(await asyncio.to_thread(self._last_backup, ref), self._attempted.get(ref, 0.0))
            if last >= slot:
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
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.run_once()
            except Exception:
                log.exception("the backup schedule failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="backup-schedule")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
