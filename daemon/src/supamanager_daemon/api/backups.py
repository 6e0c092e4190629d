"""Routes of the Database backups tag. Reads answer from the host's backup repository directly;
restores are operations (kind restore_backup: restore.yml in place, with a backup id or a time), and
so is a backup taken now (kind backup: backup.yml; ours, also what the daemon's schedule starts) and a
restore point (a backup that carries its name). The schedule is the daemon's own state (the store):
setting it changes nothing on the host, so it is answered at once.

A deleted project's backups stay in the repository until its retention ends: its listing still
answers, and a restore (a backup id, or a point in time) brings it back under its ref and id, with
the keys and secrets its backup sealed (the store's deleted_projects)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiohttp import web

from .. import keys, models
from ..errors import Conflict, InvalidState, NotFound
from ..operations.backup_schedule import schedule_of
from ..projects.files import read_backups, wal_streamed
from ..shapes.backups import (
    RestorePointQuery,
    V1BackupScheduleResponse,
    V1BackupsResponse,
    V1RestoreBackupBody,
    V1RestorePitrBody,
    V1RestorePointPostBody,
    V1RestorePointResponse,
    V1UpdateBackupScheduleBody,
)
from ..store import ProjectNotFound
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply

api = Api("Database", "A project's backups and its point-in-time recovery window.")


@api.get(
    "/v1/projects/{ref}/database/backups",
    "v1-list-all-backups",
    "Lists all backups",
    description="The project's published backups (a backup being written is never listed), oldest first, and"
    " the window a point-in-time restore can reach. Read from the backup repository on the host. A deleted"
    " project's backups are listed too, until their retention ends (the role's supabase_backup_deleted_keep_days).",
    response=V1BackupsResponse,
    errors=(404,),
)
async def list_backups(request: web.Request) -> dict[str, Any]:
    project = await project_or_deleted(request)
    settings = request.app[keys.SETTINGS]
    manifests, streamed = await asyncio.to_thread(
        lambda: (read_backups(settings, project["ref"]), wal_streamed(settings, project["ref"]))
    )
    ends = [m["base_end"] for m in manifests if m.get("status") == "COMPLETED" and isinstance(m.get("base_end"), int)]
    return {
        "region": project["region"],
        "walg_enabled": False,
        "pitr_enabled": streamed,
        "backups": [
            {"id": m["id"], "is_physical_backup": True, "status": m.get("status"), "inserted_at": m.get("inserted_at")}
            for m in manifests
        ],
        "physical_backup_data": {
            "earliest_physical_backup_date_unix": min(ends) if ends else None,
            "latest_physical_backup_date_unix": max(ends) if ends else None,
        },
    }


async def project_or_deleted(request: web.Request) -> dict[str, Any]:
    """The project, else the deleted project of that ref while its repository holds a backup, else 404."""
    ref = path_ref(request)
    project = await request.app[keys.STORE].get_project(ref)
    if project is None:
        project = await request.app[keys.STORE].get_deleted_project(ref)
        if project is not None and not await asyncio.to_thread(read_backups, request.app[keys.SETTINGS], ref):
            project = None  # its backups are gone (retention): nothing left of it
    if project is None:
        raise ProjectNotFound(ref)
    return project


def choose_backup(project: dict[str, Any]) -> str:
    """The daemon backs up a healthy project (its status stays ACTIVE_HEALTHY meanwhile); a paused
    or unhealthy one is backed up with playbooks/backup.yml, which starts a paused database alone."""
    if project["status"] != models.ACTIVE_HEALTHY:
        raise InvalidState(
            f"project {project['ref']} is {project['status']}: the daemon backs up a healthy project"
            " (playbooks/backup.yml backs up a paused one)"
        )
    return "backup"


@api.post(
    "/v1/projects/{ref}/database/backups",
    "supamanager-create-backup",
    "Takes a backup now (ours)",
    description="A whole backup of a healthy project (database, roles, storage, functions, sealed settings),"
    " checked, published in the host's repository: backup.yml as an operation. Answers at once with the"
    " operation to follow; the backup is listed once published (a failed check lists it FAILED).",
    status=201,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
    ours=True,
)
async def create_backup(request: web.Request) -> Reply:
    ref = path_ref(request)
    _project, op = await record(request, lambda: request.app[keys.STORE].start_operation(ref, choose_backup, {}))
    return accepted(None, op)


def choose_restore_backup(project: dict[str, Any]) -> str:
    """Only a project meant to run is restored in place (restore.yml stops, restores, starts it); UNKNOWN
    too, as a restart: the poll could not ask Docker, the playbook will."""
    if project["status"] not in (models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY, models.UNKNOWN):
        raise InvalidState(f"project {project['ref']} is {project['status']}: only an active project is restored")
    return "restore_backup"


def check_restore_target(manifests: list[dict[str, Any]], params: dict[str, int]) -> None:
    """What restore.yml would refuse after stopping nothing, refused before it runs: a backup id that
    is not a completed backup, a second before the recovery window (the end of the oldest completed
    backup), a project with no completed backup."""
    completed = [m for m in manifests if m.get("status") == "COMPLETED"]
    if "backup_id" in params:
        if params["backup_id"] not in {m["id"] for m in completed}:
            raise InvalidState(
                f"no completed backup {params['backup_id']} of this project (GET .../database/backups lists them)",
                code="backup_not_found",
            )
        return
    ends = [m["base_end"] for m in completed if isinstance(m.get("base_end"), int)]
    if not ends:
        raise InvalidState("this project has no completed backup to restore from", code="no_backup")
    if params["recovery_time_target_unix"] < min(ends):
        raise InvalidState(
            f"{params['recovery_time_target_unix']} is before the recovery window, which starts at {min(ends)}"
            " (unix seconds)",
            code="outside_recovery_window",
        )


def choose_restore_deleted(project: dict[str, Any]) -> str:
    """A deleted project, revived by the store (REMOVED): restore.yml creates it from the backup."""
    if project["status"] != models.REMOVED:  # it came back meanwhile: judged as any project
        return choose_restore_backup(project)
    return "restore_backup"


async def _restore(request: web.Request, params: dict[str, int]) -> Reply:
    ref = path_ref(request)
    project = await project_or_deleted(request)
    deleted = "deleted_at" in project
    if not deleted:
        choose_restore_backup(project)  # the project's status first; the store checks it again atomically
    manifests = await asyncio.to_thread(read_backups, request.app[keys.SETTINGS], ref)
    check_restore_target(manifests, params)
    choose = choose_restore_deleted if deleted else choose_restore_backup
    _project, op = await record(
        request, lambda: request.app[keys.STORE].start_operation(ref, choose, params, revive=deleted)
    )
    return accepted(None, op)


_RESTORE = {"status": 201, "errors": (400, 404, 409), "headers": OPERATION_HEADER}


@api.post(
    "/v1/projects/{ref}/database/backups/restore-pitr",
    "v1-restore-pitr-backup",
    "Restores a PITR backup for a database",
    description="The database as it was at `recovery_time_target_unix` (the newest backup before it and the WAL"
    " streamed since), with the storage and functions of that backup. Answers at once with the operation to"
    " follow (status RESTORING); a failed restore leaves the project as it was. A deleted project whose"
    " backups are kept comes back under its ref, with its keys and secrets; its host ports are allocated"
    " again.",
    body=V1RestorePitrBody,
    **_RESTORE,
)
async def restore_pitr(request: web.Request, body: V1RestorePitrBody) -> Reply:
    return await _restore(request, {"recovery_time_target_unix": body.recovery_time_target_unix})


@api.post(
    "/v1/projects/{ref}/database/backups/restore",
    "v1-restore-physical-backup",
    "Restores a physical backup for a database",
    description="The project as the backup `id` holds it (database, storage, functions). Answers at once with"
    " the operation to follow; a failed restore leaves the project as it was. A deleted project whose backups"
    " are kept (its final backup) comes back under its ref, with its keys and secrets; its host ports are"
    " allocated again.",
    body=V1RestoreBackupBody,
    **_RESTORE,
)
async def restore_backup(request: web.Request, body: V1RestoreBackupBody) -> Reply:
    return await _restore(request, {"backup_id": body.id})


# -- the schedule ---------------------------------------------------------------------------------
@api.get(
    "/v1/projects/{ref}/database/backups/schedule",
    "v1-get-backup-schedule",
    "Gets the backup schedule for a project",
    description="The time of day (UTC) of the project's daily backup: its own (PATCH), else the daemon's"
    " SUPAMANAGER_BACKUP_SCHEDULE_FOR. 404 when it has neither (the daemon then never backs it up by itself).",
    response=V1BackupScheduleResponse,
    errors=(404,),
)
async def get_backup_schedule(request: web.Request) -> dict[str, str]:
    project = await load_project(request)
    own = await request.app[keys.STORE].get_backup_schedule(project["ref"])
    schedule = schedule_of(project, own, request.app[keys.SETTINGS].backup_schedule_for)
    if schedule is None:
        raise NotFound(
            f"project {project['ref']} has no backup schedule (PATCH it, or set SUPAMANAGER_BACKUP_SCHEDULE_FOR)",
            code="backup_schedule_not_found",
        )
    return schedule


@api.patch(
    "/v1/projects/{ref}/database/backups/schedule",
    "v1-update-backup-schedule",
    "Updates the backup schedule time for a project",
    description="Sets the time of day (UTC, HH:MM:SS) of the project's daily backup, kept in the daemon's store."
    " If that time has already passed today, the first backup at it is tomorrow's.",
    body=V1UpdateBackupScheduleBody,
    response=V1BackupScheduleResponse,
    errors=(400, 404),
)
async def update_backup_schedule(request: web.Request, body: V1UpdateBackupScheduleBody) -> dict[str, str]:
    return await request.app[keys.STORE].set_backup_schedule(path_ref(request), body.schedule_for)


# -- restore points -------------------------------------------------------------------------------
def _iso(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat()


def restore_points(manifests: list[dict[str, Any]], operations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> the restore point, oldest first. A published backup carrying the name says AVAILABLE
    (FAILED when its checks failed); else its operation says PENDING while it runs, FAILED when it
    failed, REMOVED when it succeeded and its backup is gone since (the retention keeps it)."""
    points: dict[str, dict[str, Any]] = {}
    for op in operations:  # oldest first
        name = op["params"].get("restore_point") if op["kind"] == "backup" else None
        if name:
            status = {"succeeded": "REMOVED", "failed": "FAILED"}.get(op["state"], "PENDING")
            points[name] = {"name": name, "status": status, "completed_on": None}
    for manifest in manifests:
        name = manifest.get("restore_point")
        if name:
            ok = manifest.get("status") == "COMPLETED" and isinstance(manifest.get("base_end"), int)
            points[name] = {
                "name": name,
                "status": "AVAILABLE" if ok else "FAILED",
                "completed_on": _iso(manifest["base_end"]) if ok else None,
                "backup_id": manifest["id"],
            }
    return points


