"""Routes of the Organizations tag: list, get, create, and an organization's projects."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys, models
from ..shapes.organizations import (
    CreateOrganizationV1,
    OrganizationProjectsQuery,
    OrganizationProjectsResponse,
    OrganizationResponseV1,
    V1OrganizationSlugResponse,
)
from ..store import OrganizationNotFound
from .routing import Api

api = Api("Organizations", "Organizations: every project belongs to one; `default` always exists.")

CLOUD_PROVIDER = "docker"


def organization_json(org: dict[str, Any]) -> dict[str, Any]:
    return {"id": org["slug"], "slug": org["slug"], "name": org["name"]}


async def load_organization(request: web.Request) -> dict[str, Any]:
    slug = request.match_info["slug"]
    if len(slug) > 64:
        raise OrganizationNotFound(slug)
    return await request.app[keys.STORE].get_organization(slug)


@api.get(
    "/v1/organizations", "v1-list-all-organizations", "List all organizations", response=list[OrganizationResponseV1]
)
async def list_organizations(request: web.Request) -> list[dict[str, Any]]:
    return [organization_json(o) for o in await request.app[keys.STORE].list_organizations()]


@api.post(
    "/v1/organizations",
    "v1-create-an-organization",
    "Create an organization",
    description="Its slug (and id) is minted: 20 lowercase letters, as the platform's.",
    status=201,
    body=CreateOrganizationV1,
    response=OrganizationResponseV1,
    errors=(400,),
)
async def create_organization(request: web.Request, body: CreateOrganizationV1) -> dict[str, Any]:
    store = request.app[keys.STORE]
    for _ in range(5):
        org = await store.create_organization(models.mint_ref(), body.name)
        if org is not None:
            return organization_json(org)
    raise RuntimeError("could not mint a free organization slug")  # pragma: no cover - 26^20 slugs


@api.get(
    "/v1/organizations/{slug}",
    "v1-get-an-organization",
    "Get an organization",
    response=V1OrganizationSlugResponse,
    errors=(404,),
)
async def get_organization(request: web.Request) -> dict[str, Any]:
    org = await load_organization(request)
    return {"id": org["slug"], "name": org["name"]}


def _database_status(status: str) -> str:
    # The document's database statuses lack the paused ones: a paused database is not running.
    if status in ("ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "COMING_UP", "GOING_DOWN", "INIT_FAILED", "REMOVED"):
        return status
    if status in ("RESTORING", "RESTARTING", "RESIZING"):
        return status
    return "UNKNOWN"


@api.get(
    "/v1/organizations/{slug}/projects",
    "v1-get-all-projects-for-organization",
    "An organization's projects, a page at a time",
    query=OrganizationProjectsQuery,
    response=OrganizationProjectsResponse,
    errors=(400, 404),
)
async def organization_projects(request: web.Request, query: OrganizationProjectsQuery) -> dict[str, Any]:
    org = await load_organization(request)
    projects = [p for p in await request.app[keys.STORE].list_projects() if p["organization_slug"] == org["slug"]]
    if query.search:
        projects = [p for p in projects if query.search.lower() in p["name"].lower()]
    if query.statuses:
        projects = [p for p in projects if p["status"] in query.statuses]
    field, direction = query.sort.split("_")
    projects.sort(
        key=lambda p: (p["name"] if field == "name" else p["created_at"], p["ref"]), reverse=direction == "desc"
    )
    page = projects[query.offset : query.offset + query.limit]
    return {
        "projects": [
            {
                "ref": p["ref"],
                "name": p["name"],
                "cloud_provider": CLOUD_PROVIDER,
                "region": p["region"],
                "is_branch": False,
                "status": p["status"],
                "inserted_at": p["created_at"],
                "databases": [
                    {
                        "region": p["region"],
                        "status": _database_status(p["status"]),
                        "cloud_provider": CLOUD_PROVIDER,
                        "identifier": p["ref"],
                        "type": "PRIMARY",
                    }
                ],
            }
            for p in page
        ],
        "pagination": {"count": len(projects), "limit": query.limit, "offset": query.offset},
    }
