"""The healer's decisions, on the real SQLite store with a clock of the test's own: which service
is restarted when, with its dependents, how the waits grow, when it gives up, and which projects it
never touches. No Docker, no playbook: the heal operations are ended through the store as a job
would end them. The real restart on a real engine: test_healing_e2e.py."""

from __future__ import annotations

import itertools

import pytest
import yaml
from supamanager_daemon import models
from supamanager_daemon.errors import Conflict
from supamanager_daemon.fleet.healing import (
    Healer,
    Policy,
    Record,
    choose_heal,
    dependencies,
    failing_services,
    heal_order,
    public_state,
    read_compose,
    restart_set,
)
from supamanager_daemon.fleet.status import ContainerView
from supamanager_daemon.settings import Settings
from supamanager_daemon.store import Store

REF = "abcdefghijklmnopqrst"
COMPOSE = {
    "services": {
        "vector": {},
        "db": {"depends_on": {"vector": {"condition": "service_healthy"}}},
        "rest": {"depends_on": {"db": {"condition": "service_healthy"}}},
        "supavisor": {"depends_on": {"db": {"condition": "service_healthy", "restart": True}}},
        "kong": {"depends_on": ["rest"]},
        "imgproxy": {},
    }
}
POLICY = Policy(delay=10, backoff=5, backoff_max=40, attempts=3, timeout=30)


def c(service: str, state: str = "running", health: str | None = "healthy") -> ContainerView:
    return ContainerView(ref=REF, service=service, state=state, health=health)


def view(**broken: tuple[str, str | None]) -> list[ContainerView]:
    return [c(s, *broken[s]) if s in broken else c(s) for s in COMPOSE["services"]]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def project(store):
    """A project whose create succeeded, then seen unhealthy by a poll."""
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(op["id"])
    await store.finish_operation(op["id"], ok=True)
    await store.apply_observed({REF: (models.ACTIVE_UNHEALTHY, None)}, snapshot_at=float("inf"))
    return await store.get_project(REF)


@pytest.fixture
def healer(store, tmp_path):
    (tmp_path / "projects" / REF).mkdir(parents=True)
    (tmp_path / "projects" / REF / "docker-compose.yml").write_text(yaml.safe_dump(COMPOSE))
    clock = Clock()
    h = Healer(store, tmp_path, POLICY, clock=clock, monotonic=clock)
    h.queued = []
    h.enqueue = h.queued.append
    h.gave_up = []
    h.on_give_up = lambda ref, service: h.gave_up.append((ref, service))
    h.clock_ = clock
    return h


async def poll(healer, store, containers, status=models.ACTIVE_UNHEALTHY):
    projects = await store.list_projects()
    return await healer.observe(projects, {REF: containers}, {REF: status})


async def end(store, op, ok: bool, error: str | None = None):
    await store.mark_running(op["id"])
    await store.finish_operation(op["id"], ok=ok, error=error)
    await store.apply_observed({REF: (models.ACTIVE_UNHEALTHY, None)}, snapshot_at=float("inf"))


# -- pure parts -------------------------------------------------------------------------------------
def test_failing_services_are_unhealthy_exited_or_dead_not_starting_or_restarting():
    containers = [
        c("a", health="unhealthy"),
        c("b", state="exited", health=None),
        c("c", state="dead", health=None),
        c("d", health="starting"),
        c("e", state="restarting", health=None),
        c("f", health=None),
        c("g"),
    ]
    assert failing_services(containers) == {"a", "b", "c"}


def test_restart_set_follows_restart_true_only_and_transitively():
    graph = dependencies(COMPOSE)
    assert graph["kong"] == {"rest": {}}  # the list form
    assert restart_set(graph, "db") == ["db", "supavisor"]  # rest depends on db without restart: true
    assert restart_set(graph, "imgproxy") == ["imgproxy"]
    chain = {"a": {}, "b": {"a": {"restart": True}}, "c": {"b": {"restart": True}}, "d": {"c": {}}}
    assert restart_set(chain, "a") == ["a", "b", "c"]


def test_heal_order_puts_a_failing_dependency_first():
    graph = dependencies(COMPOSE)
    assert heal_order({"rest", "db", "imgproxy"}, graph) == ["db", "imgproxy", "rest"]


