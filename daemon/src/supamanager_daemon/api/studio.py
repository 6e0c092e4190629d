"""Routes of /platform that Studio's platform mode reads (ours): projects, their settings and
lifecycle, organizations, the profile. Shapes in shapes/studio.py, each after the Studio source it
comes from. The actions start the same operations as /v1 (api/projects.py start_lifecycle,
start_delete); the reads come from the same store and project files.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from aiohttp import web

from .. import keys
from ..projects import connections
from ..projects.files import project_info, read_env
from ..shapes.projects import V1ProjectRefResponse
from ..shapes.studio import (
    ListProjectsPaginatedResponse,
    OrganizationResponse,
    ProfileResponse,
    ProjectDetailResponse,
    ProjectSettingsResponse,
)
from .organizations import CLOUD_PROVIDER
from .projects import OPERATION_HEADER, accepted, load_project, start_delete, start_lifecycle
from .routing import Api

api = Api(
    "Studio",
    "The /platform routes Studio's platform mode reads: projects, settings, lifecycle, organizations, profile (ours).",
    ours=True,
)

# No billing here: every organization is on the one plan, and Studio's billing screens are off.
PLAN = {"id": "enterprise", "name": "Enterprise"}
DISABLED_FEATURES = ["billing:all"]


async def _organization_numbers(request: web.Request) -> dict[str, int]:
    """Studio wants numbers: an organization's is its place in the list (1-based), as self-hosted Studio counts."""
    orgs = await request.app[keys.STORE].list_organizations()
    return {org["slug"]: i for i, org in enumerate(orgs, start=1)}


def _studio_project(project: dict[str, Any], numbers: dict[str, int]) -> dict[str, Any]:
    return {
        "id": project["id"],
        "ref": project["ref"],
        "name": project["name"],
        "organization_id": numbers.get(project["organization_slug"], 0),
        "organization_slug": project["organization_slug"],
        "cloud_provider": CLOUD_PROVIDER,
        "status": project["status"],
        "region": project["region"],
        "inserted_at": project["created_at"],
    }


async def _files(request: web.Request, ref: str) -> tuple[dict[str, Any], dict[str, str]]:
    settings = request.app[keys.SETTINGS]

    def read() -> tuple[dict[str, Any], dict[str, str]]:
        try:
            env = read_env(settings, ref)
        except FileNotFoundError:
            env = {}
        return project_info(settings, ref), env

    return await asyncio.to_thread(read)


async def _detail(request: web.Request, project: dict[str, Any]) -> dict[str, Any]:
    info, env = await _files(request, project["ref"])
    settings = request.app[keys.SETTINGS]
    direct = connections.direct(settings, info, env)
    api_url = info.get("api_url")
    return {
        **_studio_project(project, await _organization_numbers(request)),
        "db_host": settings.public_host,
        "restUrl": f"{api_url.rstrip('/')}/rest/v1/" if api_url else None,
        "connectionString": direct["url"] if direct else None,
    }


@api.get(
    "/platform/projects",
    "studioListProjects",
    "The projects, as Studio's project list reads them",
    response=ListProjectsPaginatedResponse,
)
async def list_projects(request: web.Request) -> dict[str, Any]:
    projects = await request.app[keys.STORE].list_projects()
    numbers = await _organization_numbers(request)
    count = len(projects)
    return {
        "pagination": {"count": count, "limit": count, "offset": 0},
        "projects": [_studio_project(p, numbers) for p in projects],
    }


@api.get(
    "/platform/projects/{ref}",
    "studioGetProject",
    "A project, as Studio's project pages read it",
    response=ProjectDetailResponse,
    errors=(404,),
)
async def get_project(request: web.Request) -> dict[str, Any]:
    return await _detail(request, await load_project(request))


