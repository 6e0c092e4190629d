"""Healing end to end: the real daemon, the real playbooks, the real engine, stand-in images.

One project (without the logging pair, which healing does not need) serves every test of this
module, in order, each leaving it where the next one starts: the "do not heal" mark holds a broken
imgproxy back until it is lifted, the heal that follows restarts it alone, the database's heal
brings the pooler after it, a service broken for good backs off and is given up, and the pause that
ends the module heals nothing. Its imgproxy and db healthchecks are the
stand-ins' own with a switch in front (`supabase_healthcheck_overrides`): a file in /dev/shm (a
tmpfs that a restart empties) breaks the check until the next restart, a file in /tmp (kept across
restarts) breaks it for good. Short heal delays come from the daemon's settings.

On a loaded host other services' checks fail now and then too (a check is a process started in the
container), and the daemon heals them as it should: so "restarted alone" is asserted as "the
containers that restarted are exactly those some heal named", the broken one's heal naming it alone.
"""

from __future__ import annotations

import datetime
import itertools
import json
import pathlib
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REPO, TOKEN, python_env
from daemonproc import Daemon
from test_daemon_e2e import COLLECTION, PLAYBOOK_VARS, docker_lines, finished, labelled, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SWITCH = "test ! -e /dev/shm/unhealthy && test ! -e /tmp/unhealthy && "
# Checks every 2 s; 5 failures in a row make the container unhealthy (a loaded host fails some);
# the database's first boot (initdb) gets a start period, as failures in it do not count.
# imgproxy's is a TCP connect in bash rather than `imgproxy health`: a Python start-up per check
# took up to 40 s on a host loaded by parallel suites.
CHECK = {"interval": "2s", "timeout": "20s", "retries": 5}
OVERRIDES = {
    "imgproxy": {"test": ["CMD", "bash", "-c", SWITCH + "exec 3<>/dev/tcp/127.0.0.1/5001"], **CHECK},
    "db": {"test": ["CMD-SHELL", SWITCH + "pg_isready -U postgres -h localhost"], **CHECK, "start_period": "120s"},
}
CLI = pathlib.Path(sys.executable).parent / "supamanager"
# A backoff above the poll interval and the load's latency (a few seconds here), so the doubling shows.
# heal_timeout: the longest a heal waits; one of a service that keeps failing ends on Docker's
# verdict instead (5 failed checks, about 10 s).
HEAL = {"heal_delay": 4, "heal_backoff": 6, "heal_backoff_max": 30, "heal_attempts": 3, "heal_timeout": 60}


@pytest.fixture(scope="module")
def healed(tmp_path_factory):
    """A daemon with short heal delays and one ACTIVE_HEALTHY project: (daemon, ref)."""
    tmp = tmp_path_factory.mktemp("healing")
    root = tmp / "root"
    root.mkdir()
    playbook_vars = {
        **PLAYBOOK_VARS,
        "supabase_logs_enabled": False,
        "supabase_healthcheck_overrides": OVERRIDES,
        # the other services' checks, less often: each is a process in a container, on a busy host
        "supabase_healthcheck_interval": "10s",
    }
    d = Daemon(tmp, COLLECTION, root, **HEAL, playbook_vars=playbook_vars)
    d.start()
    ref = None
    try:
        status, project, headers = d.request("POST", "/v1/projects", {"name": "healed"})
        assert status == 201, project
        ref = project["ref"]
        op = d.wait(headers["X-Operation-Id"], finished, timeout=900)
        # A host loaded by parallel suites can time a healthcheck out during the create (its first
        # minute is CPU-heavy): the create rolls back; a restore (recreate) tries again. Not what
        # this module tests.
        for _ in range(2):
            if op["state"] == "succeeded":
                break
            status, body, headers = d.request("POST", f"/v1/projects/{ref}/restore")
            assert status == 200, body
            op = d.wait(headers["X-Operation-Id"], finished, timeout=900)
        assert op["state"] == "succeeded", op["error"]
        wait_status(d, ref, "ACTIVE_HEALTHY", timeout=300)
        yield d, ref
    finally:
        d.stop()
        if ref and (labelled("container", ref) or labelled("volume", ref)):
            subprocess.run(
                [
                    str(REPO / ".venv" / "bin" / "ansible-playbook"),
                    str(COLLECTION / "playbooks" / "delete.yml"),
                    "-e", json.dumps({"project_ref": ref, "supamanager_root": str(root), "delete_volumes": True}),
                ],
                cwd=COLLECTION, env={**python_env(), "ANSIBLE_CONFIG": str(COLLECTION / "ansible.cfg")},
                capture_output=True, timeout=600,
            )  # fmt: skip


