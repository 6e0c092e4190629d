"""Routes of the Storage tag: a project's buckets, read from its storage.buckets table (the storage
service's, which storage-api migrates), answered directly over the project's pooler."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..shapes.storage import V1StorageBucketResponse
from .database import project_database
from .routing import Api

api = Api("Storage", "A project's storage buckets.")

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
