"""HTTP handlers: the Management API subset, plus /v1/operations and /healthz of ours."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from . import keys, models
from .docker import DockerError
from .errors import ApiError, BadRequest, Conflict, NotFound
from .jobs import project_info
from .status import HEALTH_SERVICES, group_by_project, service_health

routes = web.RouteTableDef()

POSTGRES_VERSION = "15"


# -- helpers ------------------------------------------------------------------------------------
def project_json(request: web.Request, project: dict[str, Any], info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A project-with-database object of the Management API (plus `endpoints`, ours, once known)."""
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
            "version": POSTGRES_VERSION,
            "postgres_engine": POSTGRES_VERSION,
            "release_channel": "ga",
        },
    }
    if info:
        body["endpoints"] = {"api_url": info.get("api_url"), "ports": info.get("ports") or {}}
    return body


async def project_infos(request: web.Request, refs: list[str]) -> dict[str, dict[str, Any]]:
    settings = request.app[keys.SETTINGS]
    return await asyncio.to_thread(lambda: {ref: project_info(settings, ref) for ref in refs})


def operation_json(op: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": op["id"],
        "ref": op["ref"],
        "kind": op["kind"],
        "state": op["state"],
        "step": op["step"],
        "progress": op["progress"],
        "error": op["error"],
        "attempts": op["attempts"],
        "created_at": op["created_at"],
        "started_at": op["started_at"],
        "finished_at": op["finished_at"],
        "steps": [{"id": e["id"], "at": e["at"], "type": e["type"], "name": e["name"], **e["data"]} for e in events],
    }


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 naming the problem when it is not (413 comes from aiohttp)."""
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("request body must be a JSON object", code="invalid_body")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8", code="malformed_json") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="malformed_json",
        ) from None


def path_ref(request: web.Request) -> str:
    ref = request.match_info["ref"]
    if not models.is_ref(ref):
        raise NotFound(f"project {ref[:64]!r} not found", code="project_not_found")
    return ref


async def load_project(request: web.Request) -> dict[str, Any]:
    ref = path_ref(request)
    project = await request.app[keys.STORE].get_project(ref)
    if project is None:
        raise NotFound(f"project {ref} not found", code="project_not_found")
    return project


def accepted(request: web.Request, body: Any, op: dict[str, Any], status: int = 202) -> web.Response:
    request.app[keys.JOBS].enqueue(op)
    return web.json_response(body, status=status, headers={"X-Operation-Id": op["id"]})


def bool_query(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"query parameter '{name}' must be true or false", code="invalid_value", field=name)


# -- routes -------------------------------------------------------------------------------------
@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    poller = request.app[keys.POLLER]
    jobs = request.app[keys.JOBS]
    return web.json_response(
        {
            "status": "ok",
            "docker": "error" if poller.last_error else "ok",
            "polls": poller.polls,
            "docker_api_calls": request.app[keys.DOCKER].calls,
            "jobs_running": jobs.running,
            "jobs_queued": jobs.queued,
        }
    )


@routes.post("/v1/projects")
async def create_project(request: web.Request) -> web.Response:
    req = models.validate_create(await read_json(request))
    store = request.app[keys.STORE]
    for _ in range(5):
        ref = models.mint_ref()
        try:
            project, op = await store.create_project(
                ref=ref, name=req.name, organization_slug=req.organization_slug, region=req.region
            )
            break
        except Conflict:
            continue
    else:  # pragma: no cover - 26^20 refs make this unreachable in practice
        raise ApiError(500, "ref_exhausted", "could not mint a free project ref")
    db_pass_var = request.app[keys.SETTINGS].db_pass_var
    if req.db_pass is not None and db_pass_var:
        request.app[keys.JOBS].save_secrets(op["id"], {db_pass_var: req.db_pass})
    return accepted(request, project_json(request, project), op, status=201)


@routes.get("/v1/projects")
async def list_projects(request: web.Request) -> web.Response:
    projects = await request.app[keys.STORE].list_projects()
    infos = await project_infos(request, [p["ref"] for p in projects])
    return web.json_response([project_json(request, p, infos[p["ref"]]) for p in projects])


@routes.get("/v1/projects/{ref}")
async def get_project(request: web.Request) -> web.Response:
    project = await load_project(request)
    infos = await project_infos(request, [project["ref"]])
    return web.json_response(project_json(request, project, infos[project["ref"]]))


@routes.delete("/v1/projects/{ref}")
async def delete_project(request: web.Request) -> web.Response:
    ref = path_ref(request)
    delete_volumes = bool_query(request, "delete_volumes", True)
    project, op = await request.app[keys.STORE].start_operation(
        ref, lambda _p: "delete", {"delete_volumes": delete_volumes}
    )
    return accepted(request, {"id": project["ref"], "ref": project["ref"], "name": project["name"]}, op)


def _choose_pause(project: dict[str, Any]) -> str:
    if project["status"] == models.INACTIVE:
        raise BadRequest(f"project {project['ref']} is already paused", code="already_paused")
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        raise BadRequest(f"project {project['ref']} is {project['status']}: nothing to pause", code="invalid_state")
    return "pause"


def _choose_restore(project: dict[str, Any]) -> str:
    if project["status"] == models.ACTIVE_HEALTHY:
        raise BadRequest(f"project {project['ref']} is not paused", code="not_paused")
    # Its containers are gone (or never came up): create them again from the project's files.
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        return "recreate"
    return "restore"


def _choose_restart(project: dict[str, Any]) -> str:
    if project["status"] == models.INACTIVE:
        raise BadRequest(f"project {project['ref']} is paused: restore it instead", code="paused")
    if project["status"] in (models.INIT_FAILED, models.REMOVED):
        raise BadRequest(f"project {project['ref']} is {project['status']}: restore it instead", code="invalid_state")
    return "restart"


async def _lifecycle(request: web.Request, choose) -> web.Response:
    ref = path_ref(request)
    project, op = await request.app[keys.STORE].start_operation(ref, choose)
    return accepted(request, project_json(request, project), op)


@routes.post("/v1/projects/{ref}/pause")
async def pause_project(request: web.Request) -> web.Response:
    return await _lifecycle(request, _choose_pause)


@routes.post("/v1/projects/{ref}/restore")
async def restore_project(request: web.Request) -> web.Response:
    return await _lifecycle(request, _choose_restore)


@routes.post("/v1/projects/{ref}/restart")
async def restart_project(request: web.Request) -> web.Response:
    return await _lifecycle(request, _choose_restart)


@routes.get("/v1/projects/{ref}/health")
async def project_health(request: web.Request) -> web.Response:
    project = await load_project(request)
    names: list[str] = []
    for value in request.query.getall("services", []):
        names.extend(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise BadRequest(
            f"query parameter 'services' is required (any of {', '.join(HEALTH_SERVICES)})",
            code="missing_field",
            field="services",
        )
    unknown = sorted(set(names) - set(HEALTH_SERVICES))
    if unknown:
        raise BadRequest(
            f"unknown service(s): {', '.join(unknown)} (known: {', '.join(HEALTH_SERVICES)})",
            code="invalid_value",
            field="services",
        )
    try:
        raw = await request.app[keys.DOCKER].project_containers(project["ref"])
    except DockerError as exc:
        raise ApiError(503, "docker_unavailable", f"cannot query Docker: {exc}") from None
    containers = group_by_project(raw).get(project["ref"], [])
    return web.json_response([service_health(n, containers) for n in dict.fromkeys(names)])


def _read_env_file(path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


@routes.get("/v1/projects/{ref}/api-keys")
async def project_api_keys(request: web.Request) -> web.Response:
    project = await load_project(request)
    env_file = request.app[keys.SETTINGS].root / "projects" / project["ref"] / ".env"
    try:
        env = await asyncio.to_thread(_read_env_file, env_file)
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
    return web.json_response(result)


@routes.get("/v1/operations/{op_id}")
async def get_operation(request: web.Request) -> web.Response:
    op_id = request.match_info["op_id"]
    store = request.app[keys.STORE]
    op = await store.get_operation(op_id) if len(op_id) <= 64 else None
    if op is None:
        raise NotFound(f"operation {op_id[:64]!r} not found", code="operation_not_found")
    return web.json_response(operation_json(op, await store.events(op_id)))
