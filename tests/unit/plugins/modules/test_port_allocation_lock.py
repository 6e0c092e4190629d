"""The port registry's lock under contention: many allocations for different projects at once.

Every allocation reads the registry, plans and writes it back. A barrier in the read makes all of
them read at the same moment unless the lock serializes them, so without the lock they all plan
against the same registry and hand out the same ports: the test fails on every run, not by chance.
(The integration test test_parallel_module_processes_never_share_a_port races real module runs.)
"""

import contextlib
import json
import threading
import types

from ansible_collections.supamanager.supabase.plugins.modules import port_allocation

PROJECTS = 16


def allocator(registry, project, start):
    module = types.SimpleNamespace(
        params={
            "project": project,
            "state": "present",
            "names": ["kong_http", "kong_https", "postgres", "pooler_transaction"],
            "range_start": start,
            "range_end": start + 4 * PROJECTS * 2,
            "registry": str(registry),
            "bind_address": "127.0.0.1",
        },
        check_mode=False,
        _diff=False,
    )
    return port_allocation.PortAllocator(module)


def test_concurrent_allocations_never_share_a_port(tmp_path, monkeypatch):
    registry = tmp_path / "state" / "ports.json"
    barrier = threading.Barrier(PROJECTS)
    real_read = port_allocation.read_registry

    def read_together(path):
        # Unlocked, all PROJECTS readers meet here and read the same registry. Locked, the first
        # waits out the timeout, the barrier breaks, and every later reader passes at once.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2)
        return real_read(path)

    monkeypatch.setattr(port_allocation, "read_registry", read_together)
    start = 40000
    results, errors = {}, []

    def allocate(index):
        project = f"lock-{index:02d}"
        try:
            results[project] = allocator(registry, project, start).run()["ports"]
        except Exception as exc:  # a failure in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=allocate, args=(i,)) for i in range(PROJECTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == PROJECTS
    ports = [port for project_ports in results.values() for port in project_ports.values()]
    assert len(set(ports)) == len(ports) == 4 * PROJECTS, sorted(ports)
    # And the registry holds every project: no write lost another's.
    assert json.loads(registry.read_text())["projects"] == results
