"""Bearer-token auth for every /v1 route (tokens.py); /healthz and the rest stay open."""

from __future__ import annotations

from aiohttp import web

from . import keys
from .errors import Unauthorized


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.path == "/v1" or request.path.startswith("/v1/"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        if not request.app[keys.TOKENS].accepts(token.strip()):
            raise Unauthorized("invalid bearer token")
    return await handler(request)