async def _restore_points(request: web.Request, ref: str) -> dict[str, dict[str, Any]]:
    manifests = await asyncio.to_thread(read_backups, request.app[keys.SETTINGS], ref)
    operations = await request.app[keys.STORE].operations_for(ref)
    return restore_points(manifests, operations)


@api.post(
    "/v1/projects/{ref}/database/backups/restore-point",
    "v1-create-restore-point",
    "Initiates a creation of a restore point for a database",
    description="A named point to come back to: a backup of the healthy project (backup.yml, as an operation)"
    " whose manifest carries the name. Answers at once, PENDING, with the operation to follow; once published,"
    " GET .../restore-point?name= says AVAILABLE and .../backups/restore with its backup id returns to it.",
    body=V1RestorePointPostBody,
    response=V1RestorePointResponse,
    status=201,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def create_restore_point(request: web.Request, body: V1RestorePointPostBody) -> Reply:
    project = await load_project(request)
    choose_backup(project)
    existing = (await _restore_points(request, project["ref"])).get(body.name)
    if existing is not None and existing["status"] in ("AVAILABLE", "PENDING"):
        raise Conflict(f"restore point {body.name!r} exists ({existing['status']})", code="restore_point_exists")
    _project, op = await record(
        request,
        lambda: request.app[keys.STORE].start_operation(project["ref"], choose_backup, {"restore_point": body.name}),
    )
    return accepted({"name": body.name, "status": "PENDING", "completed_on": None}, op)


@api.get(
    "/v1/projects/{ref}/database/backups/restore-point",
    "v1-get-restore-point",
    "Get restore points for project",
    description="The restore point `name` (omitted: the newest): PENDING, AVAILABLE, FAILED or REMOVED.",
    query=RestorePointQuery,
    response=V1RestorePointResponse,
    errors=(404,),
)
async def get_restore_point(request: web.Request, query: RestorePointQuery) -> dict[str, Any]:
    project = await load_project(request)
    points = await _restore_points(request, project["ref"])
    point = points.get(query.name) if query.name is not None else next(reversed(points.values()), None)
    if point is None:
        raise NotFound(
            f"no restore point {query.name or ''!r} in project {project['ref']}", code="restore_point_not_found"
        )
    return point
