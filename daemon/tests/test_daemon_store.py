"""The SQLite store: WAL, atomic 409 checks, final statuses, poll snapshots, event ids."""

from __future__ import annotations

import sqlite3
import time

import pytest
from supamanager_daemon import models
from supamanager_daemon.errors import InvalidState
from supamanager_daemon.store import (
    OperationInProgress,
    OrganizationNotFound,
    ProjectNotFound,
    RefTaken,
    Store,
    TokenNameTaken,
    TokenNotFound,
)

REF = "abcdefghijklmnopqrst"


@pytest.fixture
async def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    await s.open()
    yield s
    await s.close()


async def test_store_is_wal_and_private(store, tmp_path):
    assert await store.journal_mode() == "wal"
    assert oct((tmp_path / "db.sqlite3").stat().st_mode & 0o777) == "0o600"


async def test_create_then_conflict_then_finish(store, tmp_path):
    project, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    assert project["status"] == models.COMING_UP
    assert op["state"] == models.QUEUED
    # Written before the call returned: another connection sees it.
    other = sqlite3.connect(tmp_path / "db.sqlite3")
    assert other.execute("SELECT status FROM projects WHERE ref = ?", (REF,)).fetchone() == ("COMING_UP",)
    with pytest.raises(OperationInProgress) as err:
        await store.start_operation(REF, lambda p: "pause")
    assert err.value.operation_id == op["id"]
    with pytest.raises(RefTaken):
        await store.create_project(ref=REF, name="n", organization_slug="default", region="r")

    await store.mark_running(op["id"], pid=123)
    await store.record_step(op["id"], "Task one", 1, 10)
    await store.record_step(op["id"], "Task two", 2, 20)
    done = await store.finish_operation(op["id"], ok=True)
    assert (done["state"], done["progress"], done["pid"]) == (models.SUCCEEDED, 100, None)
    assert (await store.get_project(REF))["status"] == models.ACTIVE_HEALTHY
    assert await store.task_count("create.yml") == 2
    events = await store.events(op["id"])
    assert [e["type"] for e in events] == ["queued", "started", "step", "step", "succeeded"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    assert [e["name"] for e in await store.events(op["id"], after=ids[2])] == ["Task two", "create"]


async def test_choose_kind_errors_change_nothing(store):
    await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    op = (await store.active_operations())[0]
    await store.finish_operation(op["id"], ok=False, error="boom")
    project = await store.get_project(REF)
    assert (project["status"], project["error"]) == (models.INIT_FAILED, "boom")

    def refuse(_p):
        raise InvalidState("no")

    with pytest.raises(InvalidState):
        await store.start_operation(REF, refuse)
    assert await store.active_operations() == []
    assert (await store.get_project(REF))["status"] == models.INIT_FAILED
    with pytest.raises(ProjectNotFound):
        await store.start_operation("zzzzzzzzzzzzzzzzzzzz", lambda p: "pause")


async def test_delete_success_removes_the_project_but_keeps_the_operation(store):
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.finish_operation(op["id"], ok=True)
    _, op = await store.start_operation(REF, lambda p: "delete", {"delete_volumes": True})
    assert (await store.get_project(REF))["status"] == models.GOING_DOWN
    await store.finish_operation(op["id"], ok=True)
    assert await store.get_project(REF) is None
    assert (await store.get_operation(op["id"]))["params"] == {"delete_volumes": True}


async def test_apply_observed_skips_busy_projects_and_stale_snapshots(store):
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    snapshot = time.time()
    assert await store.apply_observed({REF: (models.REMOVED, None)}, time.time()) == []  # a job owns it
    await store.finish_operation(op["id"], ok=True)
    # A snapshot taken before the job set its final status must not overwrite it.
    assert await store.apply_observed({REF: (models.REMOVED, None)}, snapshot) == []
    assert (await store.get_project(REF))["status"] == models.ACTIVE_HEALTHY
    assert await store.apply_observed({REF: (models.INACTIVE, ["db"])}, time.time()) == [REF]
    project = await store.get_project(REF)
    assert (project["status"], project["services"]) == (models.INACTIVE, ["db"])


async def test_requeue_puts_an_interrupted_operation_back(store):
    _, op = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.mark_running(op["id"], pid=99)
    await store.apply_observed({}, time.time())
    op = await store.requeue(op["id"], "daemon restarted")
    assert (op["state"], op["pid"], op["attempts"]) == (models.QUEUED, None, 1)
    assert [o["id"] for o in await store.active_operations()] == [op["id"]]


async def _created_and_deleted(store, ref: str) -> int:
    project, op = await store.create_project(ref=ref, name="n", organization_slug="default", region="r")
    await store.finish_operation(op["id"], ok=True)
    _, op = await store.start_operation(ref, lambda p: "delete", {})
    await store.finish_operation(op["id"], ok=True)
    return project["id"]


async def test_a_project_id_is_never_handed_out_again(store):
    # Deleting the newest project freed its rowid, which SQLite gave to the next insert.
    first = await _created_and_deleted(store, "a" * 20)
    second, _ = await store.create_project(ref="b" * 20, name="n", organization_slug="default", region="r")
    assert second["id"] > first
    assert (await store.get_project("b" * 20))["id"] == second["id"]
    assert [p["id"] for p in await store.list_projects()] == [second["id"]]


async def test_projects_of_an_older_store_keep_their_ids(tmp_path):
    path = tmp_path / "db.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE projects (ref TEXT PRIMARY KEY, name TEXT NOT NULL, organization_slug TEXT NOT NULL,"
        " region TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL, desired_state TEXT NOT NULL,"
        " error TEXT, services TEXT NOT NULL DEFAULT '[]', job_status_at REAL NOT NULL DEFAULT 0)"
    )
    for rowid, ref in ((7, "c" * 20), (9, "d" * 20)):
        old.execute(
            "INSERT INTO projects (rowid, ref, name, organization_slug, region, created_at, status, desired_state)"
            " VALUES (?, ?, 'n', 'default', 'r', '2026-01-01T00:00:00Z', 'ACTIVE_HEALTHY', 'running')",
            (rowid, ref),
        )
    old.commit()
    old.close()
    store = Store(path)
    await store.open()
    try:
        assert {p["ref"]: p["id"] for p in await store.list_projects()} == {"c" * 20: 7, "d" * 20: 9}
        new, _ = await store.create_project(ref="e" * 20, name="n", organization_slug="default", region="r")
        assert new["id"] == 10
    finally:
        await store.close()


