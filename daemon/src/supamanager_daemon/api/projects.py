"""Routes of the Projects tag: create, list, get, delete, pause, restore, restart (ours), health, API keys.

Thin: parse (the shapes do), call the store or the fleet, answer with a shape. Changes are
operations: recorded in the store, then carried out by a job (operations/jobs.py).
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, get_args

import yaml
from aiohttp import web

from .. import keys, models
from ..errors import InvalidRequest, InvalidState, NotFound, Unavailable
from ..fleet.docker import DockerError
from ..fleet.hosts import Host
from ..fleet.placement import NoCapacity, Used, free_on
from ..fleet.status import group_by_project, service_health
from ..projects.files import project_info, read_env
from ..settings import CHECKOUT, Settings
from ..shapes.projects import (
    ApiKeyResponse,
    ApiKeysQuery,
    AvailableRegionsQuery,
    DeleteProjectQuery,
    HealthQuery,
    MoveProjectBody,
    RegionCode,
    RegionsInfo,
    V1CreateProjectBody,
    V1ProjectRefResponse,
    V1ProjectWithDatabaseResponse,
    V1ServiceHealthResponse,
)
from ..store import DEFAULT_ORGANIZATION, OrganizationNotFound, ProjectNotFound, RefTaken
from .routing import Api, Reply

api = Api("Projects", "Projects, in the Management API's shapes.")

OPERATION_HEADER = {"X-Operation-Id": "The operation that carries the change out: follow it at /v1/operations/{id}."}
DEFAULT_REGION = "local"


@functools.cache
def _role_db_image(defaults: pathlib.Path) -> str:
    try:
        return yaml.safe_load(defaults.read_text())["supabase_images"]["db"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return ""


def postgres_version(settings: Settings) -> str:
    """The full Postgres version, the tag of the db image (the CLI uses it as one): 15.8.1.085."""
    images = settings.playbook_vars.get("supabase_images") or {}
    image = images.get("db") or ""
    # The role's default image: of the collection the daemon runs, else of the checkout it sits in.
    for collection in (settings.collection_dir, CHECKOUT):
        image = image or _role_db_image(collection / "roles" / "project" / "defaults" / "main.yml")
    return image.rpartition(":")[2] if ":" in image else "15"


# -- helpers ------------------------------------------------------------------------------------
def project_json(request: web.Request, project: dict[str, Any], info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A project-with-database object of the Management API (plus `endpoints`, ours, once known)."""
    version = postgres_version(request.app[keys.SETTINGS])
    body = {
        "id": project["ref"],
        "ref": project["ref"],
        "organization_id": project["organization_slug"],
        "organization_slug": project["organization_slug"],
        "name": project["name"],
        "region": project["region"],
        "created_at": project["created_at"],
        "status": project["status"],
        "database": {
            "host": request.app[keys.SETTINGS].public_host,
            "version": version,
            "postgres_engine": version.split(".", 1)[0],
            "release_channel": "ga",
        },
    }
    if info:
        body["endpoints"] = {"api_url": info.get("api_url"), "ports": info.get("ports") or {}}
    return body


async def project_infos(request: web.Request, refs: list[str]) -> dict[str, dict[str, Any]]:
    settings = request.app[keys.SETTINGS]
    return await asyncio.to_thread(lambda: {ref: project_info(settings, ref) for ref in refs})


def path_ref(request: web.Request) -> str:
    """The {ref} of the path; anything but a valid ref is an unknown project."""
    ref = request.match_info["ref"]
    if not models.is_ref(ref):
        raise ProjectNotFound(ref)
    return ref


async def load_project(request: web.Request) -> dict[str, Any]:
    ref = path_ref(request)
    project = await request.app[keys.STORE].get_project(ref)
    if project is None:
        raise ProjectNotFound(ref)
    return project


