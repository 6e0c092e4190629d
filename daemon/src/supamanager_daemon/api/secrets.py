"""Routes of the Secrets tag: the edge functions' secrets of a project.

Written by the daemon directly (projects/functions.py), as function deploys are: the project's main
router gives the values to the functions' workers, a new worker when they change, so nothing is
restarted and no playbook runs. A value never reaches the store, a log or an answer: the list
answers each value's SHA-256, as upstream.
"""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import web

from .. import keys
from ..projects import functions
from ..shapes.secrets import CreateSecretBody, DeleteSecretsBody, SecretResponse
from .functions import writable_project
from .projects import load_project
from .routing import Api

api = Api("Secrets", "A project's edge function secrets: names and digests out, values in only.")


@api.get(
    "/v1/projects/{ref}/secrets",
    "v1-list-all-secrets",
    "List all secrets",
    description="Each value is answered as its SHA-256 (hex), never in clear.",
    response=list[SecretResponse],
    errors=(404,),
)
async def list_secrets(request: web.Request) -> list[SecretResponse]:
    project = await load_project(request)
    found = await asyncio.to_thread(functions.read_secrets, request.app[keys.SETTINGS], project["ref"])
    return [
        SecretResponse(
            name=name,
            value=hashlib.sha256(str(entry.get("value", "")).encode()).hexdigest(),
            updated_at=entry.get("updated_at"),
        )
        for name, entry in sorted(found.items())
    ]


@api.post(
    "/v1/projects/{ref}/secrets",
    "v1-bulk-create-secrets",
    "Bulk create secrets",
    description="Sets the secrets (a name given again replaces its value); the functions see them from their next"
    " request on. A name starting with `SUPABASE_`, or not a variable name, is 400 and nothing changes.",
    status=201,
    body=CreateSecretBody,
    errors=(404, 409),
)
async def create_secrets(request: web.Request, body: CreateSecretBody) -> None:
    ref, settings = await writable_project(request)
    await asyncio.to_thread(functions.set_secrets, settings, ref, [(s.name, s.value) for s in body.root])


@api.delete(
    "/v1/projects/{ref}/secrets",
    "v1-bulk-delete-secrets",
    "Bulk delete secrets",
    body=DeleteSecretsBody,
    errors=(404, 409),
)
async def delete_secrets(request: web.Request, body: DeleteSecretsBody) -> None:
    ref, settings = await writable_project(request)
    await asyncio.to_thread(functions.unset_secrets, settings, ref, body.root)