def test_backoff_doubles_up_to_the_cap():
    assert [POLICY.wait_after(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 40]


def test_policy_from_settings():
    policy = Policy.from_settings(Settings(heal_delay=1, heal_backoff=2, heal_backoff_max=3, heal_attempts=4))
    assert (policy.delay, policy.backoff, policy.backoff_max, policy.attempts) == (1, 2, 3, 4)


def test_read_compose_of_a_missing_or_broken_file_is_empty(tmp_path):
    assert read_compose(tmp_path, REF) == {}
    (tmp_path / "projects" / REF).mkdir(parents=True)
    (tmp_path / "projects" / REF / "docker-compose.yml").write_text("services: [unclosed")
    assert read_compose(tmp_path, REF) == {}
    (tmp_path / "projects" / REF / "docker-compose.yml").write_text("- a list")
    assert read_compose(tmp_path, REF) == {}


def test_choose_heal_only_for_an_unhealthy_project_meant_to_run():
    assert choose_heal({"ref": REF, "status": models.ACTIVE_UNHEALTHY, "desired_state": "active"}) == "heal"
    for status, desired in ((models.ACTIVE_HEALTHY, "active"), (models.ACTIVE_UNHEALTHY, "paused")):
        with pytest.raises(Conflict):
            choose_heal({"ref": REF, "status": status, "desired_state": desired})


def test_record_ignores_unknown_fields():
    assert Record.from_json({"attempts": 2, "future_field": 1}) == Record(attempts=2)


# -- the healer on the store ------------------------------------------------------------------------
async def test_waits_for_the_delay_then_heals_one_service_with_its_dependents(healer, store, project):
    broken = view(db=("running", "unhealthy"), rest=("running", "unhealthy"))
    assert await poll(healer, store, broken) == []  # just seen failing
    healer.clock_.now += 9
    assert await poll(healer, store, broken) == []
    healer.clock_.now += 1
    [op] = await poll(healer, store, broken)
    assert healer.queued == [op]
    assert (op["kind"], op["params"]) == ("heal", {"service": "db", "services": ["db", "supavisor"], "attempt": 1})
    assert (await store.get_project(REF))["status"] == models.ACTIVE_UNHEALTHY
    # One operation at a time: rest waits while the heal of db runs.
    assert await poll(healer, store, broken) == []
    state = (await store.healing_states())[REF]
    assert state["services"]["db"]["last_op"] == op["id"]
    assert state["services"]["db"]["operations"] == [op["id"]]
    assert "rest" not in state["services"]

    # After the heal, rest gets a delay of its own: the restart of db may have been its trouble.
    await end(store, op, ok=True)
    still = view(rest=("running", "unhealthy"))
    assert await poll(healer, store, still) == []
    healer.clock_.now += POLICY.delay
    [op2] = await poll(healer, store, still)
    assert op2["params"]["service"] == "rest"


async def test_failed_heals_back_off_then_give_up(healer, store, project):
    broken = view(imgproxy=("running", "unhealthy"))
    await poll(healer, store, broken)
    healer.clock_.now += POLICY.delay
    starts = []
    for attempt in range(1, POLICY.attempts + 1):
        while not (ops := await poll(healer, store, broken)):
            healer.clock_.now += 1
            assert healer.clock_.now < 1_000_000 + 1000, "no heal started"
        [op] = ops
        assert op["params"]["attempt"] == attempt
        starts.append(healer.clock_.now)
        await end(store, op, ok=False, error="imgproxy not healthy within 30s")
    # the waits between heals: 5, 10 (the first heal came after the delay)
    assert [b - a for a, b in itertools.pairwise(starts)] == [5, 10]
    # the third failure gives up: no further heal, however long it waits
    await poll(healer, store, broken)
    healer.clock_.now += 10_000
    assert await poll(healer, store, broken) == []
    record = (await store.healing_states())[REF]["services"]["imgproxy"]
    assert record["gave_up"] is True
    assert record["reason"] == "gave up after 3 restart(s): imgproxy not healthy within 30s"
    assert healer.gave_up == [(REF, "imgproxy")]
    assert (await store.get_project(REF))["status"] == models.ACTIVE_UNHEALTHY


async def test_the_count_starts_again_after_the_service_stayed_healthy(healer, store, project):
    broken = view(imgproxy=("exited", None))
    await poll(healer, store, broken)
    healer.clock_.now += POLICY.delay
    [op] = await poll(healer, store, broken)
    await end(store, op, ok=True)
    await poll(healer, store, view(), status=models.ACTIVE_HEALTHY)
    assert (await store.healing_states())[REF]["services"]["imgproxy"]["attempts"] == 1
    healer.clock_.now += POLICY.backoff_max
    await poll(healer, store, view(), status=models.ACTIVE_HEALTHY)
    assert (await store.healing_states())[REF]["services"] == {}


async def test_never_heals_a_disabled_paused_busy_or_healthy_project(healer, store, project):
    broken = view(imgproxy=("running", "unhealthy"))
    await poll(healer, store, broken)
    healer.clock_.now += 1000

    await store.set_healing_enabled(REF, False)
    assert await poll(healer, store, broken) == []
    await store.set_healing_enabled(REF, True)

    # the poll says the project is something else than ACTIVE_UNHEALTHY (INACTIVE: paused)
    for status in (models.INACTIVE, models.COMING_UP, models.ACTIVE_HEALTHY):
        assert await poll(healer, store, broken, status=status) == []

    # an operation in flight (a person's restart): not healed, and the failure clock restarts
    _, restart = await store.start_operation(REF, lambda p: "restart")
    assert await poll(healer, store, broken) == []
    await end(store, restart, ok=False, error="boom")
    assert await poll(healer, store, broken) == []  # seen failing again: the delay counts anew
    healer.clock_.now += POLICY.delay
    assert len(await poll(healer, store, broken)) == 1

    assert healer.queued and all(op["kind"] == "heal" for op in healer.queued)


async def test_a_paused_project_is_refused_inside_the_transaction(healer, store, project):
    """The poll's view is a moment old: the store checks the project's own state again."""
    broken = view(imgproxy=("running", "unhealthy"))
    await poll(healer, store, broken)
    healer.clock_.now += POLICY.delay
    _, pause = await store.start_operation(REF, lambda p: "pause")
    await store.mark_running(pause["id"])
    await store.finish_operation(pause["id"], ok=True)
    # A poll snapshot taken before the pause ended still says ACTIVE_UNHEALTHY.
    assert await poll(healer, store, broken) == []
    assert healer.queued == []


async def test_disabling_refuses_inside_the_transaction_and_enabling_forgets(healer, store, project):
    broken = view(imgproxy=("running", "unhealthy"))
    await poll(healer, store, broken)
    healer.clock_.now += POLICY.delay
    with pytest.raises(Conflict) as err:
        await store.set_healing_enabled(REF, False)
        await store.start_operation(REF, choose_heal, {}, healing=lambda op: {})
    assert err.value.code == "healing_disabled"
    await store.set_healing_services(REF, {"imgproxy": Record(attempts=3, gave_up=True).to_json()})
    state = await store.set_healing_enabled(REF, True)
    assert state == {"enabled": True, "services": {}}
    assert (await store.get_healing(REF))["enabled"] is True


async def test_services_the_rendered_file_does_not_know_are_not_restarted(healer, store, project):
    broken = [*view(), c("intruder", health="unhealthy"), c("Bad Name", health="unhealthy")]
    await poll(healer, store, broken)
    healer.clock_.now += POLICY.delay
    assert await poll(healer, store, broken) == []


async def test_heal_attempts_zero_turns_healing_off(healer, store, project):
    healer.policy = Policy(delay=0, backoff=1, backoff_max=1, attempts=0, timeout=1)
    broken = view(imgproxy=("running", "unhealthy"))
    assert await poll(healer, store, broken) == []
    assert await poll(healer, store, broken) == []


async def test_a_deleted_project_leaves_no_healing_state(healer, store, project):
    await store.set_healing_enabled(REF, False)
    _, delete = await store.start_operation(REF, lambda p: "delete")
    await store.mark_running(delete["id"])
    await store.finish_operation(delete["id"], ok=True)
    assert await store.healing_states() == {}
    await store.set_healing_services(REF, {"x": {}})  # a late write for a project gone: ignored
    assert await store.healing_states() == {}


def test_public_state_shows_times_as_iso_and_the_next_attempt_only_while_backing_off():
    waiting = Record(attempts=2, failures=1, next_at=1_800_000_000.0, operations=["a", "b"], last_op=None)
    given_up = Record(attempts=3, failures=3, next_at=1_800_000_000.0, gave_up=True, reason="gave up")
    state = {"enabled": False, "services": {"db": waiting.to_json(), "auth": given_up.to_json()}}
    shown = public_state(state)
    assert shown["enabled"] is False
    assert list(shown["services"]) == ["auth", "db"]
    assert shown["services"]["db"] == {
        "attempts": 2,
        "failures": 1,
        "gave_up": False,
        "reason": None,
        "next_attempt_at": "2027-01-15T08:00:00Z",
        "in_flight": None,
        "operations": ["a", "b"],
    }
    assert shown["services"]["auth"]["next_attempt_at"] is None
