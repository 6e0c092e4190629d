"""API tokens: the `sbp_` + 40 hex form the official clients insist on, kept as SHA-256 digests.

Two kinds are accepted: the configured token (SUPAMANAGER_API_TOKEN, or the one generated into
<data dir>/api-token at first start), compared as is; and named tokens made with
`supamanager tokens create`, of which the store keeps only a digest. The registry holds the
digests of the tokens not revoked, in memory: every change goes through this daemon, so a revoked
token is refused from the next request on, and a request costs no database read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_RE = re.compile(r"sbp_[a-f0-9]{40}")
# The configured token: at least this long, and not a placeholder (refused at start).
MIN_CONFIGURED_LENGTH = 32
# Words of example files and tutorials, as the whole token or one of its -, _ or . parts.
_PLACEHOLDER_RE = re.compile(
    r"(?i)(?:^|[-_.])(?:change-?me|change_me|replace-?me|placeholder|example|secret|password|"
    r"your-?token|token|todo|xxx+|dummy|default)(?:$|[-_.])"
)


def mint() -> str:
    """A new token in the platform's form: `sbp_` and 40 hex digits (160 random bits)."""
    return "sbp_" + secrets.token_hex(20)


def weakness(token: str) -> str | None:
    """Why a configured token is too weak to guard a shared host, or None when it will do."""
    if len(token) < MIN_CONFIGURED_LENGTH:
        return f"is {len(token)} characters long; use at least {MIN_CONFIGURED_LENGTH}"
    if _PLACEHOLDER_RE.search(token) or len(set(token)) < 8:
        return "looks like a placeholder"
    return None


def digest(token: str) -> str:
    # The tokens are random, so a fast hash is enough: nothing to guess from it.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, configured: str) -> None:
        self._configured = configured.encode()
        self._digests: set[str] = set()

    def load(self, tokens: list[dict]) -> None:
        self._digests = {t["hash"] for t in tokens if not t["revoked_at"]}

    def add(self, token_digest: str) -> None:
        self._digests.add(token_digest)

    def remove(self, token_digest: str) -> None:
        self._digests.discard(token_digest)

    def accepts(self, token: str) -> bool:
        if hmac.compare_digest(token.encode(), self._configured):
            return True
        return digest(token) in self._digests
