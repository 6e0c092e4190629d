"""Each pytest-xdist worker on its own Docker engine (a pytest plugin: `-p tests.xdist_engines`).

The suite spends most of its time waiting on containers, not on the CPU, so scripts/test runs it on
two workers. Two workers on one engine would see each other's projects: a daemon's orphan sweep, a
test that counts a host's networks or volumes. Each worker therefore gets its own engine, the
way two SupaManager hosts would: SUPAMANAGER_TEST_ENGINES lists their DOCKER_HOST URLs, one per
worker (scripts/test starts them and loads the stand-in images in each). Without the variable, or
without xdist, nothing changes: the tests use DOCKER_HOST as they find it.
"""

import os


def engine_for(worker: str, engines: list[str]) -> str | None:
    """The DOCKER_HOST of worker `gwN`: the Nth engine, round the list if there are fewer."""
    if not engines or not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    return engines[int(worker[2:]) % len(engines)]


def pytest_configure(config):
    # Set before any test module or fixture reads it: the daemon, ansible-playbook and the docker
    # CLI the tests start all inherit it.
    engines = os.environ.get("SUPAMANAGER_TEST_ENGINES", "").split()
    engine = engine_for(os.environ.get("PYTEST_XDIST_WORKER", ""), engines)
    if engine:
        os.environ["DOCKER_HOST"] = engine


def port_blocks(start: int, end: int, size: int) -> range:
    """This worker's blocks of `size` ports in [start, end): the engines share the host's ports, and a
    project's ports are free while it is stopped (a restore stops it), so two workers must never
    choose from the same blocks. The whole range without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return range(start, end - size + 1, size)[index::count]