@api.get(
    "/platform/projects/{ref}/settings",
    "studioGetProjectSettings",
    "A project's settings: its API endpoint, database, keys and JWT secret, as Studio reads them",
    response=ProjectSettingsResponse,
    errors=(404,),
)
async def get_settings(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    info, env = await _files(request, project["ref"])
    settings = request.app[keys.SETTINGS]
    api_url = urllib.parse.urlsplit(info["api_url"]) if info.get("api_url") else None
    direct = connections.direct(settings, info, env)
    keys_ = [
        {"api_key": env[var], "name": f"{tag} key", "tags": tag}
        for var, tag in (("SERVICE_ROLE_KEY", "service_role"), ("ANON_KEY", "anon"))
        if env.get(var)
    ]
    return {
        "app_config": {
            "db_schema": "public",
            "endpoint": api_url.netloc,
            "storage_endpoint": api_url.netloc,
            "protocol": api_url.scheme,
        }
        if api_url
        else None,
        "cloud_provider": CLOUD_PROVIDER,
        "db_dns_name": "-",
        "db_host": settings.public_host,
        "db_ip_addr_config": "legacy",
        "db_name": env.get("POSTGRES_DB") or "postgres",
        "db_port": direct["port"] if direct else None,
        "db_user": "postgres",
        "inserted_at": project["created_at"],
        "jwt_secret": env.get("JWT_SECRET"),
        "name": project["name"],
        "ref": project["ref"],
        "region": project["region"],
        "service_api_keys": keys_,
        "ssl_enforced": False,
        "status": project["status"],
    }


async def _action(request: web.Request, action: str):
    project, op = await start_lifecycle(request, action)
    return accepted(await _detail(request, project), op)


_ACTION = {"response": ProjectDetailResponse, "errors": (400, 404, 409), "headers": OPERATION_HEADER}


@api.post(
    "/platform/projects/{ref}/pause",
    "studioPauseProject",
    "Pause a project (the operation of POST /v1/projects/{ref}/pause)",
    **_ACTION,
)
async def pause(request: web.Request):
    return await _action(request, "pause")


@api.post(
    "/platform/projects/{ref}/restore",
    "studioRestoreProject",
    "Resume a paused project, as Studio names it (the operation of POST /v1/projects/{ref}/restore)",
    **_ACTION,
)
async def restore(request: web.Request):
    return await _action(request, "restore")


@api.post(
    "/platform/projects/{ref}/resume",
    "studioResumeProject",
    "Resume a paused project: the same as .../restore",
    **_ACTION,
)
async def resume(request: web.Request):
    return await _action(request, "restore")


@api.post(
    "/platform/projects/{ref}/restart",
    "studioRestartProject",
    "Restart a project (the operation of POST /v1/projects/{ref}/restart)",
    **_ACTION,
)
async def restart(request: web.Request):
    return await _action(request, "restart")


@api.delete(
    "/platform/projects/{ref}",
    "studioDeleteProject",
    "Delete a project, its final backup first (the operation of DELETE /v1/projects/{ref})",
    response=V1ProjectRefResponse,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def delete(request: web.Request):
    project, op = await start_delete(request)
    return accepted({"id": project["id"], "ref": project["ref"], "name": project["name"]}, op)


@api.get(
    "/platform/organizations",
    "studioListOrganizations",
    "The organizations, as Studio's organization list reads them",
    response=list[OrganizationResponse],
)
async def list_organizations(request: web.Request) -> list[dict[str, Any]]:
    orgs = await request.app[keys.STORE].list_organizations()
    return [
        {"id": i, "name": org["name"], "slug": org["slug"], "billing_email": None, "plan": PLAN}
        for i, org in enumerate(orgs, start=1)
    ]


@api.get(
    "/platform/profile",
    "studioGetProfile",
    "Who is signed in: the daemon has API tokens, not accounts, so one profile for every token",
    response=ProfileResponse,
)
async def profile(request: web.Request) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    return {
        "id": 1,
        "gotrue_id": "supamanager",
        "primary_email": f"admin@{settings.public_host}",
        "username": "admin",
        "first_name": "",
        "last_name": "",
        "free_project_limit": settings.max_projects,
        "is_alpha_user": False,
        "disabled_features": DISABLED_FEATURES,
    }
