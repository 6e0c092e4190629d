"""Prometheus metrics at GET /metrics, in the text exposition format (0.0.4), written by hand.

Ten metric families do not justify a client library. Counters and histograms live in memory
(they restart at zero with the daemon, as Prometheus expects); the projects-by-status gauge is
read from the store at scrape time, so it never drifts from what GET /v1/projects shows, and the
backups-by-status gauge from the backup repository, as GET .../database/backups lists them.
/metrics is open like /healthz: it carries counts, never a name, a key or a token. The per-project
series carry the label `ref` (and the request counter a `kind` of five: bounded by max_projects);
their figures are the usage collector's latest point (fleet/usage.py), a figure it could not read
is left out rather than given as 0.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime
import math
from typing import Any

from aiohttp import web

from . import keys, models
from .fleet.usage import API_KINDS
from .projects.files import read_backups
from .settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
# What a backup's manifest can say (project_backup): a published backup is one of these.
BACKUP_STATUSES = ("COMPLETED", "FAILED")
# A project that should run and does not, as the poll sees it: supamanager_project_unhealthy is 1.
UNHEALTHY_STATUSES = frozenset({models.ACTIVE_UNHEALTHY, models.UNKNOWN, models.REMOVED})
# Per-project usage families: (name, type, the point's field, help).
USAGE_FAMILIES = (
    ("supamanager_project_cpu_seconds_total", "counter", "cpu_seconds", "CPU seconds of its running containers."),
    ("supamanager_project_memory_bytes", "gauge", "memory_bytes", "Memory charged to the project's containers."),
    ("supamanager_project_memory_limit_bytes", "gauge", "memory_limit_bytes",
     "The project's memory limit (its containers' limits summed), when every container has one."),
    ("supamanager_project_network_receive_bytes_total", "counter", "network_rx_bytes",
     "Bytes its containers received (between its own services too)."),
    ("supamanager_project_network_transmit_bytes_total", "counter", "network_tx_bytes",
     "Bytes its containers sent (between its own services too)."),
    ("supamanager_project_disk_bytes", "gauge", "disk_bytes", "Disk in use by the project's volumes."),
    ("supamanager_project_database_size_bytes", "gauge", "database_size_bytes", "pg_database_size of its database."),
    ("supamanager_project_database_connections", "gauge", "connections", "Client connections to its database."),
    ("supamanager_project_filesystem_used_ratio", "gauge", "filesystem_used_ratio",
     "The fullest file system holding one of its volumes (0-1, as df counts Use%)."),
    ("supamanager_project_memory_limit_ratio", "gauge", "memory_limit_ratio",
     "The highest memory / limit of its containers that have a memory limit (0-1)."),
    ("supamanager_project_wal_archive_lag_bytes", "gauge", "wal_archive_lag_bytes",
     "WAL its database holds that the backup agent has not archived yet."),
)  # fmt: skip
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)  # per bucket, not cumulative
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.sum += value

    def lines(self, name: str, labels: dict[str, str]) -> list[str]:
        out, cumulative = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            cumulative += n
            out.append(f"{name}_bucket{_labels({**labels, 'le': _num(bound)})} {cumulative}")
        out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {_num(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


def _parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


class Metrics:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], int] = {}
        self.job_duration: dict[str, Histogram] = {}
        self.poll_duration = Histogram(POLL_BUCKETS)
        self.poll_errors = 0
        self.heal_give_ups = 0

    def job_finished(self, op: dict[str, Any]) -> None:
        """Count an operation that ended (succeeded or failed) and observe how long it ran."""
        result = "success" if op["state"] == models.SUCCEEDED else "failure"
        key = (op["kind"], result)
        self.jobs[key] = self.jobs.get(key, 0) + 1
        start, end = _parse_time(op.get("started_at")), _parse_time(op.get("finished_at"))
        if start is not None and end is not None:
            hist = self.job_duration.setdefault(op["kind"], Histogram(JOB_BUCKETS))
            hist.observe(max(0.0, (end - start).total_seconds()))

    def heal_gave_up(self, _ref: str, _service: str) -> None:
        self.heal_give_ups += 1

    def poll_finished(self, seconds: float, ok: bool) -> None:
        self.poll_duration.observe(seconds)
        if not ok:
            self.poll_errors += 1

    def render(
        self,
        projects: list[dict[str, Any]],
        jobs_running: int,
        jobs_queued: int,
        orphan_refs: int = 0,
        backups: dict[str, int] | None = None,
        usage: dict[str, dict[str, Any]] | None = None,
        usage_counts: tuple[int, int] = (0, 0),
        newest_backups: dict[str, float] | None = None,
        hosts_up: dict[str, bool] | None = None,
    ) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")

        by_status = dict.fromkeys(models.STATUSES, 0)
        for project in projects:
            by_status[project["status"]] = by_status.get(project["status"], 0) + 1
        family("supamanager_projects", "gauge", "Projects by status.")
        lines += [f"supamanager_projects{_labels({'status': s})} {n}" for s, n in sorted(by_status.items())]

        family("supamanager_jobs_total", "counter", "Jobs (operations) that ended, by kind and result.")
        for kind in models.KINDS:
            for result in ("success", "failure"):
                n = self.jobs.get((kind, result), 0)
                lines.append(f"supamanager_jobs_total{_labels({'kind': kind, 'result': result})} {n}")

        family("supamanager_jobs_running", "gauge", "Jobs running now.")
        lines.append(f"supamanager_jobs_running {jobs_running}")
        family("supamanager_jobs_queued", "gauge", "Jobs waiting for a free slot.")
        lines.append(f"supamanager_jobs_queued {jobs_queued}")

        family("supamanager_job_duration_seconds", "histogram", "How long jobs ran, from start to end, by kind.")
        for kind in models.KINDS:
            hist = self.job_duration.get(kind) or Histogram(JOB_BUCKETS)
            lines += hist.lines("supamanager_job_duration_seconds", {"kind": kind})

        family("supamanager_poll_duration_seconds", "histogram", "How long one status poll of Docker took.")
        lines += self.poll_duration.lines("supamanager_poll_duration_seconds", {})
        family("supamanager_poll_errors_total", "counter", "Status polls that could not ask Docker.")
        lines.append(f"supamanager_poll_errors_total {self.poll_errors}")
        family("supamanager_host_up", "gauge", "1 while the host's Docker engine answered the last poll.")
        for host, up in sorted((hosts_up or {}).items()):
            lines.append(f"supamanager_host_up{_labels({'host': host})} {int(up)}")
        family("supamanager_heal_give_ups_total", "counter", "Services the healer gave up restarting.")
        lines.append(f"supamanager_heal_give_ups_total {self.heal_give_ups}")
        family("supamanager_orphan_projects", "gauge", "Refs with labelled containers that no known project owns.")
        lines.append(f"supamanager_orphan_projects {orphan_refs}")
        family("supamanager_backups", "gauge", "Published backups of the projects, by status (FAILED: a check failed).")
        for status, n in sorted({**dict.fromkeys(BACKUP_STATUSES, 0), **(backups or {})}.items()):
            lines.append(f"supamanager_backups{_labels({'status': status})} {n}")
        family(
            "supamanager_project_unhealthy", "gauge", "1 while the poll sees the project unhealthy, unknown or gone."
        )
        for project in sorted(projects, key=lambda p: p["ref"]):
            unhealthy = int(project["status"] in UNHEALTHY_STATUSES)
            lines.append(f"supamanager_project_unhealthy{_labels({'ref': project['ref']})} {unhealthy}")
        known = {p["ref"] for p in projects}
        points = sorted((ref, point) for ref, point in (usage or {}).items() if ref in known)
        for name, kind, field, help_ in USAGE_FAMILIES:
            family(name, kind, help_)
            for ref, point in points:
                if point.get(field) is not None:
                    lines.append(f"{name}{_labels({'ref': ref})} {_num(point[field])}")
        family(
            "supamanager_project_api_requests_total",
            "counter",
            "Requests its gateway answered, by kind (rest, auth, storage, realtime, other: the kinds sum to all);"
            " begins again when the gateway restarts.",
        )
        for ref, point in points:
            counters = point.get("api_request_counters")
            if counters:
                kinds = {kind: counters.get(kind, 0) for kind in API_KINDS}
                kinds["other"] = max(0, counters.get("total", 0) - sum(kinds.values()))
                for kind, n in kinds.items():
                    lines.append(f"supamanager_project_api_requests_total{_labels({'ref': ref, 'kind': kind})} {n}")
        family(
            "supamanager_project_last_backup_timestamp_seconds",
            "gauge",
            "When its newest COMPLETED backup started (unix time); only projects that have one.",
        )
        for ref, at in sorted((newest_backups or {}).items()):
            if ref in known:
                lines.append(f"supamanager_project_last_backup_timestamp_seconds{_labels({'ref': ref})} {_num(at)}")
        family("supamanager_usage_collections_total", "counter", "Usage collections done.")
        lines.append(f"supamanager_usage_collections_total {usage_counts[0]}")
        family("supamanager_usage_errors_total", "counter", "Usage collections that failed (Docker unreachable, ...).")
        lines.append(f"supamanager_usage_errors_total {usage_counts[1]}")
        return "\n".join(lines) + "\n"


METRICS = web.AppKey("metrics", Metrics)


def count_backups(settings: Settings, refs: list[str]) -> tuple[dict[str, int], dict[str, float]]:
    """Published backups by status, over the projects' repositories, and each project's newest
    COMPLETED backup (unix time it started; a project without one is left out)."""
    counts: dict[str, int] = {}
    newest: dict[str, float] = {}
    for ref in refs:
        for manifest in read_backups(settings, ref):
            status = str(manifest.get("status"))
            counts[status] = counts.get(status, 0) + 1
            try:  # a manifest is the role's file: a time it cannot read is no time
                at = _parse_time(manifest.get("inserted_at")) if status == "COMPLETED" else None
            except (TypeError, ValueError, AttributeError):
                at = None
            if at is not None:
                newest[ref] = max(newest.get(ref, 0.0), at.timestamp())
    return counts, newest


async def render(app: web.Application) -> str:
    """The exposition text now: counters from memory, the projects-by-status gauge from the store,
    the backups-by-status gauge from the host's backup repository."""
    projects = await app[keys.STORE].list_projects()
    backups, newest = await asyncio.to_thread(count_backups, app[keys.SETTINGS], [p["ref"] for p in projects])
    jobs, usage = app[keys.JOBS], app[keys.USAGE]
    return app[METRICS].render(
        projects,
        jobs.running,
        jobs.queued,
        len(app[keys.POLLER].orphan_refs),
        backups,
        usage.latest,
        (usage.cycles, usage.errors),
        newest,
        dict(app[keys.POLLER].host_up),
    )


def setup(app: web.Application) -> None:
    app[METRICS] = Metrics()
