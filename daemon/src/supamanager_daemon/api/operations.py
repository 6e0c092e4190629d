"""Routes of ours: an operation (the job that carries a change out) and its event stream."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import events, keys
from ..shapes.operations import Operation, ServerSentEvent
from ..store import OperationNotFound
from .routing import Api

api = Api("Operations", "Jobs that carry changes out (ours).", ours=True)

OP_ID_MAX = 64


def operation_json(op: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": op["id"],
        "ref": op["ref"],
        "kind": op["kind"],
        "state": op["state"],
        "step": op["step"],
        "progress": op["progress"],
        "error": op["error"],
        "attempts": op["attempts"],
        "params": op["params"],
        "created_at": op["created_at"],
        "started_at": op["started_at"],
        "finished_at": op["finished_at"],
        "steps": [{"id": e["id"], "at": e["at"], "type": e["type"], "name": e["name"], **e["data"]} for e in steps],
    }


@api.get(
    "/v1/operations/{op_id}",
    "getOperation",
    "An operation: state, current step, progress, error and the steps so far",
    response=Operation,
    errors=(404,),
)
async def get_operation(request: web.Request) -> dict[str, Any]:
    op_id = request.match_info["op_id"]
    store = request.app[keys.STORE]
    op = await store.get_operation(op_id) if len(op_id) <= OP_ID_MAX else None
    if op is None:
        raise OperationNotFound(op_id)
    return operation_json(op, await store.events(op_id))


@api.get(
    "/v1/operations/{op_id}/events",
    "streamOperationEvents",
    "The operation's steps as Server-Sent Events",
    description="Replays the stored events after `Last-Event-ID` (header, or the `last_event_id` query parameter),"
    " then sends new ones as they happen, and ends once the operation has succeeded or failed. Each event: `id:`"
    " the step id, `event:` its type, `data:` the Step object as JSON. A comment line every 15 seconds keeps idle"
    " connections open.",
    errors=(400, 404, 503),
    # Before OpenAPI 3.2 (itemSchema), the schema of an event stream describes one event.
    content={"text/event-stream": ServerSentEvent},
    extra_parameters=(
        {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "last_event_id", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
    ),
)
async def operation_events(request: web.Request) -> web.StreamResponse:
    op_id = request.match_info["op_id"]
    if len(op_id) > OP_ID_MAX:
        raise OperationNotFound(op_id)
    return await events.respond(request, op_id)
