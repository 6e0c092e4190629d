"""A fleet of two real Docker engines on this machine (scripts/dev-engine 9 and 10, each its own
dockerd, socket, data root and bridge range), the stand-in images loaded into each, an inventory
naming them: a real supamanagerd places one project on each by free memory, refuses a third, loses
engine 10 (its project UNKNOWN, the other ACTIVE_HEALTHY, nothing deleted), gets it back, and moves
engine 10's project, with rows and a storage object, to engine 9 (playbooks/move.yml).

The arithmetic and the reloads, without Docker: test_fleet.py.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import pathlib
import random
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from conftest import REPO
from daemonproc import Daemon
from test_fleet import write_inventory

from tests.xdist_engines import port_blocks

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COLLECTION = pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO))
DEV_ENGINE = pathlib.Path(REPO) / "scripts" / "dev-engine"
ENGINES = {"e9": 9, "e10": 10}
# Not about logs or backups: the services a project runs without them, and their images only.
PLAYBOOK_VARS = {
    "supabase_logs_enabled": False,
    "supabase_backup_wal_enabled": False,
    "supabase_health_timeout": 900,
    "supabase_healthcheck_interval": "10s",
    "supabase_healthcheck_start_period": "600s",
}
WITHOUT = {"vector", "analytics"}
# What the moved project holds in its database (and a storage object, written through its gateway).
ROWS = (
    "create table moved (id int primary key, note text);"
    " insert into moved select g, 'row ' || g from generate_series(1, 500) g"
)
# Each host its own block of this range (no other test uses 49100-49899), per xdist worker.
PORT_BLOCKS = port_blocks(49100, 49900, 100)


def socket_of(n: int) -> str:
    return f"unix:///run/docker-{n}.sock"


def docker(n: int | None, *args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if n is not None:
        env["DOCKER_HOST"] = socket_of(n)
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def answers(n: int) -> bool:
    return docker(n, "info", "--format", "{{.ID}}", timeout=30).returncode == 0


def project_images() -> list[str]:
    defaults = yaml.safe_load((COLLECTION / "roles" / "project" / "defaults" / "main.yml").read_text())
    return sorted(
        f"standin.local/{image}" for name, image in defaults["supabase_images"].items() if name not in WITHOUT
    )


def image_ids(n: int | None, images: list[str]) -> dict[str, str]:
    """The images the engine holds, with their ids (one inspect each: a missing one fails alone)."""
    found = {}
    for image in images:
        result = docker(n, "image", "inspect", "--format", "{{.Id}}", image)
        if result.returncode == 0:
            found[image] = result.stdout.strip()
    return found


def load_images(n: int, images: list[str], wanted: dict[str, str]) -> float:
    """Copy the images this engine lacks (or holds in another version) from the worker's engine, in one
    `docker save | docker load` (their shared layers once). Returns the seconds it took."""
    have = image_ids(n, images)
    missing = [i for i in images if have.get(i) != wanted[i]]
    if not missing:
        return 0.0
    started = time.monotonic()
    save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
    loaded = docker(n, "load", "-q", stdin=save.stdout, timeout=900)
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and loaded.returncode == 0, loaded.stderr[-2000:]
    return time.monotonic() - started


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Engines 9 and 10 with the images, an inventory of them, and a daemon driving it."""
    started_here = []
    for n in ENGINES.values():
        if not answers(n):
            out = subprocess.run([DEV_ENGINE, str(n)], capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            started_here.append(n)
    images = project_images()
    wanted = image_ids(None, images)
    assert sorted(wanted) == images, "build the stand-in images first (tests/standin/build)"
    # both engines at once: each its own save | load (a first run here: 29-39 s for one engine, at a load of 30)
    with concurrent.futures.ThreadPoolExecutor(len(ENGINES)) as pool:
        loading = {name: pool.submit(load_images, n, images, wanted) for name, n in ENGINES.items()}
        load_seconds = {name: future.result() for name, future in loading.items()}
    print(f"fleet: loaded the stand-in images in {load_seconds}")
    tmp = tmp_path_factory.mktemp("fleet")
    first, second = random.sample(list(PORT_BLOCKS), 2)
    inventory = write_inventory(
        tmp / "fleet.yml",
        {
            # e10 has more memory: the first project goes there, the second to e9; one project each at most
            "e10": {"docker_host": socket_of(10), "supamanager_memory_mb": 4096, "supamanager_max_projects": 1,
                    "supabase_port_range_start": first, "supabase_port_range_end": first + 99},
            "e9": {"docker_host": socket_of(9), "supamanager_memory_mb": 3072, "supamanager_max_projects": 1,
                   "supabase_port_range_start": second, "supabase_port_range_end": second + 99},
        },
        groups={"frankfurt": {"vars": {"supamanager_region": "eu-central-1"}, "hosts": ["e9", "e10"]}},
    )  # fmt: skip
    root = tmp / "root"
    root.mkdir()
    daemon = Daemon(tmp, COLLECTION, root, inventory=inventory, admit_spacing=0, playbook_vars=PLAYBOOK_VARS)
    daemon.start()
    daemon.load_seconds = load_seconds
    daemon.inventory_file = pathlib.Path(inventory)
    daemon.refs = []
    try:
        yield daemon
    finally:
        for n in ENGINES.values():
            if not answers(n):
                subprocess.run([DEV_ENGINE, str(n)], capture_output=True, timeout=120)
        daemon.stop()
        # Engines 9 and 10 are this test's alone: their labelled objects go without a delete playbook each
        # (test_daemon_e2e.py deletes through the daemon), and the project files with tmp.
        for n in ENGINES.values():
            for kind, listing in (
                ("rm -f", "ps -aq"),
                ("volume rm -f", "volume ls -q"),
                ("network rm", "network ls -q"),
            ):
                ids = docker(n, *listing.split(), "--filter", "label=supamanager.project").stdout.split()
                if ids:
                    docker(n, *kind.split(), *ids)
        for n in started_here:
            subprocess.run([DEV_ENGINE, str(n), "--stop"], capture_output=True, timeout=60)


def statuses(daemon: Daemon) -> dict[str, str]:
    return {p["ref"]: p["status"] for p in daemon.request("GET", "/v1/projects")[1]}


def wait_for(daemon: Daemon, predicate, timeout: float, what: str) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not predicate(seen := statuses(daemon)):
        assert time.monotonic() < deadline, f"{what}: still {seen} after {timeout} s"
        time.sleep(1)
    return seen


def containers_on(n: int, ref: str) -> list[str]:
    out = docker(n, "ps", "-a", "--filter", f"label=supamanager.project={ref}", "--format", "{{.Names}}")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def objects_on(n: int, ref: str) -> dict[str, list[str]]:
    """The containers, volumes and networks engine n holds with the project's label."""
    label = f"label=supamanager.project={ref}"
    found = {}
    for kind, listing in (("containers", ["ps", "-aq"]), ("volumes", ["volume", "ls", "-q"]),
                          ("networks", ["network", "ls", "-q"])):  # fmt: skip
        out = docker(n, *listing, "--filter", label)
        assert out.returncode == 0, out.stderr
        found[kind] = out.stdout.split()
    return found


def gateway(port: int, method: str, path: str, key: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method=method,
        headers={"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (127.0.0.1 only)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_a_two_engine_fleet_places_by_free_memory_refuses_when_full_survives_losing_a_host_and_moves_a_project(
    fleet,
):
    began = time.monotonic()
    phases = {}
    creates = []
    for name in ("first", "second"):
        status, project, headers = fleet.request("POST", "/v1/projects", {"name": name, "region": "eu-central-1"})
        assert status == 201, project
        fleet.refs.append(project["ref"])
        creates.append(headers["X-Operation-Id"])
    first, second = fleet.refs
    # every host holds its one project: the third is refused at once, recording nothing
    status, refused, _ = fleet.request("POST", "/v1/projects", {"name": "third", "region": "eu-central-1"})
    assert status == 403 and refused["code"] == "no_capacity", refused
    assert len(statuses(fleet)) == 2
    for op_id in creates:
        op = fleet.wait(op_id, lambda o: o["state"] in ("succeeded", "failed"), timeout=900)
        assert op["state"] == "succeeded", op["error"]
    # placed by free memory: e10 (4096 MiB) first, then e9; each project's containers on its own engine only
    hosts = {h["name"]: h for h in fleet.request("GET", "/platform/fleet")[1]["hosts"]}
    assert (hosts["e10"]["projects"], hosts["e9"]["projects"]) == (1, 1)
    assert containers_on(10, first) and not containers_on(9, first)
    assert containers_on(9, second) and not containers_on(10, second)
    wait_for(fleet, lambda s: set(s.values()) == {"ACTIVE_HEALTHY"}, 600, "both healthy")
    phases["two creates"] = time.monotonic() - began

    # engine 10 goes away: its project is UNKNOWN, the other stays healthy, nothing is deleted
    stopped_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = subprocess.run([DEV_ENGINE, "10", "--stop"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    stopped = time.monotonic()
    seen = wait_for(fleet, lambda s: s[first] == "UNKNOWN", 120, "engine 10's project unknown")
    phases["stop to UNKNOWN"] = time.monotonic() - stopped
    assert seen[second] == "ACTIVE_HEALTHY"
    with urllib.request.urlopen(f"http://127.0.0.1:{fleet.port}/metrics", timeout=60) as resp:
        metrics = resp.read().decode()
    assert 'supamanager_host_up{host="e10"} 0' in metrics and 'supamanager_host_up{host="e9"} 1' in metrics
    hosts = {h["name"]: h for h in fleet.request("GET", "/platform/fleet")[1]["hosts"]}
    assert hosts["e10"]["up"] is False and hosts["e10"]["error"] and hosts["e9"]["up"] is True
    notes = fleet.request("GET", "/platform/notifications")[1]
    lost = [n for n in notes if n["event"] == "host.unreachable"]
    assert [(n["ref"], n["data"]["host"]) for n in lost] == [(first, "e10")], notes
    for _ in range(2):  # more polls (one a second): still UNKNOWN, never REMOVED, no operation started on it
        time.sleep(2)
        assert statuses(fleet)[first] == "UNKNOWN"
    # (a heal before, of a service slow to get healthy on a loaded machine, is the healer's business)
    with sqlite3.connect(fleet.data / "supamanager.sqlite3") as db:
        since = db.execute("SELECT kind FROM operations WHERE ref = ? AND created_at >= ?", (first, stopped_at))
        assert since.fetchall() == []
        assert db.execute("SELECT kind FROM operations WHERE kind = 'delete'").fetchall() == []

    # engine 10 is back: its containers restart (restart: unless-stopped) and the project takes its real status
    back = time.monotonic()
    out = subprocess.run([DEV_ENGINE, "10"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert containers_on(10, first)
    wait_for(fleet, lambda s: s[first] == "ACTIVE_HEALTHY", 600, "engine 10's project healthy again")
    phases["start to ACTIVE_HEALTHY"] = time.monotonic() - back
    print(f"fleet: {', '.join(f'{k} {v:.0f} s' for k, v in phases.items())}")
    notes = fleet.request("GET", "/platform/notifications")[1]
    assert any(n["event"] == "host.reachable" and n["ref"] == first for n in notes)
    assert json.dumps(fleet.request("GET", "/platform/fleet")[1]).count('"up": true') == 2

    # move engine 10's project, with rows and a storage object, to engine 9
    status, _, _ = fleet.request("POST", f"/v1/projects/{first}/database/query", {"query": ROWS})
    assert status == 201
    keys_before = fleet.request("GET", f"/v1/projects/{first}/api-keys?reveal=true")[1]
    before = fleet.request("GET", f"/v1/projects/{first}")[1]
    blob = os.urandom(50000)
    service_key = next(k["api_key"] for k in keys_before if k["name"] == "service_role")
    kong = before["endpoints"]["ports"]["kong_http"]
    assert gateway(kong, "POST", "/storage/v1/object/files/moved.bin", service_key, blob)[0] == 200
    with sqlite3.connect(fleet.data / "supamanager.sqlite3") as db:
        operations = db.execute("SELECT count(*) FROM operations").fetchone()[0]
    # refused, nothing changes: a host not in the inventory, its own host, a target without room (e9 holds its one)
    for target, code, reason in (("nope", 400, "unknown_host"), ("e10", 400, "same_host"), ("e9", 403, "no_capacity")):
        status, refused, _ = fleet.request("POST", f"/v1/projects/{first}/move", {"target_host": target})
        assert status == code and refused["code"] == reason, refused
    with sqlite3.connect(fleet.data / "supamanager.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM operations").fetchone()[0] == operations
        assert db.execute("SELECT host FROM projects WHERE ref = ?", (first,)).fetchone()[0] == "e10"
    assert statuses(fleet)[first] == "ACTIVE_HEALTHY" and containers_on(10, first)
    # e9 gets room for a second project (the inventory, reloaded), and the project moves there
    data = yaml.safe_load(fleet.inventory_file.read_text())
    data["all"]["children"]["supabase_hosts"]["hosts"]["e9"]["supamanager_max_projects"] = 2
    fleet.inventory_file.write_text(yaml.safe_dump(data))
    assert fleet.request("POST", "/platform/fleet/reload")[0] == 200
    moving = time.monotonic()
    status, answer, headers = fleet.request("POST", f"/v1/projects/{first}/move", {"target_host": "e9"})
    assert status == 200 and answer["status"] == "RESTORING", answer
    op = fleet.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=900)
    assert op["state"] == "succeeded", op["error"]
    phases["move"] = time.monotonic() - moving
    downtime = [s["name"] for s in op["steps"] if s["name"].startswith("Moved; downtime (s): ")]
    assert len(downtime) == 1 and float(downtime[0].rpartition(" ")[2]) > 0, downtime
    phases["move's downtime"] = float(downtime[0].rpartition(" ")[2])
    wait_for(fleet, lambda s: s[first] == "ACTIVE_HEALTHY", 300, "the moved project healthy on e9")
    hosts = {h["name"]: h for h in fleet.request("GET", "/platform/fleet")[1]["hosts"]}
    assert (hosts["e9"]["projects"], hosts["e10"]["projects"]) == (2, 0)
    # on engine 9 alone: engine 10 holds no container, volume or network of it
    assert objects_on(10, first) == {"containers": [], "volumes": [], "networks": []}
    assert containers_on(9, first) and objects_on(9, first)["volumes"]
    # the same keys, the same address, the rows and the object
    assert fleet.request("GET", f"/v1/projects/{first}/api-keys?reveal=true")[1] == keys_before
    after = fleet.request("GET", f"/v1/projects/{first}")[1]
    assert after["endpoints"] == before["endpoints"] and after["database"] == before["database"]
    status, rows, _ = fleet.request("POST", f"/v1/projects/{first}/database/query",
                                    {"query": "select count(*) as n, max(note) as last from moved"})  # fmt: skip
    assert status == 201 and rows == [{"n": 500, "last": "row 99"}], rows
    assert gateway(kong, "GET", "/storage/v1/object/files/moved.bin", service_key) == (200, blob)
    # the hosts share this machine's root: the project's directory is e9's now; the move left none of its own files
    project_dir = fleet.root / "projects" / first
    assert (project_dir / "docker-compose.yml").exists() and not (project_dir / "move.json").exists()
    assert not (fleet.root / "backups" / first / ".move-token").exists()
    print(f"fleet: {', '.join(f'{k} {v:.0f} s' for k, v in phases.items())}")
