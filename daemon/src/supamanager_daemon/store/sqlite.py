"""SQLite (WAL) store: projects, operations and their step events.

Every call runs on one dedicated thread, so each method is one serialized transaction and the
event loop never blocks on disk. A write has committed before the caller's await returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import json
import pathlib
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

from .. import models
from .errors import (
    HealingDisabled,
    HostnameTaken,
    OperationInProgress,
    OrganizationNotFound,
    ProjectLimit,
    ProjectNotFound,
    RefTaken,
    TokenNameTaken,
    TokenNotFound,
)

DEFAULT_ORGANIZATION = "default"
DEFAULT_ORGANIZATION_NAME = "Default organization"

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    ref TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    organization_slug TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    error TEXT,
    -- services seen when the project was last healthy: a missing one makes it unhealthy
    services TEXT NOT NULL DEFAULT '[]',
    -- unix time a job last set the status: older poll snapshots must not overwrite it
    job_status_at REAL NOT NULL DEFAULT 0,
    -- the inventory host it runs on (fleet/hosts.py): every job of the project is limited to it
    host TEXT NOT NULL DEFAULT 'localhost'
);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    step TEXT,
    tasks_done INTEGER NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_ref ON operations (ref, state);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id TEXT NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_op ON events (op_id, id);
-- a project's integer id (the Management API's `id`): AUTOINCREMENT never hands out an id again,
-- where a rowid of projects could come back after a delete (and VACUUM may renumber rowids)
CREATE TABLE IF NOT EXISTS project_ids (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL UNIQUE
);
-- the healer's memory of each project (healing.py): the user's "do not heal" mark, and per
-- service the heals tried, the backoff and whether it gave up
CREATE TABLE IF NOT EXISTS healing (
    ref TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL DEFAULT 1,
    services TEXT NOT NULL DEFAULT '{}'
);
-- organizations: every project belongs to one (its slug); `default` always exists
CREATE TABLE IF NOT EXISTS organizations (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- API tokens beyond the configured one: only a SHA-256 of each is kept
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
-- a project's own backup schedule (PATCH .../database/backups/schedule): the time of day (UTC,
-- HH:MM:SS) of its daily backup; a project without a row follows the daemon's default
CREATE TABLE IF NOT EXISTS backup_schedules (
    ref TEXT PRIMARY KEY,
    schedule_for TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- usage points per project (fleet/usage.py), one per collection cycle, pruned by age
CREATE TABLE IF NOT EXISTS usage (
    ref TEXT NOT NULL,
    at REAL NOT NULL,
    point TEXT NOT NULL,
    PRIMARY KEY (ref, at)
);
-- an organization's webhooks (notifications.py): the URL and the HMAC key of its deliveries
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    organization_slug TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- what happened that an organization hears of (a status change, a failed operation or backup)
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_slug TEXT NOT NULL,
    ref TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at TEXT
);
-- each attempt to deliver a notification to a webhook: the receiver's status or the error
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL,
    webhook_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    at TEXT NOT NULL
);
-- a project's custom hostname (api/domains.py) until it is deleted: the name, its ownership token
-- (not a secret: it is published in DNS), the status reached (2_initiated, 3_challenge_verified)
-- and the last check's errors
CREATE TABLE IF NOT EXISTS custom_hostnames (
    ref TEXT PRIMARY KEY,
    hostname TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    errors TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);
-- deleted projects, as they were when deleted: their backups stay in the host's repository, and
-- a restore from one brings the project back under its ref and id (api/backups.py); forgotten
-- with those backups, at the end of their retention (operations/backup_schedule.py)
CREATE TABLE IF NOT EXISTS deleted_projects (
    ref TEXT PRIMARY KEY,
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    organization_slug TEXT NOT NULL,
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT 'localhost'
);
-- how many tasks a playbook ran last time it succeeded: the denominator of progress
CREATE TABLE IF NOT EXISTS task_counts (
    playbook TEXT PRIMARY KEY,
    tasks INTEGER NOT NULL
);
"""


PROJECT_SELECT = "SELECT i.id AS id, p.* FROM projects p JOIN project_ids i ON i.ref = p.ref"
PROJECT_BY_REF = f"{PROJECT_SELECT} WHERE p.ref = ?"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return None if row is None else dict(row)


