"""Routes of the Projects tag: create, list, get, delete, pause, restore, restart (ours), health, API keys.

Thin: parse (the shapes do), call the store or the fleet, answer with a shape. Changes are
operations: recorded in the store, then carried out by a job (operations/jobs.py).
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from aiohttp import web

from .. import keys, models
from ..errors import InvalidRequest, InvalidState, NotFound, Unavailable
from ..fleet.docker import DockerError
from ..fleet.status import group_by_project, service_health
from ..projects.files import project_info, read_env
from ..settings import CHECKOUT, Settings
from ..shapes.projects import (
    ApiKeyResponse,
    ApiKeysQuery,
    DeleteProjectQuery,
    HealthQuery,
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
    organization = body.organization_slug or body.organization_id or DEFAULT_ORGANIZATION
    settings = request.app[keys.SETTINGS]

    async def write() -> tuple[dict[str, Any], dict[str, Any]]:
        for _ in range(5):
            try:
                project, op = await store.create_project(
                    ref=models.mint_ref(),
                    name=body.name,
                    organization_slug=organization,
                    region=body.region or DEFAULT_REGION,
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
        return await record(request, write)
    except OrganizationNotFound as exc:
        raise InvalidRequest(exc.message, code=exc.code, field="organization_slug") from None


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
    try:
        raw = await request.app[keys.DOCKER].project_containers(project["ref"])
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
