"""A project's service settings, one machinery for every group: auth (`config/auth`), postgrest
(`postgrest`), storage (`config/storage`) and postgres (`config/database/postgres`). Not a tag: the
routes are in auth.py, rest.py, storage.py and database.py.

A read answers from the project's .env through the map of setting -> variable that the role
publishes in project.json (`<group>_settings`), so what is answered is what the service runs with.
A change is an operation (kind `settings`: playbooks/settings.yml) because it recreates containers:
the role renders the project with the changed settings, recreates only the containers whose
definition changes, waits for their health alone, and renders the kept settings again when they
do not come up healthy. The values travel to the job as its secrets (jobs.save_secrets:
`supabase_<group>_settings_change`), never into the store; the operation's params name the fields.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from .. import keys, models
from ..errors import InvalidRequest, InvalidState, Unavailable
from ..projects.files import project_info, read_env
from .projects import load_project, record

GROUPS = ("auth", "postgrest", "storage", "postgres")

# What .env cannot carry (the role's filter settings_problems refuses the same): a quote, a
# backslash, $, a backtick or a control character.
_UNSAFE = re.compile(r"""['"\\$`\x00-\x1f\x7f]""")


async def read_settings(request: web.Request, ref: str, group: str) -> tuple[dict[str, str], dict[str, str | None]]:
    """(the role's map of setting -> .env variable of the group, each setting's raw .env value or None)."""
    settings = request.app[keys.SETTINGS]
    try:
        info, env = await asyncio.to_thread(lambda: (project_info(settings, ref), read_env(settings, ref)))
    except FileNotFoundError:
        raise Unavailable(f"project {ref} has no files on its host yet", code="project_not_ready") from None
    names = info.get(f"{group}_settings")
    names = names if isinstance(names, dict) else {}
    return names, {name: env.get(variable) for name, variable in names.items()}


def choose_settings(project: dict[str, Any]) -> str:
    """A running project only: the change recreates its services and waits for their health."""
    if project["status"] not in (models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY):
        raise InvalidState(f"project {project['ref']} is {project['status']}: only a running project's settings change")
    return "settings"


def refuse_unsafe(change: dict[str, Any]) -> None:
    """400 naming the first field whose text .env cannot carry (its value never in the message)."""
    for name, value in sorted(change.items()):
        if isinstance(value, str) and _UNSAFE.search(value):
            raise InvalidRequest(
                f"field '{name}' holds a quote, a backslash, $, a backtick or a control character",
                code="invalid_value",
                field=name,
            )


async def change_settings(request: web.Request, ref: str, group: str, change: dict[str, Any]) -> dict[str, Any]:
    """Check the change against the project and record the operation that takes it: the operation.

    change: the role's setting names -> values, already validated by the route's shape. A setting
    the project's role does not know (rendered before it had it) is 400, nothing changed."""
    refuse_unsafe(change)
    await load_project(request)
    names, _ = await read_settings(request, ref, group)
    unknown = sorted(set(change) - set(names))
    if unknown:
        raise InvalidState(
            f"project {ref} was rendered by a role without the setting(s) {', '.join(unknown)}: resume it first",
            code="settings_unknown_to_project",
            fields=unknown,
        )
    # An empty change is an operation too (a converge that recreates nothing).
    jobs = request.app[keys.JOBS]

    async def write() -> tuple[dict[str, Any], dict[str, Any]]:
        project, op = await request.app[keys.STORE].start_operation(ref, choose_settings, {group: sorted(change)})
        jobs.save_secrets(op["id"], {f"supabase_{group}_settings_change": change})
        return project, op

    _, op = await record(request, write)
    return op


def typed(kind: Any, raw: str | None) -> Any:
    """A setting's .env text as the type its shape has (None: not there, or not of that type)."""
    if raw is None:
        return None
    if kind is bool:
        return raw == "true" if raw in ("true", "false") else None
    if kind is int:
        return int(raw) if raw.isdigit() else None
    return raw
