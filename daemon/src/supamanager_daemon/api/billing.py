"""Routes of the Billing tag: a project's compute instance size, read and changed as its addon.

The size is what the project role renders as memory and CPU limits (roles/project README "Instance
sizes"); project.json keeps it. A change is an operation (kind `resize`: resume.yml with the new
`supabase_instance_size`, which recreates the containers whose limits change and waits for health).
Nothing costs anything here: prices are 0.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import keys, models
from ..errors import InvalidRequest, InvalidState
from ..projects.files import project_info
from ..shapes.billing import COMPUTE_VARIANTS, INSTANCE_SIZES, ApplyProjectAddonBody, ListProjectAddonsResponse
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply

api = Api("Billing", "A project's compute instance size, as the platform's compute addon (no charge).")

_PRICE = {"description": "Self-hosted: no charge", "type": "fixed", "interval": "monthly", "amount": 0}


def _variant(size: str) -> dict[str, Any]:
    return {"id": f"ci_{size}", "name": f"Compute {size}", "price": _PRICE, "meta": {"instance_size": size}}


def choose_resize(project: dict[str, Any]) -> str:
    """A running project only: a paused one would be started by the resize."""
    if project["status"] not in (models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY):
        raise InvalidState(f"project {project['ref']} is {project['status']}: only a running project is resized")
    return "resize"


async def _size(request: web.Request, ref: str) -> str:
    info = await asyncio.to_thread(project_info, request.app[keys.SETTINGS], ref)
    size = info.get("instance_size")
    return size if size in INSTANCE_SIZES else ""


async def _resize(request: web.Request, size: str) -> Reply:
    ref = path_ref(request)
    _project, op = await record(
        request, lambda: request.app[keys.STORE].start_operation(ref, choose_resize, {"instance_size": size})
    )
    return accepted(None, op)


@api.get(
    "/v1/projects/{ref}/billing/addons",
    "v1-list-project-addons",
    "List billing addons and compute instance selections",
    description="The compute instance the project has (none selected: nano, or a project made without a size,"
    " which has no limits), and every size it can take.",
    response=ListProjectAddonsResponse,
    errors=(404,),
)
async def list_addons(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    size = await _size(request, project["ref"])
    selected = [{"type": "compute_instance", "variant": _variant(size)}] if size not in ("", "nano") else []
    variants = [_variant(variant.removeprefix("ci_")) for variant in COMPUTE_VARIANTS]
    return {
        "selected_addons": selected,
        "available_addons": [{"type": "compute_instance", "name": "Compute size", "variants": variants}],
    }


@api.patch(
    "/v1/projects/{ref}/billing/addons",
    "v1-apply-project-addon",
    "Apply or update billing addons, including compute instance size",
    description="`compute_instance` with `ci_<size>`: a resize (status RESIZING, then ACTIVE_HEALTHY): the"
    " containers whose limits change are recreated with the new ones and the project waits for health."
    " Answers at once with `X-Operation-Id` (the size it has already: the run changes nothing). Other addons: 400.",
    body=ApplyProjectAddonBody,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def apply_addon(request: web.Request, body: ApplyProjectAddonBody) -> Reply:
    if body.addon_type != "compute_instance" or not body.addon_variant.startswith("ci_"):
        raise InvalidRequest(
            f"addon {body.addon_type}/{body.addon_variant} is not offered: only compute_instance with ci_<size>",
            code="addon_not_offered",
        )
    return await _resize(request, body.addon_variant.removeprefix("ci_"))


@api.delete(
    "/v1/projects/{ref}/billing/addons/{addon_variant}",
    "v1-remove-project-addon",
    "Remove billing addons or revert compute instance sizing",
    description="The project's own compute variant: back to the smallest size, nano (a resize, as PATCH)."
    " A variant the project does not have: 400.",
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def remove_addon(request: web.Request) -> Reply:
    variant = request.match_info["addon_variant"]
    size = await _size(request, path_ref(request))
    if variant not in COMPUTE_VARIANTS or variant != f"ci_{size}":
        await load_project(request)  # an unknown project is 404 first
        raise InvalidRequest(f"the project has no addon {variant[:40]!r}", code="addon_not_selected")
    return await _resize(request, "nano")
