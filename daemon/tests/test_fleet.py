"""The fleet without Docker: hosts from an Ansible inventory, placement and admission arithmetic, reloads
(the endpoint and SIGHUP), jobs limited to their project's host, the poller's view of a host that does
not answer. The same on real engines, with real projects: test_fleet_engines.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest
import yaml
from conftest import AUTH, TOKEN, wait_operation
from daemonproc import BIN
from supamanager_daemon import cli, keys
from supamanager_daemon.app import create_app
from supamanager_daemon.errors import InvalidRequest
from supamanager_daemon.fleet.hosts import Fleet, Host, InventoryError, host_from_vars, load_inventory
from supamanager_daemon.fleet.placement import Admission, NoCapacity, Used, choose_host, project_need
from supamanager_daemon.fleet.poller import Poller
from supamanager_daemon.operations.jobs import JobScheduler
from supamanager_daemon.store import Store

SIZES = {"nano": {"memory_mb": 512, "cpus": 0.5}, "small": {"memory_mb": 2048, "cpus": 2}}


def write_inventory(path: pathlib.Path, hosts: dict[str, dict], groups: dict[str, dict] | None = None) -> str:
    """An inventory whose group supabase_hosts holds hosts (name -> vars); groups: child groups with
    their vars and hosts ({"vars": {...}, "hosts": [...]})."""
    children = {
        name: {"vars": group.get("vars", {}), "hosts": {h: {} for h in group.get("hosts", [])}}
        for name, group in (groups or {}).items()
    }
    data = {
        "all": {
            "children": {
                "supabase_hosts": {
                    "hosts": {
                        name: {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                            **v,
                        }
                        for name, v in hosts.items()
                    },
                    "children": children,
                }
            }
        }
    }
    path.write_text(yaml.safe_dump(data))
    return str(path)


def load(path: str) -> Fleet:
    return load_inventory(path, default_region="local", default_max_jobs=4, local_socket="/run/own.sock")


# -- hosts from the inventory -------------------------------------------------------------------
def test_hosts_come_from_the_inventory_with_their_capacity_labels_ranges_and_regions(tmp_path):
    path = write_inventory(
        tmp_path / "hosts.yml",
        {
            "one": {
                "docker_host": "unix:///run/docker-9.sock",
                "supamanager_memory_mb": 8192,
                "supamanager_cpus": 4,
                "supamanager_max_projects": 5,
                "supamanager_max_jobs": 2,
                "supamanager_labels": {"disk": "ssd", "rack": 3},
                "supabase_port_range_start": 49100,
                "supabase_port_range_end": 49199,
            },
            "two": {"docker_host": "tcp://10.0.0.2:2375"},
            "three": {"ansible_connection": "ssh"},
            "four": {},
        },
        # The region as a group's variable: a region is a group of hosts.
        groups={"frankfurt": {"vars": {"supamanager_region": "eu-central-1"}, "hosts": ["one", "two"]}},
    )
    fleet = load(path)
    assert sorted(fleet.hosts) == ["four", "one", "three", "two"] and fleet.source == path
    one = fleet.hosts["one"]
    assert one == Host(
        name="one",
        region="eu-central-1",
        docker_host="unix:///run/docker-9.sock",
        local=True,
        memory_mb=8192,
        cpus=4.0,
        max_projects=5,
        max_jobs=2,
        labels={"disk": "ssd", "rack": "3"},
        port_range=(49100, 49199),
    )
    assert one.socket_path == "/run/docker-9.sock" and one.polled
    assert fleet.hosts["two"].region == "eu-central-1" and fleet.hosts["two"].socket_path is None
    # An SSH host without an engine URL is listed, driven by its playbooks, not polled.
    three = fleet.hosts["three"]
    assert (three.local, three.docker_host, three.polled, three.region) == (False, None, False, "local")
    # A local host without one is this machine's engine, the daemon's own socket.
    assert fleet.hosts["four"].docker_host == "unix:///run/own.sock" and fleet.hosts["four"].max_jobs == 4
    assert fleet.regions == ["eu-central-1", "local"]
    assert [h.name for h in fleet.in_region("eu-central-1")] == ["one", "two"]


@pytest.mark.parametrize(
    ("hostvars", "says"),
    [
        ({"docker_host": "unix://relative"}, "docker_host must be"),
        ({"docker_host": "tcp://h:99999"}, "port must be 1..65535"),
        ({"docker_host": "ssh://h"}, "docker_host must be"),
        ({"supamanager_region": "EU Central"}, "supamanager_region"),
        ({"supamanager_memory_mb": "lots"}, "supamanager_memory_mb must be a whole number"),
        ({"supamanager_memory_mb": 10}, "supamanager_memory_mb must be at least 256"),
        ({"supamanager_memory_mb": True}, "whole number"),
        ({"supamanager_cpus": "x"}, "supamanager_cpus must be a number"),
        ({"supamanager_cpus": 0}, "more than 0"),
        ({"supamanager_max_jobs": 0}, "supamanager_max_jobs must be 1..64"),
        ({"supamanager_labels": ["a"]}, "mapping"),
        ({"supamanager_labels": {"a b": "x"}}, "not a plain name"),
        ({"supamanager_labels": {"a": "x;$(rm)"}}, "short plain string"),
        ({"supabase_port_range_start": 50000, "supabase_port_range_end": 50001}, "holds no project"),
        ({"supabase_port_range_start": 80}, "1024..65535"),
    ],
)
def test_a_wrong_host_variable_is_refused_naming_the_host_and_the_variable(hostvars, says):
    with pytest.raises(InventoryError, match="host h1: ") as err:
        host_from_vars("h1", hostvars, "local", 4)
    assert says in str(err.value)


def test_an_inventory_without_the_group_or_a_host_or_a_file_is_refused(tmp_path):
    with pytest.raises(InventoryError, match="does not exist"):
        load(str(tmp_path / "none.yml"))
    (tmp_path / "other.yml").write_text("all:\n  hosts:\n    a: {}\n")
    with pytest.raises(InventoryError, match="no group supabase_hosts"):
        load(str(tmp_path / "other.yml"))
    (tmp_path / "empty.yml").write_text("all:\n  children:\n    supabase_hosts:\n      vars: {x: 1}\n")
    with pytest.raises(InventoryError, match="has no host"):
        load(str(tmp_path / "empty.yml"))
    with pytest.raises(InventoryError, match="not a plain host name"):
        host_from_vars("a;b", {}, "local", 4)


# -- placement ----------------------------------------------------------------------------------
def _fleet(*hosts: Host) -> Fleet:
    return Fleet({h.name: h for h in hosts}, source="inventory")


def test_placement_takes_the_host_of_the_region_with_the_most_free_memory_and_a_full_host_takes_none():
    need = project_need(None, SIZES, 1024)
    assert need.memory_mb == 1536 and need.cpus == 0.5
    assert project_need("small", SIZES, 1024).memory_mb == 3072
    fleet = _fleet(
        Host("a", "eu-central-1", memory_mb=4096),
        Host("b", "eu-central-1", memory_mb=8192, max_projects=2),
        Host("c", "us-east-1"),  # no limits: room for anything
    )
    assert choose_host(fleet, "eu-central-1", {}, need).name == "b"
    # b holds 4500 MiB already: a has more free memory now
    assert choose_host(fleet, "eu-central-1", {"b": Used(1, 4500, 0.5)}, need).name == "a"
    # b is at its project limit, a has too little memory left: none fits
    with pytest.raises(NoCapacity, match="no host of region eu-central-1 has room") as full:
        choose_host(fleet, "eu-central-1", {"a": Used(2, 3000, 1), "b": Used(2, 3000, 1)}, need)
    assert full.value.code == "no_capacity"
    assert choose_host(fleet, "us-east-1", {"c": Used(100, 10**6, 100)}, need).name == "c"
    with pytest.raises(InvalidRequest, match="no host serves region 'ap-south-1'"):
        choose_host(fleet, "ap-south-1", {}, need)
    # CPUs break a tie in memory, then the number of projects, then the name
    fleet = _fleet(Host("x", "r", memory_mb=4096, cpus=2), Host("y", "r", memory_mb=4096, cpus=4), Host("z", "r"))
    assert choose_host(_fleet(*list(fleet.hosts.values())[:2]), "r", {}, need).name == "y"
    assert choose_host(fleet, None, {}, need).name == "z"
    # CPUs alone can make a host full
    with pytest.raises(NoCapacity):
        choose_host(_fleet(Host("x", "r", cpus=1)), "r", {"x": Used(1, 0, 0.75)}, need)


async def test_admission_holds_a_create_while_this_machine_is_loaded_and_spaces_the_starts():
    readings = [(9.0, 8000), (0.5, 100), (0.5, 8000)]  # loaded, then short of memory, then fine
    seen = []

    def probe():
        seen.append(readings[0])
        return readings.pop(0) if len(readings) > 1 else readings[0]

    admission = Admission(load_per_cpu=3.0, memory_mb=1024, spacing=0.3, probe=probe, check_every=0.01)
    local, remote = Host("a", "r"), Host("b", "r", local=False)
    waits = []

    async def waiting(why):
        waits.append(why)

    await admission.admit(local, busy=lambda: 1, waiting=waiting)
    assert seen[:3] == [(9.0, 8000), (0.5, 100), (0.5, 8000)]
    assert waits == ["load 9.00 per CPU (limit 3)"] and admission.waited == 1
    # the next create on this machine waits out the spacing, then starts
    started = time.monotonic()
    await admission.admit(local, busy=lambda: 1, waiting=waiting)
    assert time.monotonic() - started >= 0.25
    assert waits[-1] == "the last create started less than 0.3 s ago"
    # nothing of ours runs: waiting cannot lower the load, so it starts; a remote host is not gated here
    readings[:] = [(50.0, 10)]
    await asyncio.wait_for(admission.admit(local, busy=lambda: 0), 1)
    await asyncio.wait_for(admission.admit(remote, busy=lambda: 5), 1)
    assert admission.overloaded() == "load 50.00 per CPU (limit 3)"


# -- the daemon with an inventory ---------------------------------------------------------------
# A fake playbook on the group, as the collection's are: records where it ran and with what engine.
_FLEET_PLAYBOOK = """---
- name: Fake {kind}
  hosts: supabase_hosts
  gather_facts: false
  tasks:
    - name: Record where it ran
      ansible.builtin.copy:
        dest: "{{{{ supamanager_root }}}}/ran-{{{{ project_ref }}}}-{kind}-{{{{ inventory_hostname }}}}.json"
        content: "{{{{ {{'docker_host': lookup('ansible.builtin.env', 'DOCKER_HOST'),
          'ports': [supabase_port_range_start | default(None),
          supabase_port_range_end | default(None)]}} | to_json }}}}"
        mode: "0600"
    - name: Make the project's directory
      ansible.builtin.file:
        path: "{{{{ supamanager_root }}}}/projects/{{{{ project_ref }}}}"
        state: directory
        mode: "0700"
      when: "'{kind}' == 'create'"
    - name: Write project.json
      ansible.builtin.copy:
        dest: "{{{{ supamanager_root }}}}/projects/{{{{ project_ref }}}}/project.json"
        content: '{{{{ {{"ref": project_ref, "services": ["db"]}} | to_json }}}}'
        mode: "0644"
      when: "'{kind}' == 'create'"
    - name: Hold while asked to
      ansible.builtin.wait_for:
        path: "{{{{ supamanager_root }}}}/hold"
        state: absent
        timeout: 120
        sleep: 1
