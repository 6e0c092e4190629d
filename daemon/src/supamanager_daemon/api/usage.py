"""Routes of ours for a project's usage: what fleet/usage.py collected, read from the store."""

from __future__ import annotations

import datetime
import time
from typing import Any

from aiohttp import web

from .. import keys
from ..errors import InvalidRequest, Unavailable
from ..fleet import logs
from ..fleet.docker import SERVICE_LABEL, DockerError
from ..shapes.usage import (
    AnalyticsResponse,
    ApiCounts,
    ApiCountsQuery,
    ApiRequestsCountResponse,
    LogsQuery,
    OrganizationUsage,
    OrganizationUsageTotals,
    ProjectUsage,
    UsagePoint,
    UsageQuery,
)
from .organizations import load_organization
from .projects import load_project
from .routing import Api

api = Api("Usage", "What each project uses: CPU, memory, disk, database size, connections (ours).", ours=True)
analytics = Api(
    "Analytics", "A project's API request counts, from its gateway's usage points, and its logs, from its containers."
)

# usage.api-counts' interval: (how far back, the buckets' length), in seconds.
_INTERVALS = {
    "15min": (900, 60),
    "30min": (1800, 60),
    "1hr": (3600, 300),
    "3hr": (3 * 3600, 900),
    "1day": (86400, 3600),
    "3day": (3 * 86400, 3 * 3600),
    "7day": (7 * 86400, 86400),
}

_TOTALS = tuple(name for name in UsagePoint.model_fields if name != "collected_at")
_KINDS = ("auth", "realtime", "rest", "storage")


