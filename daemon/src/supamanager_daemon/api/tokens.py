"""Routes of ours: API tokens (`supamanager tokens create|list|revoke`). Only digests are stored."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .. import keys, tokens
from ..shapes.tokens import CreateTokenBody, TokenResponse
from ..store import TokenNotFound
from .routing import Api

api = Api("Tokens", "API tokens beyond the configured one (ours).", ours=True)


def token_json(row: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"], "revoked_at": row["revoked_at"]} | (
        {"token": token} if token else {}
    )


@api.get("/v1/tokens", "listTokens", "The named tokens, revoked ones included", response=list[TokenResponse])
async def list_tokens(request: web.Request) -> list[dict[str, Any]]:
    return [token_json(t) for t in await request.app[keys.STORE].list_tokens()]


@api.post(
    "/v1/tokens",
    "createToken",
    "Create a named token",
    description="The answer is the only place the token is ever shown; the daemon keeps its SHA-256.",
    status=201,
    body=CreateTokenBody,
    response=TokenResponse,
    errors=(400, 409),
)
async def create_token(request: web.Request, body: CreateTokenBody) -> dict[str, Any]:
    token = tokens.mint()
    token_digest = tokens.digest(token)
    row = await request.app[keys.STORE].create_token(str(uuid.uuid4()), body.name, token_digest)
    request.app[keys.TOKENS].add(token_digest)
    return token_json(row, token)


@api.delete(
    "/v1/tokens/{token_id}",
    "revokeToken",
    "Revoke a token (by id or name): refused from the next request on",
    response=TokenResponse,
    errors=(404,),
)
async def revoke_token(request: web.Request) -> dict[str, Any]:
    token_id = request.match_info["token_id"]
    if len(token_id) > 64:
        raise TokenNotFound(token_id)
    row = await request.app[keys.STORE].revoke_token(token_id)
    request.app[keys.TOKENS].remove(row["hash"])
    return token_json(row)
