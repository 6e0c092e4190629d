"""The fleet routes (ours) through create_app and aiohttp's test client: a project's healing state
and its "do not heal" mark, and the orphan routes' answers when Docker cannot be asked or the query
is wrong. Listing and cleaning orphans on a real engine: test_healing_e2e.py."""

from __future__ import annotations

import dataclasses

from conftest import AUTH
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
from supamanager_daemon.fleet.healing import Record

REF = "abcdefghijklmnopqrst"


async def test_healing_is_on_by_default_can_be_turned_off_and_on_again(client):
    store = client.app[keys.STORE]
    await store.create_project(ref=REF, name="n", organization_slug="default", region="r")
    resp = await client.get(f"/v1/projects/{REF}/healing", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"enabled": True, "services": {}}

    await store.set_healing_services(REF, {"db": Record(attempts=3, failures=3, gave_up=True, reason="r").to_json()})
    resp = await client.put(f"/v1/projects/{REF}/healing", json={"enabled": False}, headers=AUTH)
    assert resp.status == 200
    off = await resp.json()
    assert off["enabled"] is False
    assert off["services"]["db"]["gave_up"] is True  # turning it off keeps what was tried

    resp = await client.put(f"/v1/projects/{REF}/healing", json={"enabled": True}, headers=AUTH)
    assert await resp.json() == {"enabled": True, "services": {}}  # on again: a fresh start


async def test_healing_of_an_unknown_project_is_404_and_a_bad_body_400(client):
    for ref in (REF, "not-a-ref"):
        resp = await client.get(f"/v1/projects/{ref}/healing", headers=AUTH)
        assert resp.status == 404
        assert (await resp.json())["code"] == "project_not_found"
    await client.app[keys.STORE].create_project(ref=REF, name="n", organization_slug="default", region="r")
    for body in ({}, {"enabled": "no"}, {"enabled": True, "extra": 1}):
        resp = await client.put(f"/v1/projects/{REF}/healing", json=body, headers=AUTH)
        assert resp.status == 400, body


async def test_orphans_need_docker_and_a_valid_ref(aiohttp_client, settings, tmp_path):
    broken = dataclasses.replace(settings, docker_socket=str(tmp_path / "no-docker.sock"))
    client = await aiohttp_client(create_app(broken))
    resp = await client.get("/v1/orphans", headers=AUTH)
    assert resp.status == 503
    assert (await resp.json())["code"] == "docker_unavailable"
    resp = await client.delete("/v1/orphans", headers=AUTH)
    assert resp.status == 503
    resp = await client.delete("/v1/orphans?ref=Bad%20Ref", headers=AUTH)
    assert resp.status == 400
    assert (await client.get("/v1/orphans")).status == 401


async def test_without_an_inventory_there_is_no_host_to_move_to(client):
    await client.app[keys.STORE].create_project(ref=REF, name="n", organization_slug="default", region="r")
    resp = await client.post(f"/v1/projects/{REF}/move", json={"target_host": "other"}, headers=AUTH)
    assert resp.status == 400 and (await resp.json())["code"] == "no_fleet"
    resp = await client.get("/platform/fleet/hosts/localhost/drain", headers=AUTH)
    assert resp.status == 200 and await resp.json() == {
        "host": "localhost", "draining": False, "done": True, "moves": [], "skipped": [], "projects_left": 1
    }  # fmt: skip
