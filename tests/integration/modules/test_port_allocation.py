"""supamanager.supabase.port_allocation through ansible-playbook, with real sockets and real parallel processes."""

import concurrent.futures
import json
import os
import random
import socket
import stat
import subprocess
import sys

import pytest

from tests.conftest import REPO, run

MODULE = "supamanager.supabase.port_allocation"
NAMES = ["kong_http", "kong_https", "postgres", "pooler_transaction"]


def free_block(size):
    """A start port whose block of `size` ports is free right now, below the kernel's ephemeral range and the
    ranges the Docker tests give their projects (28100 and up)."""
    for _ in range(200):
        start = random.randrange(20000, 28000 - size)
        if all(_bindable(port) for port in range(start, start + size)):
            return start
    raise RuntimeError("no free block of ports found")


def _bindable(port):
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - bound and closed at once, to see if the port is free
        except OSError:
            return False
    return True


def listen(port, address="127.0.0.1"):
    sock = socket.socket()
    sock.bind((address, port))
    sock.listen()
    return sock


@pytest.fixture
def registry(tmp_path):
    return tmp_path / "state" / "ports.json"


@pytest.fixture
def block():
    start = free_block(40)
    return {"range_start": start, "range_end": start + 39}


def read(registry):
    return json.loads(registry.read_text())


def test_check_mode_writes_nothing_then_apply_is_idempotent(playbook, registry, block):
    args = {"project": "abcdefghijklmnopqrst", "registry": str(registry), **block}

    checked = playbook(MODULE, args, check=True, diff=True)
    assert checked["changed"] is True
    assert sorted(checked["ports"]) == sorted(NAMES)
    assert not registry.parent.exists()

    applied = playbook(MODULE, args, diff=True)
    assert applied["changed"] is True
    ports = applied["ports"]
    assert len(set(ports.values())) == 4
    assert all(block["range_start"] <= port <= block["range_end"] for port in ports.values())
    assert applied["allocated"] == ports
    assert applied["diff"]["before"]["ports"] == {}
    assert applied["diff"]["after"]["ports"] == ports
    assert read(registry) == {"version": 1, "projects": {"abcdefghijklmnopqrst": ports}}
    assert stat.S_IMODE(registry.stat().st_mode) == 0o644
    assert stat.S_IMODE(registry.parent.stat().st_mode) == 0o755

    rechecked = playbook(MODULE, args, check=True, diff=True)
    assert rechecked["changed"] is False
    assert rechecked["ports"] == ports
    reapplied = playbook(MODULE, args, diff=True)
    assert reapplied["changed"] is False
    assert reapplied["ports"] == ports
    assert reapplied["allocated"] == {}
    assert reapplied["diff"]["before"] == reapplied["diff"]["after"]


def test_a_port_with_a_foreign_listener_is_skipped(playbook, registry, block):
    start = block["range_start"]
    listener = listen(start)
    try:
        result = playbook(MODULE, {"project": "listener-test", "registry": str(registry), **block})
    finally:
        listener.close()
    assert result["changed"] is True
    assert start not in result["ports"].values()
    assert len(set(result["ports"].values())) == 4


def test_own_ports_are_kept_while_in_use_and_adding_a_name_allocates_only_it(playbook, registry, block):
    args = {"project": "keeper", "registry": str(registry), **block}
    ports = playbook(MODULE, args)["ports"]
    # The project's own containers listen on its ports: that must not move them.
    listeners = [listen(port) for port in ports.values()]
    try:
        again = playbook(MODULE, args)
        more = playbook(MODULE, dict(args, names=[*NAMES, "studio"]))
    finally:
        for sock in listeners:
            sock.close()
    assert again["changed"] is False
    assert again["ports"] == ports
    assert more["changed"] is True
    assert list(more["allocated"]) == ["studio"]
    assert more["ports"] == {**ports, "studio": more["allocated"]["studio"]}
    assert more["allocated"]["studio"] not in ports.values()


