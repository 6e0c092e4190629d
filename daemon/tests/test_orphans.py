"""Orphans from Docker's lists: which labelled objects belong to no known project. Pure functions;
the removal against the real engine is in test_orphans_e2e.py."""

from __future__ import annotations

from supamanager_daemon.fleet import orphans

KNOWN = "knownknownknownknown"
LOST = "lostlostlostlostlost"


def lists():
    containers = [
        {
            "Id": "c1",
            "Names": ["/supamanager-lost-db"],
            "State": "running",
            "Labels": {"supamanager.project": LOST, "supamanager.service": "db"},
        },
        {"Id": "c2", "Names": ["/supamanager-known-db"], "State": "running", "Labels": {"supamanager.project": KNOWN}},
        {"Id": "c3", "Names": ["/unlabelled"], "State": "exited", "Labels": {}},
        {"Id": "c4", "Names": ["/empty-label"], "State": "exited", "Labels": {"supamanager.project": ""}},
    ]
    networks = [
        {"Id": "n1", "Name": f"supamanager-{LOST}", "Labels": {"supamanager.project": LOST}},
        {"Id": "n2", "Name": f"supamanager-{KNOWN}", "Labels": {"supamanager.project": KNOWN}},
        {"Id": "n3", "Name": "bridge", "Labels": None},
    ]
    volumes = [
        {"Name": f"supamanager-{LOST}-db-data", "Labels": {"supamanager.project": LOST}},
        {"Name": f"supamanager-{KNOWN}-db-data", "Labels": {"supamanager.project": KNOWN}},
        {"Name": "anonymous", "Labels": None},
    ]
    return containers, networks, volumes


def test_only_labelled_objects_of_unknown_refs_are_orphans():
    found = orphans.find(*lists(), known={KNOWN})
    assert found.containers == [
        {"id": "c1", "name": "supamanager-lost-db", "ref": LOST, "service": "db", "state": "running"}
    ]
    assert found.networks == [{"id": "n1", "name": f"supamanager-{LOST}", "ref": LOST}]
    assert found.volumes == [{"name": f"supamanager-{LOST}-db-data", "ref": LOST}]
    assert found.refs() == [LOST]
    assert set(found.to_json()) == {"containers", "networks", "volumes"}


def test_every_ref_known_means_no_orphans_and_only_limits_to_one_ref():
    assert orphans.find(*lists(), known={KNOWN, LOST}).refs() == []
    assert orphans.find(*lists(), known={KNOWN}, only="someoneelse").refs() == []
    assert orphans.find(*lists(), known=set(), only=KNOWN).refs() == [KNOWN]


def test_a_project_directory_makes_a_ref_known(tmp_path):
    assert orphans.project_dirs(tmp_path) == set()  # no projects/ at all
    (tmp_path / "projects" / "shop").mkdir(parents=True)
    (tmp_path / "projects" / "stray-file").write_text("")
    assert orphans.project_dirs(tmp_path) == {"shop"}
