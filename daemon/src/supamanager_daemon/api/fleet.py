"""Routes of ours for the fleet: its hosts and their reload; a project's healing state and its "do not heal"
mark; orphans."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..errors import InvalidRequest, NotFound, Unavailable
from ..fleet import orphans
from ..fleet.docker import DockerError
from ..fleet.drain import DrainState
from ..fleet.healing import public_state
from ..fleet.hosts import InventoryError
from ..shapes.fleet import Drain, Fleet, Healing, HealingBody, Orphans, OrphansCleaned, OrphansQuery
from .projects import host_usage, path_ref
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


async def fleet_view(app: web.Application) -> dict[str, Any]:
    manager, poller, jobs = app[keys.FLEET], app[keys.POLLER], app[keys.JOBS]
    used = await host_usage(app)
    hosts = []
    for host in manager.fleet.hosts.values():
        u = used.get(host.name)
        hosts.append(
            {
                "name": host.name,
                "region": host.region,
                "docker_host": host.docker_host,
                "local": host.local,
                "up": poller.host_up.get(host.name) if host.polled else None,
                "error": poller.host_errors.get(host.name),
                "labels": dict(host.labels),
                "memory_mb": host.memory_mb,
                "cpus": host.cpus,
                "max_projects": host.max_projects,
                "max_jobs": host.max_jobs,
                "port_range": list(host.port_range) if host.port_range else None,
                "projects": u.projects if u else 0,
                "memory_mb_used": u.memory_mb if u else 0,
                "jobs_running": jobs.running_on(host.name),
                "draining": host.name in manager.draining,
            }
        )
    return {"inventory": manager.fleet.source, "reloads": manager.reloads, "hosts": hosts}


@api.get(
    "/platform/fleet",
    "getFleet",
    "The hosts of the inventory, their capacity, what they hold, whether they answer",
    response=Fleet,
)
async def get_fleet(request: web.Request) -> dict[str, Any]:
    return await fleet_view(request.app)


@api.post(
    "/platform/fleet/reload",
    "reloadFleet",
    "Read the inventory again (as SIGHUP does)",
    description="Hosts added, changed or removed take effect at once; a wrong inventory changes nothing (400, saying"
    " which host and variable). The next poll asks the new hosts.",
    response=Fleet,
    errors=(400,),
)
async def reload_fleet(request: web.Request) -> dict[str, Any]:
    try:
        await request.app[keys.FLEET].reload()
    except InventoryError as exc:
        raise InvalidRequest(str(exc), code="invalid_inventory") from None
    request.app[keys.POLLER].wake()
    return await fleet_view(request.app)


def _drain_json(app: web.Application, state: DrainState) -> dict[str, Any]:
    return {
        "host": state.host,
        "draining": state.host in app[keys.FLEET].draining,
        "done": state.done,
        "moves": [dict(m) for m in state.moves],
        "skipped": [dict(s) for s in state.skipped],
    }


async def _drain_answer(request: web.Request, state: DrainState) -> dict[str, Any]:
    projects = await request.app[keys.STORE].list_projects()
    return {**_drain_json(request.app, state), "projects_left": sum(1 for p in projects if p["host"] == state.host)}


def _host_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if request.app[keys.FLEET].host(name) is None:
        raise NotFound(f"no host {name[:128]!r} in the inventory", code="host_not_found")
    return name


@api.post(
    "/platform/fleet/hosts/{name}/drain",
    "drainHost",
    "Drain a host: it takes no new project, and its projects move to other hosts of their regions",
    description="One project at a time, each to the host of its region with the most free memory (as a create is"
    " placed), through a move operation (kind move). A project that cannot move is skipped with the reason. Draining"
    " a host being drained answers its drain. The mark is kept in memory (a daemon restart forgets it).",
    response=Drain,
    errors=(404,),
)
async def drain_host(request: web.Request) -> dict[str, Any]:
    return await _drain_answer(request, request.app[keys.DRAINS].drain(_host_name(request)))


@api.get(
    "/platform/fleet/hosts/{name}/drain",
    "getHostDrain",
    "A host's drain: the moves it started, the projects it skipped, the projects left",
    response=Drain,
    errors=(404,),
)
async def get_drain(request: web.Request) -> dict[str, Any]:
    return await _drain_answer(request, request.app[keys.DRAINS].state(_host_name(request)))


@api.delete(
    "/platform/fleet/hosts/{name}/drain",
    "undrainHost",
    "Let a drained host take projects again (a drain running stops after the move in flight)",
    response=Drain,
    errors=(404,),
)
async def undrain_host(request: web.Request) -> dict[str, Any]:
    return await _drain_answer(request, request.app[keys.DRAINS].undrain(_host_name(request)))
