"""Routes of the Rest tag: a project's PostgREST settings (`postgrest`), through the one settings
machinery (settings.py): read from .env, changed by an operation of kind `settings` that recreates
the rest service alone."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..shapes.rest import PostgrestConfigWithJWTSecretResponse, V1PostgrestConfigResponse, V1UpdatePostgrestConfigBody
from ..shapes.settings import KINDS, POSTGREST_FIELDS
from .projects import OPERATION_HEADER, accepted, load_project, path_ref
from .routing import Api, Reply
from .settings import change_settings, read_settings, typed

api = Api("Rest", "A project's PostgREST settings, as its rest service runs with them.")


async def _current(request: web.Request, ref: str) -> dict[str, Any]:
    _, raw = await read_settings(request, ref, "postgrest")
    answer = {name: typed(KINDS[spec["type"]], raw.get(name)) for name, spec in POSTGREST_FIELDS.items()}
    # What the rest service runs with when .env does not say (the role's compose defaults).
    return {"db_schema": "", "max_rows": 1000, "db_extra_search_path": "public"} | {
        k: v for k, v in answer.items() if v is not None or k == "db_pool"
    }


@api.get(
    "/v1/projects/{ref}/postgrest",
    "v1-get-postgrest-service-config",
    "Gets project's postgrest config",
    description="The settings the project's rest service (PostgREST) runs with; `db_pool` null: PostgREST's own"
    " default. The JWT secret is not answered.",
    response=PostgrestConfigWithJWTSecretResponse,
    errors=(404, 503),
)
async def get_postgrest_config(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    return await _current(request, project["ref"])


@api.patch(
    "/v1/projects/{ref}/postgrest",
    "v1-update-postgrest-service-config",
    "Updates project's postgrest config",
    description="An operation (kind `settings`): the rest service alone is recreated with the settings given and"
    " waited for, the project staying ACTIVE_HEALTHY; when it does not come up healthy the settings before are put"
    " back and the operation fails saying so. Answers at once with the settings as they will be. Schema lists are"
    " comma-separated identifiers; an unknown field, a wrong type or a value out of range is 400 naming it, and"
    " nothing changes.",
    body=V1UpdatePostgrestConfigBody,
    response=V1PostgrestConfigResponse,
    errors=(400, 404, 409, 503),
    headers=OPERATION_HEADER,
)
async def update_postgrest_config(request: web.Request, body: Any) -> Reply:
    ref = path_ref(request)
    change = body.model_dump(exclude_none=True)
    op = await change_settings(request, ref, "postgrest", change)
    return accepted({**await _current(request, ref), **change}, op)