"""


@pytest.fixture
def fleet_settings(settings, tmp_path):
    for kind in ("create", "delete", "restart"):
        (settings.collection_dir / "playbooks" / f"{kind}.yml").write_text(_FLEET_PLAYBOOK.format(kind=kind))
    for ref_dir in ("projects",):
        (settings.root / ref_dir).mkdir(parents=True, exist_ok=True)
    path = write_inventory(
        tmp_path / "fleet.yml",
        {
            "small": {"docker_host": "unix:///run/fleet-small.sock", "supamanager_memory_mb": 2048,
                      "supabase_port_range_start": 49100, "supabase_port_range_end": 49199},
            "big": {"docker_host": "unix:///run/fleet-big.sock", "supamanager_memory_mb": 3072,
                    "supabase_port_range_start": 49200, "supabase_port_range_end": 49299},
            "lab": {"supamanager_region": "lab", "supamanager_max_jobs": 1},
        },
        groups={"frankfurt": {"vars": {"supamanager_region": "eu-central-1"}, "hosts": ["small", "big"]}},
    )  # fmt: skip
    # Admission is test_admission_...'s: here every create starts at once, whatever this machine's load.
    return dataclasses.replace(settings, inventory=path, admit_spacing=0, admit_load=1000.0, admit_memory_mb=0)


async def _create(client, **body):
    resp = await client.post("/v1/projects", json={"name": "placed", **body}, headers=AUTH)
    return resp, await resp.json()


async def test_creates_spread_by_free_memory_each_job_limited_to_its_host_until_the_region_is_full(
    aiohttp_client, fleet_settings
):
    # one create starts a second after another on this machine (admission), whatever the load
    client = await aiohttp_client(create_app(dataclasses.replace(fleet_settings, admit_spacing=1.0)))
    await client.app[keys.POLLER].stop()  # no engine behind these sockets
    root = fleet_settings.root
    placed, ops = [], []
    # placed at once, each by what the ones before it take: their jobs run together
    for _ in range(3):
        resp, project = await _create(client, region="eu-central-1")
        assert resp.status == 201, project
        placed.append(project["ref"])
        ops.append(resp.headers["X-Operation-Id"])
        assert project["region"] == "eu-central-1"
    # the fourth: both hosts hold 1536 MiB a project, big two of its 3072, small one of its 2048: none has room
    resp, refused = await _create(client, region="eu-central-1")
    assert resp.status == 403 and refused["code"] == "no_capacity", refused
    assert "region eu-central-1" in refused["message"]
    resp, refused = await _create(client, region="us-west-2")
    assert resp.status == 400 and refused["code"] == "unknown_region"
    done = [await wait_operation(client, op) for op in ops]
    assert [op["state"] for op in done] == ["succeeded"] * 3
    # the second and the third waited for the first's (then the second's) start, and said so
    waited = [[s["name"] for s in op["steps"] if s["name"] and s["name"].startswith("waiting")] for op in done]
    assert waited[0] == [] and waited[2] == ["waiting for room on host big: the last create started less than 1 s ago"]
    assert waited[1] == ["waiting for room on host small: the last create started less than 1 s ago"]
    stored = {p["ref"]: p["host"] for p in await client.app[keys.STORE].list_projects()}
    # big (3072 MiB) first; then small (2048) has more room than big's 1536 left; then big's 1536 beats small's 512
    assert [stored[r] for r in placed] == ["big", "small", "big"]
    for ref, host, ports in zip(placed[:2], ("big", "small"), ([49200, 49299], [49100, 49199]), strict=True):
        # the play ran on that host alone, on its engine, with its port range
        ran = sorted(p.name for p in root.glob(f"ran-{ref}-*"))
        assert ran == [f"ran-{ref}-create-{host}.json"]
        seen = json.loads((root / ran[0]).read_text())
        assert seen == {"docker_host": f"unix:///run/fleet-{host}.sock", "ports": ports}
    # a restart runs on the project's host
    resp = await client.post(f"/v1/projects/{placed[1]}/restart", headers=AUTH)
    assert resp.status == 200
    await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (root / f"ran-{placed[1]}-restart-small.json").exists()
    assert not list(root.glob(f"ran-{placed[1]}-restart-big*"))
    # /platform/fleet says what each host holds
    resp = await client.get("/platform/fleet", headers=AUTH)
    fleet = await resp.json()
    held = {h["name"]: (h["projects"], h["memory_mb_used"], h["region"]) for h in fleet["hosts"]}
    assert held == {"big": (2, 3072, "eu-central-1"), "small": (1, 1536, "eu-central-1"), "lab": (0, 0, "lab")}


async def test_without_an_inventory_creates_on_this_machine_pass_the_same_admission(aiohttp_client, settings):
    """The single host (no SUPAMANAGER_INVENTORY) is this machine: its creates are spaced and held like a
    local inventory host's (the bench's 20 creates on 2 cores started four at once before)."""
    client = await aiohttp_client(create_app(dataclasses.replace(settings, admit_spacing=1.0)))
    await client.app[keys.POLLER].stop()
    ops = []
    for _ in range(2):
        resp, project = await _create(client)
        assert resp.status == 201, project
        ops.append(resp.headers["X-Operation-Id"])
    done = [await wait_operation(client, op) for op in ops]
    assert [op["state"] for op in done] == ["succeeded"] * 2
    waited = [[s["name"] for s in op["steps"] if s["name"] and s["name"].startswith("waiting")] for op in done]
    assert waited == [[], ["waiting for room on host localhost: the last create started less than 1 s ago"]]
    # no --limit and no host of the inventory for the job itself: its play ran as before
    assert client.app[keys.JOBS]._admission_host(None).name == "localhost"


async def test_creates_wait_for_their_hosts_job_slot_and_a_job_whose_host_left_the_inventory_fails_saying_so(
    aiohttp_client, fleet_settings, tmp_path
):
    """Also: the reload endpoint and SIGHUP read the inventory again."""
    client = await aiohttp_client(create_app(fleet_settings))
    await client.app[keys.POLLER].stop()
    hold = fleet_settings.root / "hold"
    hold.touch()
    ops, refs = [], []
    for _ in range(2):
        resp, project = await _create(client, region="lab")  # lab runs one job at a time
        assert resp.status == 201
        ops.append(resp.headers["X-Operation-Id"])
        refs.append(project["ref"])
    jobs = client.app[keys.JOBS]
    deadline = time.monotonic() + 120
    while jobs.running_on("lab") < 1:
        assert time.monotonic() < deadline, "the first create did not start"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    states = [(await (await client.get(f"/v1/operations/{op}", headers=AUTH)).json())["state"] for op in ops]
    assert states == ["running", "queued"] and jobs.running_on("lab") == 1 and jobs.queued == 1
    hold.unlink()
    assert [(await wait_operation(client, op))["state"] for op in ops] == ["succeeded", "succeeded"]
    project = {"ref": refs[0]}
    assert (fleet_settings.root / f"ran-{project['ref']}-create-lab.json").exists()
    inventory = pathlib.Path(fleet_settings.inventory)
    data = yaml.safe_load(inventory.read_text())
    del data["all"]["children"]["supabase_hosts"]["hosts"]["lab"]
    data["all"]["children"]["supabase_hosts"]["hosts"]["new"] = {
        "ansible_connection": "local",
        "supamanager_region": "us-east-1",
    }
    inventory.write_text(yaml.safe_dump(data))
    resp = await client.post("/platform/fleet/reload", headers=AUTH)
    assert resp.status == 200
    fleet = await resp.json()
    assert sorted(h["name"] for h in fleet["hosts"]) == ["big", "new", "small"] and fleet["reloads"] == 1
    resp = await client.post(f"/v1/projects/{project['ref']}/restart", headers=AUTH)
    assert resp.status == 200
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "failed" and "host 'lab' of project" in op["error"] and "not in the inventory" in op["error"]
    assert not (fleet_settings.root / f"ran-{project['ref']}-restart-lab.json").exists()
    # a wrong inventory changes nothing and says why
    good = inventory.read_text()
    inventory.write_text(good.replace("us-east-1", "US East"))
    resp = await client.post("/platform/fleet/reload", headers=AUTH)
    body = await resp.json()
    assert (
        resp.status == 400 and body["code"] == "invalid_inventory" and "host new: supamanager_region" in body["message"]
    )
    assert sorted(client.app[keys.FLEET].fleet.hosts) == ["big", "new", "small"]
    # SIGHUP reads it again, no restart
    inventory.write_text(good.replace("new:", "newer:"))
    os.kill(os.getpid(), signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "newer" not in client.app[keys.FLEET].fleet.hosts:
        assert time.monotonic() < deadline, "SIGHUP did not reload the inventory"
        await asyncio.sleep(0.05)


def test_a_daemon_with_a_wrong_inventory_does_not_start_and_says_why(settings, tmp_path):
    bad = dataclasses.replace(settings, inventory=str(tmp_path / "missing.yml"))
    with pytest.raises(InventoryError, match="does not exist"):
        create_app(bad)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
    env.update(
        SUPAMANAGER_DATA_DIR=str(tmp_path / "data"),
        SUPAMANAGER_API_TOKEN="f" + "0123456789abcdef" * 3,
        SUPAMANAGER_INVENTORY=str(tmp_path / "missing.yml"),
        SUPAMANAGER_PORT="0",
    )
    out = subprocess.run([BIN], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and f"the inventory {tmp_path / 'missing.yml'} does not exist" in out.stderr, out.stderr


# -- the poller ---------------------------------------------------------------------------------
class FakeEngine:
    """One host's engine: its containers, or down (a DockerError, as a refused socket gives)."""

    def __init__(self, containers):
        self.containers = containers
        self.down = False
        self.calls = 0

    async def project_containers(self, ref=None):
        from supamanager_daemon.fleet.docker import DockerError

        self.calls += 1
        await asyncio.sleep(0.2)  # both hosts are asked at once: one poll takes 0.2 s, not 0.4
        if self.down:
            raise DockerError("docker GET /containers/json: Cannot connect")
        return self.containers