def test_projects_never_share_and_absent_releases(playbook, registry, block):
    common = {"registry": str(registry), **block}
    first = playbook(MODULE, {"project": "first", **common})["ports"]
    second = playbook(MODULE, {"project": "second", **common})["ports"]
    assert not set(first.values()) & set(second.values())

    released = playbook(MODULE, {"project": "first", "state": "absent", **common}, diff=True)
    assert released["changed"] is True
    assert released["released"] == first
    assert released["ports"] == {}
    assert released["diff"]["after"]["ports"] == {}
    assert read(registry)["projects"] == {"second": second}

    again = playbook(MODULE, {"project": "first", "state": "absent", **common})
    assert again["changed"] is False
    assert again["released"] == {}
    assert read(registry)["projects"] == {"second": second}


def test_absent_on_a_missing_registry_creates_nothing(playbook, registry):
    result = playbook(MODULE, {"project": "ghost", "state": "absent", "registry": str(registry)})
    assert result["changed"] is False
    assert not registry.parent.exists()


def test_exhausted_range_fails_naming_it_and_changes_nothing(playbook, registry, block):
    start = block["range_start"]
    small = {"registry": str(registry), "range_start": start, "range_end": start + 5}
    holder = playbook(MODULE, {"project": "holder", **small})["ports"]
    before = registry.read_bytes()

    result = playbook(MODULE, {"project": "latecomer", **small})
    assert result["failed"] is True
    assert f"port range {start}-{start + 5} is exhausted" in result["msg"]
    assert registry.read_bytes() == before
    assert read(registry)["projects"] == {"holder": holder}

    checked = playbook(MODULE, {"project": "latecomer", **small}, check=True)
    assert checked["failed"] is True
    assert "exhausted" in checked["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"project": "Bad_Ref"}, "'Bad_Ref' is not a valid project ref"),
        ({"project": "ab"}, "'ab' is not a valid project ref"),
        ({"project": "okay", "names": ["kong_http", "kong_http"]}, "listed more than once"),
        ({"project": "okay", "range_start": 60000, "range_end": 50000}, "range_start=60000 is greater than range_end"),
        ({"project": "okay", "range_end": 70000}, "range_end=70000 is not a TCP port"),
        ({"project": "okay", "bind_address": "192.0.2.1"}, "bind_address 192.0.2.1 cannot be used"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(playbook, registry, args, message):
    result = playbook(MODULE, {"registry": str(registry), **args})
    assert result["failed"] is True
    assert message in result["msg"]
    assert not registry.parent.exists()


@pytest.mark.slow
def test_parallel_playbooks_never_share_a_port(playbook, registry, venv_env):
    start = free_block(100)
    common = {"registry": str(registry), "range_start": start, "range_end": start + 99}
    projects = [f"parallel-{i}" for i in range(8)]
    commands = [playbook.command(MODULE, {"project": project, **common}) for project in projects]
    procs = [
        subprocess.Popen(cmd, cwd=REPO, env=venv_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, _ in commands
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    results = {
        project: json.loads(result_file.read_text())
        for project, (_, result_file) in zip(projects, commands, strict=True)
    }
    all_ports = [port for result in results.values() for port in result["ports"].values()]
    assert len(all_ports) == 32
    assert len(set(all_ports)) == 32
    assert read(registry)["projects"] == {project: result["ports"] for project, result in results.items()}


@pytest.mark.slow
def test_parallel_module_processes_never_share_a_port(tmp_path, registry):
    """48 module runs for 24 projects, 8 at a time, straight through the module's main(): more chances to race."""
    start = free_block(250)
    collections = REPO / ".venv" / "collections"
    module_file = collections / "ansible_collections" / "supamanager" / "supabase" / "plugins" / "modules"
    env = dict(os.environ, PYTHONPATH=str(collections))

    def allocate(index):
        args_file = tmp_path / f"args-{index}.json"
        # Every project runs twice, so runs for the same project race too.
        module_args = {"project": f"racer-{index % 24}", "registry": str(registry), "range_start": start}
        module_args["range_end"] = start + 249
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
        proc = run([sys.executable, str(module_file / "port_allocation.py"), str(args_file)], env=env)
        return module_args["project"], json.loads(proc.stdout)["ports"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(allocate, range(48)))
    results = dict(runs)
    assert len(results) == 24
    assert all(ports == results[project] for project, ports in runs)
    all_ports = [port for ports in results.values() for port in ports.values()]
    assert len(all_ports) == 24 * 4
    assert len(set(all_ports)) == len(all_ports)
    assert read(registry)["projects"] == results
