# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""The one definition of a project's status from what Docker shows of its containers, in the
Management API's vocabulary. Private to this collection; plain Python with no import, so that
the role (filter project_status, tasks/status.yml) and the daemon (supamanager_daemon/fleet/status.py,
through the link supamanager_daemon/fleet/_project_status.py to this file) share it.
"""

from __future__ import annotations

ACTIVE_HEALTHY = "ACTIVE_HEALTHY"
ACTIVE_UNHEALTHY = "ACTIVE_UNHEALTHY"
COMING_UP = "COMING_UP"
INACTIVE = "INACTIVE"
REMOVED = "REMOVED"


def project_status(containers, expected=()):
    """The status of a project whose containers are (service, state, health) triples.

    state is Docker's (created, running, paused, restarting, removing, exited, dead); health is
    healthy, unhealthy, starting, or None (or "none") without a healthcheck. expected names the
    services the project should have (its project.json).

    - no container at all: REMOVED, whether or not its files remain (a restore creates the
      containers again from them; a delete removes what is left);
    - containers, none running: INACTIVE (paused, or stopped behind our back), or ACTIVE_UNHEALTHY
      while one is restarting;
    - some running but not all, an expected service missing, or one unhealthy: ACTIVE_UNHEALTHY;
    - all running, some still starting their healthcheck: COMING_UP;
    - all running and healthy (or without a healthcheck): ACTIVE_HEALTHY.
    """
    containers = list(containers)
    if not containers:
        return REMOVED
    states = [state for _service, state, _health in containers]
    running = [health for _service, state, health in containers if state == "running"]
    if not running:
        return ACTIVE_UNHEALTHY if "restarting" in states else INACTIVE
    missing = set(expected) - {service for service, _state, _health in containers}
    if len(running) < len(containers) or missing or "unhealthy" in running:
        return ACTIVE_UNHEALTHY
    if "starting" in running:
        return COMING_UP
    return ACTIVE_HEALTHY
