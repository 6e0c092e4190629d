"""Usage against the truth on the session's live project (conftest.live_project: a real daemon, the
real playbooks, the engine of DOCKER_HOST, the stand-in images; no project of its own): what
GET /v1/projects/{ref}/usage, `supamanager projects usage` and /metrics report is compared with the
cgroup files, `du` of the volumes and `pg_database_size`, read by the test at the same moment, and
the API request counts with the requests the test sent through the project's gateway.

This module must run before test_database_api.py, whose last test pauses the live project: pytest
takes the files in name order (test_daemon_usage < test_database_api).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import LIVE_USAGE_INTERVAL, live_pooler
from test_usability_cli import cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CGROUP = pathlib.Path("/sys/fs/cgroup")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def cgroup_memory(container_id: str) -> int:
    """What the kernel charges the container now, read here without the daemon's code."""
    if (CGROUP / "cgroup.controllers").exists():  # v2
        for group in (CGROUP / "docker" / container_id, CGROUP / "system.slice" / f"docker-{container_id}.scope"):
            if group.is_dir():
                return int((group / "memory.current").read_text())
    else:
        for group in (CGROUP / "memory" / "docker" / container_id,
                      CGROUP / "memory" / "system.slice" / f"docker-{container_id}.scope"):  # fmt: skip
            if group.is_dir():
                return int((group / "memory.usage_in_bytes").read_text())
    raise AssertionError(f"no cgroup for {container_id}")


def network(container_id: str) -> tuple[int, int]:
    """Bytes received and sent in the container's namespace but on lo, found through docker inspect's pid."""
    pid = json.loads(docker("inspect", container_id))[0]["State"]["Pid"]
    rx = tx = 0
    for line in pathlib.Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        if name.strip() != "lo":
            rx, tx = rx + int(counters.split()[0]), tx + int(counters.split()[8])
    return rx, tx


def du(path: str) -> int:
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True, check=True, timeout=120).stdout
    return int(out.split()[0])


def database_size(api) -> int:
    """pg_database_size through the project's pooler, as a client reaches it."""
    with live_pooler(api) as conn:
        return conn.execute("select pg_database_size(current_database())").fetchone()[0]


def parsed(at: str) -> float:
    return datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def next_point(api, after: float, timeout: float = LIVE_USAGE_INTERVAL * 6 + 60) -> dict:
    """The usage answer once its latest point was collected after unix time `after`."""
    deadline = time.monotonic() + timeout
    while True:
        status, usage, _ = api.request("GET", f"/v1/projects/{api.ref}/usage?hours=1")
        assert status == 200, usage
        latest = usage["latest"]
        if latest is not None and parsed(latest["collected_at"]) > after:
            return usage
        assert time.monotonic() < deadline, f"no usage point after {after} in {timeout} s: {usage}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def truth(live_project):
    """A fresh usage point, with the cgroups', du's and Postgres's figures taken around it."""
    api = live_project
    listed = docker("ps", "--no-trunc", "--filter", f"label=supamanager.project={api.ref}",
                    "--format", '{{.ID}} {{.Label "supamanager.service"}}')  # fmt: skip
    services = dict(line.split() for line in listed.splitlines())
    ids = list(services)
    size_before = database_size(api)
    net_before = {services[cid]: network(cid) for cid in ids}
    usage = next_point(api, time.time())
    memory = {cid: cgroup_memory(cid) for cid in ids}
    net_after = {services[cid]: network(cid) for cid in ids}
    size_after = database_size(api)
    volumes = {}
    for name in docker("volume", "ls", "-q", "--filter", f"label=supamanager.project={api.ref}").split():
        mountpoint = json.loads(docker("volume", "inspect", name))[0]["Mountpoint"]
        volumes[name.removeprefix(f"supamanager-{api.ref}-")] = du(mountpoint)
    return api, usage, memory, (size_before, size_after), volumes, (net_before, net_after)


def test_memory_is_what_the_cgroups_say(truth):
    _, usage, memory, _, _, _ = truth
    latest = usage["latest"]
    assert len(latest["containers"]) == len(memory)  # every running container, none twice
    assert latest["memory_bytes"] == sum(c["memory_bytes"] for c in latest["containers"])
    assert abs(latest["memory_bytes"] - sum(memory.values())) <= 0.10 * sum(memory.values())
    for container in latest["containers"]:
        assert container["memory_peak_bytes"] >= container["memory_bytes"] > 0
        assert container["cpu_seconds"] > 0
    db = next(c for c in latest["containers"] if c["service"] == "db")
    assert db["memory_bytes"] > 10 * 1024 * 1024  # a real PostgreSQL, not an idle shell


