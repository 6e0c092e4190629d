"""Map what Docker reports onto Management API statuses. Pure functions, unit-tested."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from .. import models
from . import _project_status as _definition
from .docker import PROJECT_LABEL, SERVICE_LABEL

_HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")


@dataclasses.dataclass(frozen=True)
class ContainerView:
    ref: str
    service: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health in (None, "healthy")


def parse_container(raw: dict[str, Any]) -> ContainerView | None:
    """One entry of GET /containers/json; None when it carries no project label."""
    labels = raw.get("Labels") or {}
    ref = labels.get(PROJECT_LABEL)
    if not ref:
        return None
    service = labels.get(SERVICE_LABEL) or (raw.get("Names") or ["?"])[0].lstrip("/")
    match = _HEALTH_RE.search(raw.get("Status") or "")
    health = None
    if match:
        health = "starting" if match.group(1) == "health: starting" else match.group(1)
    return ContainerView(ref=ref, service=service, state=raw.get("State") or "unknown", health=health)


def group_by_project(raw: Iterable[dict[str, Any]]) -> dict[str, list[ContainerView]]:
    grouped: dict[str, list[ContainerView]] = {}
    for entry in raw:
        view = parse_container(entry)
        if view is not None:
            grouped.setdefault(view.ref, []).append(view)
    return grouped


def project_status(containers: list[ContainerView], expected: Iterable[str] = ()) -> str:
    """The status a project's containers show: the collection's one definition (_project_status.py,
    shared with the role's status), e.g. no container at all is REMOVED even when files remain."""
    return _definition.project_status(((c.service, c.state, c.health) for c in containers), expected)


def observed_status(current: str, containers: list[ContainerView], expected: Iterable[str]) -> str:
    """What the poller stores, given the project's current status (set by the last job)."""
    status = project_status(containers, expected)
    # A create that failed rolled back: no containers is its expected state, keep the reason visible.
    if status == models.REMOVED and current == models.INIT_FAILED:
        return current
    return status


# GET /v1/projects/{ref}/health: the Management API's service names -> our containers' service labels.
HEALTH_SERVICES = {
    "auth": "auth",
    "db": "db",
    "pooler": "supavisor",
    "realtime": "realtime",
    "rest": "rest",
    "storage": "storage",
}


def service_health(name: str, containers: list[ContainerView]) -> dict[str, Any]:
    """One service-health object of the Management API."""
    service = HEALTH_SERVICES[name]
    matches = [c for c in containers if c.service == service]
    if not matches:
        return {"name": name, "healthy": False, "status": "UNHEALTHY", "error": f"no {service} container"}
    c = matches[0]
    if c.healthy:
        return {"name": name, "healthy": True, "status": models.ACTIVE_HEALTHY}
    if c.state in ("created", "restarting") or (c.state == "running" and c.health == "starting"):
        return {"name": name, "healthy": False, "status": models.COMING_UP}
    detail = c.state if c.state != "running" else c.health
    return {"name": name, "healthy": False, "status": "UNHEALTHY", "error": f"{service} container is {detail}"}
