"""Conformance: every operation of the official Management API document that the daemon serves,
called for its success and its errors, answers as the document says (official_check.py): the
success status, the response schema (required fields, types, enums), errors with `message`.

Adding an upstream operation: add its calls here, or test_every_served_operation_was_checked fails.
Runs on the fake playbooks of conftest.py; the real clients run in test_clients.py.
"""

from __future__ import annotations

import pytest
from conftest import AUTH, wait_operation
from official_check import EXERCISED, official_operation
from openapi_check import checked
from supamanager_daemon import keys
from supamanager_daemon.app import create_app

pytestmark = pytest.mark.slow

# What the official CLI sends for `projects create --org-id default --db-password ... --region ... --size`,
# and the other legal upstream fields.
UPSTREAM_CREATE = {
    "name": "conformance",
    "organization_slug": "default",
    "db_pass": "password123",
    "region": "us-east-1",
    "desired_instance_size": "micro",
    "kps_enabled": False,
    "plan": "free",
    "template_url": "https://example.invalid/t",
    "region_selection": {"type": "specific", "code": "us-east-1"},
}


async def call(client, method: str, url: str, status: int, **kwargs):
    resp, body = await checked(client, method, url, headers=AUTH, **kwargs)
    assert resp.status == status, (method, url, resp.status, body)
    return resp, body


async def test_every_operation_answers_as_the_document_says(client, settings):
    # The fake playbooks start no container: keep the poller from reporting the project REMOVED.
    await client.app[keys.POLLER].stop()
    ref = "zzzzzzzzzzzzzzzzzzzz"

    # Organizations
    _, orgs = await call(client, "GET", "/v1/organizations", 200)
    assert {"id": "default", "slug": "default", "name": "Default organization"} in orgs
    _, org = await call(client, "POST", "/v1/organizations", 201, json={"name": "Acme"})
    assert org["id"] == org["slug"] and len(org["slug"]) == 20
    await call(client, "POST", "/v1/organizations", 400, json={"name": "Acme", "billing_email": "x"})
    _, got = await call(client, "GET", f"/v1/organizations/{org['slug']}", 200)
    assert (got["id"], got["name"], got["plan"]) == (org["slug"], "Acme", "free")
    await call(client, "GET", "/v1/organizations/nope", 404)
    await call(client, "GET", "/v1/organizations/nope/projects", 404)
    await call(client, "GET", "/v1/organizations/default/projects?limit=0", 400)

    # Projects: create with what the CLI sends, then every read
    resp, project = await call(client, "POST", "/v1/projects", 201, json=UPSTREAM_CREATE)
    ref = project["ref"]
    assert project["organization_slug"] == "default" and project["region"] == "us-east-1"
    await call(client, "POST", "/v1/projects", 400, json={**UPSTREAM_CREATE, "organization_slug": "nope"})
    await call(client, "POST", "/v1/projects", 400, json={**UPSTREAM_CREATE, "db_pass": "short"})
    await call(client, "POST", "/v1/projects", 400, json={**UPSTREAM_CREATE, "bogus": 1})
    # A second request while the create runs: 409 with a message.
    await call(client, "POST", f"/v1/projects/{ref}/pause", 409)
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "succeeded", op

    _, listed = await call(client, "GET", "/v1/projects", 200)
    assert [p["ref"] for p in listed] == [ref]
    _, got = await call(client, "GET", f"/v1/projects/{ref}", 200)
    assert got["database"]["version"].startswith("15.")  # the full version: the CLI uses it as an image tag
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst", 404)
    _, page = await call(client, "GET", "/v1/organizations/default/projects?limit=5&search=CONFORM", 200)
    assert [p["ref"] for p in page["projects"]] == [ref] and page["pagination"]["count"] == 1
    await call(client, "GET", f"/v1/projects/{ref}/api-keys?reveal=true", 200)
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/api-keys", 404)
    resp, _ = await checked(client, "GET", f"/v1/projects/{ref}/health?services=db,auth", headers=AUTH)
    assert resp.status in (200, 503)  # 503: this host's Docker cannot be asked
    await call(client, "GET", f"/v1/projects/{ref}/health", 400)
    await call(client, "GET", f"/v1/projects/{ref}/database/backups", 200)
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/database/backups", 404)
    for path, body in (("restore-pitr", {"recovery_time_target_unix": 1796100250}), ("restore", {"id": 1796100200})):
        resp, _ = await call(client, "POST", f"/v1/projects/{ref}/database/backups/{path}", 201, json=body)
        await wait_operation(client, resp.headers["X-Operation-Id"])
        await call(client, "POST", f"/v1/projects/{ref}/database/backups/{path}", 400, json={})
        await call(client, "POST", f"/v1/projects/abcdefghijklmnopqrst/database/backups/{path}", 404, json=body)

    # Lifecycle: 200 as upstream
    resp, _ = await call(client, "POST", f"/v1/projects/{ref}/pause", 200)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    await call(client, "POST", f"/v1/projects/{ref}/pause", 400)
    resp, _ = await call(client, "POST", f"/v1/projects/{ref}/restore", 200)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    await call(client, "POST", "/v1/projects/abcdefghijklmnopqrst/restore", 404)
    resp, deleted = await call(client, "DELETE", f"/v1/projects/{ref}", 200)
    assert isinstance(deleted["id"], int) and deleted["ref"] == ref
    await wait_operation(client, resp.headers["X-Operation-Id"])
    await call(client, "DELETE", f"/v1/projects/{ref}", 404)

    # No token, a wrong token: 401 with a message.
    resp, body = await checked(client, "GET", "/v1/projects")
    assert resp.status == 401 and body["message"]
    resp, body = await checked(client, "GET", "/v1/organizations", headers={"Authorization": "Bearer sbp_" + "0" * 40})
    assert resp.status == 401 and body["message"]


def test_every_served_operation_was_checked(settings):
    """Runs after the test above (file order): each upstream operation we serve was called and checked."""
    app = create_app(settings)
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method not in ("HEAD", "*"):
            found = official_operation(route.method, path.replace("{", "").replace("}", ""))
            if found is not None:
                served.add((route.method, found[0]))
    assert served, "no upstream operation is served?"
    missing = sorted(served - set(EXERCISED))
    assert not missing, f"served but never checked against the document: {missing}"
    errors_only = sorted(op for op in served if not any(s < 300 for s in EXERCISED[op]))
    assert not errors_only, f"checked on errors only: {errors_only}"
