"""Shapes of ours for a project's usage (fleet/usage.py collects it)."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .common import Query


class ApiRequests(BaseModel):
    """Requests the project's gateway (Kong) answered since the previous point, by kind."""

    rest: int = Field(description="To /rest/v1/ and /graphql/v1 (PostgREST).")
    auth: int = Field(description="To /auth/v1/ (the auth service).")
    storage: int = Field(description="To /storage/v1/.")
    realtime: int = Field(description="To /realtime/v1/ (websocket and REST).")
    total: int = Field(description="To every route of the gateway: the kinds above, functions, meta, the dashboard.")


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
    api_requests: ApiRequests | None = Field(
        None,
        description="Requests its gateway answered since the previous point (refusals included); null: no previous"
        " point of this daemon's run, or the gateway's metrics did not answer.",
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
    api_requests_24h: int | None = Field(
        description="Requests the projects' gateways answered in the last 24 hours, summed (null: no project knows)."
    )


class OrganizationUsage(BaseModel):
    """What an organization's projects use now (ours): each one's newest usage point and the sums."""

    slug: str
    interval_seconds: float
    totals: OrganizationUsageTotals
    projects: list[OrganizationProjectUsage]


# -- the Management API's analytics usage operations (official shapes) ---------------------------
ApiCountsInterval = Literal["15min", "30min", "1hr", "3hr", "1day", "3day", "7day"]


class ApiCountsQuery(Query):
    interval: ApiCountsInterval = Field(default="1day", description="How far back the counts go.")


class ApiCountsBucket(BaseModel):
    timestamp: str = Field(description="The bucket's start (ISO 8601, UTC).")
    total_auth_requests: int
    total_realtime_requests: int
    total_rest_requests: int
    total_storage_requests: int


class ApiCounts(BaseModel):
    """V1GetUsageApiCountResponse: the gateway's requests by kind, per bucket of the interval."""

    result: list[ApiCountsBucket]


class ApiRequestsCount(BaseModel):
    count: int


class ApiRequestsCountResponse(BaseModel):
    """V1GetUsageApiRequestsCountResponse: every request of the gateway in the last day."""

    result: list[ApiRequestsCount]


class LogsQuery(Query):
    """logs.all's query: Logflare's SQL (what of it is read: fleet/logs.py) and the time window."""

    # ASCII and at most 2000 characters: even percent-encoded, the request line stays within what the
    # server reads (8190 bytes)
    sql: str | None = Field(None, max_length=2000, pattern=r"^[\t\n\r\x20-\x7e]*$")
    iso_timestamp_start: datetime.datetime | None = None
    iso_timestamp_end: datetime.datetime | None = None


class LogRow(BaseModel):
    """One log line (ours: `service` names the container's service)."""

    id: str
    timestamp: int = Field(description="Microseconds since the epoch, as Logflare answers them.")
    event_message: str
    service: str


class AnalyticsResponse(BaseModel):
    result: list[LogRow]