def test_database_size_is_pg_database_size(truth):
    _, usage, _, (before, after), _, _ = truth
    size = usage["latest"]["database_size_bytes"]
    # Equal when nothing wrote meanwhile; between the readings taken around the point otherwise.
    assert size == before if before == after else min(before, after) <= size <= max(before, after)
    assert usage["latest"]["connections"] >= 1


def test_volume_file_systems_are_as_full_as_df_says_and_the_agent_keeps_up_with_the_wal(truth):
    """filesystem_used_ratio against df's Use% of each volume's mountpoint; the backup agent (on in the
    live project) streams synchronously, so its slot holds less than a segment or two of WAL."""
    api, usage, _, _, _, _ = truth
    for volume in usage["latest"]["volumes"]:
        mountpoint = json.loads(docker("volume", "inspect", f"supamanager-{api.ref}-{volume['name']}"))[0]["Mountpoint"]
        df = subprocess.run(
            ["df", "--output=pcent", mountpoint], capture_output=True, text=True, check=True, timeout=60
        )
        assert abs(volume["filesystem_used_ratio"] * 100 - int(df.stdout.split()[-1].rstrip("%"))) <= 1, volume
    assert usage["latest"]["filesystem_used_ratio"] == max(
        v["filesystem_used_ratio"] for v in usage["latest"]["volumes"]
    )
    assert 0 <= usage["latest"]["wal_archive_lag_bytes"] < 64 * 2**20


def test_disk_is_du_of_each_volume(truth):
    _, usage, _, _, volumes, _ = truth
    reported = {v["name"]: v["bytes"] for v in usage["latest"]["volumes"]}
    assert set(reported) == set(volumes) >= {"db-data", "storage-data"}
    for name, bytes_ in volumes.items():
        assert abs(reported[name] - bytes_) <= 0.10 * bytes_, (name, reported[name], bytes_)
    assert usage["latest"]["disk_bytes"] == sum(reported.values())


def test_network_is_what_each_namespace_counted(truth):
    _, usage, _, _, _, (before, after) = truth
    latest = usage["latest"]
    for container in latest["containers"]:
        service = container["service"]
        # The counters only grow: the point's lies between the readings taken before and after it.
        assert before[service][0] <= container["network_rx_bytes"] <= after[service][0], service
        assert before[service][1] <= container["network_tx_bytes"] <= after[service][1], service
    assert latest["network_rx_bytes"] == sum(c["network_rx_bytes"] for c in latest["containers"]) > 0
    assert latest["network_tx_bytes"] > 0


def test_history_and_cpu_share_follow_the_points(truth):
    api, usage, _, _, _, _ = truth
    history = usage["history"]
    assert len(history) >= 2 and history[-1]["collected_at"] == usage["latest"]["collected_at"]
    times = [parsed(p["collected_at"]) for p in history]
    assert times == sorted(times)
    assert usage["interval_seconds"] == LIVE_USAGE_INTERVAL
    # After the first point every one has a share of cores: positive (a live stack), below the host's.
    assert 0 < history[-1]["cpu_share"] <= os.cpu_count()
    assert "containers" not in history[0]  # totals only; the latest point carries the detail
    status, error, _ = api.request("GET", f"/v1/projects/{api.ref}/usage?hours=0")
    assert status == 400, error
    status, error, _ = api.request("GET", "/v1/projects/abcdefghijklmnopqrst/usage")
    assert status == 404, error


