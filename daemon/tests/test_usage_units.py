"""The usage collector's parts (fleet/usage.py) without an engine: cgroup v1 and v2 files written the
way the kernel lays them out, du over a directory, a cycle with a container gone between the list
and the read. The real engine, cgroups, volumes and database: test_daemon_usage.py."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pathlib
import subprocess
import time

import pytest
from supamanager_daemon import models
from supamanager_daemon.fleet.docker import DockerError
from supamanager_daemon.fleet.usage import (
    CgroupReading,
    Cgroups,
    UsageCollector,
    api_request_counters,
    api_requests_since,
    disk_usage,
    filesystem_used_ratio,
    project_point,
)
from supamanager_daemon.projectdb import DatabaseUnavailable, Target
from supamanager_daemon.store import Store

CID = "a" * 64
PID = "4242"
# /proc/<pid>/net/dev as the kernel writes it (columns narrowed): two header lines, then per interface
# 8 receive counters (bytes first) and 8 transmit counters (bytes first).
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop ...
    lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0
  eth0:   2000  2 0 0 0 0 0 0    300  3 0 0 0 0 0 0
  eth1:     48  1 0 0 0 0 0 0     12  1 0 0 0 0 0 0
"""


def write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def proc_of(root: pathlib.Path) -> pathlib.Path:
    """A /proc with one process, PID, and its network namespace's counters."""
    write(root / "proc" / PID / "net" / "dev", NET_DEV)
    return root / "proc"


def cgroup_v1(root: pathlib.Path, cid: str = CID, limit: str = "9223372036854771712\n") -> None:
    memory = root / "memory" / "docker" / cid
    write(memory / "cgroup.procs", f"{PID}\n4343\n")
    write(memory / "memory.usage_in_bytes", "4947968\n")
    write(memory / "memory.max_usage_in_bytes", "5238784\n")
    write(memory / "memory.limit_in_bytes", limit)
    write(root / "cpuacct" / "docker" / cid / "cpuacct.usage", "22598536000\n")


