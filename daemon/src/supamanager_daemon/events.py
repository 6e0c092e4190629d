"""An operation's steps as Server-Sent Events (the route: GET /v1/operations/{op_id}/events, api/operations.py).

The store keeps every event of an operation with an increasing id, so the stream is a replay of
what is stored after Last-Event-ID followed by whatever is added, read from the store every
POLL_SECONDS. Reading the store (rather than a bus in memory) means a client gets the same stream
whatever it missed, also across a daemon restart. The operation's state is read before its events,
and the store writes the final event in the same transaction as the final state, so once a read
state is terminal the events read after it are complete and the stream can end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import web

from . import keys, models
from .errors import Busy, InvalidRequest
from .store import OperationNotFound

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 1000
TERMINAL = (models.SUCCEEDED, models.FAILED)

# Event ids are SQLite integers: a larger Last-Event-ID cannot be one (and would overflow the query).
MAX_EVENT_ID = 2**63 - 1

# Set when the daemon shuts down, so open streams end instead of holding the shutdown up.
CLOSING = web.AppKey("events_closing", asyncio.Event)
# Streams open right now (one mutable count): each holds a connection and polls the store.
OPEN_STREAMS = web.AppKey("events_open_streams", list)


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID")
    source = "header Last-Event-ID"
    if raw is None:
        raw = request.query.get("last_event_id")
        source = "query parameter 'last_event_id'"
    if raw is None or raw.strip() == "":
        return 0
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_EVENT_ID:
        raise InvalidRequest(f"{source} must be a non-negative integer (an event id)", code="invalid_value")
    return value


def format_event(event: dict) -> bytes:
    """One SSE message: id, event type, and the step object (as GET /v1/operations shows it) as data."""
    data = {"id": event["id"], "at": event["at"], "type": event["type"], "name": event["name"], **event["data"]}
    # json.dumps never emits a raw newline, so one data: line is enough.
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(data)}\n\n".encode()


async def respond(request: web.Request, op_id: str) -> web.StreamResponse:
    """Replay the stored events after Last-Event-ID, then follow the operation until it ends."""
    store = request.app[keys.STORE]
    after = _last_event_id(request)
    op = await store.get_operation(op_id) if len(op_id) <= 64 else None
    if op is None:
        raise OperationNotFound(op_id)
    open_streams = request.app[OPEN_STREAMS]
    if open_streams[0] >= request.app[keys.SETTINGS].max_event_streams:
        raise Busy("too many open event streams; poll GET /v1/operations/{id} or try again")

    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            # Proxies (nginx) must pass each event on at once.
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    open_streams[0] += 1
    try:
        await _stream(request, resp, op_id, after)
    except ConnectionResetError:  # the client went away: nothing to answer
        return resp
    finally:
        open_streams[0] -= 1
    await resp.write_eof()
    return resp


async def _stream(request: web.Request, resp: web.StreamResponse, op_id: str, after: int) -> None:
    store = request.app[keys.STORE]
    await resp.write(f"retry: {RETRY_MS}\n\n".encode())
    closing = request.app[CLOSING]
    last_write = time.monotonic()
    while True:
        op = await store.get_operation(op_id)
        events = await store.events(op_id, after)
        for event in events:
            await resp.write(format_event(event))
            after = event["id"]
            last_write = time.monotonic()
        if op is None or op["state"] in TERMINAL or closing.is_set():
            return
        if time.monotonic() - last_write >= KEEPALIVE_SECONDS:
            await resp.write(b": keepalive\n\n")
            last_write = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), POLL_SECONDS)


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()


def setup(app: web.Application) -> None:
    app[CLOSING] = asyncio.Event()
    app[OPEN_STREAMS] = [0]
    app.on_shutdown.append(_on_shutdown)
