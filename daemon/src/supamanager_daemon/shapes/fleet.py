"""Shapes of ours for the fleet: a project's healing state, and orphaned Docker objects."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .common import Query, Request

REF_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class HealingRecord(BaseModel):
    """What the healer did for one service of a project (ours)."""

    attempts: int = Field(ge=0, description="Restarts started since the service was last healthy for a while.")
    failures: int = Field(ge=0, description="Of those, the ones that did not bring it back.")
    gave_up: bool = Field(description="The daemon stopped restarting it (after SUPAMANAGER_HEAL_ATTEMPTS).")
    reason: str | None = Field(description="Why the last restart failed, or why healing gave up.")
    next_attempt_at: str | None = Field(description="No restart before this time, while backing off.")
    in_flight: str | None = Field(description="The heal operation running now.")
    operations: list[str] = Field(description="The heal operations of this service, oldest first.")


class Healing(BaseModel):
    """Whether the daemon heals the project, and what it tried, per service (ours)."""

    enabled: bool = Field(description="false: the project is marked 'do not heal'.")
    services: dict[str, HealingRecord]


class HealingBody(Request):
    enabled: bool = Field(description="false marks the project 'do not heal'; true lets the daemon heal it again.")


class OrphanContainer(BaseModel):
    id: str
    name: str
    ref: str = Field(description="The `supamanager.project` label: a ref the daemon does not know.")
    service: str | None
    state: str | None


class OrphanNetwork(BaseModel):
    id: str
    name: str | None
    ref: str


class OrphanVolume(BaseModel):
    name: str
    ref: str


class Orphans(BaseModel):
    """Docker objects labelled for projects the daemon does not know (ours)."""

    containers: list[OrphanContainer]
    networks: list[OrphanNetwork]
    volumes: list[OrphanVolume]


class OrphansQuery(Query):
    ref: str | None = Field(default=None, pattern=REF_PATTERN, description="Only the orphans of this ref.")
    volumes: bool = Field(default=False, description="Also remove orphaned volumes: they may hold a database.")


class RemovedOrphans(BaseModel):
    containers: list[str]
    networks: list[str]
    volumes: list[str]


class OrphansCleaned(BaseModel):
    """What a clean removed, the volumes it kept (without `volumes=true`), and what failed (ours)."""

    removed: RemovedOrphans
    kept_volumes: list[str]
    errors: list[str]


class FleetHost(BaseModel):
    """One host of the inventory's group supabase_hosts, with what it holds (ours)."""

    name: str
    region: str
    docker_host: str | None = Field(description="The engine the daemon polls; null: reached by its playbooks only.")
    local: bool = Field(description="ansible_connection=local: it shares this machine (admission applies).")
    up: bool | None = Field(description="Whether it answered the last poll (null: not polled yet, or not polled).")
    error: str | None = Field(description="Why it did not answer.")
    labels: dict[str, str]
    memory_mb: int | None = Field(description="supamanager_memory_mb; null: not limited.")
    cpus: float | None
    max_projects: int | None
    max_jobs: int
    port_range: list[int] | None = Field(description="[start, end] of its port allocator.")
    projects: int
    memory_mb_used: int = Field(description="What its projects take, as placement counts it.")
    jobs_running: int
    draining: bool = Field(description="Being drained: it takes no new project, and its projects move away.")


class Fleet(BaseModel):
    """The fleet the daemon drives (ours)."""

    inventory: str | None = Field(description="The inventory read (SUPAMANAGER_INVENTORY); null: this machine alone.")
    reloads: int
    hosts: list[FleetHost]


class DrainMove(BaseModel):
    ref: str
    target: str = Field(description="The host it moves to.")
    operation_id: str = Field(description="The move operation (kind move): /v1/operations/{id}.")
    state: str = Field(description="The operation's state: queued, running, succeeded or failed.")


class DrainSkipped(BaseModel):
    ref: str
    reason: str = Field(
        description="Why it was not moved (no host of its region with room, a status that is not moved, ...)."
    )


class Drain(BaseModel):
    """A host's drain (ours): its projects move, one at a time, to the best other host of their region."""

    host: str
    draining: bool = Field(description="The host takes no new project.")
    done: bool = Field(description="Every project was tried; those left on the host are in `skipped`.")
    moves: list[DrainMove]
    skipped: list[DrainSkipped]
    projects_left: int = Field(description="Projects still on the host.")
