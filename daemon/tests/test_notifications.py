"""Notifications (notifications.py) on the daemon in process with the fake playbooks (conftest) and
webhook receivers on 127.0.0.1 (aiohttp servers of the test): a pause and a failed create reach the
organization's receiver signed with its secret; a receiver answering 500 gets the configured retries,
each recorded; one that hangs delays neither the poller nor the other receiver;
/platform/notifications/summary counts what is unread. The daemon on the real playbooks emits
through the same two calls (the jobs' end and the poll): test_daemon_e2e.py covers their statuses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time

import pytest
from conftest import AUTH, wait_operation
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
from supamanager_daemon.notifications import SIGNATURE_HEADER

SECRET = "whsec-" + "k" * 26


@pytest.fixture
async def notifying(aiohttp_client, settings, tmp_path):
    """The daemon with quick retries and no Docker to poll (each poll says UNKNOWN)."""
    quick = dataclasses.replace(
        settings, notify_attempts=3, notify_backoff=0.3, notify_timeout=2, docker_socket=str(tmp_path / "no.sock")
    )
    client = await aiohttp_client(create_app(quick))
    await client.app[keys.POLLER].stop()  # polled by hand below
    return client


async def register(client, url: str, slug: str = "default") -> dict:
    resp = await client.post(f"/v1/organizations/{slug}/webhooks", json={"url": url, "secret": SECRET}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def created(client) -> str:
    resp = await client.post("/v1/projects", json={"name": "n"}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    return (await resp.json())["ref"], op


async def recorded(client) -> str:
    """A project in the store, ACTIVE_HEALTHY, without a playbook run (what the emitters see)."""
    store = client.app[keys.STORE]
    project, op = await store.create_project(ref="r" * 20, name="n", organization_slug="default", region="local")
    await store.finish_operation(op["id"], ok=True)
    return project["ref"]


async def until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


def signed(headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[SIGNATURE_HEADER], expected)


async def test_a_pause_reaches_the_receiver_signed_and_the_summary_counts_it(notifying, receivers):
    """(A failed create's operation.failed: test_daemon_api.py, on its failed create.)"""
    receiver, url = await receivers()
    hook = await register(notifying, url)
    assert "secret" not in hook and hook["url"] == url
    listed = await (await notifying.get("/v1/organizations/default/webhooks", headers=AUTH)).json()
    assert listed == [hook] and SECRET not in json.dumps(listed)

    ref, _ = await created(notifying)
    resp = await notifying.post(f"/v1/projects/{ref}/pause", headers=AUTH)
    await wait_operation(notifying, resp.headers["X-Operation-Id"])
    await until(lambda: len(receiver.got) >= 2)
    await notifying.app[keys.NOTIFIER].drain()
    events = [(e["event"], e["ref"], e.get("status"), e.get("previous_status")) for e in receiver.events()]
    assert events == [
        ("project.status_changed", ref, "ACTIVE_HEALTHY", "COMING_UP"),
        ("project.status_changed", ref, "INACTIVE", "PAUSING"),
    ]
    for headers, body, _ in receiver.got:
        assert signed(headers, body), headers
        assert headers["X-Supamanager-Event"] == json.loads(body)["event"]

    # the store has them, unread, with their deliveries; the summary counts them until marked read
    summary = await (await notifying.get("/platform/notifications/summary", headers=AUTH)).json()
    assert summary == {"unread_count": 2, "unread_by_event": {"project.status_changed": 2}, "has_warning": False}
    notes = await (await notifying.get("/platform/notifications?unread=true", headers=AUTH)).json()
    assert all(n["deliveries"] == [{**n["deliveries"][0], "attempt": 1, "status": 200, "error": None}] for n in notes)
    first = min(n["id"] for n in notes)
    resp = await notifying.patch("/platform/notifications", json={"ids": [first]}, headers=AUTH)
    assert (await resp.json()) == {"marked": 1}
    summary = await (await notifying.get("/platform/notifications/summary", headers=AUTH)).json()
    assert summary["unread_count"] == len(receiver.got) - 1
    assert (await (await notifying.patch("/platform/notifications", json={}, headers=AUTH)).json())["marked"] >= 1
    summary = await (await notifying.get("/platform/notifications/summary", headers=AUTH)).json()
    assert summary == {"unread_count": 0, "unread_by_event": {}, "has_warning": False}
    # no token, no notifications
    assert (await notifying.get("/platform/notifications/summary")).status == 401


async def test_a_receiver_answering_500_gets_retries_with_backoff_each_recorded(notifying, receivers):
    receiver, url = await receivers(status=500)
    await register(notifying, url)
    notifying.app[keys.NOTIFIER].status_changed(await recorded(notifying), "ACTIVE_HEALTHY", "COMING_UP")
    await until(lambda: len(receiver.got) >= 3)
    await notifying.app[keys.NOTIFIER].drain()
    assert len(receiver.got) == 3  # notify_attempts
    arrivals = [at for _, _, at in receiver.got]
    # backoff 0.3 s, then 0.6 s (doubling)
    assert arrivals[1] - arrivals[0] >= 0.3 and arrivals[2] - arrivals[1] >= 0.6
    assert len({body for _, body, _ in receiver.got}) == 1  # the same notification each time
    (note,) = await (await notifying.get("/platform/notifications", headers=AUTH)).json()
    assert [(d["attempt"], d["status"], d["error"]) for d in note["deliveries"]] == [
        (1, 500, "answered 500"), (2, 500, "answered 500"), (3, 500, "answered 500")
    ]  # fmt: skip


async def test_a_hanging_receiver_delays_neither_the_poller_nor_another_receiver(notifying, receivers):
    hanging, hanging_url = await receivers(hang=True)
    quick, quick_url = await receivers()
    hung = await register(notifying, hanging_url)
    await register(notifying, quick_url)
    ref = await recorded(notifying)
    notifying.app[keys.NOTIFIER].status_changed(ref, "ACTIVE_HEALTHY", "COMING_UP")
    await asyncio.wait_for(hanging.arrived.wait(), 30)
    # the hanging delivery is in flight; the other receiver has its copy already
    await until(lambda: len(quick.got) >= 1)
    # a poll (no Docker: the project becomes UNKNOWN) emits a status change and returns at once
    started = time.monotonic()
    assert await notifying.app[keys.POLLER].poll_once() == [ref]
    assert time.monotonic() - started < 1.0
    await until(lambda: any(e.get("status") == "UNKNOWN" for e in quick.events()), timeout=10)
    assert quick.events()[-1]["previous_status"] == "ACTIVE_HEALTHY"
    # the hanging receiver's attempt times out (notify_timeout 2 s) and is recorded as such
    deadline = time.monotonic() + 30
    while True:
        notes = await (await notifying.get("/platform/notifications", headers=AUTH)).json()
        timed_out = [d for n in notes for d in n["deliveries"] if d["webhook_id"] == hung["id"] and d["error"]]
        if timed_out:
            break
        assert time.monotonic() < deadline, notes
        await asyncio.sleep(0.2)
    assert timed_out[0]["status"] is None and "Timeout" in timed_out[0]["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "ftp://127.0.0.1/x", "secret": SECRET}, 400),
        ({"url": "http://user:pw@127.0.0.1/x", "secret": SECRET}, 400),
        ({"url": "http://127.0.0.1/x\n", "secret": SECRET}, 400),
        ({"url": "http://127.0.0.1/x", "secret": "short"}, 400),
        ({"url": "http://127.0.0.1/x"}, 400),
    ],
)
async def test_a_bad_webhook_is_refused_and_nothing_is_stored(client, body, status):
    resp = await client.post("/v1/organizations/default/webhooks", json=body, headers=AUTH)
    assert resp.status == status
    assert "short" not in await resp.text() and SECRET not in await resp.text()
    assert (await (await client.get("/v1/organizations/default/webhooks", headers=AUTH)).json()) == []