def _at(seconds: float) -> str:
    at = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_point(point: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    """A stored point in the answer's shape: totals, and per container and volume with detail."""
    out = {"collected_at": _at(point["at"]), **{name: point.get(name) for name in _TOTALS}}
    if detail:
        out["containers"], out["volumes"] = point.get("containers", []), point.get("volumes", [])
    return out


@api.get(
    "/v1/projects/{ref}/usage",
    "getProjectUsage",
    "The project's usage: the latest point in detail and a history of totals",
    description="Collected every SUPAMANAGER_USAGE_INTERVAL seconds for every project of the host, kept"
    " SUPAMANAGER_USAGE_RETENTION_DAYS days. Reads the store: no Docker call, no database query.",
    query=UsageQuery,
    response=ProjectUsage,
    errors=(400, 404),
)
async def get_usage(request: web.Request, query: UsageQuery) -> dict[str, Any]:
    project = await load_project(request)
    points = await request.app[keys.STORE].usage_history(project["ref"], since=time.time() - query.hours * 3600)
    return {
        "ref": project["ref"],
        "interval_seconds": request.app[keys.SETTINGS].usage_interval,
        "latest": public_point(points[-1], detail=True) if points else None,
        "history": [public_point(p) for p in points],
    }


@api.get(
    "/platform/organizations/{slug}/usage",
    "getOrganizationUsage",
    "What the organization's projects use now: each one's newest point and the sums",
    description="From the store: each project's newest usage point of the last three SUPAMANAGER_USAGE_INTERVAL"
    " periods (older: null, a stopped or unreachable project), and the totals over them; the gateways' requests of"
    " the last 24 hours.",
    response=OrganizationUsage,
    errors=(404,),
)
async def get_organization_usage(request: web.Request) -> dict[str, Any]:
    org = await load_organization(request)
    store, interval = request.app[keys.STORE], request.app[keys.SETTINGS].usage_interval
    now = time.time()
    projects, requests = [], []
    for project in sorted(await store.list_projects(), key=lambda p: p["ref"]):
        if project["organization_slug"] != org["slug"]:
            continue
        points = await store.usage_history(project["ref"], since=now - 86400)
        recent = [p for p in points if p["at"] >= now - 3 * interval]
        latest = public_point(recent[-1]) if recent else None
        projects.append({"ref": project["ref"], "name": project["name"], "status": project["status"], "latest": latest})
        counted = [p["api_requests"]["total"] for p in points if p.get("api_requests")]
        if counted:
            requests.append(sum(counted))
    totals: dict[str, Any] = {}
    for name in OrganizationUsageTotals.model_fields:
        known = [p["latest"][name] for p in projects if p["latest"] and p["latest"].get(name) is not None]
        totals[name] = sum(known) if known else None
    totals["api_requests_24h"] = sum(requests) if requests else None
    return {"slug": org["slug"], "interval_seconds": interval, "totals": totals, "projects": projects}


@analytics.get(
    "/v1/projects/{ref}/analytics/endpoints/usage.api-counts",
    "v1-get-project-usage-api-count",
    "Gets project's usage api counts",
    description="The gateway's requests by kind per bucket (15min, 30min: a minute; 1hr: 5 minutes; 3hr: 15; 1day:"
    " an hour; 3day: 3 hours; 7day: a day), summed from the usage points' `api_requests`: a request counts in the"
    " bucket of the point that first saw it (points every SUPAMANAGER_USAGE_INTERVAL seconds). Buckets without a"
    " point are left out.",
    query=ApiCountsQuery,
    response=ApiCounts,
    errors=(400, 404),
)
async def get_api_counts(request: web.Request, query: ApiCountsQuery) -> dict[str, Any]:
    project = await load_project(request)
    span, size = _INTERVALS[query.interval]
    points = await request.app[keys.STORE].usage_history(project["ref"], since=time.time() - span)
    buckets: dict[int, dict[str, int]] = {}
    for point in points:
        counts = point.get("api_requests")
        if not counts:
            continue
        bucket = buckets.setdefault(int(point["at"] // size * size), dict.fromkeys(_KINDS, 0))
        for kind in _KINDS:
            bucket[kind] += counts.get(kind, 0)
    return {
        "result": [
            {"timestamp": _at(start), **{f"total_{kind}_requests": counts[kind] for kind in _KINDS}}
            for start, counts in sorted(buckets.items())
        ]
    }


@analytics.get(
    "/v1/projects/{ref}/analytics/endpoints/usage.api-requests-count",
    "v1-get-project-usage-request-count",
    "Gets project's usage api requests count",
    description="Every request the gateway answered in the last 24 hours (all its routes), summed from the usage"
    " points' `api_requests`.",
    response=ApiRequestsCountResponse,
    errors=(404,),
)
async def get_api_requests_count(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    points = await request.app[keys.STORE].usage_history(project["ref"], since=time.time() - 86400)
    return {"result": [{"count": sum((p.get("api_requests") or {}).get("total", 0) for p in points)}]}


@analytics.get(
    "/v1/projects/{ref}/analytics/endpoints/logs.all",
    "v1-get-project-logs",
    "Gets project's logs",
    description="The project's log lines, from its own containers' logs (no log store holds them): of `sql`, the"
    " sources after `from` (edge_logs: the gateway, postgres_logs, auth_logs, postgrest_logs, storage_logs,"
    " realtime_logs, function_logs, function_edge_logs, supavisor_logs; none: all), a text `event_message` must"
    " contain (`like '%text%'`, `ilike`, `regexp_contains(event_message, 'text')` taken as plain text) and a"
    " `limit` (100, at most 1000) are read, the rest is not run. The window: `iso_timestamp_start` (an hour"
    " before its end) to `iso_timestamp_end` (now). Rows newest first.",
    query=LogsQuery,
    response=AnalyticsResponse,
    errors=(400, 404, 503),
)
async def get_project_logs(request: web.Request, query: LogsQuery) -> dict[str, Any]:
    project = await load_project(request)
    sources, text, limit = logs.parse_query(query.sql)
    end = query.iso_timestamp_end.timestamp() if query.iso_timestamp_end else time.time()
    start = query.iso_timestamp_start.timestamp() if query.iso_timestamp_start else end - 3600
    if start > end:
        raise InvalidRequest(
            "query parameter 'iso_timestamp_start' is after iso_timestamp_end", code="invalid_value",
            field="iso_timestamp_start",
        )  # fmt: skip
    docker = request.app[keys.FLEET].client_of(project)
    if docker is None:
        raise Unavailable(f"host {project['host']} has no engine the daemon can ask", code="docker_unavailable")
    wanted = {logs.SOURCES[source] for source in sources}
    try:
        raw = await docker.project_containers(project["ref"])
        by_service = {(c.get("Labels") or {}).get(SERVICE_LABEL): c["Id"] for c in raw}
        found = {
            service: logs.lines(await docker.container_logs(by_service[service], start, end, MAX_LOG_LINES))
            for service in sorted(wanted & set(by_service))
        }
    except DockerError as exc:
        raise Unavailable(f"cannot query Docker: {exc}", code="docker_unavailable") from None
    return {"result": logs.rows(found, text, limit)}


# Lines read of each container (the newest of the window) before the text filter.
MAX_LOG_LINES = 10000