def _container(ref, service):
    return {"Labels": {"supamanager.project": ref, "supamanager.service": service}, "State": "running", "Status": "Up"}


class FakeFleet:
    def __init__(self, engines):
        self.engines = engines
        # and an SSH host without an engine URL: never polled, its projects UNKNOWN, no host_up of its own
        self.fleet = Fleet({n: Host(n, "r") for n in [*engines, "ssh"]}, source="inventory")

    def client(self, name):
        return self.engines.get(name)


async def test_a_host_that_does_not_answer_leaves_its_projects_unknown_and_the_others_as_they_are(tmp_path):
    """Fakes for the engines: test_fleet_engines.py stops a real one."""
    store = Store(tmp_path / "db.sqlite3")
    await store.open()
    try:
        refs = {}
        for host in ("one", "two", "ssh"):
            project, op = await store.create_project(
                ref=f"{host}aaaaaaaaaaaaaaaaa"[:20], name=host, organization_slug="default", region="r", host=host
            )
            await store.mark_running(op["id"])
            await store.finish_operation(op["id"], ok=True)
            refs[host] = project["ref"]
        engines = {h: FakeEngine([_container(refs[h], "db")]) for h in ("one", "two")}
        poller = Poller(store, None, 3600, FakeFleet(engines))
        changes = []
        poller.on_host_changed = lambda *args: changes.append(args)
        started = time.monotonic()
        await poller.poll_once()
        assert time.monotonic() - started < 0.39  # concurrently
        status = {p["host"]: p["status"] for p in await store.list_projects()}
        assert status == {"one": "ACTIVE_HEALTHY", "two": "ACTIVE_HEALTHY", "ssh": "UNKNOWN"}
        assert poller.host_up == {"one": True, "two": True} and poller.last_error is None
        engines["two"].down = True
        await poller.poll_once()
        status = {p["host"]: p["status"] for p in await store.list_projects()}
        assert status == {"one": "ACTIVE_HEALTHY", "two": "UNKNOWN", "ssh": "UNKNOWN"}
        assert poller.host_up == {"one": True, "two": False} and "two: docker GET" in poller.last_error
        assert changes == [("two", False, "docker GET /containers/json: Cannot connect", [refs["two"]])]
        assert [e.calls for e in engines.values()] == [2, 2]  # one call per host per poll
        engines["two"].down = False
        await poller.poll_once()
        status = {p["host"]: p["status"] for p in await store.list_projects()}
        assert status == {"one": "ACTIVE_HEALTHY", "two": "ACTIVE_HEALTHY", "ssh": "UNKNOWN"}
        assert poller.last_error is None
        assert changes[-1] == ("two", True, None, [refs["two"]])
        # a host gone from the inventory is forgotten: no host_up of it, its project UNKNOWN
        del engines["two"]
        fleet = poller.fleet.fleet
        poller.fleet.fleet = Fleet({n: h for n, h in fleet.hosts.items() if n != "two"}, source="inventory")
        await poller.poll_once()
        assert poller.host_up == {"one": True} and (await store.get_project(refs["two"]))["status"] == "UNKNOWN"
    finally:
        await store.close()


