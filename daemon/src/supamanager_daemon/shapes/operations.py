"""Shapes of ours: operations (the jobs that carry changes out), their steps, and the daemon's health."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import models

OperationKind = Literal[tuple(models.KINDS)]  # type: ignore[valid-type]
OperationState = Literal[models.QUEUED, models.RUNNING, models.SUCCEEDED, models.FAILED]


class Step(BaseModel):
    """One event of an operation (ours). `step` events name the playbook task that started; `n` and
    `progress` come with them. Ids increase: they are the SSE event ids."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1)
    at: str
    type: str = Field(description="queued, started, step, task_failed, rollback, requeued, succeeded or failed.")
    name: str | None = None


class Operation(BaseModel):
    """A job on one project (ours): what runs, how far it got, how it ended."""

    id: str
    ref: str
    kind: OperationKind
    state: OperationState
    step: str | None = Field(description="The playbook task running now (or last).")
    progress: int = Field(ge=0, le=100)
    error: str | None = Field(description="Why it failed.")
    attempts: int = Field(ge=0)
    params: dict[str, Any] = Field(
        description="What it was asked to do: `delete_volumes` for a delete; `service`, `services` (restarted in"
        " this order) and `attempt` for a heal."
    )
    created_at: str
    started_at: str | None
    finished_at: str | None
    steps: list[Step]


class ServerSentEvent(BaseModel):
    """One message of GET /v1/operations/{op_id}/events (ours): `data` is a Step as JSON."""

    id: str = Field(pattern=r"^[0-9]+$", description="The step id, for Last-Event-ID.")
    event: str = Field(description="The step's type.")
    data: str = Field(description="The Step object, as JSON.")


class Healthz(BaseModel):
    """Liveness of the daemon (ours)."""

    status: Literal["ok"]
    docker: Literal["ok", "error"]
    polls: int
    docker_api_calls: int = Field(description="Docker API requests of the poller and the API.")
    usage_cycles: int = Field(description="Usage collections done (fleet/usage.py).")
    usage_docker_api_calls: int = Field(description="Docker API requests of the usage collector: 2 per cycle.")
    jobs_running: int
    jobs_queued: int
