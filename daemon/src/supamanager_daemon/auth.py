"""Bearer-token auth for every /v1 and /platform route (tokens.py); /healthz and the rest stay open.

Failed attempts are limited per client address: after `auth_failures_per_minute` failures in a
minute, every /v1 request from that address is 429 with Retry-After until the oldest failure is a
minute old, whatever token it carries (so the limit cannot be used to probe for the right one).
Behind the edge (settings.trusted_proxies), the address is the client's from X-Forwarded-For.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time

from aiohttp import web

from . import keys
from .errors import TooManyFailedAttempts, Unauthorized

WINDOW_SECONDS = 60.0
# Addresses remembered at most; the ones seen least recently go first.
MAX_TRACKED = 10000


class FailedAuthLimiter:
    """Failed authentications per client address over the last WINDOW_SECONDS."""

    def __init__(self, limit: int, clock=time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def _recent(self, address: str) -> collections.deque[float]:
        failures = self._failures.get(address, collections.deque())
        horizon = self.clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again, or None when it may now."""
        failures = self._recent(address)
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + WINDOW_SECONDS - self.clock()))

    def failed(self, address: str) -> None:
        failures = self._recent(address)
        failures.append(self.clock())
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)


def client_address(request: web.Request, trusted: frozenset[str]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last
    X-Forwarded-For hop that is not a trusted proxy (what the nearest proxy saw; anything before
    it is the client's own say). A malformed hop counts as the proxy itself."""
    remote = request.remote or "unknown"
    if not trusted or _normal(remote) not in trusted:
        return remote
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    for hop in reversed([h for h in hops if h]):
        address = _normal(hop)
        if address is None:
            return remote
        if address not in trusted:
            return address
    return remote


def _normal(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def check_token(request: web.Request, token: str | None) -> None:
    """Raise what the API answers for this token (429 while the address is limited, 401 missing or
    wrong); the console signs in through the same check."""
    limiter = request.app[keys.AUTH_LIMITER]
    address = client_address(request, request.app[keys.SETTINGS].trusted_proxy_addresses)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise TooManyFailedAttempts(wait)
    if not token:
        limiter.failed(address)
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    if not request.app[keys.TOKENS].accepts(token):
        limiter.failed(address)
        raise Unauthorized("invalid bearer token")


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.path == "/v1" or request.path.startswith(("/v1/", "/platform/")):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        check_token(request, token.strip() if scheme.lower() == "bearer" else None)
    return await handler(request)
