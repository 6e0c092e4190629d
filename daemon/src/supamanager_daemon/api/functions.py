"""Routes of the Edge Functions tag: deploy, list, read, update, delete a project's functions.

Answered by the daemon directly (projects/functions.py writes the files): a deploy changes no
container, since the project's main router reads each function's record on every request, so it
is served at once, and the CLI gets the deployed version in the deploy's own answer, as upstream.
A deploy waits for no playbook run; it is refused (409) while an operation that replaces or removes
the project's files runs. The eszip bundle the CLI uploads when the user's Docker runs is refused
with a message naming `--use-api` (the source upload, which this daemon deploys).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.parse
from typing import Any

import aiohttp
import pydantic
from aiohttp import web

from .. import keys
from ..errors import Conflict, InvalidRequest, TooLarge
from ..projects import functions
from ..shapes.functions import (
    ESZIP,
    BulkUpdateFunctionBody,
    BulkUpdateFunctionResponse,
    DeployFunctionQuery,
    DeployFunctionResponse,
    FunctionDeployMetadata,
    FunctionResponse,
    FunctionSlugResponse,
    UpdateFunctionQuery,
    V1CreateFunctionBody,
    V1UpdateFunctionBody,
)
from .projects import load_project
from .routing import Api, invalid_request, read_json

api = Api("Edge Functions", "A project's edge functions, served by its runtime through the gateway.")

# Operations during which the project's files are replaced or removed: no deploy meanwhile.
_REPLACING = frozenset({"create", "recreate", "delete", "restore_backup"})
ESZIP_REFUSED = (
    "eszip bundles are not accepted by this server: deploy the sources with `supabase functions deploy --use-api`"
)
_ERRORS = (400, 404, 409, 413)


async def writable_project(request: web.Request) -> tuple[str, Any]:
    """The project's ref and the settings; 409 while an operation replaces the project's files."""
    project = await load_project(request)
    ref = project["ref"]
    for op in await request.app[keys.STORE].active_operations():
        if op["ref"] == ref and op["kind"] in _REPLACING:
            raise Conflict(
                f"an operation ({op['kind']}) is replacing project {ref}'s files; try again when it ends",
                code="operation_in_progress",
                operation_id=op["id"],
            )
    return ref, request.app[keys.SETTINGS]


def _refuse_eszip(request: web.Request) -> None:
    if request.content_type == ESZIP:
        raise InvalidRequest(ESZIP_REFUSED, code="eszip_not_supported")


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the function's files are larger than {limit} bytes", code="function_too_large")


async def _multipart(request: web.Request, limit: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The deploy's parts: `metadata` (JSON) and one `file` part per source file, within `limit` bytes."""
    if request.content_type != "multipart/form-data":
        raise InvalidRequest("a deploy is multipart/form-data: a metadata part and file parts", code="invalid_body")
    reader = await request.multipart()
    metadata: dict[str, Any] | None = None
    files: dict[str, bytes] = {}
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader):
            raise InvalidRequest("nested multipart parts are not accepted", code="invalid_body")
        chunks = []
        while chunk := await part.read_chunk(64 * 1024):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        data = b"".join(chunks)
        if part.name == "metadata":
            try:
                metadata = json.loads(data)
            except ValueError:
                raise InvalidRequest("the metadata part is not JSON", code="malformed_json") from None
        elif part.name == "file":
            # The CLI sends the path as is; aiohttp's and browsers' form encoders percent-encode it.
            path = functions.check_path(urllib.parse.unquote(part.filename or ""))
            if path in files:
                raise InvalidRequest(f"file {path} is uploaded twice", code="invalid_path")
            files[path] = data
        else:
            name = str(part.name)[:64]
            raise InvalidRequest(f"unknown part {name!r}: expected metadata and file", code="invalid_body")
    if metadata is None:
        raise InvalidRequest("field 'metadata' is required", code="missing_field", field="metadata")
    try:
        meta = FunctionDeployMetadata.model_validate(metadata).model_dump()
    except pydantic.ValidationError as exc:
        raise invalid_request(exc) from None
    return meta, files


