"""Routes of the Database backups tag. Reads answer from the host's backup repository directly;
restores are operations (kind restore_backup: restore.yml in place, with a backup id or a time), and
so is a backup taken now (kind backup: backup.yml; ours, also what the daemon's schedule starts)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import keys, models
from ..errors import InvalidState
from ..projects.files import read_backups, wal_streamed
from ..shapes.backups import V1BackupsResponse, V1RestoreBackupBody, V1RestorePitrBody
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply

api = Api("Database", "A project's backups and its point-in-time recovery window.")


@api.get(
    "/v1/projects/{ref}/database/backups",
    "v1-list-all-backups",
    "Lists all backups",
    description="The project's published backups (a backup being written is never listed), oldest first, and"
    " the window a point-in-time restore can reach. Read from the backup repository on the host.",
    response=V1BackupsResponse,
    errors=(404,),
)
async def list_backups(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
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


async def _restore(request: web.Request, params: dict[str, int]) -> Reply:
    ref = path_ref(request)
    project = await load_project(request)
    choose_restore_backup(project)  # the project's status first; the store checks it again atomically
    manifests = await asyncio.to_thread(read_backups, request.app[keys.SETTINGS], ref)
    check_restore_target(manifests, params)
    _project, op = await record(
        request, lambda: request.app[keys.STORE].start_operation(ref, choose_restore_backup, params)
    )
    return accepted(None, op)


_RESTORE = {"status": 201, "errors": (400, 404, 409), "headers": OPERATION_HEADER}


@api.post(
    "/v1/projects/{ref}/database/backups/restore-pitr",
    "v1-restore-pitr-backup",
    "Restores a PITR backup for a database",
    description="The database as it was at `recovery_time_target_unix` (the newest backup before it and the WAL"
    " streamed since), with the storage and functions of that backup. Answers at once with the operation to"
    " follow (status RESTORING); a failed restore leaves the project as it was.",
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
    " the operation to follow; a failed restore leaves the project as it was.",
    body=V1RestoreBackupBody,
    **_RESTORE,
)
async def restore_backup(request: web.Request, body: V1RestoreBackupBody) -> Reply:
    return await _restore(request, {"backup_id": body.id})