async def test_webhooks_of_an_unknown_organization_are_404_and_a_removed_one_gets_nothing(client):
    resp = await client.post("/v1/organizations/nope/webhooks", json={"url": "http://127.0.0.1/x", "secret": SECRET},
                             headers=AUTH)  # fmt: skip
    assert resp.status == 404
    hook = await register(client, "http://127.0.0.1:9/x")
    resp = await client.delete(f"/v1/organizations/default/webhooks/{hook['id']}", headers=AUTH)
    assert resp.status == 200 and (await resp.json()) == hook
    assert (await client.delete(f"/v1/organizations/default/webhooks/{hook['id']}", headers=AUTH)).status == 404
    assert (await (await client.get("/v1/organizations/default/webhooks", headers=AUTH)).json()) == []


async def test_a_failed_backup_is_a_backup_failed_and_changes_no_status(notifying, receivers):
    """A backup operation that failed (scheduled or asked for) is `backup.failed`; a backup leaves the
    project's status as it is, so no status change is sent. The operation is given here: a backup that
    really fails is the role's (tests/integration/role/test_backup.py), not run through the daemon."""
    receiver, url = await receivers()
    await register(notifying, url)
    ref = await recorded(notifying)
    failed = {"id": "op-1", "ref": ref, "kind": "backup", "state": "failed", "error": "pg_basebackup: boom"}
    notifying.app[keys.NOTIFIER].operation_finished(failed)
    notifying.app[keys.NOTIFIER].operation_finished({**failed, "id": "op-2", "state": "succeeded", "error": None})
    await notifying.app[keys.NOTIFIER].drain()
    assert [(e["event"], e["operation_id"], e["error"]) for e in receiver.events()] == [
        ("backup.failed", "op-1", "pg_basebackup: boom")
    ]
    summary = await (await notifying.get("/platform/notifications/summary", headers=AUTH)).json()
    assert summary == {"unread_count": 1, "unread_by_event": {"backup.failed": 1}, "has_warning": True}
