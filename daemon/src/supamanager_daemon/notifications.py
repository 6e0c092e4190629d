"""Notifications: what an organization hears of, recorded in the store and sent to its webhooks.

Events: `project.status_changed` (an operation's end or a poll moved a project to another status),
`operation.failed` and `backup.failed` (a backup operation that failed). Each is stored (unread until
PATCH /platform/notifications marks it) and posted as JSON to every webhook of the project's
organization, signed: `X-Supamanager-Signature: sha256=<HMAC-SHA256 of the body with the webhook's
secret, hex>`. A delivery is its own task with a timeout per attempt, retried with a doubling
backoff; every attempt is recorded. Nothing that emits waits for a delivery: a receiver that is
down or hangs delays no poll, no job and no other receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from typing import Any

import aiohttp

from . import models
from .store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Supamanager-Signature"
EVENTS = ("project.status_changed", "operation.failed", "backup.failed")


def signature(secret: str, body: bytes) -> str:
    """The value of SIGNATURE_HEADER for body: what a receiver recomputes and compares."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    def __init__(
        self,
        store: Store,
        *,
        timeout: float = 10.0,
        attempts: int = 5,
        backoff: float = 5.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what the daemon tells it (never awaited: emitting costs a task, not a delivery) ---------
    def status_changed(self, ref: str, status: str, previous: str | None = None) -> None:
        self._spawn(self._emit(ref, "project.status_changed", {"status": status, "previous_status": previous}))

    def host_changed(self, host: str, up: bool, error: str | None, refs: list[str]) -> None:
        """A host stopped (or started again) answering: each of its projects' organizations hears it."""
        event = "host.reachable" if up else "host.unreachable"
        for ref in refs:
            self._spawn(self._emit(ref, event, {"host": host, "error": None if up else (error or "")[:300]}))

    def operation_finished(self, op: dict[str, Any]) -> None:
        """An operation ended: its project's new status, and its failure when it failed."""
        kind = models.KINDS[op["kind"]]
        if op["state"] == models.FAILED:
            event = "backup.failed" if op["kind"] == "backup" else "operation.failed"
            data = {"operation_id": op["id"], "kind": op["kind"], "error": op.get("error")}
            self._spawn(self._emit(op["ref"], event, data))
        status = kind.done if op["state"] == models.SUCCEEDED else kind.failed
        if status is not None and status != kind.busy:
            data = {"status": status, "previous_status": kind.busy}
            self._spawn(self._emit(op["ref"], "project.status_changed", data))

    # -- recording and delivering ------------------------------------------------------------------
    async def _emit(self, ref: str, event: str, data: dict[str, Any]) -> None:
        try:
            project = await self.store.get_project(ref)
            if project is None:  # deleted meanwhile: no organization to tell
                return
            slug = project["organization_slug"]
            note = await self.store.add_notification(slug, ref, event, data)
            hooks = await self.store.list_webhooks(slug, with_secrets=True)
        except Exception:
            log.exception("notification %s of project %s not recorded", event, ref)
            return
        head = {"id": note["id"], "event": event, "organization_slug": slug, "ref": ref}
        body = json.dumps({**head, "created_at": note["created_at"], **data}).encode()
        for hook in hooks:
            self._spawn(self._deliver(note["id"], hook, body, event))

    async def _deliver(self, note_id: int, hook: dict[str, Any], body: bytes, event: str) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "supamanagerd",
            "X-Supamanager-Event": event,
            "X-Supamanager-Delivery": str(note_id),
            SIGNATURE_HEADER: signature(hook["secret"], body),
        }
        for attempt in range(1, self.attempts + 1):
            status, error = None, None
            try:
                async with self._client().post(
                    hook["url"], data=body, headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:  # fmt: skip
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
            ok = status is not None and 200 <= status < 300
            if not ok and error is None:
                error = f"answered {status}"
            await self.store.add_delivery(note_id, hook["id"], attempt, status, None if ok else error)
            if ok:
                return
            if attempt < self.attempts:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))
        log.warning("notification %s to webhook %s failed %d times: %s", note_id, hook["id"], self.attempts, error)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests; a stopping daemon cancels them instead)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
