"""Routes of the Database backups tag. Reads answer from the host's backup repository directly."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import keys
from ..projects.files import read_backups, wal_streamed
from ..shapes.backups import V1BackupsResponse
from .projects import load_project
from .routing import Api

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