def _project(row: sqlite3.Row | None) -> dict[str, Any] | None:
    project = _row(row)
    if project is not None:
        project["services"] = json.loads(project["services"])
    return project


def _operation(row: sqlite3.Row | None) -> dict[str, Any] | None:
    op = _row(row)
    if op is not None:
        op["params"] = json.loads(op["params"])
    return op


class Store:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None

    # -- plumbing -----------------------------------------------------------------------------
    async def _call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss too, not only a killed daemon.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        # A store of a daemon from before the fleet: its projects ran on the one local host.
        for table in ("projects", "deleted_projects"):
            if "host" not in {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN host TEXT NOT NULL DEFAULT 'localhost'")
        # The default organization, and one for every slug projects of an older daemon name.
        at = now_iso()
        db.execute(
            "INSERT OR IGNORE INTO organizations (slug, name, created_at) VALUES (?, ?, ?)",
            (DEFAULT_ORGANIZATION, DEFAULT_ORGANIZATION_NAME, at),
        )
        db.execute(
            "INSERT OR IGNORE INTO organizations (slug, name, created_at)"
            " SELECT DISTINCT organization_slug, organization_slug, ? FROM projects",
            (at,),
        )
        # Projects of a daemon from before project_ids keep the id it answered with (their rowid).
        db.execute(
            "INSERT OR IGNORE INTO project_ids (id, ref)"
            " SELECT rowid, ref FROM projects WHERE ref NOT IN (SELECT ref FROM project_ids)"
        )
        self.path.chmod(0o600)
        self._db = db

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        db = self._db
        assert db is not None, "store is not open"
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def open(self) -> None:
        await self._call(self._open)

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._call(_close)
        self._executor.shutdown(wait=True)

    async def journal_mode(self) -> str:
        return await self._call(lambda: self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # -- projects -----------------------------------------------------------------------------
    async def get_project(self, ref: str) -> dict[str, Any] | None:
        return await self._call(lambda: _project(self._db.execute(PROJECT_BY_REF, (ref,)).fetchone()))

    async def list_projects(self) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [_project(r) for r in self._db.execute(f"{PROJECT_SELECT} ORDER BY p.created_at, p.ref")]
        )

    async def create_project(
        self,
        *,
        ref: str,
        name: str,
        organization_slug: str,
        region: str,
        host: str = "localhost",
        max_projects: int | None = None,
        params: dict | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Insert a project on its host and its create operation (params) in one transaction (ProjectLimit past
        max_projects)."""
        kind = models.KINDS["create"]

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone():
                raise RefTaken(ref)
            if max_projects is not None and db.execute("SELECT count(*) FROM projects").fetchone()[0] >= max_projects:
                raise ProjectLimit(max_projects)
            if not db.execute("SELECT 1 FROM organizations WHERE slug = ?", (organization_slug,)).fetchone():
                raise OrganizationNotFound(organization_slug)
            db.execute(
                "INSERT INTO projects (ref, name, organization_slug, region, created_at, status, desired_state,"
                " job_status_at, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ref, name, organization_slug, region, now_iso(), kind.busy, kind.desired, time.time(), host),
            )
            db.execute("INSERT INTO project_ids (ref) VALUES (?)", (ref,))
            db.execute("DELETE FROM deleted_projects WHERE ref = ?", (ref,))  # a new project of that ref
            op = self._insert_operation(db, ref, "create", params or {})
            return _project(db.execute(PROJECT_BY_REF, (ref,)).fetchone()), op

        return await self._call(self._tx, tx)

    def _insert_operation(self, db: sqlite3.Connection, ref: str, kind: str, params: dict) -> dict[str, Any]:
        op_id = str(uuid.uuid4())
        at = now_iso()
        db.execute(
            "INSERT INTO operations (id, ref, kind, state, params, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (op_id, ref, kind, models.QUEUED, json.dumps(params), at, at),
        )
        db.execute(
            "INSERT INTO events (op_id, at, type, name, data) VALUES (?, ?, 'queued', ?, '{}')", (op_id, at, kind)
        )
        return _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())

    async def prune_operations(self, older_than_days: float) -> int:
        """Forget operations that ended more than older_than_days ago, with their events."""
        cutoff = (
            (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=older_than_days))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        ended = (models.SUCCEEDED, models.FAILED, cutoff)

        def tx(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM operations WHERE state IN (?, ?) AND finished_at < ?"
            db.execute(f"DELETE FROM events WHERE op_id IN ({old})", ended)  # noqa: S608 - constant text
            return db.execute("DELETE FROM operations WHERE state IN (?, ?) AND finished_at < ?", ended).rowcount

        return await self._call(self._tx, tx)

    async def start_operation(
        self,
        ref: str,
        choose_kind: Callable[[dict[str, Any]], str],
        params: dict | None = None,
        healing: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        revive: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record a new operation on an existing project, atomically.

        choose_kind(project) returns the kind to run or raises (e.g. 400 when already paused);
        it runs inside the transaction, so the check and the write see the same state.
        healing(op), for the healer's heals: refuses a project marked "do not heal" and stores
        the service records it returns in the same transaction.
        revive: a deleted project (deleted_projects) is a project again, REMOVED, under its ref and
        id, for choose_kind to judge (a restore from its backups); undone if choose_kind refuses.
        """

        def tx(db: sqlite3.Connection):
            project = _project(db.execute(PROJECT_BY_REF, (ref,)).fetchone())
            if project is None and revive:
                project = self._revive(db, ref)
            if project is None:
                raise ProjectNotFound(ref)
            running = db.execute(
                "SELECT id, kind FROM operations WHERE ref = ? AND state IN (?, ?) ORDER BY created_at LIMIT 1",
                (ref, *models.ACTIVE_STATES),
            ).fetchone()
            if running is not None:
                raise OperationInProgress(ref, running["id"], running["kind"])
            kind = models.KINDS[choose_kind(project)]
            if healing is not None and not self._healing(db, ref)["enabled"]:
                raise HealingDisabled(ref)
            db.execute(
                "UPDATE projects SET status = ?, desired_state = ?, error = NULL, job_status_at = ? WHERE ref = ?",
                (kind.busy, kind.desired, time.time(), ref),
            )
            op = self._insert_operation(db, ref, kind.name, params or {})
            if healing is not None:
                self._put_healing(db, ref, services=healing(op))
            return _project(db.execute(PROJECT_BY_REF, (ref,)).fetchone()), op

        return await self._call(self._tx, tx)

    async def apply_observed(self, observed: dict[str, tuple[str, list[str] | None]], snapshot_at: float) -> list[str]:
        """Store statuses the poller derived; skip projects a job owns or changed after the snapshot.

        observed: ref -> (status, services to remember or None). Returns the refs that changed.
        """

        def tx(db: sqlite3.Connection) -> list[str]:
            busy = {
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT ref FROM operations WHERE state IN (?, ?)", models.ACTIVE_STATES
                ).fetchall()
            }
            changed = []
            for ref, (status, services) in observed.items():
                if ref in busy:
                    continue
                row = db.execute("SELECT status, job_status_at FROM projects WHERE ref = ?", (ref,)).fetchone()
                if row is None or row["job_status_at"] >= snapshot_at:
                    continue
                if services is not None:
                    db.execute("UPDATE projects SET services = ? WHERE ref = ?", (json.dumps(services), ref))
                if row["status"] != status:
                    db.execute("UPDATE projects SET status = ? WHERE ref = ?", (status, ref))
                    changed.append(ref)
            return changed

        return await self._call(self._tx, tx)

    # -- operations ---------------------------------------------------------------------------
    async def get_operation(self, op_id: str) -> dict[str, Any] | None:
        return await self._call(
            lambda: _operation(self._db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())
        )

    async def active_operations(self) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [
                _operation(r)
                for r in self._db.execute(
                    "SELECT * FROM operations WHERE state IN (?, ?) ORDER BY created_at", models.ACTIVE_STATES
                )
            ]
        )

    async def events(self, op_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Step events of an operation, oldest first; ids increase, so `after` resumes a stream."""

        def q():
            rows = self._db.execute(
                "SELECT * FROM events WHERE op_id = ? AND id > ? ORDER BY id", (op_id, after)
            ).fetchall()
            return [dict(r, data=json.loads(r["data"])) for r in rows]

        return await self._call(q)

    async def mark_running(self, op_id: str, pid: int | None = None) -> dict[str, Any]:
        def tx(db: sqlite3.Connection):
            at = now_iso()
            db.execute(
                "UPDATE operations SET state = ?, attempts = attempts + 1, pid = ?,"
                " started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ?",
                (models.RUNNING, pid, at, at, op_id),
            )
            op = _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())
            self._event(db, op_id, "started", op["kind"], {"attempt": op["attempts"]})
            return op

        return await self._call(self._tx, tx)

    async def set_project_host(self, ref: str, host: str) -> None:
        """A moved project's new host (operations/jobs.py, when its move succeeded): its jobs and polls go there."""
        await self._call(self._tx, lambda db: db.execute("UPDATE projects SET host = ? WHERE ref = ?", (host, ref)))

    async def set_pid(self, op_id: str, pid: int | None) -> None:
        await self._call(self._tx, lambda db: db.execute("UPDATE operations SET pid = ? WHERE id = ?", (pid, op_id)))

    def _event(self, db: sqlite3.Connection, op_id: str, type_: str, name: str | None, data: dict) -> int:
        cur = db.execute(
            "INSERT INTO events (op_id, at, type, name, data) VALUES (?, ?, ?, ?, ?)",
            (op_id, now_iso(), type_, name, json.dumps(data)),
        )
        return cur.lastrowid

    async def add_event(self, op_id: str, type_: str, name: str | None = None, data: dict | None = None) -> int:
        return await self._call(self._tx, lambda db: self._event(db, op_id, type_, name, data or {}))

    async def record_step(self, op_id: str, name: str, tasks_done: int, progress: int) -> int:
        def tx(db: sqlite3.Connection) -> int:
            db.execute(
                "UPDATE operations SET step = ?, tasks_done = ?, progress = ?, updated_at = ? WHERE id = ?",
                (name, tasks_done, progress, now_iso(), op_id),
            )
            return self._event(db, op_id, "step", name, {"n": tasks_done, "progress": progress})

        return await self._call(self._tx, tx)

    async def requeue(self, op_id: str, reason: str) -> dict[str, Any]:
        """Put an interrupted operation back in the queue (daemon stopped or crashed under it)."""

        def tx(db: sqlite3.Connection):
            op = _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())
            db.execute(
                "UPDATE operations SET state = ?, pid = NULL, updated_at = ? WHERE id = ?",
                (models.QUEUED, now_iso(), op_id),
            )
            kind = models.KINDS[op["kind"]]
            db.execute(
                "UPDATE projects SET status = ?, job_status_at = ? WHERE ref = ?", (kind.busy, time.time(), op["ref"])
            )
            self._event(db, op_id, "requeued", op["kind"], {"reason": reason})
            return _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())

        return await self._call(self._tx, tx)

    def _revive(self, db: sqlite3.Connection, ref: str) -> dict[str, Any] | None:
        deleted = db.execute("SELECT * FROM deleted_projects WHERE ref = ?", (ref,)).fetchone()
        if deleted is None:
            return None
        db.execute(
            "INSERT INTO projects (ref, name, organization_slug, region, created_at, status, desired_state,"
            " job_status_at, host) VALUES (?, ?, ?, ?, ?, ?, 'absent', ?, ?)",
            (ref, deleted["name"], deleted["organization_slug"], deleted["region"], deleted["created_at"],
             models.REMOVED, time.time(), deleted["host"]),
        )  # fmt: skip
        db.execute("INSERT INTO project_ids (id, ref) VALUES (?, ?)", (deleted["id"], ref))
        db.execute("DELETE FROM deleted_projects WHERE ref = ?", (ref,))
        return _project(db.execute(PROJECT_BY_REF, (ref,)).fetchone())

    async def get_deleted_project(self, ref: str) -> dict[str, Any] | None:
        """A deleted project as it was (ref, id, name, organization_slug, region, created_at, deleted_at)."""
        return await self._call(
            lambda: _row(self._db.execute("SELECT * FROM deleted_projects WHERE ref = ?", (ref,)).fetchone())
        )

    async def deleted_projects(self) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [_row(r) for r in self._db.execute("SELECT * FROM deleted_projects ORDER BY deleted_at, ref")]
        )

    async def forget_deleted_project(self, ref: str) -> None:
        await self._call(lambda: self._db.execute("DELETE FROM deleted_projects WHERE ref = ?", (ref,)))

    async def finish_operation(
        self, op_id: str, *, ok: bool, error: str | None = None, services: list[str] | None = None
    ) -> dict[str, Any]:
        """End an operation and move its project to the kind's final status (or delete it).

        services: the services the project should run from now on (from its project.json); when
        unknown, the poller learns them at the next healthy poll.
        """

        def tx(db: sqlite3.Connection):
            op = _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())
            kind = models.KINDS[op["kind"]]
            at = now_iso()
            state = models.SUCCEEDED if ok else models.FAILED
            db.execute(
                "UPDATE operations SET state = ?, error = ?, pid = NULL, progress = CASE WHEN ? THEN 100 ELSE progress"
                " END, finished_at = ?, updated_at = ? WHERE id = ?",
                (state, error, ok, at, at, op_id),
            )
            if ok:
                db.execute(
                    "INSERT INTO task_counts (playbook, tasks) VALUES (?, ?)"
                    " ON CONFLICT (playbook) DO UPDATE SET tasks = excluded.tasks",
                    (kind.playbook, op["tasks_done"]),
                )
            if ok and kind.done is None:
                db.execute(
                    "INSERT OR REPLACE INTO deleted_projects (ref, id, name, organization_slug, region, created_at,"
                    " deleted_at, host) SELECT p.ref, i.id, p.name, p.organization_slug, p.region, p.created_at, ?,"
                    " p.host"
                    " FROM projects p JOIN project_ids i ON i.ref = p.ref WHERE p.ref = ?",
                    (at, op["ref"]),
                )
                db.execute("DELETE FROM projects WHERE ref = ?", (op["ref"],))
                db.execute("DELETE FROM project_ids WHERE ref = ?", (op["ref"],))
                db.execute("DELETE FROM healing WHERE ref = ?", (op["ref"],))
                db.execute("DELETE FROM backup_schedules WHERE ref = ?", (op["ref"],))
                db.execute("DELETE FROM custom_hostnames WHERE ref = ?", (op["ref"],))
                db.execute("DELETE FROM usage WHERE ref = ?", (op["ref"],))
            else:
                status = kind.done if ok else kind.failed
                db.execute(
                    "UPDATE projects SET status = ?, error = ?, services = ?, job_status_at = ? WHERE ref = ?",
                    (status, error, json.dumps(services or []), time.time(), op["ref"]),
                )
            self._event(db, op_id, state, op["kind"], {"error": error} if error else {})
            return _operation(db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone())

        return await self._call(self._tx, tx)

    async def task_count(self, playbook: str) -> int | None:
        def q():
            row = self._db.execute("SELECT tasks FROM task_counts WHERE playbook = ?", (playbook,)).fetchone()
            return None if row is None else row[0]

        return await self._call(q)

    async def operations_for(self, ref: str) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [
                _operation(r)
                for r in self._db.execute("SELECT * FROM operations WHERE ref = ? ORDER BY created_at", (ref,))
            ]
        )

    # -- healing ------------------------------------------------------------------------------
    @staticmethod
    def _healing(db: sqlite3.Connection, ref: str) -> dict[str, Any]:
        row = db.execute("SELECT enabled, services FROM healing WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            return {"enabled": True, "services": {}}
        return {"enabled": bool(row["enabled"]), "services": json.loads(row["services"])}

    def _put_healing(
        self, db: sqlite3.Connection, ref: str, *, enabled: bool | None = None, services: dict | None = None
    ) -> dict[str, Any]:
        state = self._healing(db, ref)
        if enabled is not None:
            state["enabled"] = enabled
        if services is not None:
            state["services"] = services
        db.execute(
            "INSERT INTO healing (ref, enabled, services) VALUES (?, ?, ?)"
            " ON CONFLICT (ref) DO UPDATE SET enabled = excluded.enabled, services = excluded.services",
            (ref, int(state["enabled"]), json.dumps(state["services"])),
        )
        return state

    async def healing_states(self) -> dict[str, dict[str, Any]]:
        """ref -> {"enabled", "services"} for every project with a stored healing state."""

        def q():
            rows = self._db.execute("SELECT ref, enabled, services FROM healing").fetchall()
            return {r["ref"]: {"enabled": bool(r["enabled"]), "services": json.loads(r["services"])} for r in rows}

        return await self._call(q)

    async def get_healing(self, ref: str) -> dict[str, Any]:
        """A project's healing state; NotFound when there is no such project."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            return self._healing(db, ref)

        return await self._call(self._tx, tx)

    async def set_healing_enabled(self, ref: str, enabled: bool) -> dict[str, Any]:
        """Mark a project to be healed or not; turning it back on starts the count afresh."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            current = self._healing(db, ref)
            services = {} if enabled and not current["enabled"] else None
            return self._put_healing(db, ref, enabled=enabled, services=services)

        return await self._call(self._tx, tx)

    async def set_healing_services(self, ref: str, services: dict[str, Any]) -> None:
        """Store the healer's service records of a project that still exists."""

        def tx(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is not None:
                self._put_healing(db, ref, services=services)

        await self._call(self._tx, tx)

    # -- backup schedules -------------------------------------------------------------------------
    async def backup_schedules(self) -> dict[str, dict[str, str]]:
        """ref -> {schedule_for, updated_at} of every project with a schedule of its own."""
        rows = await self._call(lambda: self._db.execute("SELECT * FROM backup_schedules").fetchall())
        return {r["ref"]: {"schedule_for": r["schedule_for"], "updated_at": r["updated_at"]} for r in rows}

    async def get_backup_schedule(self, ref: str) -> dict[str, str] | None:
        """A project's own schedule, None when it has none; ProjectNotFound when there is no such project."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            row = db.execute("SELECT schedule_for, updated_at FROM backup_schedules WHERE ref = ?", (ref,)).fetchone()
            return _row(row)

        return await self._call(self._tx, tx)

    async def set_backup_schedule(self, ref: str, schedule_for: str) -> dict[str, str]:
        """Give a project its own daily backup time (HH:MM:SS, UTC, checked by the caller)."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            at = now_iso()
            db.execute(
                "INSERT INTO backup_schedules (ref, schedule_for, updated_at) VALUES (?, ?, ?) ON CONFLICT (ref)"
                " DO UPDATE SET schedule_for = excluded.schedule_for, updated_at = excluded.updated_at",
                (ref, schedule_for, at),
            )
            return {"schedule_for": schedule_for, "updated_at": at}

        return await self._call(self._tx, tx)

    # -- custom hostnames -----------------------------------------------------------------------
    async def get_custom_hostname(self, ref: str) -> dict[str, Any] | None:
        """A project's custom hostname record, None when it has none; ProjectNotFound when there is no such project."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            row = _row(db.execute("SELECT * FROM custom_hostnames WHERE ref = ?", (ref,)).fetchone())
            if row is not None:
                row["errors"] = json.loads(row["errors"])
            return row

        return await self._call(self._tx, tx)

    async def put_custom_hostname(
        self, ref: str, hostname: str, token: str, status: str, errors: list[str] | None = None
    ) -> dict[str, Any]:
        """Record (or replace) a project's custom hostname; HostnameTaken when another project has it."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM projects WHERE ref = ?", (ref,)).fetchone() is None:
                raise ProjectNotFound(ref)
            other = db.execute(
                "SELECT ref FROM custom_hostnames WHERE hostname = ? AND ref != ?", (hostname, ref)
            ).fetchone()
            if other is not None:
                raise HostnameTaken(hostname)
            db.execute(
                "INSERT INTO custom_hostnames (ref, hostname, token, status, errors, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET hostname = excluded.hostname,"
                " token = excluded.token, status = excluded.status, errors = excluded.errors,"
                " updated_at = excluded.updated_at",
                (ref, hostname, token, status, json.dumps(errors or []), now_iso()),
            )
            row = _row(db.execute("SELECT * FROM custom_hostnames WHERE ref = ?", (ref,)).fetchone())
            row["errors"] = json.loads(row["errors"])
            return row

        return await self._call(self._tx, tx)

    async def hostname_owner(self, hostname: str) -> str | None:
        """The ref of the project whose custom hostname (or vanity subdomain) record holds the name."""

        def tx(db: sqlite3.Connection):
            row = db.execute("SELECT ref FROM custom_hostnames WHERE hostname = ?", (hostname,)).fetchone()
            return row[0] if row else None

        return await self._call(self._tx, tx)

    async def delete_custom_hostname(self, ref: str) -> None:
        await self._call(self._tx, lambda db: db.execute("DELETE FROM custom_hostnames WHERE ref = ?", (ref,)))

    # -- usage --------------------------------------------------------------------------------
    async def add_usage(self, points: dict[str, dict[str, Any]], at: float, keep_seconds: float) -> None:
        """Store a cycle's points (ref -> point) at unix time at, except for a project deleted
        meanwhile (its points went with it); forget every point older than keep_seconds."""

        def tx(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO usage (ref, at, point) SELECT ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM projects WHERE ref = ?)",
                [(ref, at, json.dumps(point), ref) for ref, point in points.items()],
            )
            db.execute("DELETE FROM usage WHERE at < ?", (at - keep_seconds,))

        await self._call(self._tx, tx)

    async def usage_history(self, ref: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The project's usage points from unix time since on, oldest first."""
        return await self._call(
            lambda: [
                json.loads(r[0])
                for r in self._db.execute("SELECT point FROM usage WHERE ref = ? AND at >= ? ORDER BY at", (ref, since))
            ]
        )

    # -- organizations ----------------------------------------------------------------------------
    async def list_organizations(self) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [dict(r) for r in self._db.execute("SELECT * FROM organizations ORDER BY created_at, slug")]
        )

    # -- webhooks and notifications (notifications.py) ------------------------------------------
    async def add_webhook(self, slug: str, url: str, secret: str) -> dict[str, Any]:
        """A webhook of an existing organization (OrganizationNotFound otherwise); the answer has no secret."""
        hook = {"id": str(uuid.uuid4()), "organization_slug": slug, "url": url, "created_at": now_iso()}

        def tx(db: sqlite3.Connection) -> dict[str, Any]:
            if not db.execute("SELECT 1 FROM organizations WHERE slug = ?", (slug,)).fetchone():
                raise OrganizationNotFound(slug)
            db.execute(
                "INSERT INTO webhooks (id, organization_slug, url, secret, created_at) VALUES (?, ?, ?, ?, ?)",
                (hook["id"], slug, url, secret, hook["created_at"]),
            )
            return hook

        return await self._call(self._tx, tx)

    async def list_webhooks(self, slug: str, *, with_secrets: bool = False) -> list[dict[str, Any]]:
        """The organization's webhooks, oldest first; their secrets only for the deliveries."""
        columns = "id, organization_slug, url, created_at" + (", secret" if with_secrets else "")
        return await self._call(
            lambda: [
                dict(r)
                for r in self._db.execute(
                    f"SELECT {columns} FROM webhooks WHERE organization_slug = ? ORDER BY created_at, id",  # noqa: S608 - constant text
                    (slug,),
                )
            ]
        )

    async def delete_webhook(self, slug: str, webhook_id: str) -> bool:
        def tx(db: sqlite3.Connection) -> bool:
            gone = db.execute("DELETE FROM webhooks WHERE organization_slug = ? AND id = ?", (slug, webhook_id))
            return gone.rowcount > 0

        return await self._call(self._tx, tx)

    async def add_notification(self, slug: str, ref: str, event: str, data: dict[str, Any]) -> dict[str, Any]:
        def tx(db: sqlite3.Connection) -> dict[str, Any]:
            at = now_iso()
            cur = db.execute(
                "INSERT INTO notifications (organization_slug, ref, event, data, created_at) VALUES (?, ?, ?, ?, ?)",
                (slug, ref, event, json.dumps(data), at),
            )
            return {"id": cur.lastrowid, "organization_slug": slug, "ref": ref, "event": event, "data": data,
                    "created_at": at}  # fmt: skip

        return await self._call(self._tx, tx)

    async def list_notifications(self, *, unread_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """The newest notifications first, with their deliveries."""

        def read() -> list[dict[str, Any]]:
            where = "WHERE read_at IS NULL" if unread_only else ""
            rows = self._db.execute(
                f"SELECT * FROM notifications {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - constant text
                (limit,),
            ).fetchall()
            out = []
            for r in rows:
                deliveries = [
                    dict(d)
                    for d in self._db.execute(
                        "SELECT webhook_id, attempt, status, error, at FROM deliveries WHERE notification_id = ?"
                        " ORDER BY id",
                        (r["id"],),
                    )
                ]
                out.append({**dict(r), "data": json.loads(r["data"]), "deliveries": deliveries})
            return out

        return await self._call(read)

    async def mark_notifications_read(self, ids: list[int] | None = None) -> int:
        """Mark these (None: all) unread notifications read; returns how many were."""

        def tx(db: sqlite3.Connection) -> int:
            at = now_iso()
            if ids is None:
                return db.execute("UPDATE notifications SET read_at = ? WHERE read_at IS NULL", (at,)).rowcount
            return sum(
                db.execute("UPDATE notifications SET read_at = ? WHERE id = ? AND read_at IS NULL", (at, i)).rowcount
                for i in ids
            )

        return await self._call(self._tx, tx)

    async def unread_notifications(self) -> dict[str, int]:
        """Unread notifications by event."""
        rows = await self._call(
            lambda: self._db.execute(
                "SELECT event, count(*) FROM notifications WHERE read_at IS NULL GROUP BY event"
            ).fetchall()
        )
        return {r[0]: r[1] for r in rows}

    async def add_delivery(
        self, notification_id: int, webhook_id: str, attempt: int, status: int | None, error: str | None
    ) -> None:
        def tx(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO deliveries (notification_id, webhook_id, attempt, status, error, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (notification_id, webhook_id, attempt, status, error, now_iso()),
            )

        await self._call(self._tx, tx)

    async def get_organization(self, slug: str) -> dict[str, Any]:
        """An organization; OrganizationNotFound when there is none with that slug."""
        row = await self._call(
            lambda: self._db.execute("SELECT * FROM organizations WHERE slug = ?", (slug,)).fetchone()
        )
        if row is None:
            raise OrganizationNotFound(slug)
        return dict(row)

    async def create_organization(self, slug: str, name: str) -> dict[str, Any] | None:
        """Insert an organization; None when the slug is taken (the caller mints another)."""

        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM organizations WHERE slug = ?", (slug,)).fetchone():
                return None
            db.execute("INSERT INTO organizations (slug, name, created_at) VALUES (?, ?, ?)", (slug, name, now_iso()))
            return dict(db.execute("SELECT * FROM organizations WHERE slug = ?", (slug,)).fetchone())

        return await self._call(self._tx, tx)

    # -- tokens -----------------------------------------------------------------------------------
    async def create_token(self, token_id: str, name: str, digest: str) -> dict[str, Any]:
        def tx(db: sqlite3.Connection):
            if db.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise TokenNameTaken(name)
            db.execute(
                "INSERT INTO tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)",
                (token_id, name, digest, now_iso()),
            )
            return dict(db.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone())

        return await self._call(self._tx, tx)

    async def list_tokens(self) -> list[dict[str, Any]]:
        return await self._call(
            lambda: [dict(r) for r in self._db.execute("SELECT * FROM tokens ORDER BY created_at, name")]
        )

    async def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Mark a token revoked (kept, so the list shows when); TokenNotFound when there is none."""

        def tx(db: sqlite3.Connection):
            row = db.execute("SELECT * FROM tokens WHERE id = ? OR name = ?", (token_id, token_id)).fetchone()
            if row is None:
                raise TokenNotFound(token_id)
            db.execute("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now_iso(), row["id"]))
            return dict(db.execute("SELECT * FROM tokens WHERE id = ?", (row["id"],)).fetchone())

        return await self._call(self._tx, tx)
