"""Routes of the Auth tag: a project's auth settings (GoTrue's), `config/auth`.

A read answers from the project's .env through the map of setting -> variable that the role
publishes in project.json (`auth_settings`), so what is answered is what the auth service runs
with. A change is an operation (kind `settings`: playbooks/settings.yml), because it recreates
containers: the role renders the project with the changed settings, recreates only the containers
whose definition changes (auth; rest too for jwt_exp), waits for health, and renders the kept
settings again when auth does not come up healthy. The values travel to the job as its secrets
(jobs.save_secrets), never into the store; secrets are answered as their SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from aiohttp import web

from .. import keys, models
from ..errors import InvalidRequest, InvalidState, Unavailable
from ..projects.files import project_info, read_env
from ..shapes.auth import (
    AUTH_CONFIG_FIELDS,
    DEFAULTS,
    HONOURED,
    SECRET_FIELDS,
    AuthConfigResponse,
    UpdateAuthConfigBody,
)
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply

api = Api("Auth", "A project's auth settings, as its auth service (GoTrue) runs with them.")

# What .env cannot carry (the role's filter settings_problems refuses the same): a quote, a
# backslash, $, a backtick or a control character.
_UNSAFE = re.compile(r"""['"\\$`\x00-\x1f\x7f]""")


def _value(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if name in SECRET_FIELDS:
        return hashlib.sha256(raw.encode()).hexdigest() if raw else None
    kind = HONOURED[name][0]
    if kind is bool:
        return raw == "true"
    if kind is int:
        return int(raw) if raw.isdigit() else None
    return raw


async def _current(request: web.Request, ref: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(the role's map of setting -> .env variable, the settings as answered)."""
    settings = request.app[keys.SETTINGS]
    try:
        info, env = await asyncio.to_thread(lambda: (project_info(settings, ref), read_env(settings, ref)))
    except FileNotFoundError:
        raise Unavailable(f"project {ref} has no files on its host yet", code="project_not_ready") from None
    names = info.get("auth_settings") if isinstance(info.get("auth_settings"), dict) else {}
    answer: dict[str, Any] = {**dict.fromkeys(AUTH_CONFIG_FIELDS), **DEFAULTS}
    for name, variable in names.items():
        if name in HONOURED:
            answer[name] = _value(name, env.get(variable))
    return names, answer


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
    return (await _current(request, project["ref"]))[1]


def choose_settings(project: dict[str, Any]) -> str:
    """A running project only: the change recreates its services and waits for their health."""
    if project["status"] not in (models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY):
        raise InvalidState(f"project {project['ref']} is {project['status']}: only a running project's settings change")
    return "settings"


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
    for name, value in sorted(change.items()):
        if isinstance(value, str) and _UNSAFE.search(value):
            raise InvalidRequest(
                f"field '{name}' holds a quote, a backslash, $, a backtick or a control character",
                code="invalid_value",
                field=name,
            )
    await load_project(request)
    names, answer = await _current(request, ref)
    unknown = sorted(set(change) - set(names))
    if unknown:
        raise InvalidState(
            f"project {ref} was rendered by a role without the setting(s) {', '.join(unknown)}: resume it first",
            code="settings_unknown_to_project",
            fields=unknown,
        )
    # An empty change is an operation too (a converge that recreates nothing): the answer always
    # names the operation, as the document's header says.
    jobs = request.app[keys.JOBS]

    async def write() -> tuple[dict[str, Any], dict[str, Any]]:
        project, op = await request.app[keys.STORE].start_operation(ref, choose_settings, {"auth": sorted(change)})
        jobs.save_secrets(op["id"], {"supabase_auth_settings_change": change})
        return project, op

    _, op = await record(request, write)
    for name, value in change.items():
        answer[name] = hashlib.sha256(value.encode()).hexdigest() if name in SECRET_FIELDS else value
    return accepted(answer, op)
