"""Domain errors: what went wrong, in the daemon's own words. No HTTP here.

Every error has a stable `code` (e.g. `project_not_found`), a `message` for a person, and optional
`details` (the field or the operation concerned). `middleware.py` is the one place that maps each
class to an HTTP status and writes the one JSON error shape; domain code (store, operations,
projects) and routes raise these and never build responses for failures.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client should hear about."""

    code = "error"
    # Seconds after which the client may try again (a Retry-After header), when that is known.
    retry_after: int | None = None

    def __init__(self, message: str, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidRequest(DomainError):
    """The request itself is wrong (body, query, field); the message names the problem."""

    code = "bad_request"


class InvalidState(DomainError):
    """The request is well formed but the project's state does not allow it (e.g. already paused)."""

    code = "invalid_state"


class NotFound(DomainError):
    code = "not_found"


class TooLarge(DomainError):
    """An upload is over its limit (an edge function's files); nothing was written."""

    code = "too_large"


class Conflict(DomainError):
    code = "conflict"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    """Allowed to no one right now, whoever asks: a limit of the host is reached."""

    code = "forbidden"


class TooManyFailedAttempts(DomainError):
    """The client address failed to authenticate too often in the last minute."""

    code = "too_many_failed_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications from this address; try again in {retry_after} s")
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A part the daemon depends on (the Docker engine, a project's database) cannot be reached."""

    code = "unavailable"


class Busy(Unavailable):
    """A capped resource (event streams) is all in use for now."""

    code = "too_busy"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