async def test_organizations_unknown_taken_and_required_by_a_project(store):
    with pytest.raises(OrganizationNotFound) as err:
        await store.get_organization("acme")
    assert "acme" in str(err.value)
    with pytest.raises(OrganizationNotFound):
        await store.create_project(ref=REF, name="n", organization_slug="acme", region="r")
    assert await store.list_projects() == []
    made = await store.create_organization("acme", "Acme")
    assert (made["slug"], made["name"]) == ("acme", "Acme")
    assert await store.create_organization("acme", "Other") is None
    assert (await store.get_organization("acme"))["name"] == "Acme"
    assert [o["slug"] for o in await store.list_organizations()] == ["default", "acme"]


async def test_tokens_names_are_unique_and_a_revoke_keeps_its_first_time(store):
    await store.create_token("t1", "ci", "digest-1")
    with pytest.raises(TokenNameTaken):
        await store.create_token("t2", "ci", "digest-2")
    first = await store.revoke_token("ci")  # by name or by id
    assert first["revoked_at"] is not None
    assert (await store.revoke_token("t1"))["revoked_at"] == first["revoked_at"]
    with pytest.raises(TokenNotFound):
        await store.revoke_token("t9")
    assert [t["id"] for t in await store.list_tokens()] == ["t1"]


async def test_healing_state_of_unknown_projects_and_a_fresh_count_when_turned_back_on(store):
    for call in (store.get_healing(REF), store.set_healing_enabled(REF, False)):
        with pytest.raises(ProjectNotFound):
            await call
    await store.set_healing_services(REF, {"db": {"attempts": 1}})  # a project gone meanwhile: nothing kept
    assert await store.healing_states() == {}
    await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.set_healing_services(REF, {"db": {"attempts": 2}})
    assert (await store.set_healing_enabled(REF, False))["services"] == {"db": {"attempts": 2}}
    assert await store.set_healing_enabled(REF, True) == {"enabled": True, "services": {}}
    assert await store.get_healing(REF) == {"enabled": True, "services": {}}


async def test_a_projects_operations_in_order(store):
    _, create = await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    await store.finish_operation(create["id"], ok=True)
    _, pause = await store.start_operation(REF, lambda p: "pause")
    assert [op["id"] for op in await store.operations_for(REF)] == [create["id"], pause["id"]]
    assert await store.operations_for("zzzzzzzzzzzzzzzzzzzz") == []