async def record(
    request: web.Request, write: Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record an operation (write) and hand it to the scheduler, as one step a hang-up cannot split.

    aiohttp cancels a handler whose client went away; between the store's write and the enqueue
    that would leave an operation recorded but never run, and the project 409 until a restart.
    """

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        project, op = await write()
        request.app[keys.JOBS].enqueue(op)
        return project, op

    return await asyncio.shield(both())


def accepted(body: Any, op: dict[str, Any]) -> Reply:
    return Reply(body, {"X-Operation-Id": op["id"]})


# -- routes -------------------------------------------------------------------------------------
@api.post(
    "/v1/projects",
    "v1-create-a-project",
    "Create a project",
    description="Records the project (status COMING_UP) and starts the create playbook. Answers at once with the"
    " new project and the `X-Operation-Id` to follow; the status becomes ACTIVE_HEALTHY, or INIT_FAILED with the"
    " reason in the operation.",
    status=201,
    body=V1CreateProjectBody,
    response=V1ProjectWithDatabaseResponse,
    errors=(400, 403, 413),
    headers=OPERATION_HEADER,
)
async def create_project(request: web.Request, body: V1CreateProjectBody) -> Reply:
    project, op = await start_create(request, body)
    return accepted(project_json(request, project), op)


async def start_create(request: web.Request, body: V1CreateProjectBody) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record a new project and its create operation, hand it to the jobs: (project, operation).
    The one way in for POST /v1/projects and the console."""
    store = request.app[keys.STORE]
    jobs = request.app[keys.JOBS]
    fleet = request.app[keys.FLEET]
    organization = body.organization_slug or body.organization_id or DEFAULT_ORGANIZATION
    settings = request.app[keys.SETTINGS]
    host = ""

    async def write() -> tuple[dict[str, Any], dict[str, Any]]:
        for _ in range(5):
            try:
                project, op = await store.create_project(
                    ref=models.mint_ref(),
                    name=body.name,
                    organization_slug=organization,
                    region=body.region or (fleet.host(host).region if fleet.from_inventory else DEFAULT_REGION),
                    host=host,
                    max_projects=settings.max_projects,
                    params={"instance_size": body.desired_instance_size} if body.desired_instance_size else None,
                )
            except RefTaken:
                continue
            if body.db_pass is not None and settings.db_pass_var:
                jobs.save_secrets(op["id"], {settings.db_pass_var: body.db_pass})
            return project, op
        raise RuntimeError("could not mint a free project ref")  # pragma: no cover - 26^20 refs

    try:
        # Placement and the record together: two creates at once never both take a host's last room.
        async with fleet.placement_lock:
            host = (await _place(request, body.region, body.desired_instance_size)).name
            return await record(request, write)
    except OrganizationNotFound as exc:
        raise InvalidRequest(exc.message, code=exc.code, field="organization_slug") from None


async def host_usage(app: web.Application) -> dict[str, Used]:
    """What each host holds, as placement counts it (the projects' sizes from their project.json, read
    only when some host's capacity is limited); a moving project counts on its target too."""
    fleet, settings, store = app[keys.FLEET], app[keys.SETTINGS], app[keys.STORE]
    projects = await store.list_projects()
    sizes: dict[str, str | None] = {}
    if any(h.memory_mb is not None or h.cpus is not None for h in fleet.fleet.hosts.values()):
        sizes = await asyncio.to_thread(
            lambda: {p["ref"]: project_info(settings, p["ref"]).get("instance_size") for p in projects}
        )
    moving = {op["ref"]: op["params"]["target"] for op in await store.active_operations() if op["kind"] == "move"}
    return fleet.usage(projects, sizes, moving)


async def _place(request: web.Request, region: str | None, size: str | None) -> Host:
    return request.app[keys.FLEET].place(region, await host_usage(request.app), size)


# The document's region codes: their names and smart groups.
REGIONS = {
    "us-east-1": ("East US (North Virginia)", "americas"),
    "us-east-2": ("East US (Ohio)", "americas"),
    "us-west-1": ("West US (North California)", "americas"),
    "us-west-2": ("West US (Oregon)", "americas"),
    "ca-central-1": ("Canada (Central)", "americas"),
    "sa-east-1": ("South America (São Paulo)", "americas"),
    "eu-west-1": ("West EU (Ireland)", "emea"),
    "eu-west-2": ("West EU (London)", "emea"),
    "eu-west-3": ("West EU (Paris)", "emea"),
    "eu-north-1": ("North EU (Stockholm)", "emea"),
    "eu-central-1": ("Central EU (Frankfurt)", "emea"),
    "eu-central-2": ("Central EU (Zurich)", "emea"),
    "ap-southeast-1": ("Southeast Asia (Singapore)", "apac"),
    "ap-northeast-1": ("Northeast Asia (Tokyo)", "apac"),
    "ap-northeast-2": ("Northeast Asia (Seoul)", "apac"),
    "ap-east-1": ("East Asia (Hong Kong)", "apac"),
    "ap-southeast-2": ("Oceania (Sydney)", "apac"),
    "ap-south-1": ("South Asia (Mumbai)", "apac"),
}
assert set(REGIONS) == set(get_args(RegionCode))
SMART_GROUPS = {"americas": "Americas", "emea": "Europe, Middle East and Africa", "apac": "Asia-Pacific"}
CONTINENT_GROUPS = {"NA": "americas", "SA": "americas", "EU": "emea", "AF": "emea", "AS": "apac", "OC": "apac"}


@api.get(
    "/v1/projects/available-regions",
    "v1-get-available-regions",
    "The regions the inventory's hosts serve",
    description="A host's `supamanager_region` that is one of the document's codes; `capacity` when no host of it"
    " has room for a project of `desired_instance_size`. The recommendation: the regions with room in the"
    " continent's smart group (without `continent`: the group of the region with the most free memory).",
    query=AvailableRegionsQuery,
    response=RegionsInfo,
    errors=(400,),
)
async def available_regions(request: web.Request, query: AvailableRegionsQuery) -> dict[str, Any]:
    fleet = request.app[keys.FLEET]
    try:
        await request.app[keys.STORE].get_organization(query.organization_slug)
    except OrganizationNotFound as exc:
        raise InvalidRequest(exc.message, code=exc.code, field="organization_slug") from None
    used = await host_usage(request.app)
    need = fleet.need(query.desired_instance_size)
    room: dict[str, float] = {}  # region -> the most free memory of one of its hosts that fits, or -1
    for region in fleet.fleet.regions:
        if region not in REGIONS:
            continue
        frees = [free_on(h, used.get(h.name)) for h in fleet.fleet.in_region(region)]
        room[region] = max((f.memory_mb for f in frees if f.fits(need)), default=-1)

    def specific(code: str) -> dict[str, Any]:
        entry = {"name": REGIONS[code][0], "code": code, "type": "specific", "provider": "AWS"}
        if room[code] < 0:
            entry["status"] = "capacity"
        return entry

    group = CONTINENT_GROUPS.get(query.continent or "")
    if group is None:
        roomiest = sorted((r for r in room if room[r] >= 0), key=lambda r: (-room[r], r))
        group = REGIONS[roomiest[0]][1] if roomiest else "americas"
    recommended = sorted((r for r in room if room[r] >= 0 and REGIONS[r][1] == group), key=lambda r: (-room[r], r))
    return {
        "recommendations": {
            "smartGroup": {"name": SMART_GROUPS[group], "code": group, "type": "smartGroup"},
            "specific": [specific(r) for r in recommended],
        },
        "all": {
            "smartGroup": [{"name": n, "code": c, "type": "smartGroup"} for c, n in SMART_GROUPS.items()],
            "specific": [specific(r) for r in sorted(room)],
        },
    }


@api.get("/v1/projects", "v1-list-all-projects", "List all projects", response=list[V1ProjectWithDatabaseResponse])
async def list_projects(request: web.Request) -> list[dict[str, Any]]:
    projects = await request.app[keys.STORE].list_projects()
    infos = await project_infos(request, [p["ref"] for p in projects])
    return [project_json(request, p, infos[p["ref"]]) for p in projects]


@api.get("/v1/projects/{ref}", "v1-get-project", "Get a project", response=V1ProjectWithDatabaseResponse, errors=(404,))
async def get_project(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    infos = await project_infos(request, [project["ref"]])
    return project_json(request, project, infos[project["ref"]])


@api.delete(
    "/v1/projects/{ref}",
    "v1-delete-a-project",
    "Delete a project",
    description="Status GOING_DOWN, then the project is gone (404). Answers at once.",
    query=DeleteProjectQuery,
    response=V1ProjectRefResponse,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def delete_project(request: web.Request, query: DeleteProjectQuery) -> Reply:
    project, op = await start_delete(request, delete_volumes=query.delete_volumes, backup=query.backup)
    return accepted({"id": project["id"], "ref": project["ref"], "name": project["name"]}, op)


def _choose_pause(project: dict[str, Any]) -> str:
    if project["status"] == models.INACTIVE:
        raise InvalidState(f"project {project['ref']} is already paused", code="already_paused")
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        raise InvalidState(f"project {project['ref']} is {project['status']}: nothing to pause")
    return "pause"


def _choose_restore(project: dict[str, Any]) -> str:
    if project["status"] == models.ACTIVE_HEALTHY:
        raise InvalidState(f"project {project['ref']} is not paused", code="not_paused")
    # Its containers are gone (or never came up): create them again from the project's files.
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        return "recreate"
    return "restore"


def _choose_restart(project: dict[str, Any]) -> str:
    if project["status"] == models.INACTIVE:
        raise InvalidState(f"project {project['ref']} is paused: restore it instead", code="paused")
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        raise InvalidState(f"project {project['ref']} is {project['status']}: restore it instead")
    return "restart"


# The lifecycle actions by name: /v1, /platform (api/studio.py) and the console start the same operations.
CHOOSERS = {"pause": _choose_pause, "restore": _choose_restore, "restart": _choose_restart}


async def start_lifecycle(request: web.Request, action: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record the action's operation on the path's project and hand it to the jobs: (project, operation)."""
    ref = path_ref(request)
    return await record(request, lambda: request.app[keys.STORE].start_operation(ref, CHOOSERS[action]))


async def start_delete(
    request: web.Request, *, delete_volumes: bool = True, backup: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record the delete of the path's project (a final backup first unless backup=False)."""
    ref = path_ref(request)
    return await record(
        request,
        lambda: request.app[keys.STORE].start_operation(
            ref, lambda _p: "delete", {"delete_volumes": delete_volumes, "backup": backup}
        ),
    )


async def _lifecycle(request: web.Request, action: str) -> Reply:
    project, op = await start_lifecycle(request, action)
    return accepted(project_json(request, project), op)


# Upstream answers pause and restore 200 (with no body); ours carries the project in its busy status.
_LIFECYCLE = {
    "response": V1ProjectWithDatabaseResponse,
    "errors": (400, 404, 409),
    "headers": OPERATION_HEADER,
}


@api.post(
    "/v1/projects/{ref}/pause",
    "v1-pause-a-project",
    "Pause a project",
    description="Stops its containers (PAUSING, then INACTIVE). Answers at once.",
    **_LIFECYCLE,
)
async def pause_project(request: web.Request) -> Reply:
    return await _lifecycle(request, "pause")


@api.post(
    "/v1/projects/{ref}/restore",
    "v1-restore-a-project",
    "Restore (resume) a paused project",
    description="Starts it again (RESTORING, then ACTIVE_HEALTHY). Answers at once.",
    **_LIFECYCLE,
)
async def restore_project(request: web.Request) -> Reply:
    return await _lifecycle(request, "restore")


@api.post(
    "/v1/projects/{ref}/restart",
    "restartProject",
    "Restart a project (ours)",
    description="Restarts its services (RESTARTING, then ACTIVE_HEALTHY). Answers at once.",
    ours=True,
    **_LIFECYCLE,
)
async def restart_project(request: web.Request) -> Reply:
    return await _lifecycle(request, "restart")


@api.get(
    "/v1/projects/{ref}/health",
    "v1-get-services-health",
    "Health of a project's services, asked of Docker now",
    query=HealthQuery,
    response=list[V1ServiceHealthResponse],
    errors=(400, 404, 503),
)
async def project_health(request: web.Request, query: HealthQuery) -> list[dict[str, Any]]:
    project = await load_project(request)
    docker = request.app[keys.FLEET].client_of(project)
    if docker is None:
        raise Unavailable(f"host {project['host']} has no engine the daemon can ask", code="docker_unavailable")
    try:
        raw = await docker.project_containers(project["ref"])
    except DockerError as exc:
        raise Unavailable(f"cannot query Docker: {exc}", code="docker_unavailable") from None
    containers = group_by_project(raw).get(project["ref"], [])
    return [service_health(n, containers) for n in dict.fromkeys(query.services)]


@api.get(
    "/v1/projects/{ref}/api-keys",
    "v1-get-project-api-keys",
    "The project's anon and service_role keys (type legacy)",
    query=ApiKeysQuery,
    response=list[ApiKeyResponse],
    errors=(404,),
)
async def project_api_keys(request: web.Request, query: ApiKeysQuery) -> list[dict[str, Any]]:
    project = await load_project(request)
    settings = request.app[keys.SETTINGS]
    try:
        env = await asyncio.to_thread(read_env, settings, project["ref"])
    except FileNotFoundError:
        raise NotFound(f"project {project['ref']} has no keys yet", code="keys_not_found") from None
    result = []
    for name, var, description in (
        ("anon", "ANON_KEY", "Legacy anon API key"),
        ("service_role", "SERVICE_ROLE_KEY", "Legacy service_role API key"),
    ):
        if env.get(var):
            result.append(
                {
                    "name": name,
                    "api_key": env[var],
                    "id": name,
                    "type": "legacy",
                    "prefix": None,
                    "description": description,
                    "hash": None,
                    "secret_jwt_template": None,
                    "inserted_at": project["created_at"],
                    "updated_at": project["created_at"],
                }
            )
    if not result:
        raise NotFound(f"project {project['ref']} has no keys yet", code="keys_not_found")
    return result


# -- moving a project to another host (ours) ----------------------------------------------------
def choose_move(project: dict[str, Any]) -> str:
    """Only a running project moves: move.yml stops it, and starts it on the source again on failure."""
    if project["status"] not in (models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY):
        raise InvalidState(
            f"project {project['ref']} is {project['status']}: only a running project is moved", code="not_running"
        )
    return "move"


async def start_move(app: web.Application, ref: str, target_name: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record the move of project ref to target_name (None: the host placement picks in its region, not
    its own nor a draining one) and hand it to the jobs: (project, operation). The one way in for the
    route and a host's drain. 400 for a host not in the inventory or the project's own, 403 no_capacity
    when the target has no room, 409 while another operation runs."""
    fleet, store = app[keys.FLEET], app[keys.STORE]
    if not fleet.from_inventory:
        raise InvalidRequest("the daemon has no inventory: there is no other host to move to", code="no_fleet")
    async with fleet.placement_lock:
        project = await store.get_project(ref)
        if project is None:
            raise ProjectNotFound(ref)
        source = fleet.host(project["host"])
        if source is None:
            raise InvalidRequest(
                f"host {project['host']!r} of project {ref} is not in the inventory (any more)", code="unknown_host"
            )
        used = await host_usage(app)
        size = (await asyncio.to_thread(project_info, app[keys.SETTINGS], ref)).get("instance_size")
        if target_name is None:
            target = fleet.place(source.region, used, size, exclude={source.name})
        else:
            target = fleet.host(target_name)
            if target is None:
                raise InvalidRequest(
                    f"no host {target_name!r} in the inventory; hosts: {', '.join(sorted(fleet.fleet.hosts))}",
                    code="unknown_host",
                    field="target_host",
                )
            if target.name == source.name:
                raise InvalidRequest(
                    f"project {ref} is on host {source.name} already", code="same_host", field="target_host"
                )
            if target.region != source.region:
                # A project's region is part of what clients know of it: it stays.
                raise InvalidRequest(
                    f"host {target.name} serves region {target.region}, project {ref} is in {source.region}",
                    code="other_region",
                    field="target_host",
                )
            if target.name in fleet.draining:
                raise InvalidRequest(f"host {target.name} is being drained: it takes no project", code="host_draining")
            if not free_on(target, used.get(target.name)).fits(fleet.need(size)):
                raise NoCapacity(f"host {target.name} has no room for project {ref}", host=target.name)

        async def write() -> tuple[dict[str, Any], dict[str, Any]]:
            project, op = await store.start_operation(ref, choose_move, {"source": source.name, "target": target.name})
            app[keys.JOBS].enqueue(op)
            return project, op

        return await asyncio.shield(write())


@api.post(
    "/v1/projects/{ref}/move",
    "moveProject",
    "Move a project to another host of the inventory (ours)",
    description="Stops it on its host, restores its final backup on `target_host` as the same project (its keys,"
    " secrets and address), then removes it from its host (RESTORING, then ACTIVE_HEALTHY on the target). A failure"
    " before the switch starts it on its host again. Answers at once.",
    body=MoveProjectBody,
    response=V1ProjectWithDatabaseResponse,
    errors=(400, 403, 404, 409),
    headers=OPERATION_HEADER,
    ours=True,
)
async def move_project(request: web.Request, body: MoveProjectBody) -> Reply:
    project, op = await start_move(request.app, path_ref(request), body.target_host)
    return accepted(project_json(request, project), op)
