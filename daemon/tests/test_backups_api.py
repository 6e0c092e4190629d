"""The Database backups routes through create_app (fake playbooks of conftest.py), over a backup
repository written as the role's module_utils/_backup_repository.py writes it. The real backups,
checks and restores are tested in tests/integration/role/test_backup.py."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import time

import jsonschema
from conftest import AUTH, wait_operation
from openapi_check import checked
from supamanager_daemon import keys
from supamanager_daemon.api.backups import restore_points
from supamanager_daemon.app import create_app
from supamanager_daemon.operations import backup_schedule
from test_daemon_api import create

# The list shape, as the official Management API document defines it.
OFFICIAL_SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string"},
        "walg_enabled": {"type": "boolean"},
        "pitr_enabled": {"type": "boolean"},
        "backups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "is_physical_backup": {"type": "boolean"},
                    "status": {
                        "type": "string",
                        "enum": ["COMPLETED", "FAILED", "PENDING", "REMOVED", "ARCHIVED", "CANCELLED"],
                    },
                    "inserted_at": {"type": "string"},
                },
                "required": ["id", "is_physical_backup", "status", "inserted_at"],
            },
        },
        "physical_backup_data": {
            "type": "object",
            "properties": {
                "earliest_physical_backup_date_unix": {"type": "integer"},
                "latest_physical_backup_date_unix": {"type": "integer"},
            },
        },
    },
    "required": ["region", "walg_enabled", "pitr_enabled", "backups", "physical_backup_data"],
}
NOT_LISTED = "never-listed-value-0123"


def write_backup(root, ref, backup_id, status, base_end):
    path = root / "backups" / ref / "archive" / str(backup_id)
    path.mkdir(parents=True)
    manifest = {
        "id": backup_id,
        "time": backup_id,
        "inserted_at": f"2026-12-01T00:00:{backup_id % 60:02d}Z",
        "status": status,
        "base_end": base_end,
        "size": 123,
        "files": {"settings.tar.enc": {"size": 1, "sha256": "0" * 64}},
        "note": NOT_LISTED,
    }
    (path / "backup.json").write_text(json.dumps(manifest))


async def test_list_backups_shows_published_backups_and_the_recovery_window(client, settings):
    project, op_id = await create(client)
    assert (await wait_operation(client, op_id))["state"] == "succeeded"
    ref = project["ref"]
    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/database/backups", headers=AUTH)
    assert resp.status == 200
    assert body == {
        "region": "local",
        "walg_enabled": False,
        "pitr_enabled": False,
        "backups": [],
        "physical_backup_data": {},
    }
    jsonschema.Draft202012Validator(OFFICIAL_SCHEMA).validate(body)

    write_backup(settings.root, ref, 1796100000, "COMPLETED", 1796100005)
    write_backup(settings.root, ref, 1796100100, "FAILED", 1796100105)
    write_backup(settings.root, ref, 1796100200, "COMPLETED", 1796100210)
    # a backup being written, and what is not a backup, are never listed
    (settings.root / "backups" / ref / "archive" / ".tmp-1796100300").mkdir()
    (settings.root / "backups" / ref / "archive" / "1796100400").mkdir()
    (settings.root / "backups" / ref / "archive" / "1796100400" / "backup.json").write_text("{not json")
    wal = settings.root / "backups" / ref / "wal"
    (wal / "20261201T000000Z").mkdir(parents=True)
    (wal / "current").symlink_to("20261201T000000Z")
    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/database/backups", headers=AUTH)
    assert [(b["id"], b["status"], b["is_physical_backup"]) for b in body["backups"]] == [
        (1796100000, "COMPLETED", True),
        (1796100100, "FAILED", True),
        (1796100200, "COMPLETED", True),
    ]
    assert body["pitr_enabled"] is True
    assert body["physical_backup_data"] == {
        "earliest_physical_backup_date_unix": 1796100005,
        "latest_physical_backup_date_unix": 1796100210,
    }
    assert NOT_LISTED not in json.dumps(body)
    jsonschema.Draft202012Validator(OFFICIAL_SCHEMA).validate(body)

    resp, _ = await checked(client, "GET", "/v1/projects/abcdefghijklmnopqrst/database/backups", headers=AUTH)
    assert resp.status == 404


async def test_delete_takes_a_final_backup_by_default_and_backup_false_skips_it(client, settings):
    for query, want in (("", True), ("?backup=true", True), ("?backup=false", False)):
        project, op_id = await create(client)
        assert (await wait_operation(client, op_id))["state"] == "succeeded"
        resp = await client.delete(f"/v1/projects/{project['ref']}{query}", headers=AUTH)
        assert resp.status == 200
        assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
        recorded = json.loads((settings.root / f"vars-{project['ref']}-delete.json").read_text())
        assert recorded["delete_backup"] is want


async def test_a_delete_that_fails_keeps_the_project(client, settings):
    """A failed delete (the role's: e.g. its final backup failed, tests/integration/role/test_backup.py)
    leaves the project known, for the poll to judge; it is not a deleted project."""
    ref = await active(client)
    (settings.root / "fail-delete").touch()
    resp = await client.delete(f"/v1/projects/{ref}", headers=AUTH)
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "failed" and "simulated failure of delete" in op["error"]
    resp, project = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert resp.status == 200 and project["status"] == "UNKNOWN"
    assert await client.app[keys.STORE].get_deleted_project(ref) is None


async def test_a_deleted_project_lists_its_backups_and_a_restore_brings_it_back_under_its_ref_and_id(client, settings):
    """The real flow (final backup, restore of the deleted project, its rows back) runs on the live
    project: daemon/tests/test_database_api.py."""
    ref = await active(client)
    _, before = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    write_backup(settings.root, ref, 1796100200, "COMPLETED", 1796100210)
    resp, gone = await checked(client, "DELETE", f"/v1/projects/{ref}", headers=AUTH)
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
    assert (await client.get(f"/v1/projects/{ref}", headers=AUTH)).status == 404
    assert [p["ref"] for p in await (await client.get("/v1/projects", headers=AUTH)).json()] == []
    deleted = await client.app[keys.STORE].get_deleted_project(ref)
    assert (deleted["id"], deleted["name"]) == (gone["id"], before["name"]) and deleted["deleted_at"]

    url = f"/v1/projects/{ref}/database/backups"
    resp, body = await checked(client, "GET", url, headers=AUTH)
    assert resp.status == 200 and [b["id"] for b in body["backups"]] == [1796100200], body
    jsonschema.Draft202012Validator(OFFICIAL_SCHEMA).validate(body)
    # a target its backups do not hold is refused, and the project stays deleted
    resp, answer = await checked(client, "POST", f"{url}/restore", headers=AUTH, json={"id": 1})
    assert (resp.status, answer["code"]) == (400, "backup_not_found")
    assert (await client.get(f"/v1/projects/{ref}", headers=AUTH)).status == 404
    assert await client.app[keys.STORE].get_deleted_project(ref) is not None

    resp, _ = await checked(client, "POST", f"{url}/restore", headers=AUTH, json={"id": 1796100200})
    assert resp.status == 201
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["ref"]) == ("restore_backup", "succeeded", ref)
    resp, back = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert (back["name"], back["created_at"]) == (before["name"], before["created_at"])
    assert back["status"] == "ACTIVE_HEALTHY"
    assert (await client.app[keys.STORE].get_project(ref))["id"] == gone["id"]  # its integer id again
    assert await client.app[keys.STORE].get_deleted_project(ref) is None
    assert json.loads((settings.root / f"vars-{ref}-restore.json").read_text())["backup_id"] == "1796100200"
    # a ref the daemon never knew, with a repository on the host, is not a deleted project of its own
    write_backup(settings.root, "abcdefghijklmnopqrst", 1796100200, "COMPLETED", 1796100210)
    resp, _ = await checked(client, "GET", "/v1/projects/abcdefghijklmnopqrst/database/backups", headers=AUTH)
    assert resp.status == 404


async def test_a_deleted_project_without_backups_is_gone_and_forgotten(client, settings):
    ref = await active(client)
    resp = await client.delete(f"/v1/projects/{ref}?backup=false", headers=AUTH)
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
    store = client.app[keys.STORE]
    assert await store.get_deleted_project(ref) is not None
    url = f"/v1/projects/{ref}/database/backups"
    assert (await client.get(url, headers=AUTH)).status == 404  # the fake delete took no backup
    resp, _ = await checked(client, "POST", f"{url}/restore", headers=AUTH, json={"id": 1})
    assert resp.status == 404
    assert await client.app[keys.BACKUP_SCHEDULE].run_once() == []
    assert await store.deleted_projects() == []


async def test_the_rollback_of_a_failed_create_takes_no_backup(client, settings):
    (settings.root / "fail-create").touch()
    project, op_id = await create(client)
    assert (await wait_operation(client, op_id))["state"] == "failed"
    recorded = json.loads((settings.root / f"vars-{project['ref']}-delete.json").read_text())
    assert recorded["delete_backup"] is False


async def test_restores_are_operations_that_run_restore_yml_with_the_target(client, settings):
    ref = await active(client)
    write_backup(settings.root, ref, 1796100200, "COMPLETED", 1796100210)
    resp, body = await checked(
        client,
        "POST",
        f"/v1/projects/{ref}/database/backups/restore-pitr",
        headers=AUTH,
        json={"recovery_time_target_unix": 1796100250},
    )
    assert resp.status == 201, body
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == (
        "restore_backup",
        "succeeded",
        {"recovery_time_target_unix": 1796100250},
    )
    passed = json.loads((settings.root / f"vars-{ref}-restore.json").read_text())
    assert (passed["recovery_target_time"], passed["backup_id"]) == ("1796100250", None)

    resp, body = await checked(
        client, "POST", f"/v1/projects/{ref}/database/backups/restore", headers=AUTH, json={"id": 1796100200}
    )
    assert resp.status == 201, body
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["state"], op["params"]) == ("succeeded", {"backup_id": 1796100200})
    passed = json.loads((settings.root / f"vars-{ref}-restore.json").read_text())
    assert (passed["backup_id"], passed["recovery_target_time"]) == ("1796100200", None)


async def test_a_failed_restore_leaves_the_project_for_the_poll_to_judge(client, settings):
    ref = await active(client)
    write_backup(settings.root, ref, 1, "COMPLETED", 2)
    (settings.root / "fail-restore").touch()
    resp, _ = await checked(
        client, "POST", f"/v1/projects/{ref}/database/backups/restore", headers=AUTH, json={"id": 1}
    )
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "failed" and "simulated failure of restore" in op["error"]
    resp, project = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert project["status"] == "ACTIVE_UNHEALTHY"


async def test_restore_requests_are_checked_before_anything_runs(client, settings):
    ref = await active(client)
    url = f"/v1/projects/{ref}/database/backups"
    for path, body in (
        ("restore-pitr", {}),
        ("restore-pitr", {"recovery_time_target_unix": -1}),
        ("restore-pitr", {"recovery_time_target_unix": "1796100250"}),  # strict: no string for a number
        ("restore-pitr", {"recovery_time_target_unix": 1, "backup_id": 2}),
        ("restore", {"id": 10**12}),
        ("restore", {"id": True}),
    ):
        resp, answer = await checked(client, "POST", f"{url}/{path}", headers=AUTH, json=body)
        assert resp.status == 400, (path, body, answer)
    assert not (settings.root / f"vars-{ref}-restore.json").exists()
    resp, _ = await checked(
        client, "POST", "/v1/projects/abcdefghijklmnopqrst/database/backups/restore", headers=AUTH, json={"id": 1}
    )
    assert resp.status == 404
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/pause", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    resp, answer = await checked(client, "POST", f"{url}/restore", headers=AUTH, json={"id": 1})
    assert resp.status == 400 and "only an active project is restored" in answer["message"]


async def test_a_restore_outside_what_the_backups_hold_is_refused_before_anything_runs(client, settings):
    ref = await active(client)
    url = f"/v1/projects/{ref}/database/backups"
    resp, answer = await checked(
        client, "POST", f"{url}/restore-pitr", headers=AUTH, json={"recovery_time_target_unix": 5}
    )
    assert (resp.status, answer["code"]) == (400, "no_backup"), answer
    write_backup(settings.root, ref, 1796100100, "FAILED", 1796100105)
    write_backup(settings.root, ref, 1796100200, "COMPLETED", 1796100210)
    for path, body, code, says in (
        ("restore-pitr", {"recovery_time_target_unix": 1796100209}, "outside_recovery_window", "starts at 1796100210"),
        ("restore", {"id": 1796100100}, "backup_not_found", "no completed backup 1796100100"),  # FAILED: never used
        ("restore", {"id": 1796100300}, "backup_not_found", "no completed backup 1796100300"),
    ):
        resp, answer = await checked(client, "POST", f"{url}/{path}", headers=AUTH, json=body)
        assert (resp.status, answer["code"]) == (400, code), answer
        assert says in answer["message"], answer
    assert not (settings.root / f"vars-{ref}-restore.json").exists()
    assert [op["kind"] for op in await client.app[keys.STORE].operations_for(ref)] == ["create"]


async def active(client) -> str:
    """A created project (ACTIVE_HEALTHY once the fake create succeeded): its ref."""
    # The fake playbooks start no container: keep the poller from judging the project.
    await client.app[keys.POLLER].stop()
    project, op_id = await create(client)
    assert (await wait_operation(client, op_id))["state"] == "succeeded"
    return project["ref"]


async def test_a_backup_now_is_an_operation_that_runs_backup_yml_while_the_project_stays_healthy(client, settings):
    ref = await active(client)
    url = f"/v1/projects/{ref}/database/backups"
    (settings.root / "hold").touch()
    resp, body = await checked(client, "POST", url, headers=AUTH)
    assert resp.status == 201 and not body
    op_id = resp.headers["X-Operation-Id"]
    resp, project = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert project["status"] == "ACTIVE_HEALTHY"
    resp, answer = await checked(client, "POST", url, headers=AUTH)
    assert resp.status == 409, answer
    (settings.root / "hold").unlink()
    op = await wait_operation(client, op_id)
    assert (op["kind"], op["state"]) == ("backup", "succeeded")
    assert json.loads((settings.root / f"vars-{ref}-backup.json").read_text())["backup_kind"] == "manual"
    resp, body = await checked(client, "GET", url, headers=AUTH)
    assert [b["status"] for b in body["backups"]] == ["COMPLETED"]

    resp, _ = await checked(client, "POST", "/v1/projects/abcdefghijklmnopqrst/database/backups", headers=AUTH)
    assert resp.status == 404
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/pause", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    resp, answer = await checked(client, "POST", url, headers=AUTH)
    assert resp.status == 400 and "the daemon backs up a healthy project" in answer["message"]
    assert "playbooks/backup.yml" in answer["message"]


def time_of_day(unix: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(unix))


async def test_the_schedule_is_the_projects_own_else_the_daemons_default_and_patch_sets_it(aiohttp_client, settings):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, backup_schedule_for="03:30:00")))
    ref = await active(client)
    url = f"/v1/projects/{ref}/database/backups/schedule"
    project = await client.app[keys.STORE].get_project(ref)
    resp, body = await checked(client, "GET", url, headers=AUTH)
    assert (resp.status, body) == (200, {"schedule_for": "03:30:00", "updated_at": project["created_at"]})
    for bad in ("4:00:00", "24:00:00", "04:60:00", "04:00", "04:00:00\n", " 04:00:00", 400):
        resp, body = await checked(client, "PATCH", url, headers=AUTH, json={"schedule_for": bad})
        assert resp.status == 400, (bad, body)
    resp, body = await checked(client, "PATCH", url, headers=AUTH, json={"schedule_for": "04:00:00", "x": 1})
    assert resp.status == 400
    resp, body = await checked(client, "GET", url, headers=AUTH)
    assert body["schedule_for"] == "03:30:00"  # nothing refused was kept
    resp, body = await checked(client, "PATCH", url, headers=AUTH, json={"schedule_for": "23:59:59"})
    assert resp.status == 200 and body["schedule_for"] == "23:59:59" and body["updated_at"] > project["created_at"]
    resp, got = await checked(client, "GET", url, headers=AUTH)
    assert (resp.status, got) == (200, body)
    assert await client.app[keys.STORE].backup_schedules() == {ref: body}
    absent = "/v1/projects/abcdefghijklmnopqrst/database/backups/schedule"
    assert (await checked(client, "GET", absent, headers=AUTH))[0].status == 404
    resp, _ = await checked(client, "PATCH", absent, headers=AUTH, json={"schedule_for": "04:00:00"})
    assert resp.status == 404
    # a project's own schedule goes with it
    resp, _ = await checked(client, "DELETE", f"/v1/projects/{ref}", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    assert await client.app[keys.STORE].backup_schedules() == {}


async def test_without_a_default_a_project_has_no_schedule_until_patched(client):
    ref = await active(client)
    resp, body = await checked(client, "GET", f"/v1/projects/{ref}/database/backups/schedule", headers=AUTH)
    assert (resp.status, body["code"]) == (404, "backup_schedule_not_found")
    assert await client.app[keys.BACKUP_SCHEDULE].run_once(now=time.time() + 3 * 86400) == []


async def test_the_schedule_backs_up_each_healthy_project_daily_at_its_time(aiohttp_client, settings):
    """The default schedule (an hour ago's time of day), and one project's own (half an hour from
    now): a time already passed when it was set first runs the next day; a newer backup, a paused
    project or a backup just attempted is not due."""
    start = time.time()
    client = await aiohttp_client(
        create_app(dataclasses.replace(settings, backup_schedule_for=time_of_day(start - 3600)))
    )
    schedule = client.app[keys.BACKUP_SCHEDULE]
    await schedule.stop()  # driven by hand here; the loop itself: the next test
    default, own, paused = await active(client), await active(client), await active(client)
    write_backup(settings.root, own, int(start) - 60, "COMPLETED", 1)
    resp, _ = await checked(
        client, "PATCH", f"/v1/projects/{own}/database/backups/schedule", headers=AUTH,
        json={"schedule_for": time_of_day(start + 1800)},
    )  # fmt: skip
    assert resp.status == 200
    resp, _ = await checked(client, "POST", f"/v1/projects/{paused}/pause", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])

    assert await schedule.run_once() == []  # the default's time has passed today: its first run is tomorrow
    assert await schedule.run_once(now=start + 3600) == [own]
    ops = [op for op in await client.app[keys.STORE].operations_for(own) if op["kind"] == "backup"]
    assert [op["params"] for op in ops] == [{"scheduled": True}]
    assert (await wait_operation(client, ops[0]["id"]))["state"] == "succeeded"
    assert json.loads((settings.root / f"vars-{own}-backup.json").read_text())["backup_kind"] == "scheduled"
    assert await schedule.run_once(now=start + 3700) == []
    # tomorrow: the default's project, which has no backup; `own` was backed up after its time
    write_backup(settings.root, own, int(start + 86400) - 120, "COMPLETED", 1)
    assert await schedule.run_once(now=start + 86400) == [default]
    assert await schedule.run_once(now=start + 86400 + 60) == []
    for op in await client.app[keys.STORE].operations_for(default):
        await wait_operation(client, op["id"])
    assert sorted(await schedule.run_once(now=start + 2 * 86400 + 3600)) == sorted([default, own])


async def test_the_schedule_runs_by_itself_and_a_failed_backup_shows_in_the_metrics(
    aiohttp_client, settings, monkeypatch
):
    monkeypatch.setattr(backup_schedule, "TICK", 0.2)
    (settings.root / "fail-backup").touch()
    client = await aiohttp_client(create_app(settings))
    ref = await active(client)
    resp, _ = await checked(
        client, "PATCH", f"/v1/projects/{ref}/database/backups/schedule", headers=AUTH,
        json={"schedule_for": time_of_day(time.time() + 2)},
    )  # fmt: skip
    assert resp.status == 200
    deadline = time.monotonic() + 300
    while not (ops := [o for o in await client.app[keys.STORE].operations_for(ref) if o["kind"] == "backup"]):
        assert time.monotonic() < deadline, "the schedule started no backup"
        await asyncio.sleep(0.2)
    assert (await wait_operation(client, ops[0]["id"]))["state"] == "failed"
    write_backup(settings.root, ref, 1796100000, "FAILED", 1796100005)
    text = await (await client.get("/metrics")).text()
    assert 'supamanager_jobs_total{kind="backup",result="failure"} 1' in text
    assert 'supamanager_backups{status="FAILED"} 1' in text
    # the failed attempt is not repeated before the next day's time, and the fake published one
    assert 'supamanager_backups{status="COMPLETED"} 1' in text
    assert len([o for o in await client.app[keys.STORE].operations_for(ref) if o["kind"] == "backup"]) == 1


async def test_a_restore_point_is_a_named_backup_pending_then_available(client, settings):
    ref = await active(client)
    url = f"/v1/projects/{ref}/database/backups/restore-point"
    for bad in ("", "a b", "x" * 21, "../etc", "-a", "a;b", 7):
        resp, body = await checked(client, "POST", url, headers=AUTH, json={"name": bad})
        assert resp.status == 400, (bad, body)
    resp, _ = await checked(client, "POST", url, headers=AUTH, json={})
    assert resp.status == 400
    absent = "/v1/projects/abcdefghijklmnopqrst/database/backups/restore-point"
    assert (await checked(client, "POST", absent, headers=AUTH, json={"name": "p"}))[0].status == 404
    resp, body = await checked(client, "GET", url, headers=AUTH)
    assert (resp.status, body["code"]) == (404, "restore_point_not_found")
    assert [op["kind"] for op in await client.app[keys.STORE].operations_for(ref)] == ["create"]

    (settings.root / "hold").touch()
    resp, body = await checked(client, "POST", url, headers=AUTH, json={"name": "before-upgrade"})
    assert (resp.status, body) == (201, {"name": "before-upgrade", "status": "PENDING", "completed_on": None})
    op_id = resp.headers["X-Operation-Id"]
    resp, body = await checked(client, "GET", url, headers=AUTH, params={"name": "before-upgrade"})
    assert (resp.status, body["status"]) == (200, "PENDING")
    (settings.root / "hold").unlink()
    op = await wait_operation(client, op_id)
    assert (op["kind"], op["state"], op["params"]) == ("backup", "succeeded", {"restore_point": "before-upgrade"})
    assert json.loads((settings.root / f"vars-{ref}-backup.json").read_text())["restore_point"] == "before-upgrade"
    resp, body = await checked(client, "GET", url, headers=AUTH, params={"name": "before-upgrade"})
    backup_id = (await checked(client, "GET", f"/v1/projects/{ref}/database/backups", headers=AUTH))[1]["backups"][0][
        "id"
    ]
    assert resp.status == 200 and body["status"] == "AVAILABLE" and body["backup_id"] == backup_id
    assert body["completed_on"] == datetime.datetime.fromtimestamp(backup_id + 1, datetime.UTC).isoformat()
    assert (await checked(client, "GET", url, headers=AUTH))[1] == body  # no name: the newest
    resp, body = await checked(client, "POST", url, headers=AUTH, json={"name": "before-upgrade"})
    assert (resp.status, body["code"]) == (409, "restore_point_exists")
    resp, body = await checked(client, "GET", url, headers=AUTH, params={"name": "nope"})
    assert resp.status == 404
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/pause", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    resp, body = await checked(client, "POST", url, headers=AUTH, json={"name": "paused"})
    assert resp.status == 400 and "healthy" in body["message"]


def test_a_restore_points_status_follows_its_backup_and_its_operation():
    def op(name, state):
        return {"kind": "backup", "state": state, "params": {"restore_point": name}}

    operations = [op("ran", "running"), op("broke", "failed"), op("pruned", "succeeded"), op("kept", "succeeded")]
    operations.append({"kind": "restore_backup", "state": "running", "params": {"backup_id": 5}})
    manifests = [
        {"id": 10, "status": "COMPLETED", "base_end": 12, "restore_point": "kept"},
        {"id": 20, "status": "FAILED", "base_end": 22, "restore_point": "bad-check"},
        {"id": 30, "status": "COMPLETED", "base_end": 31},
    ]
    points = restore_points(manifests, operations)
    assert {name: p["status"] for name, p in points.items()} == {
        "ran": "PENDING",
        "broke": "FAILED",
        "pruned": "REMOVED",
        "kept": "AVAILABLE",
        "bad-check": "FAILED",
    }
    assert points["kept"]["completed_on"] == "1970-01-01T00:00:12+00:00" and points["bad-check"]["completed_on"] is None