def test_a_job_scheduler_without_an_inventory_runs_as_before(settings):
    jobs = JobScheduler(settings, None)
    env = jobs.child_env()
    assert env.get("DOCKER_HOST") == os.environ.get("DOCKER_HOST")
    assert "supabase_port_range_start" not in jobs.extravars(
        {"id": "x", "ref": "r", "kind": "pause", "params": {}}, "pause.yml"
    )


# -- moving projects and draining hosts (the real move: test_fleet_engines.py) -------------------
# A fake move.yml, as the collection's: one play over both hosts, each recording its engine, its own port
# range (not the source's) and the move's two ends.
_MOVE_PLAYBOOK = """---
- name: Fake move
  hosts: supabase_hosts
  gather_facts: false
  tasks:
    - name: Record where it ran
      ansible.builtin.copy:
        dest: "{{ supamanager_root }}/ran-{{ project_ref }}-move-{{ inventory_hostname }}.json"
        content: "{{ {'source': move_source, 'target': move_target,
          'engine': supamanager_move_engines[inventory_hostname] | default(None),
          'ports': [supabase_port_range_start | default(None), supabase_port_range_end | default(None)]} | to_json }}"
        mode: "0600"
    - name: Hold while asked to
      ansible.builtin.wait_for:
        path: "{{ supamanager_root }}/hold"
        state: absent
        timeout: 120
        sleep: 1
    - name: "Moved; downtime (s): 1.5"
      ansible.builtin.debug:
        msg: moved
"""


