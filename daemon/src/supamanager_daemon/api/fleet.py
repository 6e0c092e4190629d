"""Routes of ours for the fleet: a project's healing state and its "do not heal" mark; orphans."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..errors import Unavailable
from ..fleet import orphans
from ..fleet.docker import DockerError
from ..fleet.healing import public_state
from ..shapes.fleet import Healing, HealingBody, Orphans, OrphansCleaned, OrphansQuery
from .projects import path_ref
from .routing import Api

api = Api("Fleet", "The daemon's care of the host: healing failing services, orphaned objects (ours).", ours=True)


@api.get(
    "/v1/projects/{ref}/healing",
    "getProjectHealing",
    "Whether the daemon heals the project, and what it tried",
    response=Healing,
    errors=(404,),
)
async def get_healing(request: web.Request) -> dict[str, Any]:
    return public_state(await request.app[keys.STORE].get_healing(path_ref(request)))


@api.put(
    "/v1/projects/{ref}/healing",
    "setProjectHealing",
    "Mark the project 'do not heal', or let the daemon heal it again",
    description="Turning healing back on forgets what the healer tried, so a service it gave up on is tried again.",
    body=HealingBody,
    response=Healing,
    errors=(400, 404),
)
async def set_healing(request: web.Request, body: HealingBody) -> dict[str, Any]:
    return public_state(await request.app[keys.STORE].set_healing_enabled(path_ref(request), body.enabled))


@api.get(
    "/v1/orphans",
    "listOrphans",
    "Containers, networks and volumes labelled for projects the daemon does not know",
    description="Asks Docker now (three calls). A ref with a project directory on this host is a project, not an"
    " orphan.",
    response=Orphans,
    errors=(503,),
)
async def list_orphans(request: web.Request) -> dict[str, Any]:
    app = request.app
    try:
        found = await orphans.list_orphans(app[keys.DOCKER], app[keys.STORE], app[keys.SETTINGS].root)
    except DockerError as exc:
        raise Unavailable(f"cannot query Docker: {exc}", code="docker_unavailable") from None
    return found.to_json()


@api.delete(
    "/v1/orphans",
    "cleanOrphans",
    "Remove orphaned containers and networks (and volumes, with volumes=true)",
    description="Never automatic. Containers are stopped and removed, then networks; volumes only with"
    " `volumes=true`, since they may hold data. `ref` limits it to one ref.",
    query=OrphansQuery,
    response=OrphansCleaned,
    errors=(400, 503),
)
async def clean_orphans(request: web.Request, query: OrphansQuery) -> dict[str, Any]:
    app = request.app
    try:
        return await orphans.clean(
            app[keys.DOCKER], app[keys.STORE], app[keys.SETTINGS].root, volumes=query.volumes, only=query.ref
        )
    except DockerError as exc:
        raise Unavailable(f"cannot query Docker: {exc}", code="docker_unavailable") from None