def cgroup_v2(root: pathlib.Path, group: str, *, peak: bool = True, limit: str = "max\n") -> None:
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    base = root / group
    write(base / "cgroup.procs", f"{PID}\n")
    write(base / "memory.current", "1048576\n")
    if peak:
        write(base / "memory.peak", "2097152\n")
    write(base / "memory.max", limit)
    write(base / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")


def test_cgroup_v1_files_give_seconds_bytes_and_no_limit(tmp_path):
    cgroup_v1(tmp_path / "cgroup")
    cgroups = Cgroups(tmp_path / "cgroup", proc_of(tmp_path))
    assert cgroups.version == 1
    # Network: every interface of the namespace but lo.
    assert cgroups.read(CID) == CgroupReading(22.598536, 4947968, 5238784, None, 2048, 312)


def test_network_is_unknown_when_the_cgroup_has_no_process_left(tmp_path):
    cgroup_v1(tmp_path / "cgroup")
    (tmp_path / "cgroup" / "memory" / "docker" / CID / "cgroup.procs").write_text("")
    assert Cgroups(tmp_path / "cgroup", proc_of(tmp_path)).read(CID).network_rx_bytes is None
    (tmp_path / "cgroup" / "memory" / "docker" / CID / "cgroup.procs").write_text("999\n")  # exited since
    reading = Cgroups(tmp_path / "cgroup", proc_of(tmp_path)).read(CID)
    assert (reading.network_rx_bytes, reading.network_tx_bytes, reading.memory_bytes) == (None, None, 4947968)


def test_cgroup_v1_limit_is_reported_when_set(tmp_path):
    cgroup_v1(tmp_path, limit="268435456\n")
    assert Cgroups(tmp_path).read(CID).memory_limit_bytes == 268435456


def test_cgroup_v2_cgroupfs_layout(tmp_path):
    cgroup_v2(tmp_path / "cgroup", f"docker/{CID}", limit="536870912\n")
    cgroups = Cgroups(tmp_path / "cgroup", proc_of(tmp_path))
    assert cgroups.version == 2
    assert cgroups.read(CID) == CgroupReading(1.5, 1048576, 2097152, 536870912, 2048, 312)


def test_cgroup_v2_systemd_layout_without_memory_peak(tmp_path):
    # Kernels before 5.19 have no memory.peak: the peak is unknown, the rest is read.
    cgroup_v2(tmp_path / "cgroup", f"system.slice/docker-{CID}.scope", peak=False)
    assert Cgroups(tmp_path / "cgroup", proc_of(tmp_path)).read(CID) == CgroupReading(
        1.5, 1048576, None, None, 2048, 312
    )


def test_a_container_without_cgroup_reads_as_gone(tmp_path):
    cgroup_v1(tmp_path)
    assert Cgroups(tmp_path).read("b" * 64) is None
    # Removed between finding its directory and reading a file.
    (tmp_path / "cpuacct" / "docker" / CID / "cpuacct.usage").unlink()
    assert Cgroups(tmp_path).read(CID) is None


def du_bytes(path: pathlib.Path) -> int:
    return int(
        subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    )


def test_disk_usage_counts_blocks_as_du_does(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    (tmp_path / "sub" / "deeper" / "b").write_bytes(b"y" * 10_000)
    os.link(tmp_path / "a", tmp_path / "sub" / "a-again")  # a hard link is counted once
    (tmp_path / "link").symlink_to("/usr")  # a symlink is not followed
    assert disk_usage(tmp_path) == du_bytes(tmp_path)


def test_disk_usage_of_a_missing_path_is_unknown(tmp_path):
    assert disk_usage(tmp_path / "absent") is None
    assert filesystem_used_ratio(tmp_path / "absent") is None


def test_project_point_sums_containers_and_derives_the_cpu_share():
    containers = [
        {
            "service": "db",
            "cpu_seconds": 10.0,
            "memory_bytes": 100,
            "memory_peak_bytes": 150,
            "memory_limit_bytes": 1000,
        },
        {
            "service": "rest",
            "cpu_seconds": 2.0,
            "memory_bytes": 50,
            "memory_peak_bytes": None,
            "memory_limit_bytes": None,
        },
    ]
    volumes = [{"name": "db-data", "bytes": 4096}, {"name": "storage-data", "bytes": 8192}]
    first = project_point(containers, volumes, {"size": 7, "connections": 3}, at=100.0, previous=None)
    assert first["cpu_seconds"] == 12.0 and first["cpu_share"] is None
    assert (first["memory_bytes"], first["memory_peak_bytes"], first["memory_limit_bytes"]) == (150, 150, None)
    assert (first["disk_bytes"], first["database_size_bytes"], first["connections"]) == (12288, 7, 3)
    assert first["network_rx_bytes"] is None  # no container gave a figure
    counted = [{**containers[0], "network_rx_bytes": 10, "network_tx_bytes": 5}, containers[1]]
    point = project_point(counted, [], None, at=1.0, previous=None)
    assert (point["network_rx_bytes"], point["network_tx_bytes"]) == (10, 5)
    later = [{**c, "cpu_seconds": c["cpu_seconds"] + 3.0} for c in containers]
    assert project_point(later, volumes, None, at=110.0, previous=first)["cpu_share"] == 0.6
    # A container restarted since: its counter began again, the share is unknown, not negative.
    assert project_point(containers[:1], [], None, at=120.0, previous=first)["cpu_share"] is None
    limited = [{**c, "memory_limit_bytes": 1000} for c in containers]
    assert project_point(limited, [], None, at=1.0, previous=None)["memory_limit_bytes"] == 2000
    # the fullest container against its own limit (db: 100 of 1000; rest has none)
    assert first["memory_limit_ratio"] == 0.1 and point["memory_limit_ratio"] == 0.1
    assert project_point(containers[1:], [], None, at=1.0, previous=None)["memory_limit_ratio"] is None
    sized = [{"name": "db-data", "bytes": 1, "filesystem_used_ratio": 0.5}, {"name": "s", "bytes": 1}]
    sized.append({"name": "t", "bytes": 1, "filesystem_used_ratio": 0.875})
    assert project_point([], sized, None, at=1.0, previous=None)["filesystem_used_ratio"] == 0.875
    assert first["filesystem_used_ratio"] is None and first["wal_archive_lag_bytes"] is None
    empty = project_point([], [], None, at=1.0, previous=None)
    assert empty["cpu_seconds"] is None and empty["memory_bytes"] is None and empty["disk_bytes"] is None


class FakeDocker:
    """The engine's two list answers, fixed; the real engine: test_daemon_usage.py."""

    def __init__(self, containers, volumes, fail: bool = False) -> None:
        self.containers, self.volumes, self.fail, self.calls = containers, volumes, fail, 0

    async def project_containers(self):
        self.calls += 1
        if self.fail:
            raise DockerError("docker GET /containers/json: connection refused")
        return self.containers

    async def project_volumes(self):
        self.calls += 1
        return self.volumes


class FakeDatabases:
    """Answers the collector's one query, or fails as a stopped pooler does; the real database
    (pg_database_size over the project's pool): test_daemon_usage.py."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def query(self, ref, target, sql, parameters=None, *, read_only=False):
        self.asked.append(ref)
        assert read_only
        if ref == "downdownddowndowndow":
            raise DatabaseUnavailable("the project's database does not answer")
        # the backup agent's slot a little behind; a project without the agent has no row (None)
        return [{"size": 12345678, "connections": 4, "wal_lag": 2048 if ref.startswith("up") else None}]


def container(cid: str, ref: str, service: str, state: str = "running") -> dict:
    labels = {"supamanager.project": ref, "supamanager.service": service}
    return {"Id": cid, "Names": [f"/x-{service}"], "Labels": labels, "State": state}


async def make_store(tmp_path, refs_statuses):
    store = Store(tmp_path / "state.db")
    await store.open()
    for ref, status in refs_statuses:
        await store.create_project(ref=ref, name=ref, organization_slug="default", region="local")
        op = (await store.active_operations())[-1]
        await store.finish_operation(op["id"], ok=True)
        await store.apply_observed({ref: (status, None)}, snapshot_at=1e12)
    return store


class RecordingCgroups(Cgroups):
    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.read_ids: list[str] = []

    def read(self, container_id: str) -> CgroupReading | None:
        self.read_ids.append(container_id)
        return super().read(container_id)


async def test_a_cycle_asks_docker_twice_and_skips_a_container_gone_since_the_list(tmp_path, monkeypatch):
    up, down, paused = "upupupupupupupupupup", "downdownddowndowndow", "pausedpausedpausedpa"
    orphan = "orphanorphanorphanor"
    walked = []
    monkeypatch.setattr(
        "supamanager_daemon.fleet.usage.disk_usage", lambda path: walked.append(path.name) or disk_usage(path)
    )
    cgroups = tmp_path / "cgroup"
    cgroup_v1(cgroups, CID)  # the only container whose cgroup is still there
    volume_dir = tmp_path / "vol"
    volume_dir.mkdir()
    (volume_dir / "data").write_bytes(b"z" * 50_000)

    def volume(name: str, mountpoint: pathlib.Path) -> dict:
        labels = {"supamanager.project": up}
        return {"Name": f"supamanager-{up}-{name}", "Labels": labels, "Mountpoint": str(mountpoint)}

    docker = FakeDocker(
        [
            container(CID, up, "db"),
            container("c" * 64, up, "rest"),  # listed, then removed before its cgroup was read
            container("d" * 64, up, "kong", state="exited"),
            {"Id": "e" * 64, "Labels": {}, "State": "running"},  # not ours
            container("f" * 64, orphan, "db"),  # a ref this daemon does not know
        ],
        [
            {"Name": f"supamanager-{up}-db-data", "Labels": {"supamanager.project": up}, "Mountpoint": str(volume_dir)},
            {
                "Name": f"supamanager-{up}-gone",
                "Labels": {"supamanager.project": up},
                "Mountpoint": str(tmp_path / "x"),
            },
            {"Name": "other", "Labels": None, "Mountpoint": str(volume_dir)},
            {"Name": "orphan", "Labels": {"supamanager.project": orphan}, "Mountpoint": str(tmp_path / "orphan")},
        ],
    )
    store = await make_store(
        tmp_path, [(up, models.ACTIVE_HEALTHY), (down, models.ACTIVE_UNHEALTHY), (paused, models.INACTIVE)]
    )
    databases = FakeDatabases()
    targets = {up: Target("127.0.0.1", 1, "u", "p"), down: Target("127.0.0.1", 2, "u", "p")}
    collector = UsageCollector(
        store, docker, databases, lambda p: targets.get(p["ref"]), interval=60, retention_seconds=3600,
        cgroups=(recording := RecordingCgroups(cgroups)),
    )  # fmt: skip
    try:
        points = await collector.collect_once()
        assert docker.calls == 2
        assert sorted(databases.asked) == sorted([up, down])  # the paused project's database is not asked
        assert [c["service"] for c in points[up]["containers"]] == ["db"]
        assert points[up]["memory_bytes"] == 4947968
        (volume,) = points[up]["volumes"]
        assert (volume["name"], volume["bytes"]) == ("db-data", du_bytes(volume_dir))
        # how full its file system is, as df says (Use%, rounded up there)
        df = subprocess.run(["df", "--output=pcent", str(volume_dir)], capture_output=True, text=True, check=True)
        assert abs(volume["filesystem_used_ratio"] * 100 - int(df.stdout.split()[-1].rstrip("%"))) <= 1
        assert points[up]["filesystem_used_ratio"] == volume["filesystem_used_ratio"]
        assert (points[up]["database_size_bytes"], points[up]["connections"]) == (12345678, 4)
        assert points[up]["wal_archive_lag_bytes"] == 2048
        assert points[down]["database_size_bytes"] is None and points[down]["containers"] == []
        assert points[paused]["memory_bytes"] is None
        assert (await store.usage_history(up)) == [points[up]]
        assert collector.latest == points and collector.cycles == 1
        # Only the known projects' objects are read: not the orphan's container or volume.
        assert set(points) == {up, down, paused}
        assert recording.read_ids == [CID, "c" * 64] and walked == ["vol", "x"]
    finally:
        await store.close()


async def test_history_is_pruned_by_age_and_goes_with_the_project(tmp_path):
    ref = "histhisthisthisthist"
    store = await make_store(tmp_path, [(ref, models.ACTIVE_HEALTHY)])
    try:
        await store.add_usage({ref: {"at": 100.0}}, 100.0, keep_seconds=50)
        await store.add_usage({ref: {"at": 140.0}, "nonenonenonenonenone": {"at": 140.0}}, 140.0, keep_seconds=50)
        assert await store.usage_history(ref) == [{"at": 100.0}, {"at": 140.0}]
        await store.add_usage({ref: {"at": 160.0}}, 160.0, keep_seconds=50)
        assert await store.usage_history(ref) == [{"at": 140.0}, {"at": 160.0}]
        assert await store.usage_history(ref, since=150) == [{"at": 160.0}]
        assert await store.usage_history("nonenonenonenonenone") == []
        op = await store.start_operation(ref, lambda p: "delete", {})
        await store.finish_operation(op[1]["id"], ok=True)
        assert await store.usage_history(ref) == []
    finally:
        await store.close()


async def test_docker_unreachable_skips_the_cycle_and_is_counted(tmp_path, caplog):
    store = await make_store(tmp_path, [])
    collector = UsageCollector(
        store, FakeDocker([], [], fail=True), FakeDatabases(), lambda p: None, interval=60, retention_seconds=60
    )
    try:
        assert await collector.collect_once() == {}
        assert await collector.collect_once() == {}
        assert collector.errors == 2 and collector.cycles == 0 and "connection refused" in collector.last_error
        assert caplog.text.count("cannot collect usage") == 1  # said once, not every cycle
    finally:
        await store.close()


@pytest.mark.parametrize("fail", [OSError("no .env"), None])
async def test_a_project_without_database_files_has_no_database_figures(tmp_path, fail):
    ref = "nofilesnofilesnofile"
    store = await make_store(tmp_path, [(ref, models.ACTIVE_HEALTHY)])

    def target(project):
        if fail is not None:
            raise fail
        return None

    databases = FakeDatabases()
    collector = UsageCollector(store, FakeDocker([], []), databases, target, interval=60, retention_seconds=60)
    try:
        points = await collector.collect_once()
        assert points[ref]["database_size_bytes"] is None and databases.asked == []
    finally:
        await store.close()


def test_disk_usage_skips_a_file_removed_while_it_walks(tmp_path, monkeypatch):
    (tmp_path / "kept").write_bytes(b"k" * 20_000)
    (tmp_path / "removed").write_bytes(b"r" * 20_000)
    real_scandir = os.scandir

    def scandir_then_remove(path):
        entries = list(real_scandir(path))
        (tmp_path / "removed").unlink(missing_ok=True)
        return entries

    monkeypatch.setattr("supamanager_daemon.fleet.usage.os.scandir", scandir_then_remove)
    assert disk_usage(tmp_path) == du_bytes(tmp_path)


class FlakyStore:
    """A store whose first listing fails unexpectedly, as a locked database file could."""

    def __init__(self, store: Store) -> None:
        self.store, self.failed = store, False

    async def list_projects(self):
        if not self.failed:
            self.failed = True
            raise RuntimeError("database is locked")
        return await self.store.list_projects()

    async def add_usage(self, *args):
        await self.store.add_usage(*args)


async def test_the_loop_outlives_a_failed_cycle_and_stops(tmp_path, caplog):
    store = await make_store(tmp_path, [])
    collector = UsageCollector(
        FlakyStore(store), FakeDocker([], []), FakeDatabases(), lambda p: None, interval=0.01, retention_seconds=60
    )
    try:
        collector.start()
        for _ in range(500):
            if collector.cycles >= 2:
                break
            await asyncio.sleep(0.01)
        await collector.stop()
        assert collector.errors == 1 and collector.cycles >= 2
        assert "usage collection failed" in caplog.text
        cycles = collector.cycles
        await asyncio.sleep(0.05)
        assert collector.cycles == cycles  # stopped
    finally:
        await store.close()


async def test_the_usage_route_and_the_cli_read_the_stored_points(client, capsys):
    """GET /v1/projects/{ref}/usage and `supamanager projects usage` over points put in the store
    (the collector's real points: test_daemon_usage.py), checked against the served document."""
    from conftest import AUTH, TOKEN
    from openapi_check import checked
    from supamanager_daemon import cli, keys

    store = client.app[keys.STORE]
    ref = "usageusageusageusage"
    await store.create_project(ref=ref, name="u", organization_slug="default", region="local")
    url = str(client.make_url(""))

    def run_cli(*args: str) -> tuple[int, str]:
        code = cli.main(["--url", url, "--token", TOKEN, "projects", "usage", ref, *args])
        return code, capsys.readouterr().out

    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/usage", headers=AUTH)
    assert resp.status == 200 and body["latest"] is None and body["history"] == []
    assert await asyncio.to_thread(run_cli) == (0, "no usage collected yet (a point every 300 s)\n")

    now = time.time()
    fields = ("service", "cpu_seconds", "memory_bytes", "memory_peak_bytes", "memory_limit_bytes")
    db = dict(zip(fields, ("db", 12.5, 64 * 1024 * 1024, 80 * 1024 * 1024, None), strict=True))
    old = project_point([db], [], None, at=now - 30 * 3600, previous=None)
    new = project_point([db], [{"name": "db-data", "bytes": 3 * 1024**3}], {"size": 9_000_000, "connections": 2},
                        at=now, previous={**old, "cpu_seconds": 10.0, "at": now - 10})  # fmt: skip
    await store.add_usage({ref: old}, old["at"], keep_seconds=7 * 86400)
    await store.add_usage({ref: new}, new["at"], keep_seconds=7 * 86400)

    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/usage", headers=AUTH)
    assert resp.status == 200 and len(body["history"]) == 1  # the last 24 hours
    latest = body["latest"]
    assert latest["collected_at"] == body["history"][0]["collected_at"] and latest["collected_at"].endswith("Z")
    assert (latest["cpu_share"], latest["disk_bytes"], latest["database_size_bytes"]) == (0.25, 3 * 1024**3, 9_000_000)
    assert latest["containers"][0]["service"] == "db" and "containers" not in body["history"][0]
    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/usage?hours=48", headers=AUTH)
    assert [p["memory_bytes"] for p in body["history"]] == [64 * 1024 * 1024] * 2
    for bad in ("0", "745", "x"):
        resp, body = await checked(client, "GET", f"/v1/projects/{ref}/usage?hours={bad}", headers=AUTH)
        assert resp.status == 400, body
    resp, _ = await checked(client, "GET", "/v1/projects/abcdefghijklmnopqrst/usage", headers=AUTH)
    assert resp.status == 404

    code, out = await asyncio.to_thread(run_cli)
    assert code == 0
    shown = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("collected"))
    assert {k: v.strip() for k, v in shown.items()} == {
        "cpu": "12.5 s (0.25 cores)",
        "memory": "64.0 MiB",
        "memory_limit": "none",
        "disk": "3.0 GiB",
        "database_size": "8.6 MiB",
        "connections": "2",
        "api_requests": "-",  # no point counted the gateway's requests
    }
    assert "db       12.5 s  64.0 MiB  80.0 MiB" in out and "db-data  3.0 GiB" in out
    code, out = await asyncio.to_thread(run_cli, "--json", "--hours", "48")
    assert code == 0 and len(json.loads(out)["history"]) == 2

    # the organization's usage: each project's newest point (none for one without), the sums; another
    # organization's project is not counted
    quiet, elsewhere = "quietquietquietquiet", "otherotherotherother"
    await store.create_project(ref=quiet, name="q", organization_slug="default", region="local")
    other_org = await store.create_organization("acmeacmeacmeacmeacme", "Acme")
    await store.create_project(ref=elsewhere, name="o", organization_slug=other_org["slug"], region="local")
    await store.add_usage({elsewhere: new}, new["at"], keep_seconds=7 * 86400)
    resp, body = await checked(client, "GET", "/platform/organizations/default/usage", headers=AUTH)
    assert body["totals"]["api_requests_24h"] is None  # no point of the day counted requests
    # requests of the last 24 hours, summed over the organization's projects, from points older than
    # the newest (the quiet project's 2 hours old point is not its `latest`); 30 hours back is not counted
    counted = {"rest": 1, "auth": 1, "storage": 0, "realtime": 0}
    for target, at, total in ((quiet, now - 7200, 5), (ref, now - 3600, 2), (ref, now - 30 * 3600 + 1, 40),
                              (elsewhere, now - 60, 100)):  # fmt: skip
        await store.add_usage({target: {**old, "at": at, "api_requests": {**counted, "total": total}}}, at, 7 * 86400)
    resp, body = await checked(client, "GET", "/platform/organizations/default/usage", headers=AUTH)
    assert body["totals"]["api_requests_24h"] == 7
    assert resp.status == 200, body
    assert [(p["ref"], p["latest"] is None) for p in body["projects"]] == [(quiet, True), (ref, False)]
    assert body["totals"]["disk_bytes"] == 3 * 1024**3 and body["totals"]["memory_bytes"] == 64 * 1024 * 1024
    assert body["totals"]["connections"] == 2 and body["totals"]["network_rx_bytes"] is None
    resp, _ = await checked(client, "GET", "/platform/organizations/nope/usage", headers=AUTH)
    assert resp.status == 404
    assert (await client.get("/platform/organizations/default/usage")).status == 401


async def test_a_database_without_the_backup_agent_has_no_wal_lag(tmp_path):
    ref = "noagentnoagentnoagen"
    store = await make_store(tmp_path, [(ref, models.ACTIVE_HEALTHY)])
    target = Target("127.0.0.1", 1, "u", "p")
    collector = UsageCollector(store, FakeDocker([], []), FakeDatabases(), lambda p: target, interval=60,
                               retention_seconds=60)  # fmt: skip
    try:
        point = (await collector.collect_once())[ref]
        assert point["database_size_bytes"] == 12345678 and point["wal_archive_lag_bytes"] is None
    finally:
        await store.close()


def test_a_file_system_without_blocks_has_no_used_ratio(tmp_path, monkeypatch):
    empty = os.statvfs_result((4096, 4096, 0, 0, 0, 0, 0, 0, 0, 255))
    monkeypatch.setattr("supamanager_daemon.fleet.usage.os.statvfs", lambda path: empty)
    assert filesystem_used_ratio(tmp_path) is None


# What Kong 2.8's prometheus plugin serves on its status listener (trimmed), plus a 3.x sample.
KONG_METRICS = """# HELP kong_bandwidth Total bandwidth in bytes consumed per service/route in Kong
# TYPE kong_bandwidth counter
kong_bandwidth{type="egress",service="rest-v1",route="rest-v1-all"} 9999
# HELP kong_http_status HTTP status codes per service/route in Kong
# TYPE kong_http_status counter
kong_http_status{service="rest-v1",route="rest-v1-all",code="200"} 5
kong_http_status{service="rest-v1",route="rest-v1-all",code="401"} 2
kong_http_status{service="graphql-v1",route="graphql-v1-all",code="200"} 1
kong_http_status{service="auth-v1",route="auth-v1-all",code="200"} 3
kong_http_status{service="auth-v1-open-verify",route="auth-v1-open-verify",code="303"} 1
kong_http_status{service="storage-v1",route="storage-v1-all",code="200"} 4
kong_http_status{service="realtime-v1-ws",route="realtime-v1-ws-all",code="101"} 2
kong_http_status{service="functions-v1",route="functions-v1-all",code="200"} 6
kong_http_requests_total{service="realtime-v1-rest",route="realtime-v1-rest-all",code="200",source="service"} 1
kong_nginx_metric_errors_total 0
"""


def test_gateway_counters_are_summed_by_kind_and_turned_into_requests_since():
    counters = api_request_counters(KONG_METRICS)
    assert counters == {"rest": 8, "auth": 4, "storage": 4, "realtime": 3, "total": 25}
    assert api_request_counters("") == {"rest": 0, "auth": 0, "storage": 0, "realtime": 0, "total": 0}
    later = {**counters, "rest": 18, "total": 35}
    assert api_requests_since(later, counters) == {"rest": 10, "auth": 0, "storage": 0, "realtime": 0, "total": 10}
    # The gateway restarted: its counters began again, and what they hold is all new.
    restarted = {"rest": 2, "auth": 0, "storage": 0, "realtime": 0, "total": 2}
    assert api_requests_since(restarted, counters) == restarted
    assert api_requests_since(counters, None) is None and api_requests_since(None, counters) is None


async def test_a_cycle_reads_each_gateway_once_and_counts_the_requests_since_the_last(tmp_path, caplog):
    """One GET of /metrics per project per cycle, at the kong container's address of the container
    list; a gateway that fails or is not running gives no counts. The real Kong stand-in's counters:
    test_daemon_usage.py."""
    from aiohttp import web

    counting, failing, stopped = "countcountcountcount", "failfailfailfailfail", "stopstopstopstopstop"
    hits: list[str] = []
    rest = {"n": 5}

    async def metrics(request: web.Request) -> web.Response:
        hits.append(request.path)
        if rest["n"] < 0:
            return web.Response(status=500)
        return web.Response(text=f'kong_http_status{{service="rest-v1",route="r",code="200"}} {rest["n"]}\n')

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]

    def kong(cid: str, ref: str, address: str, state: str = "running") -> dict:
        networks = {"n": {"IPAddress": ""}, f"supamanager-{ref}": {"IPAddress": address}}
        return {**container(cid, ref, "kong", state), "NetworkSettings": {"Networks": networks}}

    docker = FakeDocker(
        [kong("1" * 64, counting, "127.0.0.1"), kong("2" * 64, failing, "127.0.0.2"),
         kong("3" * 64, stopped, "127.0.0.1", state="exited")],
        [],
    )  # fmt: skip
    store = await make_store(tmp_path, [(r, models.ACTIVE_HEALTHY) for r in (counting, failing, stopped)])
    collector = UsageCollector(
        store, docker, FakeDatabases(), lambda p: None, interval=60, retention_seconds=3600,
        cgroups=Cgroups(tmp_path / "cgroup"), gateway_port=port,
    )  # fmt: skip
    try:
        caplog.set_level("INFO")
        first = await collector.collect_once()
        assert first[counting]["api_request_counters"]["rest"] == 5
        assert first[counting]["api_requests"] is None  # no previous point to count from
        assert first[failing]["api_request_counters"] is None and first[stopped]["api_request_counters"] is None
        assert "no request counts" in caplog.text  # 127.0.0.2: nothing listens there
        rest["n"] = 12
        second = await collector.collect_once()
        assert second[counting]["api_requests"] == {"rest": 7, "auth": 0, "storage": 0, "realtime": 0, "total": 7}
        assert second[failing]["api_requests"] is None
        assert hits == ["/metrics", "/metrics"]  # one call per cycle for the one running, answering gateway
        rest["n"] = -1  # the gateway answers 500 now
        third = await collector.collect_once()
        assert third[counting]["api_request_counters"] is None and third[counting]["api_requests"] is None
        assert "HTTP 500" in caplog.text
    finally:
        await store.close()
        await runner.cleanup()


async def test_the_analytics_usage_operations_bucket_the_stored_request_counts(client):
    """usage.api-counts and usage.api-requests-count over points put in the store (the gateway's real
    counts: test_daemon_usage.py), checked against the served document."""
    from conftest import AUTH
    from openapi_check import checked
    from supamanager_daemon import keys

    store = client.app[keys.STORE]
    ref = "countscountscountsco"
    await store.create_project(ref=ref, name="c", organization_slug="default", region="local")
    base = "/v1/projects/" + ref + "/analytics/endpoints/"
    resp, body = await checked(client, "GET", base + "usage.api-counts", headers=AUTH)
    assert resp.status == 200 and body == {"result": []}

    hour = (time.time() // 3600 - 2) * 3600  # two hours back: every point below is over an hour old

    def requests(rest: int, auth: int, total: int) -> dict:
        return {"rest": rest, "auth": auth, "storage": 1, "realtime": 0, "total": total}

    points = {hour + 10: requests(3, 1, 5), hour + 70: requests(2, 0, 4), hour + 3610: requests(1, 1, 3)}
    await store.add_usage({ref: {"at": hour - 5, "api_requests": None}}, hour - 5, keep_seconds=86400)
    for at, counts in points.items():
        await store.add_usage({ref: {"at": at, "api_requests": counts}}, at, keep_seconds=86400)
    resp, body = await checked(client, "GET", base + "usage.api-counts?interval=1day", headers=AUTH)
    assert resp.status == 200
    iso = [datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
           for t in (hour, hour + 3600)]  # fmt: skip
    assert body["result"] == [
        {"timestamp": iso[0], "total_auth_requests": 1, "total_realtime_requests": 0, "total_rest_requests": 5,
         "total_storage_requests": 2},
        {"timestamp": iso[1], "total_auth_requests": 1, "total_realtime_requests": 0, "total_rest_requests": 1,
         "total_storage_requests": 1},
    ]  # fmt: skip
    # the default interval is a day; 15min reaches back 15 minutes only (these points are older)
    assert (await checked(client, "GET", base + "usage.api-counts", headers=AUTH))[1] == body
    assert (await checked(client, "GET", base + "usage.api-counts?interval=15min", headers=AUTH))[1] == {"result": []}
    resp, body = await checked(client, "GET", base + "usage.api-counts?interval=7day", headers=AUTH)
    assert sum(b["total_rest_requests"] for b in body["result"]) == 6
    resp, body = await checked(client, "GET", base + "usage.api-requests-count", headers=AUTH)
    assert resp.status == 200 and body == {"result": [{"count": 12}]}
    resp, body = await checked(client, "GET", base + "usage.api-counts?interval=2day", headers=AUTH)
    assert resp.status == 400, body
    for name in ("usage.api-counts", "usage.api-requests-count"):
        resp, _ = await checked(
            client, "GET", f"/v1/projects/abcdefghijklmnopqrst/analytics/endpoints/{name}", headers=AUTH
        )
        assert resp.status == 404
