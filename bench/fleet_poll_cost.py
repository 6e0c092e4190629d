"""What one poll of a large fleet costs the daemon (daemon/README.md "Many hosts"), never in CI:

    .venv/bin/python bench/fleet_poll_cost.py [--hosts 100] [--projects 20] [--engine unix:///run/docker-9.sock]

The daemon's side with synthetic engine answers (parse and map every host's containers, the store's
list and update of every project), and, with --engine, a real engine's answer time: alone, and asked
--hosts times at once (one engine standing in for the fleet answers them one by one: an upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import tempfile
import time

from supamanager_daemon.fleet.docker import DockerClient
from supamanager_daemon.fleet.status import group_by_project, observed_status
from supamanager_daemon.store import Store

SERVICES = ["db", "auth", "rest", "realtime", "storage", "imgproxy", "meta", "functions", "kong", "studio", "supavisor"]


def ref_of(host: int, project: int) -> str:
    return f"h{host:03d}p{project:02d}".replace("0", "a").replace("1", "b").ljust(20, "z")[:20]


def host_answer(host: int, projects: int) -> list[dict]:
    return [
        {
            "Labels": {"supamanager.project": ref_of(host, p), "supamanager.service": s},
            "State": "running",
            "Status": "Up 3 hours (healthy)",
            "Names": [f"/supamanager-{ref_of(host, p)}-{s}"],
        }
        for p in range(projects)
        for s in SERVICES
    ]


async def main(args: argparse.Namespace) -> None:
    answers = [host_answer(h, args.projects) for h in range(args.hosts)]
    started = time.perf_counter()
    mapped = 0
    for raw in answers:
        for views in group_by_project(raw).values():
            observed_status("ACTIVE_HEALTHY", views, SERVICES)
            mapped += 1
    containers = sum(map(len, answers))
    print(f"parse and map: {mapped} projects, {containers} containers: {(time.perf_counter() - started) * 1000:.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(pathlib.Path(tmp) / "store.sqlite3")
        await store.open()
        refs = []
        for h in range(args.hosts):
            for p in range(args.projects):
                _, op = await store.create_project(
                    ref=ref_of(h, p), name="x", organization_slug="default", region="r", host=f"h{h}"
                )
                await store.mark_running(op["id"])
                await store.finish_operation(op["id"], ok=True)
                refs.append(ref_of(h, p))
        took = []
        for i in range(5):
            observed = {r: ("ACTIVE_HEALTHY" if i % 2 else "UNKNOWN", None) for r in refs}
            started = time.perf_counter()
            await store.apply_observed(observed, time.time())
            took.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.list_projects()
        listed = time.perf_counter() - started
        print(
            f"store: list {len(refs)} projects {listed * 1000:.0f} ms,"
            f" apply {len(refs)} changed statuses {statistics.median(took) * 1000:.0f} ms (median of 5)"
        )
        await store.close()
    if args.engine:
        client = DockerClient(args.engine)
        took = []
        for _ in range(30):
            started = time.perf_counter()
            raw = await client.project_containers()
            took.append(time.perf_counter() - started)
        await client.close()
        print(
            f"engine {args.engine}: {len(raw)} containers, one ask {statistics.median(took) * 1000:.1f} ms median,"
            f" {max(took) * 1000:.1f} ms max of 30"
        )
        clients = [DockerClient(args.engine) for _ in range(args.hosts)]
        started = time.perf_counter()
        await asyncio.gather(*(c.project_containers() for c in clients))
        print(f"{args.hosts} asks at once: {(time.perf_counter() - started) * 1000:.0f} ms")
        for c in clients:
            await c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--engine", help="a real engine's URL (unix:///path)")
    asyncio.run(main(parser.parse_args()))
