"""Draining a host: it takes no new project (placement skips it, fleet/manager.py `draining`), and its
projects move, one at a time, each to the best other host of its region (the most free memory, as a
create is placed), through the same move operation as POST /v1/projects/{ref}/move.

A project that cannot move (no other host of its region has room, a status that is not moved, another
operation running on it) is skipped with the reason and stays where it is; a move that fails leaves
its project on the host (move.yml starts it there again). The drain goes on with the next project.
The mark lives in memory: a daemon restart forgets it (a move already recorded goes on). Undraining
lets the host take projects again and stops the drain after the move in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import models
from ..errors import DomainError
from ..store import Store
from .manager import FleetManager

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DrainState:
    host: str
    moves: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    done: bool = False


class Drains:
    """The drains of the fleet's hosts; start_move(ref) records a project's move to the host placement
    picks for it and returns the operation (DomainError when it cannot move)."""

    def __init__(
        self,
        manager: FleetManager,
        store: Store,
        start_move: Callable[[str], Awaitable[dict[str, Any]]],
        check_every: float = 1.0,
    ) -> None:
        self.manager = manager
        self.store = store
        self.start_move = start_move
        self.check_every = check_every
        self.states: dict[str, DrainState] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def state(self, host: str) -> DrainState:
        return self.states.get(host) or DrainState(host, done=host not in self.manager.draining)

    def drain(self, host: str) -> DrainState:
        """Mark host draining and start moving its projects (once: a drain running goes on)."""
        self.manager.draining.add(host)
        if host in self._tasks:
            return self.states[host]
        state = self.states[host] = DrainState(host)
        task = asyncio.create_task(self._run(state), name=f"drain-{host}")
        self._tasks[host] = task
        task.add_done_callback(lambda _t: self._tasks.pop(host, None))
        return state

    def undrain(self, host: str) -> DrainState:
        """The host takes projects again; a drain running stops after the move in flight."""
        self.manager.draining.discard(host)
        return self.state(host)

    async def _run(self, state: DrainState) -> None:
        tried: set[str] = set()
        try:
            while state.host in self.manager.draining:
                left = [
                    p for p in await self.store.list_projects() if p["host"] == state.host and p["ref"] not in tried
                ]
                if not left:
                    break
                ref = left[0]["ref"]
                tried.add(ref)
                try:
                    op = await self.start_move(ref)
                except DomainError as exc:
                    log.info("drain %s: project %s stays: %s", state.host, ref, exc.message)
                    state.skipped.append({"ref": ref, "reason": exc.message})
                    continue
                move = {"ref": ref, "target": op["params"]["target"], "operation_id": op["id"], "state": op["state"]}
                state.moves.append(move)
                log.info("drain %s: moving project %s to %s", state.host, ref, move["target"])
                while move["state"] in models.ACTIVE_STATES:
                    await asyncio.sleep(self.check_every)
                    move["state"] = (await self.store.get_operation(op["id"]))["state"]
        finally:
            state.done = True

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