@api.get(
    "/v1/projects/{ref}/functions",
    "v1-list-all-functions",
    "List all functions",
    response=list[FunctionResponse],
    errors=(404,),
)
async def list_functions(request: web.Request) -> list[dict[str, Any]]:
    project = await load_project(request)
    return await asyncio.to_thread(functions.list_functions, request.app[keys.SETTINGS], project["ref"])


@api.post(
    "/v1/projects/{ref}/functions/deploy",
    "v1-deploy-a-function",
    "Deploy a function",
    description="Multipart: a `metadata` part (entrypoint_path, import_map_path, verify_jwt, name) and one `file`"
    " part per source file, its filename the file's relative path. Written as the function's next version and"
    " served at once through the gateway (`/functions/v1/<slug>`).",
    status=201,
    query=DeployFunctionQuery,
    response=DeployFunctionResponse,
    errors=_ERRORS,
)
async def deploy_function(request: web.Request, query: DeployFunctionQuery) -> dict[str, Any]:
    _refuse_eszip(request)
    ref, settings = await writable_project(request)
    if query.slug is not None:
        functions.check_slug(query.slug)
    meta, files = await _multipart(request, settings.function_max_bytes)
    slug = functions.check_slug(query.slug or meta.get("name") or "")
    return await asyncio.to_thread(functions.deploy, settings, ref, slug, meta, files)


@api.post(
    "/v1/projects/{ref}/functions",
    "v1-create-a-function",
    "Create a function",
    description="JSON `{slug, name, body, verify_jwt?}`: `body` becomes the function's `index.ts`. An eszip bundle"
    " is refused (400): deploy with `supabase functions deploy --use-api`.",
    status=201,
    response=FunctionResponse,
    errors=_ERRORS,
)
async def create_function(request: web.Request) -> dict[str, Any]:
    _refuse_eszip(request)
    ref, settings = await writable_project(request)
    try:
        body = V1CreateFunctionBody.model_validate(await read_json(request))
    except pydantic.ValidationError as exc:
        raise invalid_request(exc) from None
    slug = functions.check_slug(body.slug)
    if await asyncio.to_thread(lambda: any(f["slug"] == slug for f in functions.list_functions(settings, ref))):
        raise Conflict(f"function {slug} exists: update it", code="function_exists", slug=slug)
    meta = {"name": body.name, "verify_jwt": body.verify_jwt, "entrypoint_path": "index.ts"}
    if len(body.body.encode()) > settings.function_max_bytes:
        raise _too_large(settings.function_max_bytes)
    return await asyncio.to_thread(functions.deploy, settings, ref, slug, meta, {"index.ts": body.body.encode()})


@api.put(
    "/v1/projects/{ref}/functions",
    "v1-bulk-update-functions",
    "Bulk update functions",
    description="What the CLI sends after deploying several functions with `bundleOnly=true`: here each deploy is"
    " live already, so this answers the listed functions' records (404 for one that is not deployed).",
    body=BulkUpdateFunctionBody,
    response=BulkUpdateFunctionResponse,
    errors=(404,),
)
async def bulk_update_functions(request: web.Request, body: BulkUpdateFunctionBody) -> dict[str, Any]:
    project = await load_project(request)
    settings = request.app[keys.SETTINGS]
    records = [await asyncio.to_thread(functions.get_function, settings, project["ref"], f.slug) for f in body.root]
    return {"functions": records}