def test_cli_and_metrics_show_the_figures(truth):
    api = truth[0]
    result = cli(api, "projects", "usage", api.ref)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert {"memory", "disk", "database_size", "connections"} <= set(lines)
    assert "MiB" in lines["memory"] and lines["connections"].strip().isdigit()
    assert "db-data" in result.stdout and "SERVICE" in result.stdout
    as_json = json.loads(cli(api, "projects", "usage", api.ref, "--json").stdout)
    assert as_json["ref"] == api.ref and as_json["latest"]["containers"]

    with urllib.request.urlopen(f"http://127.0.0.1:{api.port}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    label = f'{{ref="{api.ref}"}}'
    assert float(samples[f"supamanager_project_memory_bytes{label}"]) > 0
    assert float(samples[f"supamanager_project_database_size_bytes{label}"]) > 0
    assert float(samples[f"supamanager_project_disk_bytes{label}"]) > 0
    assert float(samples[f"supamanager_project_cpu_seconds_total{label}"]) > 0
    assert float(samples[f"supamanager_project_network_receive_bytes_total{label}"]) > 0
    assert samples[f"supamanager_project_unhealthy{label}"] == "0"
    assert float(samples["supamanager_usage_collections_total"]) >= 2
    # The label is the ref and nothing else: no name, no key.
    assert all("name=" not in line for line in text.splitlines() if line.startswith("supamanager_project_"))


def test_request_counts_are_the_requests_sent_through_the_gateway(truth):
    """N requests to /rest/v1/ and M to /auth/v1/health through the gateway, between two usage
    points: usage.api-counts, usage.api-requests-count and the points of /v1/projects/{ref}/usage
    count exactly those (nothing else calls the live project's gateway meanwhile)."""
    api = truth[0]
    api_url = json.loads((api.root / "projects" / api.ref / "project.json").read_text())["api_url"]
    anon = next(k["api_key"] for k in api.request("GET", f"/v1/projects/{api.ref}/api-keys?reveal=true")[1]
                if k["name"] == "anon")  # fmt: skip
    counts_url = f"/v1/projects/{api.ref}/analytics/endpoints/usage.api-counts?interval=15min"
    total_url = f"/v1/projects/{api.ref}/analytics/endpoints/usage.api-requests-count"

    def counts() -> tuple[dict, int]:
        status, body, _ = api.request("GET", counts_url)
        assert status == 200, body
        status, total, _ = api.request("GET", total_url)
        assert status == 200, total
        return {b["timestamp"]: b for b in body["result"]}, total["result"][0]["count"]

    def send(path: str) -> int:
        req = urllib.request.Request(f"{api_url}{path}", headers={"apikey": anon})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the gateway on localhost
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    def exported() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{api.port}/metrics", timeout=30) as resp:
            text = resp.read().decode()
        prefix = f'supamanager_project_api_requests_total{{ref="{api.ref}",kind="'
        return {line[len(prefix) :].split('"')[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line.startswith(prefix)}  # fmt: skip

    start = next_point(api, time.time())["latest"]["collected_at"]
    before, total_before = counts()
    series_before = exported()
    rest, auth = 7, 4
    assert [send("/rest/v1/") for _ in range(rest)] == [200] * rest
    assert [send("/auth/v1/health") for _ in range(auth)] == [200] * auth
    usage = next_point(api, time.time())
    after, total_after = counts()
    series_after = exported()
    assert {kind: series_after[kind] - series_before[kind] for kind in series_after} == {
        "rest": rest, "auth": auth, "storage": 0, "realtime": 0, "other": 0}  # fmt: skip

    # The minute buckets from the one holding `start` on: what they gained is what the new points counted.
    first = parsed(start) // 60 * 60
    gained = {"rest": 0, "auth": 0, "storage": 0, "realtime": 0}
    for timestamp, bucket in after.items():
        if parsed(timestamp) >= first:
            for kind in gained:
                key = f"total_{kind}_requests"
                gained[kind] += bucket[key] - before.get(timestamp, {}).get(key, 0)
    assert gained == {"rest": rest, "auth": auth, "storage": 0, "realtime": 0}, (before, after)
    assert total_after - total_before == rest + auth
    since_start = [p["api_requests"] for p in usage["history"] if parsed(p["collected_at"]) > parsed(start)]
    assert all(since_start) and sum(p["rest"] for p in since_start) == rest
    assert sum(p["auth"] for p in since_start) == auth and sum(p["total"] for p in since_start) == rest + auth
    # The CLI sums the hour's points as the API gives them (no request meanwhile: the sums stay).
    hour = [p["api_requests"] for p in next_point(api, 0)["history"] if p["api_requests"]]
    sums = {kind: sum(p[kind] for p in hour) for kind in ("total", "rest", "auth", "storage", "realtime")}
    result = cli(api, "projects", "usage", api.ref, "--hours", "1")
    assert result.returncode == 0, result.stderr
    line = "{total} in 1 h (rest {rest}, auth {auth}, storage {storage}, realtime {realtime})".format(**sums)
    assert f"api_requests:  {line}" in result.stdout, result.stdout
