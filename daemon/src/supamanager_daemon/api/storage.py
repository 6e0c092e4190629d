"""Routes of the Storage tag: a project's buckets, read from its storage.buckets table (the storage
service's, which storage-api migrates), answered directly over the project's pooler; its storage
settings (`config/storage`), through the one settings machinery (settings.py): read from .env,
changed by an operation of kind `settings` that recreates the storage service alone."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..shapes.settings import KINDS, STORAGE_FIELDS
from ..shapes.storage import StorageConfigResponse, UpdateStorageConfigBody, V1StorageBucketResponse
from .database import project_database
from .projects import OPERATION_HEADER, accepted, load_project, path_ref
from .routing import Api, Reply
from .settings import change_settings, read_settings, typed

api = Api("Storage", "A project's storage buckets and settings.")

_PRESENT = "select to_regclass('storage.buckets') is not null as present"
# A null owner (a bucket made with the service key) is "", as upstream answers it; times as ISO 8601.
_BUCKETS = (
    "select id::text, name, coalesce(owner::text, '') as owner, to_json(created_at) #>> '{}' as created_at,"
    " to_json(updated_at) #>> '{}' as updated_at, coalesce(public, false) as public"
    " from storage.buckets order by name"
)


@api.get(
    "/v1/projects/{ref}/storage/buckets",
    "v1-list-all-buckets",
    "Lists all buckets",
    description="The project's buckets (its storage.buckets table; none while the storage service has not made it).",
    response=list[V1StorageBucketResponse],
    errors=(400, 404, 503),
)
async def list_buckets(request: web.Request) -> list[dict]:
    ref, target, _ = await project_database(request)
    dbs = request.app[keys.PROJECT_DBS]
    if not (await dbs.query(ref, target, _PRESENT, read_only=True))[0]["present"]:
        return []
    return await dbs.query(ref, target, _BUCKETS, read_only=True)


def _config(settings: dict[str, Any]) -> dict[str, Any]:
    """StorageConfigResponse from the role's storage settings (the compose defaults where .env has none)."""
    return {
        "fileSizeLimit": settings.get("file_size_limit") if settings.get("file_size_limit") is not None else 52428800,
        "features": {
            "imageTransformation": {"enabled": settings.get("image_transformation_enabled") is not False},
            "s3Protocol": {"enabled": settings.get("s3_protocol_enabled") is not False},
            "icebergCatalog": {"enabled": False, "maxNamespaces": 0, "maxTables": 0, "maxCatalogs": 0},
            "vectorBuckets": {"enabled": False, "maxBuckets": 0, "maxIndexes": 0},
        },
        "capabilities": {"list_v2": False, "iceberg_catalog": False},
        "external": {"upstreamTarget": "main"},
        # No storage migration to pin: the CLI's link writes none for an empty one.
        "migrationVersion": "",
        "databasePoolMode": "recycled",
    }


async def _current(request: web.Request, ref: str) -> dict[str, Any]:
    _, raw = await read_settings(request, ref, "storage")
    return {name: typed(KINDS[spec["type"]], raw.get(name)) for name, spec in STORAGE_FIELDS.items()}


@api.get(
    "/v1/projects/{ref}/config/storage",
    "v1-get-storage-config",
    "Gets project's storage config",
    description="The settings the project's storage service runs with: the file size limit (bytes), image"
    " transformation, the S3 protocol; iceberg catalogs and vector buckets are not on this host (disabled).",
    response=StorageConfigResponse,
    errors=(404, 503),
)
async def get_storage_config(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    return _config(await _current(request, project["ref"]))


@api.patch(
    "/v1/projects/{ref}/config/storage",
    "v1-update-storage-config",
    "Updates project's storage config",
    description="An operation (kind `settings`): the storage service alone is recreated with the settings given"
    " and waited for, the project staying ACTIVE_HEALTHY; when it does not come up healthy the settings before are"
    " put back and the operation fails saying so. Taken: `fileSizeLimit`, `features.imageTransformation`,"
    " `features.s3Protocol`; `icebergCatalog` and `vectorBuckets` only disabled, `external.upstreamTarget` only"
    " `main`. An unknown field, a wrong type or a value out of range is 400 naming it, and nothing changes.",
    body=UpdateStorageConfigBody,
    errors=(400, 404, 409, 503),
    headers=OPERATION_HEADER,
)
async def update_storage_config(request: web.Request, body: UpdateStorageConfigBody) -> Reply:
    op = await change_settings(request, path_ref(request), "storage", body.settings())
    return accepted(None, op)
