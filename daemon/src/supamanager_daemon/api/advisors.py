"""Routes of the Advisors tag: our own lints of a project's database (projectdb/advisors.py).

Answered directly (ARCHITECTURE decision 13): read-only SQL over the project's pooler, as the SQL
routes run it; the exposed schemas are those PostgREST serves (`PGRST_DB_SCHEMAS` of its .env).
"""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..projectdb.advisors import PERFORMANCE, SECURITY, run_lints
from ..shapes.advisors import SecurityAdvisorsQuery, V1ProjectAdvisorsResponse
from .database import project_database
from .routing import Api

api = Api("Advisors", "Lints of a project's database: security and performance, our own.")


async def _lints(request: web.Request, lints) -> dict:
    ref, target, env = await project_database(request)
    exposed = env.get("PGRST_DB_SCHEMAS") or "public"
    return {"lints": await run_lints(request.app[keys.PROJECT_DBS], ref, target, lints, exposed)}


@api.get(
    "/v1/projects/{ref}/advisors/security",
    "v1-get-security-advisors",
    "Gets project's security advisors",
    description="Tables in the exposed schemas without row level security, security definer views there, and"
    " functions without a fixed search_path, as lints (the project's own database, read only).",
    query=SecurityAdvisorsQuery,
    response=V1ProjectAdvisorsResponse,
    errors=(400, 404, 503),
)
async def security_advisors(request: web.Request, query: SecurityAdvisorsQuery) -> dict:
    return await _lints(request, SECURITY)


@api.get(
    "/v1/projects/{ref}/advisors/performance",
    "v1-get-performance-advisors",
    "Gets project's performance advisors",
    description="Foreign keys without a covering index, indexes never used, identical indexes, as lints.",
    response=V1ProjectAdvisorsResponse,
    errors=(400, 404, 503),
)
async def performance_advisors(request: web.Request) -> dict:
    return await _lints(request, PERFORMANCE)
