"""The /platform routes Studio's platform mode reads (api/studio.py), on the fake collection.

Each answer is checked against our served document (openapi_check.checked) and against the fields
the Studio source names (supabase/supabase, apps/studio/...): the test says which file. The actions
start the same operations as /v1 (their kind and params, read back from /v1/operations).
"""

from __future__ import annotations

import json

from conftest import AUTH, wait_operation
from openapi_check import checked
from supamanager_daemon import keys

# apps/studio/pages/api/constants.ts DEFAULT_PROJECT, plus organization_slug (projects-query.ts pages)
STUDIO_PROJECT = {
    "id",
    "ref",
    "name",
    "organization_id",
    "organization_slug",
    "cloud_provider",
    "status",
    "region",
    "inserted_at",
}
# apps/studio/data/projects/project-detail-query.ts: what Studio uses to reach the project
STUDIO_DETAIL = STUDIO_PROJECT | {"db_host", "restUrl", "connectionString"}
# apps/studio/lib/api/self-hosted/settings.ts getProjectSettings()
STUDIO_SETTINGS = {
    "app_config",
    "cloud_provider",
    "db_dns_name",
    "db_host",
    "db_ip_addr_config",
    "db_name",
    "db_port",
    "db_user",
    "inserted_at",
    "jwt_secret",
    "name",
    "ref",
    "region",
    "service_api_keys",
    "ssl_enforced",
    "status",
}


async def test_platform_routes_need_the_token(client):
    for method, path in (
        ("GET", "/platform/projects"),
        ("GET", "/platform/organizations"),
        ("GET", "/platform/profile"),
        ("POST", "/platform/projects/abcdefghijklmnopqrst/pause"),
        ("DELETE", "/platform/projects/abcdefghijklmnopqrst"),
    ):
        resp = await client.request(method, path)
        assert resp.status == 401, (method, path)
        assert (await resp.json())["code"] == "unauthorized"
    resp = await client.get("/platform/projects", headers={"Authorization": "Bearer wrong-token-wrong-token-wrong"})
    assert resp.status == 401


async def test_organizations_and_profile_in_studios_shapes(client):
    # apps/studio/pages/api/constants.ts DEFAULT_ORGANIZATION, read by data/organizations/organizations-query.ts
    _, org = await checked(client, "POST", "/v1/organizations", json={"name": "Second"}, headers=AUTH)
    resp, orgs = await checked(client, "GET", "/platform/organizations", headers=AUTH)
    assert resp.status == 200
    assert [o["slug"] for o in orgs] == ["default", org["slug"]]
    assert [o["id"] for o in orgs] == [1, 2]
    assert set(orgs[0]) == {"id", "name", "slug", "billing_email", "plan"}
    assert set(orgs[0]["plan"]) == {"id", "name"}
    # apps/studio/data/profile/types.ts ProfileResponse
    resp, profile = await checked(client, "GET", "/platform/profile", headers=AUTH)
    assert resp.status == 200
    assert {"id", "primary_email", "username", "first_name", "last_name", "disabled_features"} <= set(profile)
    assert "billing:all" in profile["disabled_features"]


async def test_projects_settings_and_actions_through_platform(client, settings, monkeypatch):
    # The fake playbooks start no containers: a poll would find the project REMOVED. Keep the
    # statuses the jobs set (the poll interval is an hour; only a job's end wakes the poller).
    monkeypatch.setattr(client.server.app[keys.POLLER], "wake", lambda: None)
    resp, created = await checked(client, "POST", "/v1/projects", json={"name": "studio"}, headers=AUTH)
    ref = created["ref"]
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
    # The role's project.json holds every port; the fake one only kong's: add the database's.
    info_path = settings.root / "projects" / ref / "project.json"
    info = json.loads(info_path.read_text())
    info["ports"] |= {"postgres": 54329, "pooler_transaction": 54330}
    info_path.write_text(json.dumps(info))
    (settings.root / "projects" / ref / ".env").write_text(
        "ANON_KEY=anon.x\nSERVICE_ROLE_KEY=service.x\nJWT_SECRET=jwt-secret-of-the-project\n"
    )

    # apps/studio/data/projects/projects-query.ts: ListProjectsPaginatedResponse, `Version: 2`
    resp, listed = await checked(client, "GET", "/platform/projects", headers={**AUTH, "Version": "2"})
    assert resp.status == 200
    assert listed["pagination"] == {"count": 1, "limit": 1, "offset": 0}
    (project,) = listed["projects"]
    assert set(project) == STUDIO_PROJECT
    assert project["ref"] == ref and project["status"] == "ACTIVE_HEALTHY"
    assert project["organization_slug"] == "default" and project["organization_id"] == 1
    assert project["inserted_at"] == created["created_at"]

    # apps/studio/data/projects/project-detail-query.ts
    resp, detail = await checked(client, "GET", f"/platform/projects/{ref}", headers=AUTH)
    assert set(detail) == STUDIO_DETAIL
    assert detail["restUrl"] == "http://localhost:54321/rest/v1/"
    assert detail["connectionString"] == "postgresql://postgres:[YOUR-PASSWORD]@localhost:54329/postgres"
    resp, _ = await checked(client, "GET", "/platform/projects/abcdefghijklmnopqrst", headers=AUTH)
    assert resp.status == 404

    # apps/studio/lib/api/self-hosted/settings.ts
    resp, got = await checked(client, "GET", f"/platform/projects/{ref}/settings", headers=AUTH)
    assert set(got) == STUDIO_SETTINGS
    assert got["app_config"] == {
        "db_schema": "public",
        "endpoint": "localhost:54321",
        "storage_endpoint": "localhost:54321",
        "protocol": "http",
    }
    assert got["db_port"] == 54329 and got["jwt_secret"] == "jwt-secret-of-the-project"
    assert {k["tags"]: k["api_key"] for k in got["service_api_keys"]} == {
        "anon": "anon.x",
        "service_role": "service.x",
    }

    # The actions are the /v1 operations: same kinds, same refusals.
    resp, body = await checked(client, "POST", f"/platform/projects/{ref}/pause", headers=AUTH)
    assert resp.status == 200 and body["status"] == "PAUSING"
    again, refused = await checked(client, "POST", f"/platform/projects/{ref}/resume", headers=AUTH)
    assert again.status == 409 and refused["details"]["operation_id"] == resp.headers["X-Operation-Id"]
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"]) == ("pause", "succeeded")
    # A paused project is not restarted (restart's own refusal: the /v1 choice).
    resp, refused = await checked(client, "POST", f"/platform/projects/{ref}/restart", headers=AUTH)
    assert resp.status == 400 and refused["code"] == "paused"
    resp, body = await checked(client, "POST", f"/platform/projects/{ref}/resume", headers=AUTH)
    assert resp.status == 200 and body["status"] == "RESTORING"
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"]) == ("restore", "succeeded")
    # Studio's own name for resume is .../restore: the same choice (a running project is not paused).
    resp, refused = await checked(client, "POST", f"/platform/projects/{ref}/restore", headers=AUTH)
    assert resp.status == 400 and refused["code"] == "not_paused"

    # The delete takes the final backup, as DELETE /v1/projects/{ref} does by default.
    resp, body = await checked(client, "DELETE", f"/platform/projects/{ref}", headers=AUTH)
    assert resp.status == 200 and body["ref"] == ref
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["kind"] == "delete" and op["params"]["backup"] is True and op["state"] == "succeeded"
    _, listed = await checked(client, "GET", "/platform/projects", headers=AUTH)
    assert listed["projects"] == []
