"""Pure helpers of the bench: statistics, ratios, the markdown report and the chart.

No Docker, no processes: tests/test_bench_helpers.py runs these in CI.
"""

from __future__ import annotations

import math
import pathlib
import re
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

# The lifecycle steps, as (our playbook, its docker compose equivalent).
LIFECYCLE = (
    ("create", "up -d --wait"),
    ("pause", "stop"),
    ("resume", "start + wait healthy"),
    ("restart", "restart + wait healthy"),
    ("delete", "down -v"),
)


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, None when either is missing or theirs is zero."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; numeric-looking columns are right-aligned."""
    rows = [[fmt(c) for c in row] for row in rows]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")

    def numeric(i: int) -> bool:
        cells = [r[i] for r in rows if r[i] != "-"]
        return bool(cells) and all(_is_number(c) for c in cells)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x%"))
    except ValueError:
        return False
    return True


def lifecycle_rows(rounds: list[dict[str, dict[str, float]]]) -> list[list[Any]]:
    """Rows (step, compose command, ours s, compose s, ratio) from rounds of {"role": {...}, "compose": {...}}.

    With several rounds, each figure is the median over the rounds.
    """
    out = []
    for step, compose_cmd in LIFECYCLE:
        ours = [r["role"][step] for r in rounds if r.get("role", {}).get(step) is not None]
        theirs = [r["compose"][step] for r in rounds if r.get("compose", {}).get(step) is not None]
        m_ours, m_theirs = median(ours), median(theirs)
        out.append([step, compose_cmd, m_ours, m_theirs, ratio(m_ours, m_theirs)])
    return out


# The backup step's rows: about 290 bytes each in the table and its primary key (a 232-character
# payload, the tuple header, the id and its index entry).
BACKUP_ROW_BYTES = 290
LAG_MARKER = re.compile(rb"benchlag-([0-9]{6})")


