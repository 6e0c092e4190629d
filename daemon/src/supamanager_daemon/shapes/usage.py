"""Shapes of ours for a project's usage (fleet/usage.py collects it)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .common import Query


class ContainerUsage(BaseModel):
    """One running container of the project, from its cgroup files."""

    service: str = Field(description="The `supamanager.service` label: db, rest, kong, ...")
    cpu_seconds: float = Field(description="CPU time used since the container started.")
    memory_bytes: int = Field(description="Memory charged to the container now (page cache included).")
    memory_peak_bytes: int | None = Field(description="The most it was charged since it started; null: unknown.")
    memory_limit_bytes: int | None = Field(description="Its memory limit; null: none.")
    # Default null: points stored before the daemon read the network have none.
    network_rx_bytes: int | None = Field(None, description="Bytes its network namespace received (but on lo).")
    network_tx_bytes: int | None = Field(None, description="Bytes it sent (but on lo).")


class VolumeUsage(BaseModel):
    name: str = Field(description="The volume of the project: db-data, db-config, storage-data, deno-cache.")
    bytes: int = Field(description="Disk blocks in use under its mountpoint, as `du -s` counts them.")
    # Default null: points stored before the daemon asked the file system have none.
    filesystem_used_ratio: float | None = Field(
        None, description="How full the file system holding it is (0-1, as `df` counts Use%); null: unknown."
    )


class UsagePoint(BaseModel):
    """The project's totals at one collection; null: not known then (stopped, no database answer)."""

    collected_at: str = Field(description="When (ISO 8601, UTC).")
    cpu_seconds: float | None = Field(description="CPU seconds of its running containers, summed.")
    cpu_share: float | None = Field(description="Cores in use on average since the previous point (1.0: one core).")
    memory_bytes: int | None = Field(description="Memory of its running containers, summed.")
    memory_peak_bytes: int | None = Field(
        description="The containers' peaks summed: an upper bound of the project's peak, not reached at once."
    )
    memory_limit_bytes: int | None = Field(description="The containers' limits summed; null unless every one has one.")
    network_rx_bytes: int | None = Field(
        description="Bytes its containers received, summed (traffic between its own services counts too)."
    )
    network_tx_bytes: int | None = Field(description="Bytes its containers sent, summed (the same way).")
    disk_bytes: int | None = Field(description="Its volumes' disk use, summed.")
    database_size_bytes: int | None = Field(description="`pg_database_size` of its database.")
    connections: int | None = Field(description="Client connections to its database (`pg_stat_activity`).")
    # Default null: points stored before these were collected have none.
    filesystem_used_ratio: float | None = Field(
        None, description="The fullest file system holding one of its volumes (0-1, as `df` counts Use%)."
    )
    memory_limit_ratio: float | None = Field(
        None, description="The highest memory / limit of its containers that have a limit (0-1); null: none has one."
    )
    wal_archive_lag_bytes: int | None = Field(
        None, description="WAL its database holds that the backup agent has not archived yet; null: no agent."
    )


class UsageDetail(UsagePoint):
    containers: list[ContainerUsage]
    volumes: list[VolumeUsage]


class ProjectUsage(BaseModel):
    """A project's latest usage, per container and volume, and its history of totals (ours)."""

    ref: str
    interval_seconds: float = Field(description="Seconds between two points (SUPAMANAGER_USAGE_INTERVAL).")
    latest: UsageDetail | None = Field(description="The newest point; null before the first collection.")
    history: list[UsagePoint] = Field(description="The points of the asked hours, oldest first.")


class UsageQuery(Query):
    hours: int = Field(default=24, ge=1, le=24 * 31, description="How far back the history goes.")


class OrganizationProjectUsage(BaseModel):
    ref: str
    name: str
    status: str
    latest: UsagePoint | None = Field(description="Its newest point; null: none in the last three intervals.")


class OrganizationUsageTotals(BaseModel):
    """The sums over the organization's projects' newest points (a figure no project knows: null)."""

    cpu_seconds: float | None
    memory_bytes: int | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None
    disk_bytes: int | None
    database_size_bytes: int | None
    connections: int | None


class OrganizationUsage(BaseModel):
    """What an organization's projects use now (ours): each one's newest usage point and the sums."""

    slug: str
    interval_seconds: float
    totals: OrganizationUsageTotals
    projects: list[OrganizationProjectUsage]
