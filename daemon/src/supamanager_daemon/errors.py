"""One JSON error shape for every failure: {"code": ..., "message": ...}."""

from __future__ import annotations

import logging

from aiohttp import web

from . import keys

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request failed in a way the client should hear about."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **details: object) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFound(ApiError):
    def __init__(self, message: str, code: str = "not_found") -> None:
        super().__init__(404, code, message)


class BadRequest(ApiError):
    def __init__(self, message: str, code: str = "bad_request", **details: object) -> None:
        super().__init__(400, code, message, **details)


class Conflict(ApiError):
    def __init__(self, message: str, code: str = "conflict", **details: object) -> None:
        super().__init__(409, code, message, **details)


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None) -> web.Response:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status, headers=headers)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details or None, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason
        if exc.status == 413:
            message = f"request body is larger than {request.app[keys.SETTINGS].max_body_bytes} bytes"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
        return error_response(exc.status, code, message, headers=headers)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the daemon's log")
