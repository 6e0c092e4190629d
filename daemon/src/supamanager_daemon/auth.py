"""Bearer-token auth for every /v1 route; /healthz and the rest stay open."""

from __future__ import annotations

import hmac

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
        expected = request.app[keys.API_TOKEN].encode()
        if not hmac.compare_digest(token.strip().encode(), expected):
            raise Unauthorized("invalid bearer token")
    return await handler(request)
