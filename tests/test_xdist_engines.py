"""Which Docker engine each pytest-xdist worker gets (tests/xdist_engines.py)."""

from tests.xdist_engines import engine_for, port_blocks

ENGINES = ["unix:///var/run/docker.sock", "unix:///run/docker-2.sock"]


def test_each_worker_gets_its_own_engine_in_order():
    assert [engine_for(w, ENGINES) for w in ("gw0", "gw1")] == ENGINES


def test_more_workers_than_engines_go_round_the_list():
    assert engine_for("gw2", ENGINES) == ENGINES[0]


def test_no_worker_or_no_engines_leave_docker_host_alone():
    assert engine_for("", ENGINES) is None
    assert engine_for("master", ENGINES) is None
    assert engine_for("gw0", []) is None


def test_two_workers_choose_ports_from_disjoint_blocks(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    chosen = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        chosen[worker] = list(port_blocks(28100, 29000, 100))
    assert chosen["gw0"] == [28100, 28300, 28500, 28700, 28900]
    assert chosen["gw1"] == [28200, 28400, 28600, 28800]


def test_without_xdist_every_block_is_there(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert list(port_blocks(30000, 30600, 200)) == [30000, 30200, 30400]
