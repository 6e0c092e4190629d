"""Routes of the Auth tag: a project's auth settings (GoTrue's), `config/auth`, through the one
settings machinery (settings.py: read from .env, changed by an operation of kind `settings`); the
auth service is recreated (rest too for jwt_exp). Secrets are answered as their SHA-256.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from ..shapes.auth import (
    AUTH_CONFIG_FIELDS,
    DEFAULTS,
    HONOURED,
    SECRET_FIELDS,
    AuthConfigResponse,
    UpdateAuthConfigBody,
)
from .projects import OPERATION_HEADER, accepted, load_project, path_ref
from .routing import Api, Reply
from .settings import change_settings, read_settings, typed

api = Api("Auth", "A project's auth settings, as its auth service (GoTrue) runs with them.")


def _value(name: str, raw: str | None) -> Any:
    if name in SECRET_FIELDS:
        return hashlib.sha256(raw.encode()).hexdigest() if raw else None
    return typed(HONOURED[name][0], raw)


async def _current(request: web.Request, ref: str) -> dict[str, Any]:
    """The settings as answered."""
    _, raw = await read_settings(request, ref, "auth")
    answer: dict[str, Any] = {**dict.fromkeys(AUTH_CONFIG_FIELDS), **DEFAULTS}
    for name, value in raw.items():
        if name in HONOURED:
            answer[name] = _value(name, value)
    return answer


@api.get(
    "/v1/projects/{ref}/config/auth",
    "v1-get-auth-service-config",
    "Gets project's auth config",
    description="The settings the project's auth service runs with (null: a setting this host does not have);"
    " `smtp_pass` and the providers' secrets as their SHA-256 (hex), never in clear.",
    response=AuthConfigResponse,
    errors=(404, 503),
)
async def get_auth_config(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    return await _current(request, project["ref"])


@api.patch(
    "/v1/projects/{ref}/config/auth",
    "v1-update-auth-service-config",
    "Updates a project's auth config",
    description="An operation (kind `settings`): the auth service is recreated with the settings given (rest too"
    " for `jwt_exp`), the project staying ACTIVE_HEALTHY; when auth does not come up healthy the settings before"
    " are put back and the operation fails saying so. Answers at once with the settings as they will be. A field"
    " of the document this host does not have is taken only as null; an unknown one, a wrong type or a value"
    " out of range is 400 naming it, and nothing changes.",
    body=UpdateAuthConfigBody,
    response=AuthConfigResponse,
    errors=(400, 404, 409, 503),
    headers=OPERATION_HEADER,
)
async def update_auth_config(request: web.Request, body: Any) -> Reply:
    ref = path_ref(request)
    change = body.model_dump(exclude_none=True)
    op = await change_settings(request, ref, "auth", change)
    answer = await _current(request, ref)
    for name, value in change.items():
        answer[name] = hashlib.sha256(value.encode()).hexdigest() if name in SECRET_FIELDS else value
    return accepted(answer, op)