def rows_for_mb(mb: int) -> int:
    return max(1, mb * 1024 * 1024 // BACKUP_ROW_BYTES)


def lag_marker(n: int) -> str:
    return f"benchlag-{n:06d}"


def highest_marker(chain: pathlib.Path) -> int:
    """The highest lag marker in the newest WAL file of a chain (the segment the agent writes), -1 if none."""
    try:
        files = [p for p in chain.iterdir() if p.is_file()]
    except OSError:
        return -1
    best = -1
    for path in sorted(files, key=lambda p: p.name)[-2:]:  # the partial segment and the one before it
        try:
            data = path.read_bytes()
        except OSError:
            continue
        best = max([best, *(int(m) for m in LAG_MARKER.findall(data))])
    return best


def lag_figures(committed: dict[int, float], seen: dict[int, float]) -> dict[str, Any]:
    """Per row, seconds from its commit until its WAL was on the host: median, p95, max; rows never seen."""
    lags = [max(0.0, seen[n] - at) for n, at in committed.items() if n in seen]
    return {
        "lag_rows": len(committed),
        "lag_rows_missing": len([n for n in committed if n not in seen]),
        "lag_p50_s": percentile(lags, 50) if lags else None,
        "lag_p95_s": percentile(lags, 95) if lags else None,
        "lag_max_s": max(lags) if lags else None,
    }


def render_report(results: dict[str, Any]) -> str:
    """The markdown results file from the bench's results dict (see bench.py for its shape)."""
    parts = [f"# Bench results ({results.get('mode', 'full')} run, {results.get('started', '?')})", ""]
    machine = results.get("machine") or {}
    if machine:
        parts += ["Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    rounds = results.get("lifecycle") or []
    if rounds:
        parts += [
            f"## One project: playbooks vs docker compose on the same rendered file ({len(rounds)} round(s), median)",
            "",
            markdown_table(
                ["step", "compose equivalent", "playbook s", "compose s", "ratio"],
                lifecycle_rows(rounds),
            ),
            "",
        ]
        if len(rounds) > 1:
            parts += [
                "Each round:",
                "",
                markdown_table(
                    ["round", "step", "playbook s", "compose s", "ratio"],
                    [[i + 1, *row[:1], *row[2:]] for i, r in enumerate(rounds) for row in lifecycle_rows([r])],
                ),
                "",
            ]
    scale = results.get("scale") or []
    if scale:
        parts += [
            f"## N concurrent creates through supamanagerd (SUPAMANAGER_MAX_JOBS={results.get('max_jobs', '?')},"
            f" supabase_healthcheck_interval={results.get('healthcheck_interval', '5s')})",
            "",
            markdown_table(
                [
                    "N",
                    "total s",
                    "s per project",
                    "mean job s",
                    "ACTIVE_HEALTHY",
                    "healthy together",
                    "host CPU % after",
                    "distinct ports",
                    "daemon peak RSS MiB",
                    "jobs peak RSS MiB",
                    "min MemAvailable GiB",
                    "GET p50 ms",
                    "GET p99 ms",
                    "GETs",
                ],
                [
                    [
                        s["n"],
                        s.get("total_s"),
                        s.get("per_project_s"),
                        s.get("mean_job_s"),
                        f"{s.get('healthy', 0)}/{s['n']}",
                        f"{s.get('healthy_together', 0)}/{s['n']}" if "healthy_together" in s else None,
                        s.get("settled_cpu_pct"),
                        s.get("ports_distinct"),
                        s.get("daemon_peak_rss_mib"),
                        s.get("tree_peak_rss_mib"),
                        s.get("min_mem_available_gib"),
                        s.get("get_p50_ms"),
                        s.get("get_p99_ms"),
                        s.get("get_count"),
                    ]
                    for s in scale
                ],
            ),
            "",
        ]
        notes = [f"- N={s['n']}: {s['note']}" for s in scale if s.get("note")]
        if notes:
            parts += [*notes, ""]
    polls = results.get("poll") or []
    if polls:
        parts += [
            "## One status poll cycle (the daemon's Poller.poll_once, in process, real Docker engine)",
            "",
            markdown_table(
                [
                    "projects",
                    "our containers",
                    "containers listed",
                    "wall ms (median)",
                    "CPU ms (median)",
                    "Docker API calls per cycle",
                ],
                [
                    [
                        p["projects"],
                        p["containers"],
                        p.get("listed"),
                        p.get("wall_ms"),
                        p.get("cpu_ms"),
                        p.get("calls_per_cycle"),
                    ]
                    for p in polls
                ],
            ),
            "",
        ]
    usage = [p for p in polls if p.get("usage_calls_per_cycle") is not None]
    if usage:
        parts += [
            "## One usage cycle (UsageCollector.collect_once, in process, the same projects; cgroup files of the"
            " running containers, no volume or database in these fakes)",
            "",
            markdown_table(
                ["projects", "containers read", "wall ms (median)", "CPU ms (median)", "Docker API calls per cycle"],
                [
                    [
                        p["projects"],
                        p.get("usage_containers_read"),
                        p.get("usage_wall_ms"),
                        p.get("usage_cpu_ms"),
                        p.get("usage_calls_per_cycle"),
                    ]
                    for p in usage
                ],
            ),
            "",
        ]
    idle = results.get("idle_get")
    if idle:
        parts += [
            f"GET /v1/projects with no job running: p50 {fmt(idle['p50_ms'])} ms, p99 {fmt(idle['p99_ms'])} ms.",
            "",
        ]
    api = results.get("api_under_load")
    if api:
        idle_q = api.get("idle_query") or {}
        parts += [
            "## The API under load",
            "",
            f"While {api['creates']} creates ran through the daemon ({fmt(api['during_s'], 0)} s, "
            f"{api['settled']} settled), one request of each every 50 ms:",
            "",
            markdown_table(
                ["request", "p50 ms", "p99 ms", "count", "goal p99"],
                [
                    ["GET /v1/projects", fmt(api["get_p50_ms"]), fmt(api["get_p99_ms"]), api["get_count"], "< 20 ms"],
                    [
                        "POST .../database/query `select 1`",
                        fmt(api["query_p50_ms"]),
                        fmt(api["query_p99_ms"]),
                        api["query_count"],
                        "< 30 ms",
                    ],
                ],
            ),
            "",
            f"The same query with no job running: p50 {fmt(idle_q.get('p50_ms'))} ms, "
            f"p99 {fmt(idle_q.get('p99_ms'))} ms (200 requests).",
            "",
        ]
    backup = results.get("backup")
    if backup:
        parts += [
            f"## Backups: a database of {fmt(backup['database_bytes'] / 1024**2, 0)} MiB ({backup['rows']} rows)",
            "",
            markdown_table(
                ["step", "s", "bytes"],
                [
                    ["fill (generate_series)", fmt(backup["fill_s"]), ""],
                    ["our backup (backup.yml)", fmt(backup["backup_s"]), backup["backup_bytes"]],
                    ["pg_dump -Fc", fmt(backup["pg_dump_s"]), backup["pg_dump_bytes"]],
                    ["ratio ours / pg_dump", fmt(backup["time_ratio"]), fmt(backup["size_ratio"])],
                    ["restore of our backup (restore.yml)", fmt(backup["restore_s"]), ""],
                ],
            ),
            "",
            f"Recovery-point lag under a row every 0.1 s ({backup['lag_rows']} rows, {backup['lag_rows_missing']}"
            f" never seen): p50 {fmt(backup['lag_p50_s'])} s, p95 {fmt(backup['lag_p95_s'])} s,"
            f" max {fmt(backup['lag_max_s'])} s.",
            "",
        ]
    errors = results.get("errors") or []
    if errors:
        parts += ["## Failures", "", *[f"- {e}" for e in errors], ""]
    if results.get("create_vs_compose_ratio") is not None:
        parts += [f"create_vs_compose_ratio={results['create_vs_compose_ratio']:.2f}", ""]
    return "\n".join(parts)


def chart(results: dict[str, Any], path: str) -> None:
    """A PNG with one panel per measurement that has data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("lifecycle", "scale", "poll") if results.get(k)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        if key == "lifecycle":
            rows = lifecycle_rows(results["lifecycle"])
            steps = [r[0] for r in rows]
            xs = range(len(steps))
            ax.bar([x - 0.2 for x in xs], [r[2] or 0 for r in rows], 0.4, label="playbook")
            ax.bar([x + 0.2 for x in xs], [r[3] or 0 for r in rows], 0.4, label="docker compose")
            ax.set_xticks(list(xs), steps)
            ax.set_ylabel("seconds")
            ax.set_title("One project: playbook vs compose")
            ax.legend()
        elif key == "scale":
            scale = results["scale"]
            ns = [s["n"] for s in scale]
            ax.plot(ns, [s.get("total_s") or 0 for s in scale], "o-", label="total s")
            ax.plot(ns, [s.get("per_project_s") or 0 for s in scale], "s-", label="s per project")
            ax.set_xlabel("concurrent creates (N)")
            ax.set_ylabel("seconds")
            ax.set_title("Creates through supamanagerd")
            ax.legend()
        else:
            polls = results["poll"]
            ns = [p["projects"] for p in polls]
            ax.plot(ns, [p.get("wall_ms") or 0 for p in polls], "o-", label="wall ms")
            ax.plot(ns, [p.get("cpu_ms") or 0 for p in polls], "s-", label="CPU ms")
            ax2 = ax.twinx()
            ax2.plot(ns, [p.get("calls_per_cycle") or 0 for p in polls], "k^--", label="Docker calls")
            ax2.set_ylabel("Docker API calls per cycle")
            ax2.set_ylim(0, max(2, max(p.get("calls_per_cycle") or 0 for p in polls) + 1))
            ax.set_xlabel("projects")
            ax.set_ylabel("milliseconds")
            ax.set_title("One status poll cycle")
            ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
