"""The HTTP API: one routes module per Management API tag, thin (parse, call, answer).

Adding an operation: declare it in `api/<tag>.py` with its shapes from `shapes/<tag>.py` (see
routing.py), and list a new module in TAGS. /openapi.json and the served routes both come from
TAGS, so a route cannot be served undocumented.
"""

from __future__ import annotations

from aiohttp import web

from . import (
    advisors,
    auth,
    backups,
    billing,
    database,
    domains,
    fleet,
    functions,
    notifications,
    operations,
    organizations,
    platform,
    projects,
    rest,
    secrets,
    storage,
    studio,
    tokens,
    usage,
)
from .routing import Operation, add_routes

# In the order the document lists them.
TAGS = (
    projects.api,
    database.api,
    organizations.api,
    backups.api,
    functions.api,
    secrets.api,
    auth.api,
    rest.api,
    storage.api,
    advisors.api,
    billing.api,
    domains.api,
    operations.api,
    fleet.api,
    usage.api,
    usage.analytics,
    notifications.api,
    studio.api,
    tokens.api,
    platform.api,
)


def all_operations() -> list[Operation]:
    return [op for tag in TAGS for op in tag.operations]


def setup(app: web.Application) -> None:
    add_routes(app, all_operations())
