"""The Database backups routes through create_app (fake playbooks of conftest.py), over a backup
repository written as the role's module_utils/_backup_repository.py writes it. The real backups,
checks and restores are tested in tests/integration/role/test_backup.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import jsonschema
from conftest import AUTH, wait_operation
from openapi_check import checked
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
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


async def test_delete_takes_a_final_backup_with_backup_true(client, settings):
    for query, want in (("", False), ("?backup=true", True), ("?backup=false", False)):
        project, op_id = await create(client)
        assert (await wait_operation(client, op_id))["state"] == "succeeded"
        resp = await client.delete(f"/v1/projects/{project['ref']}{query}", headers=AUTH)
        assert resp.status == 200
        assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
        recorded = json.loads((settings.root / f"vars-{project['ref']}-delete.json").read_text())
        assert recorded["delete_backup"] is want


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


async def test_the_schedule_backs_up_each_healthy_project_once_its_newest_backup_is_older_than_the_interval(
    aiohttp_client, settings
):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, backup_interval=3600)))
    schedule = client.app[keys.BACKUP_SCHEDULE]
    await schedule.stop()  # driven by hand here; the loop itself: the next test
    due, recent, paused = await active(client), await active(client), await active(client)
    write_backup(settings.root, recent, int(time.time()) - 60, "COMPLETED", 1)
    write_backup(settings.root, due, int(time.time()) - 4000, "COMPLETED", 1)
    resp, _ = await checked(client, "POST", f"/v1/projects/{paused}/pause", headers=AUTH)
    await wait_operation(client, resp.headers["X-Operation-Id"])

    assert await schedule.run_once() == [due]
    ops = [op for op in await client.app[keys.STORE].operations_for(due) if op["kind"] == "backup"]
    assert [op["params"] for op in ops] == [{"scheduled": True}]
    assert (await wait_operation(client, ops[0]["id"]))["state"] == "succeeded"
    assert json.loads((settings.root / f"vars-{due}-backup.json").read_text())["backup_kind"] == "scheduled"
    # its new backup is recent; the others' are too, or the project is paused
    assert await schedule.run_once() == []
    assert sorted(await schedule.run_once(now=time.time() + 3700)) == sorted([due, recent])


async def test_the_schedule_runs_by_itself_and_a_failed_backup_shows_in_the_metrics(aiohttp_client, settings):
    (settings.root / "fail-backup").touch()
    client = await aiohttp_client(create_app(dataclasses.replace(settings, backup_interval=0.5)))
    ref = await active(client)
    deadline = time.monotonic() + 300
    while not (ops := [o for o in await client.app[keys.STORE].operations_for(ref) if o["kind"] == "backup"]):
        assert time.monotonic() < deadline, "the schedule started no backup"
        await asyncio.sleep(0.2)
    assert (await wait_operation(client, ops[0]["id"]))["state"] == "failed"
    write_backup(settings.root, ref, 1796100000, "FAILED", 1796100005)
    text = await (await client.get("/metrics")).text()
    assert 'supamanager_jobs_total{kind="backup",result="failure"} 1' in text
    assert 'supamanager_backups{status="FAILED"} 1' in text
    # the failed attempt is not repeated before an interval has passed, and the fake published one
    assert 'supamanager_backups{status="COMPLETED"} 1' in text
