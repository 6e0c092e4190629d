"""The project_status filter: the one definition of a project's status, which the daemon uses too."""

import pytest
from ansible_collections.supamanager.supabase.plugins.filter.project_status import FilterModule, project_status


def svc(state="running", health="healthy"):
    return {"state": state, "health": health}


@pytest.mark.parametrize(
    ("containers", "expected", "status"),
    [
        # No container at all: REMOVED, whether or not the project's files (and its expected services) remain.
        ({}, [], "REMOVED"),
        ({}, ["db", "kong"], "REMOVED"),
        ({"db": svc(), "kong": svc(health="none")}, [], "ACTIVE_HEALTHY"),
        ({"db": svc(), "kong": svc(health="starting")}, [], "COMING_UP"),
        ({"db": svc(), "kong": svc(health="unhealthy")}, [], "ACTIVE_UNHEALTHY"),
        ({"db": svc(), "kong": svc("exited", "none")}, [], "ACTIVE_UNHEALTHY"),
        ({"db": svc("exited", "none"), "kong": svc("exited", "none")}, ["db", "kong"], "INACTIVE"),
        ({"db": svc("created", "none")}, [], "INACTIVE"),
        ({"db": svc("restarting", "none")}, [], "ACTIVE_UNHEALTHY"),
        ({"db": svc()}, ["db", "kong"], "ACTIVE_UNHEALTHY"),
        ({"db": svc(), "kong": svc()}, ["db", "kong"], "ACTIVE_HEALTHY"),
    ],
)
def test_status_from_the_containers(containers, expected, status):
    assert project_status(containers, expected) == status


def test_the_filter_is_registered():
    assert FilterModule().filters()["project_status"] is project_status
