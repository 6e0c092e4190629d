"""The status state machine drawn in daemon/README.md against the transitions the code makes.

The transitions are read from the code, not listed here: every request's kind chooser is asked
about every status a project can rest in, every kind's busy/done/failed statuses come from
models.KINDS, the healer's chooser from healing.py, and what a poll can observe from status.py
applied to container sets. The diagram may group statuses in composite states (an edge to or from
one stands for each status inside); it must hold every transition, and each of its edges must be
needed for one.
"""

from __future__ import annotations

import itertools
import pathlib
import re

import pytest
from supamanager_daemon import models
from supamanager_daemon.api import backups as backup_handlers
from supamanager_daemon.api import billing as billing_handlers
from supamanager_daemon.api import projects as handlers
from supamanager_daemon.errors import DomainError
from supamanager_daemon.fleet import healing
from supamanager_daemon.fleet.status import ContainerView, observed_status

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
START = "[*]"
# The requests a person makes on an existing project, and the kind chooser each runs.
REQUESTS = {
    "pause": handlers._choose_pause,
    "restore": handlers._choose_restore,
    "restart": handlers._choose_restart,
    "delete": lambda _project: "delete",
    "restore_backup": backup_handlers.choose_restore_backup,
    # also the daemon's backup schedule's chooser (operations/backup_schedule.py)
    "backup": backup_handlers.choose_backup,
    "resize": billing_handlers.choose_resize,
    # also a host's drain's (fleet/drain.py, through api/projects.py start_move)
    "move": handlers.choose_move,
}


def observable(current: str) -> set[str]:
    """Every status a poll can store for a project in `current`, over all small container sets."""
    views = [
        ContainerView("r", s, state, health)
        for s in ("db", "kong")
        for state, health in (
            ("running", "healthy"),
            ("running", None),
            ("running", "starting"),
            ("running", "unhealthy"),
            ("exited", None),
            ("restarting", None),
            ("created", None),
        )
    ]
    seen = set()
    for n in range(3):
        for combo in itertools.combinations(views, n):
            if len({c.service for c in combo}) == n:
                seen.add(observed_status(current, list(combo), ()))
                seen.add(observed_status(current, list(combo), ("db", "kong")))
    return seen | {models.UNKNOWN}  # Docker did not answer


def code_transitions() -> set[tuple[str, str, str]]:
    polled = observable(models.ACTIVE_HEALTHY)
    # Where a project rests with no operation in flight: a kind's outcome or a poll's finding.
    resting = {s for k in models.KINDS.values() for s in (k.done, k.failed) if s} | polled
    edges = {(START, models.KINDS["create"].busy, "create")}
    for status in resting:
        project = {"ref": "r" * 20, "status": status, "desired_state": "active"}
        for chooser in (*REQUESTS.values(), healing.choose_heal):
            try:
                kind = models.KINDS[chooser(project)]
            except DomainError:
                continue
            edges.add((status, kind.busy, kind.name))
        for seen in observable(status) - {status}:
            edges.add((status, seen, "poll"))
    for kind in models.KINDS.values():
        edges.add((kind.busy, kind.done or START, f"{kind.name} succeeded"))
        edges.add((kind.busy, kind.failed, f"{kind.name} failed"))
    return edges


_STATE = re.compile(r'state\s+(?:"[^"]*"\s+as\s+)?(\w+)\s*\{')
_EDGE = re.compile(r"(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::\s*(.+))?")


def diagram(text: str) -> tuple[list[tuple[int, str, str, str]], dict[str, set[str]]]:
    """The edges (line number, from, to, label) and composite states (name -> statuses inside)."""
    block = re.search(r"```mermaid\n(stateDiagram-v2\n.*?)```", text, re.S)
    assert block, "daemon/README.md has no mermaid stateDiagram-v2 block"
    edges, members, stack = [], {}, []
    for n, raw in enumerate(block.group(1).splitlines()):
        line = raw.strip()
        if not line or line.startswith("%%") or line == "stateDiagram-v2" or line.startswith("direction"):
            continue
        if m := _STATE.fullmatch(line):
            stack.append(m.group(1))
            members[m.group(1)] = set()
        elif line == "}":
            stack.pop()
        elif m := _EDGE.fullmatch(line):
            edges.append((n, m.group(1), m.group(2), (m.group(3) or "").strip()))
        elif re.fullmatch(r"\w+", line) and stack:
            for outer in stack:
                members[outer].add(line)
        else:
            raise AssertionError(f"cannot read diagram line {line!r}")
    return edges, members


def drawn(edges, members) -> set[tuple[str, str, str]]:
    def expand(name: str) -> set[str]:
        return members.get(name, {name})

    return {(a, b, label) for _, x, y, label in edges for a in expand(x) for b in expand(y)}


def missing(text: str) -> set[tuple[str, str, str]]:
    edges, members = diagram(text)
    return code_transitions() - drawn(edges, members)


def test_the_diagram_holds_every_transition_the_code_makes():
    assert missing(README.read_text()) == set()


def test_the_diagram_names_every_status_and_kind():
    text = README.read_text()
    edges, members = diagram(text)
    statuses = {s for _, a, b, _ in edges for s in (a, b)} | {s for m in members.values() for s in m}
    assert {s for edge in code_transitions() for s in edge[:2]} <= statuses
    labels = {label.split()[0] for *_, label in edges if label}
    assert set(models.KINDS) <= labels


def test_the_check_fails_when_any_edge_is_removed():
    """Each edge line is needed: removing it makes the check name the transitions it drew."""
    text = README.read_text()
    lines = text.splitlines()
    start = lines.index("```mermaid") + 1
    edges, _ = diagram(text)
    assert len(edges) > 20
    for n, a, b, label in edges:
        without = "\n".join(lines[: start + n] + lines[start + n + 1 :])
        assert missing(without), f"the diagram does not need {a} --> {b} : {label}"


@pytest.mark.parametrize(
    "transition",
    [
        (models.PAUSING, models.INACTIVE, "pause succeeded"),
        (models.ACTIVE_UNHEALTHY, models.ACTIVE_UNHEALTHY, "heal"),
        (models.INIT_FAILED, models.RESTORING, "recreate"),
        (models.GOING_DOWN, START, "delete succeeded"),
        (models.INACTIVE, models.ACTIVE_UNHEALTHY, "poll"),
    ],
)
def test_transitions_read_from_the_code_include(transition):
    assert transition in code_transitions()


def test_a_poll_never_moves_init_failed_to_removed():
    assert (models.INIT_FAILED, models.REMOVED, "poll") not in code_transitions()