@api.get(
    "/v1/projects/{ref}/functions/{function_slug}",
    "v1-get-a-function",
    "Retrieve a function",
    response=FunctionSlugResponse,
    errors=(404,),
)
async def get_function(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    slug = request.match_info["function_slug"]
    return await asyncio.to_thread(functions.get_function, request.app[keys.SETTINGS], project["ref"], slug)


@api.get(
    "/v1/projects/{ref}/functions/{function_slug}/body",
    "v1-get-a-function-body",
    "Retrieve a function body",
    description="The live version's files as multipart/form-data, what `supabase functions download` reads: a"
    " `metadata` part `{deno2_entrypoint_path}` (the entrypoint as deployed) and one `file` part per file, its"
    " filename the path it was deployed at. (No eszip: this server keeps the sources.)",
    content={"multipart/form-data": {"type": "object"}},
    errors=(404,),
)
async def get_function_body(request: web.Request) -> web.Response:
    project = await load_project(request)
    slug, settings = request.match_info["function_slug"], request.app[keys.SETTINGS]
    record = await asyncio.to_thread(functions.get_function, settings, project["ref"], slug)
    files = await asyncio.to_thread(functions.read_files, settings, project["ref"], slug)
    boundary = secrets.token_hex(16)
    metadata = json.dumps({"deno2_entrypoint_path": record["entrypoint_path"]}).encode()
    parts = [(b'name="metadata"', b"application/json", metadata)]
    parts += [(b'name="file"; filename="' + _quoted(path) + b'"', b"application/octet-stream", data)
              for path, data in files.items()]  # fmt: skip
    body = b"".join(
        b"--%s\r\nContent-Disposition: form-data; %s\r\nContent-Type: %s\r\n\r\n%s\r\n"
        % (boundary.encode(), disposition, kind, data)
        for disposition, kind, data in parts
    )
    body += b"--%s--\r\n" % boundary.encode()
    return web.Response(body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _quoted(path: str) -> bytes:
    """A deployed path as a quoted-string of Content-Disposition, as Go's mime.ParseMediaType reads it
    (the CLI's getPartPath): verbatim, slashes kept; a quote or a backslash escaped."""
    return path.replace("\\", "\\\\").replace('"', '\\"').encode()


@api.patch(
    "/v1/projects/{ref}/functions/{function_slug}",
    "v1-update-a-function",
    "Update a function",
    description="JSON `{name?, body?, verify_jwt?}` (or the same as query parameters): a new version; `body`"
    " replaces the entrypoint's source. An eszip bundle is refused (400): use `--use-api`.",
    query=UpdateFunctionQuery,
    response=FunctionResponse,
    errors=_ERRORS,
)
async def update_function(request: web.Request, query: UpdateFunctionQuery) -> dict[str, Any]:
    _refuse_eszip(request)
    ref, settings = await writable_project(request)
    slug = request.match_info["function_slug"]
    record = await asyncio.to_thread(functions.get_function, settings, ref, slug)
    body = V1UpdateFunctionBody()
    if request.can_read_body:
        try:
            body = V1UpdateFunctionBody.model_validate(await read_json(request))
        except pydantic.ValidationError as exc:
            raise invalid_request(exc) from None
    meta = {
        "name": body.name or query.name,
        "verify_jwt": body.verify_jwt if body.verify_jwt is not None else query.verify_jwt,
        "entrypoint_path": record["entrypoint_path"],
    }
    files = None
    if body.body is not None:
        if len(body.body.encode()) > settings.function_max_bytes:
            raise _too_large(settings.function_max_bytes)
        files = await asyncio.to_thread(functions.read_files, settings, ref, slug)
        files[record["entrypoint_path"]] = body.body.encode()
    return await asyncio.to_thread(functions.deploy, settings, ref, slug, meta, files)


@api.delete(
    "/v1/projects/{ref}/functions/{function_slug}",
    "v1-delete-a-function",
    "Delete a function",
    errors=(404, 409),
)
async def delete_function(request: web.Request) -> None:
    ref, settings = await writable_project(request)
    await asyncio.to_thread(functions.delete, settings, ref, request.match_info["function_slug"])
