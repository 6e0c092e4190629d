"""Open routes of ours about the daemon itself: liveness, metrics, this API's document and its page."""

from __future__ import annotations

from aiohttp import web

from .. import keys, metrics, openapi
from ..shapes.operations import Healthz
from .routing import Api

api = Api("Service", "The daemon itself (ours; open, no token).", ours=True)


@api.get("/healthz", "healthz", "Liveness of the daemon", response=Healthz, open=True)
async def healthz(request: web.Request) -> dict:
    poller = request.app[keys.POLLER]
    jobs = request.app[keys.JOBS]
    return {
        "status": "ok",
        "docker": "error" if poller.last_error else "ok",
        "polls": poller.polls,
        "docker_api_calls": request.app[keys.FLEET].docker_api_calls,
        "usage_cycles": request.app[keys.USAGE].cycles,
        "usage_docker_api_calls": request.app[keys.USAGE].docker.calls,
        "jobs_running": jobs.running,
        "jobs_queued": jobs.queued,
    }


@api.get(
    "/metrics",
    "metrics",
    "Prometheus metrics, text exposition format 0.0.4",
    description="Metrics prefixed `supamanager_`; counts only, never a name, a key or a token.",
    open=True,
    content={"text/plain": {"type": "string"}},
)
async def metrics_text(request: web.Request) -> web.Response:
    text = await metrics.render(request.app)
    return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE})


@api.get(
    "/openapi.json",
    "openapi",
    "This document",
    open=True,
    content={"application/json": {"type": "object"}},
)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi.spec())


@api.get("/docs", "docs", "This document as a page", open=True, content={"text/html": {"type": "string"}})
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=openapi.render_docs(openapi.spec()),
        content_type="text/html",
        # A page that needs nothing from elsewhere can say so.
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
