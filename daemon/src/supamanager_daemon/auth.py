"""Bearer-token auth for every /v1 route; /healthz and the rest stay open."""

from __future__ import annotations

import hmac

from aiohttp import web

from . import keys
from .errors import ApiError


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.path == "/v1" or request.path.startswith("/v1/"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
        expected = request.app[keys.API_TOKEN].encode()
        if not hmac.compare_digest(token.strip().encode(), expected):
            raise _unauthorized("invalid bearer token")
    return await handler(request)