async def _placed(store, ref: str, host: str) -> None:
    """A project that a create put on host, ACTIVE_HEALTHY."""
    _, op = await store.create_project(ref=ref, name=ref, organization_slug="default", region="eu-central-1", host=host)
    await store.mark_running(op["id"])
    await store.finish_operation(op["id"], ok=True)


def test_a_move_or_a_drain_picks_another_host_of_the_region_never_the_excluded_or_a_draining_one():
    big = Host("big", "eu", memory_mb=8192)
    small = Host("small", "eu", memory_mb=4096)
    other = Host("other", "us", memory_mb=65536)
    fleet = _fleet(big, small, other)
    need = project_need(None, SIZES, 1024)
    assert choose_host(fleet, "eu", {}, need).name == "big"
    assert choose_host(fleet, "eu", {}, need, exclude={"big"}).name == "small"  # its own host is not a target
    with pytest.raises(NoCapacity):
        choose_host(fleet, "eu", {}, need, exclude={"big", "small"})  # a region of excluded hosts has no room
    with pytest.raises(InvalidRequest):
        choose_host(fleet, "nowhere", {}, need, exclude={"big"})


async def test_moves_are_checked_then_run_on_both_hosts_and_a_drain_moves_a_hosts_projects_one_at_a_time(
    aiohttp_client, fleet_settings
):
    (fleet_settings.collection_dir / "playbooks" / "move.yml").write_text(_MOVE_PLAYBOOK)
    client = await aiohttp_client(create_app(fleet_settings))
    await client.app[keys.POLLER].stop()
    store, root = client.app[keys.STORE], fleet_settings.root
    first, second = "a" * 20, "b" * 20
    for ref in (first, second):  # big holds two (3072 MiB), small one (2048)
        await _placed(store, ref, "big")

    async def move(ref: str, body) -> tuple[int, dict]:
        resp = await client.post(f"/v1/projects/{ref}/move", json=body, headers=AUTH)
        return resp.status, await resp.json()

    # refused, nothing recorded: not a host, its own host, another region, a wrong body, no such project
    for body, status, code in (
        ({"target_host": "nope"}, 400, "unknown_host"),
        ({"target_host": "big"}, 400, "same_host"),
        ({"target_host": "lab"}, 400, "other_region"),
        ({"target": "small"}, 400, None),
        ({"target_host": "../x"}, 400, None),
    ):
        got, answer = await move(first, body)
        assert got == status and (code is None or answer["code"] == code), (body, answer)
    assert (await move("c" * 20, {"target_host": "small"}))[0] == 404
    assert [op["kind"] for op in await store.active_operations()] == []
    # 409 while another operation runs on it
    hold = root / "hold"
    hold.touch()
    resp = await client.post(f"/v1/projects/{second}/restart", headers=AUTH)
    restart = resp.headers["X-Operation-Id"]
    got, answer = await move(second, {"target_host": "small"})
    assert got == 409 and answer["code"] == "operation_in_progress", answer
    hold.unlink()
    await wait_operation(client, restart)

    # drain big: the first goes to small (the region's other host), then small is full and the second stays
    resp = await client.post("/platform/fleet/hosts/big/drain", headers=AUTH)
    assert resp.status == 200
    drain = await resp.json()
    assert drain["host"] == "big" and drain["draining"] is True
    drains = client.app[keys.DRAINS]
    deadline = time.monotonic() + 300
    while not drains.state("big").done:
        assert time.monotonic() < deadline, "the drain did not end"
        await asyncio.sleep(0.2)
    resp = await client.get("/platform/fleet/hosts/big/drain", headers=AUTH)
    drain = await resp.json()
    assert [(m["ref"], m["target"], m["state"]) for m in drain["moves"]] == [(first, "small", "succeeded")]
    assert [s["ref"] for s in drain["skipped"]] == [second] and "has room" in drain["skipped"][0]["reason"]
    assert drain["done"] is True and drain["projects_left"] == 1
    stored = {p["ref"]: (p["host"], p["status"]) for p in await store.list_projects()}
    assert stored == {first: ("small", "ACTIVE_HEALTHY"), second: ("big", "ACTIVE_HEALTHY")}
    # the move ran on both hosts, each on its engine with its own port range; its steps tell the downtime
    for host, engine, ports in (("big", "unix:///run/fleet-big.sock", [49200, 49299]),
                                ("small", "unix:///run/fleet-small.sock", [49100, 49199])):  # fmt: skip
        seen = json.loads((root / f"ran-{first}-move-{host}.json").read_text())
        assert seen == {"source": "big", "target": "small", "engine": engine, "ports": ports}
    op = await wait_operation(client, drain["moves"][0]["operation_id"])
    assert op["kind"] == "move" and op["params"] == {"source": "big", "target": "small"}
    assert "Moved; downtime (s): 1.5" in [s["name"] for s in op["steps"]]
    # a draining host takes no create; the fleet says it drains
    resp, refused = await _create(client, region="eu-central-1")
    assert resp.status == 403 and refused["code"] == "no_capacity", refused
    hosts = {
        h["name"]: h["draining"] for h in (await (await client.get("/platform/fleet", headers=AUTH)).json())["hosts"]
    }
    assert hosts == {"big": True, "small": False, "lab": False}
    got, answer = await move(first, {"target_host": "big"})
    assert got == 400 and answer["code"] == "host_draining"
    # a full target is 403
    got, answer = await move(second, {"target_host": "small"})
    assert got == 403 and answer["code"] == "no_capacity", answer
    # undrained, big takes projects again: the first moves back
    resp = await client.delete("/platform/fleet/hosts/big/drain", headers=AUTH)
    assert (await resp.json())["draining"] is False
    hold.touch()
    resp = await client.post(f"/v1/projects/{first}/move", json={"target_host": "big"}, headers=AUTH)
    answer = await resp.json()
    assert resp.status == 200 and answer["status"] == "RESTORING", answer
    assert (await store.get_project(first))["host"] == "small"  # until the move succeeds
    hold.unlink()
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "succeeded" and (await store.get_project(first))["host"] == "big"
    assert (await client.get("/platform/fleet/hosts/nope/drain", headers=AUTH)).status == 404
    # the CLI's move and drain say the same
    url = str(client.make_url("")).rstrip("/")

    def run_cli(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([*args, "--url", url, "--token", TOKEN])
        return code, out.getvalue(), err.getvalue()

    code, out, _ = await asyncio.to_thread(run_cli, "fleet", "drain", "big", "--show")
    assert code == 0 and out.splitlines()[0] == "host big: not draining, 2 project(s) left"
    assert f"  {first} -> small: succeeded" in out and f"  {second} stays: " in out
    code, out, err = await asyncio.to_thread(run_cli, "projects", "move", second, "--to", "nope")
    assert code == 1 and "no host 'nope' in the inventory" in err, err
    code, out, _ = await asyncio.to_thread(run_cli, "fleet", "drain", "small", "--json")
    assert code == 0 and json.loads(out)["draining"] is True
    code, out, _ = await asyncio.to_thread(run_cli, "fleet", "drain", "small", "--undo", "--json")
    assert code == 0 and json.loads(out)["draining"] is False
    # a move whose target left the inventory fails saying so; a project whose host left it does not move
    _, op = await store.start_operation(second, lambda _p: "move", {"source": "big", "target": "gone"})
    client.app[keys.JOBS].enqueue(op)
    op = await wait_operation(client, op["id"])
    assert op["state"] == "failed" and "'gone', the move's target, is not in the inventory" in op["error"], op
    await _placed(store, "d" * 20, "gone")
    got, answer = await move("d" * 20, {"target_host": "small"})
    assert got == 400 and answer["code"] == "unknown_host" and "host 'gone' of project" in answer["message"]
    # a drain in flight answers itself when asked again; the daemon's stop ends it
    hold.touch()
    resp = await client.post("/platform/fleet/hosts/big/drain", headers=AUTH)
    assert (await resp.json())["done"] is False
    deadline = time.monotonic() + 120
    while not drains.state("big").moves:
        assert time.monotonic() < deadline, "the drain did not start a move"
        await asyncio.sleep(0.1)
    again = await (await client.post("/platform/fleet/hosts/big/drain", headers=AUTH)).json()
    assert again["done"] is False and [m["ref"] for m in again["moves"]] == [first]
    hold.unlink()