def containers(ref: str) -> dict[str, tuple[str, str]]:
    """service -> (container id, when it last started)."""
    ids = docker_lines("ps", "-aq", "--no-trunc", "--filter", f"label=supamanager.project={ref}")
    lines = docker_lines(
        "inspect", "-f", '{{index .Config.Labels "supamanager.service"}} {{.Id}} {{.State.StartedAt}}', *ids
    )
    return {service: (cid, started) for service, cid, started in (line.split() for line in lines)}


def break_service(ref: str, service: str, where: str = "/dev/shm") -> None:
    subprocess.run(
        ["docker", "exec", f"supamanager-{ref}-{service}", "touch", f"{where}/unhealthy"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def mend_service(ref: str, service: str) -> None:
    subprocess.run(
        ["docker", "exec", f"supamanager-{ref}-{service}", "rm", "-f", "/tmp/unhealthy", "/dev/shm/unhealthy"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def heals(d: Daemon, ref: str) -> dict[str, dict]:
    """The project's heal operations, oldest first: id -> params (service, services, attempt)."""
    db = sqlite3.connect(d.data / "supamanager.sqlite3")
    try:
        rows = db.execute(
            "SELECT id, params FROM operations WHERE ref = ? AND kind = 'heal' ORDER BY created_at", (ref,)
        ).fetchall()
    finally:
        db.close()
    return {r[0]: json.loads(r[1]) for r in rows}


def heal_ids(d: Daemon, ref: str, service: str | None = None) -> list[str]:
    return [i for i, params in heals(d, ref).items() if service is None or params["service"] == service]


def restarted_by_heals(d: Daemon, ref: str, before: list[str]) -> set[str]:
    return {s for i, params in heals(d, ref).items() if i not in before for s in params["services"]}


def wait_heals(d: Daemon, ref: str, service: str, before: list[str], count: int, timeout: float = 300) -> list[dict]:
    """Wait until `count` heals of `service` beyond `before` have ended; their operations, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        new = [i for i in heal_ids(d, ref, service) if i not in before]
        ops = [d.operation(i) for i in new]
        if len(ops) >= count and all(finished(op) for op in ops[:count]):
            return ops[:count]
        assert time.monotonic() < deadline, f"{len(ops)} heal(s) after {timeout}s: {ops}"
        time.sleep(0.5)


def request_when_idle(d: Daemon, method: str, path: str):
    """A request, sent again while a heal holds the project (409: one operation at a time)."""
    deadline = time.monotonic() + 600
    while True:
        status, body, headers = d.request(method, path)
        if status != 409 or time.monotonic() > deadline:
            return status, body, headers
        d.wait(body["details"]["operation_id"], finished, timeout=600)


def scrape(d: Daemon) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=30) as resp:
        return resp.read().decode()


def at(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in python_env().items() if not k.startswith("SUPAMANAGER_")}
    env.update(SUPAMANAGER_URL=f"http://127.0.0.1:{d.port}", SUPAMANAGER_API_TOKEN=TOKEN)
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def carried() -> dict:
    """What one test leaves for the next (they run in file order on the one project)."""
    return {}


def test_the_do_not_heal_mark_is_kept_and_shown(healed, carried):
    """Leaves imgproxy broken with healing on again: the next test sees the heal that follows."""
    d, ref = healed
    carried["before"] = heal_ids(d, ref), containers(ref)
    off = cli(d, "projects", "healing", ref, "--off", "--json")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["enabled"] is False
    break_service(ref, "imgproxy")
    wait_status(d, ref, "ACTIVE_UNHEALTHY", timeout=300)
    deadline = time.monotonic() + 3 * HEAL["heal_delay"] + 3
    while time.monotonic() < deadline:
        assert heal_ids(d, ref) == carried["before"][0], "a project marked 'do not heal' was healed"
        time.sleep(1)
    shown = cli(d, "projects", "healing", ref)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "healing: off"

    on = cli(d, "projects", "healing", ref, "--on")
    assert on.returncode == 0, on.stderr
    status, state, _ = d.request("GET", f"/v1/projects/{ref}/healing")
    assert status == 200
    assert state["enabled"] is True


def test_a_failing_service_is_restarted_alone_and_the_project_heals(healed, carried):
    d, ref = healed
    before_heals, before = carried["before"]
    [op] = wait_heals(d, ref, "imgproxy", before_heals, 1)
    assert op["state"] == "succeeded", op["error"]
    assert (op["kind"], op["ref"]) == ("heal", ref)
    assert op["params"] == {"service": "imgproxy", "services": ["imgproxy"], "attempt": 1}
    assert [s["type"] for s in op["steps"]][:2] == ["queued", "started"]
    assert any(s["type"] == "step" for s in op["steps"])
    wait_status(d, ref, "ACTIVE_HEALTHY", timeout=300)

    after = containers(ref)
    assert {s: cid for s, (cid, _) in after.items()} == {s: cid for s, (cid, _) in before.items()}
    restarted = {s for s in after if after[s][1] != before[s][1]}
    assert "imgproxy" in restarted
    assert restarted == restarted_by_heals(d, ref, before_heals), "a container restarted that no heal named"


def test_the_pooler_is_restarted_after_the_database(healed):
    d, ref = healed
    before_heals, before = heal_ids(d, ref), containers(ref)
    break_service(ref, "db")
    [op] = wait_heals(d, ref, "db", before_heals, 1)
    assert op["state"] == "succeeded", op["error"]
    assert op["params"]["services"] == ["db", "supavisor"]
    wait_status(d, ref, "ACTIVE_HEALTHY", timeout=300)
    after = containers(ref)
    restarted = {s for s in after if after[s][1] != before[s][1]}
    assert {"db", "supavisor"} <= restarted
    assert restarted == restarted_by_heals(d, ref, before_heals), "a container restarted that no heal named"
    assert after["supavisor"][1] > after["db"][1]  # after it, not before


def test_a_service_that_keeps_failing_backs_off_then_is_given_up(healed):
    d, ref = healed
    before_heals = heal_ids(d, ref)
    break_service(ref, "imgproxy", where="/tmp")
    ops = wait_heals(d, ref, "imgproxy", before_heals, HEAL["heal_attempts"], timeout=900)
    assert [op["params"]["attempt"] for op in ops] == [1, 2, 3]
    assert [op["state"] for op in ops] == ["failed"] * 3
    assert [op["steps"][0]["type"] for op in ops] == ["queued"] * 3
    verdict = "given up by Docker (unhealthy, or exited and not restarting), not waiting out the 60s: imgproxy: "
    assert all(verdict in (op["error"] or "") for op in ops), [op["error"] for op in ops]
    # the wait after the n-th failure is backoff * 2**(n-1): at least 6 s, then at least 12 s
    gaps = [at(b["created_at"]) - at(a["finished_at"]) for a, b in itertools.pairwise(ops)]
    assert gaps[0] >= HEAL["heal_backoff"], gaps
    assert gaps[1] >= 2 * HEAL["heal_backoff"], gaps

    # given up: the record says so with the reason, the project stays ACTIVE_UNHEALTHY, no fourth heal
    deadline = time.monotonic() + 120
    while not (record := d.request("GET", f"/v1/projects/{ref}/healing")[1]["services"]["imgproxy"])["gave_up"]:
        assert time.monotonic() < deadline, record
        time.sleep(0.5)
    assert record["operations"][-3:] == [op["id"] for op in ops]
    assert record["reason"].startswith("gave up after 3 restart(s): "), record
    assert record["next_attempt_at"] is None
    deadline = time.monotonic() + 2 * HEAL["heal_backoff"]  # past the next wait the backoff would give
    while time.monotonic() < deadline:
        assert heal_ids(d, ref, "imgproxy")[-3:] == [op["id"] for op in ops]
        time.sleep(1)
    _, project, _ = d.request("GET", f"/v1/projects/{ref}")
    assert project["status"] == "ACTIVE_UNHEALTHY"
    with open(d.log) as log:
        assert "imgproxy gave up after 3 restart(s)" in log.read()
    assert "supamanager_heal_give_ups_total 1" in scrape(d)


def test_paused_and_busy_projects_are_never_healed(healed):
    """Pausing stops every container (all 'exited') while the operation runs, then INACTIVE stays."""
    d, ref = healed
    before_heals = heal_ids(d, ref)
    status, body, headers = request_when_idle(d, "POST", f"/v1/projects/{ref}/pause")
    assert status == 200, body
    op = d.wait(headers["X-Operation-Id"], finished, timeout=600)
    assert op["state"] == "succeeded", op["error"]
    wait_status(d, ref, "INACTIVE", timeout=300)
    assert set(s for s in docker_lines("ps", "-a", "--filter", f"label=supamanager.project={ref}",
                                        "--format", "{{.State}}")) == {"exited"}  # fmt: skip
    time.sleep(3 * HEAL["heal_delay"] + 2)  # several heal delays of exited services: none may start
    assert heal_ids(d, ref) == before_heals
    # a person's operation starts the healer afresh: the given-up record is gone
    assert "imgproxy" not in d.request("GET", f"/v1/projects/{ref}/healing")[1]["services"]
