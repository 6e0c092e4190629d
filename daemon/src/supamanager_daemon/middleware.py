"""The one error middleware: every failure becomes the one JSON error shape, `{code, message, details?}`.

Domain code raises the errors of errors.py (and the store's, store/errors.py); this module is the
only place that knows which HTTP status each one means. aiohttp's own HTTP errors (404 no route,
405, 413) get the same shape; anything unexpected is logged and answered 500 without details.
"""

from __future__ import annotations

import logging

from aiohttp import web

from . import errors, keys
from .shapes.common import Error

log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.InvalidRequest, 400),
    (errors.InvalidState, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.TooManyFailedAttempts, 429),
    (errors.Unavailable, 503),
)

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def status_of(exc: errors.DomainError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None) -> web.Response:
    body = Error(code=code, message=message, details=details or None)
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.DomainError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.Unauthorized) else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(status_of(exc), exc.code, exc.message, exc.details, headers=headers)
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
