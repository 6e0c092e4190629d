"""Conformance: every operation of the official Management API document that the daemon serves,
called for its success and its errors, answers as the document says (official_check.py): the
success status, the response schema (required fields, types, enums), errors with `message`.

Adding an upstream operation: add its calls here, or test_every_served_operation_was_checked fails.
Runs on the fake playbooks of conftest.py, except the operations that read a project's own
database, called on the session's live project (conftest.live_project); the real clients run in
test_clients.py and test_database_api.py.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import hashlib
import json
import time
import urllib.parse

import aiohttp
import pytest
from conftest import AUTH, wait_operation
from official_check import EXERCISED, official_operation
from openapi_check import checked
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
from test_backups_api import write_backup
from test_domains_api import BAD_NAMES
from test_fleet import write_inventory

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


def deploy_form(path: str = "supabase/functions/hello/index.ts", source: bytes = b"Deno.serve(() => 1)"):
    """What `supabase functions deploy hello --use-api` sends: the metadata part, one part per file."""
    form = aiohttp.FormData()
    form.add_field("metadata", json.dumps({"entrypoint_path": path, "name": "hello", "verify_jwt": True}))
    form.add_field("file", source, filename=path)
    return form


def malformed_form(parts: dict[str, bytes]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, data in parts.items():
        if name == "file":
            form.add_field(name, data, filename="index.ts")
        else:
            form.add_field(name, data.decode())
    return form


def function_body_parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A multipart/form-data answer as a client's parser reads it: (name, filename, content) per part."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


async def call(client, method: str, url: str, status: int, **kwargs):
    resp, body = await checked(client, method, url, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)
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
    # nor a function deploy while the create writes the project's files
    await call(client, "POST", f"/v1/projects/{ref}/functions/deploy?slug=hello", 409, data=deploy_form())
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
    write_backup(settings.root, ref, 1796100200, "COMPLETED", 1796100210)
    for path, body in (("restore-pitr", {"recovery_time_target_unix": 1796100250}), ("restore", {"id": 1796100200})):
        resp, _ = await call(client, "POST", f"/v1/projects/{ref}/database/backups/{path}", 201, json=body)
        await wait_operation(client, resp.headers["X-Operation-Id"])
        await call(client, "POST", f"/v1/projects/{ref}/database/backups/{path}", 400, json={})
        await call(client, "POST", f"/v1/projects/abcdefghijklmnopqrst/database/backups/{path}", 404, json=body)
    schedule, absent = f"/v1/projects/{ref}/database/backups/schedule", "/v1/projects/abcdefghijklmnopqrst"
    await call(client, "GET", schedule, 404)  # no default schedule in these settings, none of its own
    _, set_to = await call(client, "PATCH", schedule, 200, json={"schedule_for": "04:00:00"})
    _, got = await call(client, "GET", schedule, 200)
    assert got == set_to and got["schedule_for"] == "04:00:00"
    await call(client, "PATCH", schedule, 400, json={"schedule_for": "4am"})
    await call(client, "PATCH", f"{absent}/database/backups/schedule", 404, json={"schedule_for": "04:00:00"})
    await call(client, "GET", f"{absent}/database/backups/schedule", 404)
    point = f"/v1/projects/{ref}/database/backups/restore-point"
    resp, made = await call(client, "POST", point, 201, json={"name": "before-upgrade"})
    assert made["status"] == "PENDING"
    await wait_operation(client, resp.headers["X-Operation-Id"])
    _, got = await call(client, "GET", f"{point}?name=before-upgrade", 200)
    assert got["status"] == "AVAILABLE"
    await call(client, "POST", point, 400, json={"name": "x" * 21})
    await call(client, "POST", f"{absent}/database/backups/restore-point", 404, json={"name": "p"})
    await call(client, "GET", f"{point}?name=nope", 404)

    # The database password: an operation whose job gets the new password (never the store).
    resp, changed = await call(
        client, "PATCH", f"/v1/projects/{ref}/database/password", 200, json={"password": "new-password-1"}
    )
    assert changed["message"]
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"]) == ("password", "succeeded"), op
    recorded = json.loads((settings.root / f"vars-{ref}-password.json").read_text())
    assert recorded["password"] == "new-password-1"
    await call(client, "PATCH", f"/v1/projects/{ref}/database/password", 400, json={"password": "a b"})
    await call(client, "PATCH", "/v1/projects/abcdefghijklmnopqrst/database/password", 404, json={"password": "x" * 9})

    # Auth settings: the fake create's .env and project.json have three of them; the change is an
    # operation whose job gets the values (never the store), secrets answered as digests.
    auth = f"/v1/projects/{ref}/config/auth"
    _, got = await call(client, "GET", auth, 200)
    assert (got["disable_signup"], got["smtp_pass"], got["site_url"]) == (
        False,
        hashlib.sha256(b"fake").hexdigest(),
        None,
    )
    change = {"disable_signup": True, "smtp_pass": "new-smtp-pass", "saml_enabled": None}
    resp, got = await call(client, "PATCH", auth, 200, json=change)
    assert (got["disable_signup"], got["smtp_pass"]) == (True, hashlib.sha256(b"new-smtp-pass").hexdigest())
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == (
        "settings",
        "succeeded",
        {"auth": ["disable_signup", "smtp_pass"]},
    )
    recorded = json.loads((settings.root / f"vars-{ref}-settings.json").read_text())
    assert recorded["auth_settings_change"] == {"disable_signup": True, "smtp_pass": "new-smtp-pass"}
    _, refused = await call(client, "PATCH", auth, 400, json={"jwt_exp": 604801})
    assert refused["message"] == "field 'jwt_exp' must be at most 604800"
    _, refused = await call(client, "PATCH", auth, 400, json={"disable_signup": "yes"})
    assert refused["message"] == "field 'disable_signup' must be a boolean, not a string"
    _, refused = await call(client, "PATCH", auth, 400, json={"saml_enabled": True})
    assert refused["details"] == {"field": "saml_enabled"}
    _, refused = await call(client, "PATCH", auth, 400, json={"smtp_pass": "a$b"})
    assert "$" in refused["message"] and "a$b" not in refused["message"]
    _, refused = await call(client, "PATCH", auth, 400, json={"site_url": "http://a"})  # not in this project.json
    assert refused["code"] == "settings_unknown_to_project"
    await call(client, "PATCH", auth, 400, json={"no_such_setting": 1})
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/config/auth", 404)
    await call(client, "PATCH", "/v1/projects/abcdefghijklmnopqrst/config/auth", 404, json={"disable_signup": True})

    # The other service settings, through the same machinery: the fake create's .env and project.json
    # have some of each; every change is an operation whose job gets the role's names.
    async def settings_op(method: str, url: str, change: dict, group: str, fields: list[str]) -> dict:
        resp, got = await call(client, method, url, 200, json=change)
        op = await wait_operation(client, resp.headers["X-Operation-Id"])
        assert (op["kind"], op["state"], op["params"]) == ("settings", "succeeded", {group: fields}), op
        recorded = json.loads((settings.root / f"vars-{ref}-settings.json").read_text())
        return got, recorded[f"{group}_settings_change"]

    rest, absent_ref = f"/v1/projects/{ref}/postgrest", "/v1/projects/abcdefghijklmnopqrst"
    _, got = await call(client, "GET", rest, 200)
    assert got == {"db_schema": "public,storage", "max_rows": 1000, "db_extra_search_path": "public", "db_pool": None}
    assert "jwt_secret" not in got
    got, recorded = await settings_op(
        "PATCH", rest, {"max_rows": 999, "db_pool": 5}, "postgrest", ["db_pool", "max_rows"]
    )
    assert (got["max_rows"], got["db_pool"], got["db_schema"]) == (999, 5, "public,storage")
    assert recorded == {"max_rows": 999, "db_pool": 5}
    _, refused = await call(client, "PATCH", rest, 400, json={"max_rows": 1000001})
    assert refused["message"] == "field 'max_rows' must be at most 1000000"
    _, refused = await call(client, "PATCH", rest, 400, json={"db_schema": "public; drop"})
    assert refused["details"] == {"field": "db_schema"}
    await call(client, "PATCH", rest, 400, json={"db_pool": "5"})
    await call(client, "PATCH", rest, 400, json={"jwt_secret": "x"})
    await call(client, "GET", f"{absent_ref}/postgrest", 404)
    await call(client, "PATCH", f"{absent_ref}/postgrest", 404, json={"max_rows": 5})

    storage = f"/v1/projects/{ref}/config/storage"
    _, got = await call(client, "GET", storage, 200)
    assert (got["fileSizeLimit"], got["features"]["imageTransformation"], got["features"]["s3Protocol"]) == (
        52428800,
        {"enabled": True},
        {"enabled": True},
    )
    change = {"fileSizeLimit": 1048576, "features": {"s3Protocol": {"enabled": False}}}
    resp, got = await call(client, "PATCH", storage, 200, json=change)
    assert not got  # the document's 200 has no body
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["params"] == {"storage": ["file_size_limit", "s3_protocol_enabled"]}, op
    recorded = json.loads((settings.root / f"vars-{ref}-settings.json").read_text())["storage_settings_change"]
    assert recorded == {"file_size_limit": 1048576, "s3_protocol_enabled": False}
    off = {"enabled": False, "maxNamespaces": 0, "maxTables": 0, "maxCatalogs": 0}
    resp, _ = await call(client, "PATCH", storage, 200, json={"features": {"icebergCatalog": off}})
    await wait_operation(client, resp.headers["X-Operation-Id"])
    _, refused = await call(
        client, "PATCH", storage, 400, json={"features": {"icebergCatalog": {**off, "enabled": True}}}
    )
    assert refused["details"] == {"field": "features.icebergCatalog"}, refused
    _, refused = await call(client, "PATCH", storage, 400, json={"fileSizeLimit": -1})
    assert refused["details"] == {"field": "fileSizeLimit"}
    await call(client, "PATCH", storage, 400, json={"external": {"upstreamTarget": "canary"}})
    await call(client, "PATCH", storage, 400, json={"features": {"imageTransformation": {}}})
    await call(client, "PATCH", storage, 400, json={"migrationVersion": "x"})
    await call(client, "GET", f"{absent_ref}/config/storage", 404)
    await call(client, "PATCH", f"{absent_ref}/config/storage", 404, json={"fileSizeLimit": 1})

    postgres = f"/v1/projects/{ref}/config/database/postgres"
    _, got = await call(client, "GET", postgres, 200)
    assert got == {"work_mem": "4MB"}  # only what the database was given
    change = {"max_connections": 120, "statement_timeout": "60000ms", "restart_database": True}
    got, recorded = await settings_op("PUT", postgres, change, "postgres", ["max_connections", "statement_timeout"])
    assert got == {"work_mem": "4MB", "max_connections": 120, "statement_timeout": "60000ms"}
    assert recorded == {"max_connections": 120, "statement_timeout": "60000ms"}
    for bad in ({"max_connections": 0}, {"work_mem": "4 MB"}, {"statement_timeout": "1s; x"}, {"shared_buffers": 128}):
        _, refused = await call(client, "PUT", postgres, 400, json=bad)
        assert refused["details"] == {"field": next(iter(bad))}, refused
    _, refused = await call(client, "PUT", postgres, 400, json={"shared_buffers": "128MB"})  # not in this project.json
    assert refused["code"] == "settings_unknown_to_project"
    await call(client, "PUT", postgres, 400, json={"fsync": "off"})
    await call(client, "GET", f"{absent_ref}/config/database/postgres", 404)
    await call(client, "PUT", f"{absent_ref}/config/database/postgres", 404, json={"work_mem": "8MB"})

    # Edge functions: written under the project's functions directory (the fake create makes none).
    (settings.root / "projects" / ref / "volumes" / "functions").mkdir(parents=True)
    fn, absent_fn = f"/v1/projects/{ref}/functions", "/v1/projects/abcdefghijklmnopqrst/functions"
    _, deployed = await call(client, "POST", f"{fn}/deploy?slug=hello", 201, data=deploy_form())
    assert (deployed["slug"], deployed["version"], deployed["verify_jwt"]) == ("hello", 1, True)
    await call(client, "POST", f"{fn}/deploy?slug=hello", 400, data=deploy_form(path="../x.ts"))
    oversized = b"/" * (settings.function_max_bytes + 1)
    await call(client, "POST", f"{fn}/deploy?slug=hello", 413, data=deploy_form(source=oversized))
    await call(client, "POST", f"{fn}/deploy?slug=9lives", 400, data=deploy_form())
    await call(client, "POST", f"{absent_fn}/deploy?slug=hello", 404, data=deploy_form())
    eszip = {"data": b"ESZIP2", "headers": {"Content-Type": "application/vnd.denoland.eszip"}}
    _, refused = await call(client, "POST", f"{fn}?slug=hello&name=hello", 400, **eszip)
    assert "--use-api" in refused["message"]
    other = {"slug": "other", "name": "Other", "body": "Deno.serve(() => 1)"}
    _, made = await call(client, "POST", fn, 201, json=other)
    assert (made["slug"], made["entrypoint_path"], made["version"]) == ("other", "index.ts", 1)
    await call(client, "POST", fn, 409, json={"slug": "other", "name": "Other", "body": "x"})
    await call(client, "POST", fn, 400, json={"slug": "other", "name": "Other"})
    _, listed = await call(client, "GET", fn, 200)
    assert [f["slug"] for f in listed] == ["hello", "other"]
    _, bulk = await call(client, "PUT", fn, 200, json=listed)  # what the CLI sends after deploying both
    assert bulk["functions"] == listed
    await call(client, "PUT", fn, 404, json=[{**listed[0], "slug": "nope"}])
    await call(client, "PUT", fn, 400, json={"slug": "hello"})
    await call(client, "GET", absent_fn, 404)
    _, got = await call(client, "GET", f"{fn}/hello", 200)
    assert got == deployed  # the refused deploys changed nothing
    assert not (settings.root / "projects" / ref / "volumes" / "x.ts").exists()
    await call(client, "GET", f"{fn}/nope", 404)
    _, updated = await call(client, "PATCH", f"{fn}/hello", 200, json={"verify_jwt": False})
    assert (updated["version"], updated["verify_jwt"], updated["id"]) == (2, False, deployed["id"])
    await call(client, "PATCH", f"{fn}/hello", 400, json={"verify_jwt": "no"})
    _, patched = await call(client, "PATCH", f"{fn}/hello", 200, json={"body": "Deno.serve(() => 2)"})
    assert (patched["version"], patched["verify_jwt"]) == (3, False)  # a new source, the rest kept
    for form in (malformed_form({"metadata": b"{nope"}), malformed_form({"file": b"x"}), malformed_form({"x": b"1"})):
        await call(client, "POST", f"{fn}/deploy?slug=hello", 400, data=form)
    twice = deploy_form()
    twice.add_field("file", b"again", filename="supabase/functions/hello/index.ts")
    await call(client, "POST", f"{fn}/deploy?slug=hello", 400, data=twice)
    await call(client, "POST", f"{fn}/deploy?slug=hello", 400, json={"metadata": {}})
    _, got = await call(client, "GET", f"{fn}/hello", 200)
    assert got["version"] == 3  # none of the refused deploys made a version
    await call(client, "PATCH", f"{fn}/hello?name=x", 400, **eszip)
    # The body: what `supabase functions download` reads (multipart: metadata, then the files at their paths)
    resp, text = await call(client, "GET", f"{fn}/hello/body", 200, headers={"Accept": "multipart/form-data"})
    parts = function_body_parts(resp.headers["Content-Type"], text.encode())
    assert parts == [
        ("metadata", None, json.dumps({"deno2_entrypoint_path": "supabase/functions/hello/index.ts"}).encode()),
        ("file", "supabase/functions/hello/index.ts", b"Deno.serve(() => 2)"),
    ]
    await call(client, "GET", f"{fn}/nope/body", 404)
    await call(client, "GET", f"{absent_fn}/hello/body", 404)
    await call(client, "PATCH", f"{fn}/nope", 404, json={})
    await call(client, "DELETE", f"{fn}/other", 200)
    await call(client, "DELETE", f"{fn}/other", 404)

    # Secrets of the functions: beside the project's other secrets (the fake create makes no directory).
    (settings.root / "secrets" / ref).mkdir(parents=True)
    sec = f"/v1/projects/{ref}/secrets"
    _, listed = await call(client, "GET", sec, 200)
    assert listed == []
    await call(client, "POST", sec, 201, json=[{"name": "A", "value": "1"}, {"name": "B_2", "value": "two"}])
    _, refused = await call(
        client, "POST", sec, 400, json=[{"name": "C", "value": "3"}, {"name": "SUPABASE_X", "value": "x"}]
    )
    assert "SUPABASE_" in refused["message"]
    await call(client, "POST", sec, 400, json=[{"name": "1A", "value": "x"}])
    await call(client, "POST", sec, 400, json=[{"name": "A", "value": 1}])
    await call(client, "POST", "/v1/projects/abcdefghijklmnopqrst/secrets", 404, json=[{"name": "A", "value": "1"}])
    _, listed = await call(client, "GET", sec, 200)
    # digests, never values; the refused requests changed nothing (no C)
    assert [(s["name"], s["value"]) for s in listed] == [
        ("A", hashlib.sha256(b"1").hexdigest()),
        ("B_2", hashlib.sha256(b"two").hexdigest()),
    ]
    await call(client, "DELETE", sec, 200, json=["A"])
    _, listed = await call(client, "GET", sec, 200)
    assert [s["name"] for s in listed] == ["B_2"]
    await call(client, "DELETE", sec, 400, json="A")
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/secrets", 404)

    # Billing: the compute size the create asked for (micro), a resize and back to nano.
    assert json.loads((settings.root / f"vars-{ref}-create.json").read_text())["instance_size"] == "micro"
    addons = f"/v1/projects/{ref}/billing/addons"
    _, listed = await call(client, "GET", addons, 200)
    assert [(a["type"], a["variant"]["id"]) for a in listed["selected_addons"]] == [("compute_instance", "ci_micro")]
    assert len(listed["available_addons"][0]["variants"]) == 18
    large = {"addon_type": "compute_instance", "addon_variant": "ci_large"}
    resp, _ = await call(client, "PATCH", addons, 200, json=large)
    await call(client, "PATCH", addons, 409, json={"addon_type": "compute_instance", "addon_variant": "ci_small"})
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == ("resize", "succeeded", {"instance_size": "large"}), op
    assert json.loads((settings.root / f"vars-{ref}-resume.json").read_text())["instance_size"] == "large"
    _, listed = await call(client, "GET", addons, 200)
    assert listed["selected_addons"][0]["variant"]["meta"] == {"instance_size": "large"}
    await call(client, "PATCH", addons, 400, json={"addon_type": "pitr", "addon_variant": "pitr_7"})
    await call(client, "PATCH", addons, 400, json={"addon_type": "compute_instance", "addon_variant": "ci_huge"})
    await call(client, "PATCH", "/v1/projects/abcdefghijklmnopqrst/billing/addons", 404,
               json={"addon_type": "compute_instance", "addon_variant": "ci_small"})  # fmt: skip
    await call(client, "DELETE", f"{addons}/ci_small", 400)
    await call(client, "DELETE", "/v1/projects/abcdefghijklmnopqrst/billing/addons/ci_small", 404)
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/billing/addons", 404)
    resp, _ = await call(client, "DELETE", f"{addons}/ci_large", 200)
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == ("resize", "succeeded", {"instance_size": "nano"}), op
    _, listed = await call(client, "GET", addons, 200)
    assert listed["selected_addons"] == []  # nano: no compute addon, as on the platform

    # Analytics: the gateway's request counts of the usage points (the real counts: test_daemon_usage.py).
    counted = {"rest": 3, "auth": 2, "storage": 1, "realtime": 0, "total": 7}
    await client.app[keys.STORE].add_usage({ref: {"at": (at := time.time()), "api_requests": counted}}, at, 3600)
    analytics = f"/v1/projects/{ref}/analytics/endpoints"
    _, counts = await call(client, "GET", f"{analytics}/usage.api-counts?interval=1hr", 200)
    assert [(b["total_rest_requests"], b["total_auth_requests"]) for b in counts["result"]] == [(3, 2)]
    await call(client, "GET", f"{analytics}/usage.api-counts", 200)
    await call(client, "GET", f"{analytics}/usage.api-counts?interval=1week", 400)
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/analytics/endpoints/usage.api-counts", 404)
    _, total = await call(client, "GET", f"{analytics}/usage.api-requests-count", 200)
    assert total == {"result": [{"count": 7}]}
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/analytics/endpoints/usage.api-requests-count", 404)

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


async def test_custom_hostname_and_vanity_subdomain_operations_answer_as_the_document_says(
    aiohttp_client, settings, dnsmasq
):
    # The host's edge (its base domain, its address) and a resolver of the test's own.
    server = dnsmasq.serve({"docs.example.test": "198.51.100.7"})
    app = create_app(
        dataclasses.replace(
            settings,
            pooler_host="pooler.edge.test",
            playbook_vars={"supamanager_edge_base_domain": "edge.test"},
            edge_addresses="198.51.100.7",
            dns_resolver=server,
        )
    )
    client = await aiohttp_client(app)
    await client.app[keys.POLLER].stop()
    resp, project = await call(client, "POST", "/v1/projects", 201, json=UPSTREAM_CREATE)
    base = f"/v1/projects/{project['ref']}/custom-hostname"
    await wait_operation(client, resp.headers["X-Operation-Id"])

    _, got = await call(client, "GET", base, 200)
    assert (got["status"], got["custom_hostname"]) == ("1_not_started", "")
    await call(client, "POST", f"{base}/reverify", 400)  # nothing to verify yet
    _, made = await call(client, "POST", f"{base}/initialize", 201, json={"custom_hostname": "docs.example.test"})
    assert (made["status"], made["custom_hostname"]) == ("2_initiated", "docs.example.test")
    await call(client, "POST", f"{base}/activate", 400)  # not verified yet
    for name in BAD_NAMES:  # not a hostname, under the host's own domain, too long...: nothing changes
        await call(client, "POST", f"{base}/initialize", 400, json={"custom_hostname": name})
        _, got = await call(client, "GET", base, 200)
        assert (got["status"], got["custom_hostname"]) == ("2_initiated", "docs.example.test"), name
    # A host without an edge (no base domain) takes none, before the project is looked up.
    no_edge = await aiohttp_client(create_app(dataclasses.replace(settings, dns_resolver=server)))
    await no_edge.app[keys.POLLER].stop()
    _, error = await call(no_edge, "POST", f"{base}/initialize", 400, json={"custom_hostname": "docs.example.test"})
    assert "no edge" in error["message"]
    await call(
        client,
        "POST",
        "/v1/projects/abcdefghijklmnopqrst/custom-hostname/initialize",
        404,
        json={"custom_hostname": "a.test"},
    )
    _, verified = await call(client, "POST", f"{base}/reverify", 201)
    assert verified["status"] == "3_challenge_verified", verified
    resp, activating = await call(client, "POST", f"{base}/activate", 201)
    assert activating["status"] == "3_challenge_verified"
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"]) == ("custom_hostname", "succeeded"), op
    _, got = await call(client, "GET", base, 200)
    assert (got["status"], got["data"]["result"]["ssl"]["status"]) == ("5_services_reconfigured", "active")
    # The vanity subdomain while the project runs with a custom hostname: it says so, takes none,
    # and its delete leaves the custom hostname.
    vanity = f"/v1/projects/{project['ref']}/vanity-subdomain"
    _, got = await call(client, "GET", vanity, 200)
    assert got == {"status": "custom-domain-used", "custom_domain": "docs.example.test"}
    await call(client, "POST", f"{vanity}/activate", 409, json={"vanity_subdomain": "docs"})
    resp, _ = await call(client, "DELETE", vanity, 200)
    assert "X-Operation-Id" not in resp.headers
    resp, _ = await call(client, "DELETE", base, 200)
    await wait_operation(client, resp.headers["X-Operation-Id"])
    _, got = await call(client, "GET", base, 200)
    assert got["status"] == "1_not_started"
    await call(client, "GET", "/v1/projects/abcdefghijklmnopqrst/custom-hostname", 404)
    await call(client, "DELETE", "/v1/projects/abcdefghijklmnopqrst/custom-hostname", 404)

    # Vanity subdomains: one DNS label under the base domain, never the host's own names (its pooler
    # host) or a project's own name; activate and delete are the custom hostname's operation.
    _, got = await call(client, "GET", vanity, 200)
    assert got == {"status": "not-used"}
    for label, available in (("Shop-Prod", True), ("pooler", False), (project["ref"], False)):
        _, got = await call(client, "POST", f"{vanity}/check-availability", 201, json={"vanity_subdomain": label})
        assert got == {"available": available}, label
    for bad in ("a.b", "-shop", "shop_prod", "", "x" * 64):  # 400, nothing recorded
        await call(client, "POST", f"{vanity}/check-availability", 400, json={"vanity_subdomain": bad})
        await call(client, "POST", f"{vanity}/activate", 400, json={"vanity_subdomain": bad})
    await call(client, "POST", f"{vanity}/activate", 409, json={"vanity_subdomain": project["ref"]})
    resp, made = await call(client, "POST", f"{vanity}/activate", 201, json={"vanity_subdomain": "Shop-Prod"})
    assert made == {"custom_domain": "shop-prod.edge.test"}
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == (
        "custom_hostname",
        "succeeded",
        {"hostname": "shop-prod.edge.test"},
    )
    _, got = await call(client, "GET", vanity, 200)
    assert got == {"status": "active", "custom_domain": "shop-prod.edge.test"}
    # Another project cannot take it; after delete (an operation: the URLs go back) it can.
    resp, second = await call(client, "POST", "/v1/projects", 201, json={**UPSTREAM_CREATE, "name": "second"})
    await wait_operation(client, resp.headers["X-Operation-Id"])
    second_vanity = f"/v1/projects/{second['ref']}/vanity-subdomain"
    body = {"vanity_subdomain": "shop-prod"}
    assert (await call(client, "POST", f"{second_vanity}/check-availability", 201, json=body))[1] == {
        "available": False
    }
    await call(client, "POST", f"{second_vanity}/activate", 409, json=body)
    resp, _ = await call(client, "DELETE", vanity, 200)
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["state"], op["params"]) == ("succeeded", {"hostname": ""})
    _, got = await call(client, "GET", vanity, 200)
    assert got == {"status": "not-used"}
    assert (await call(client, "POST", f"{second_vanity}/check-availability", 201, json=body))[1] == {"available": True}
    absent = "/v1/projects/abcdefghijklmnopqrst/vanity-subdomain"
    await call(client, "GET", absent, 404)
    await call(client, "DELETE", absent, 404)
    await call(client, "POST", f"{absent}/check-availability", 404, json=body)
    await call(client, "POST", f"{absent}/activate", 404, json=body)


@pytest.mark.docker
def test_database_operations_answer_as_the_document_says(live_project):
    """SQL, migrations, login roles, pooler, legacy keys and types on a real project (Daemon.request
    checks every answer against both documents); test_database_api.py tests what they do."""
    ref, absent = live_project.ref, "abcdefghijklmnopqrst"

    def call(method: str, path: str, status: int, body: object = None):
        got, answer, _ = live_project.request(method, path, body)
        assert got == status, (method, path, got, answer)
        return answer

    db = f"/v1/projects/{ref}/database"
    assert call("POST", f"{db}/query", 201, {"query": "select 1 as one"}) == [{"one": 1}]
    call("POST", f"{db}/query", 400, {"query": "selec 1"})
    call("POST", f"{db}/query", 400, {"query": ""})
    call("POST", f"/v1/projects/{absent}/database/query", 404, {"query": "select 1"})
    assert call("POST", f"{db}/query/read-only", 201, {"query": "select $1::int as n", "parameters": [2]}) == [{"n": 2}]
    call("POST", f"{db}/query/read-only", 400, {"query": "create table conformance_ro (id int)"})
    call("GET", f"{db}/migrations", 200)
    call("POST", f"{db}/migrations", 200, {"query": "create table conformance_m (id int)", "name": "conformance"})
    call("POST", f"{db}/migrations", 400, {"query": "create table conformance_m (id int)"})
    call("GET", f"/v1/projects/{absent}/database/migrations", 404)
    call("POST", f"/v1/projects/{ref}/cli/login-role", 201, {"read_only": True})
    call("POST", f"/v1/projects/{ref}/cli/login-role", 400, {"read_only": "maybe"})
    call("DELETE", f"/v1/projects/{ref}/cli/login-role", 200)
    call("DELETE", f"/v1/projects/{absent}/cli/login-role", 404)
    call("GET", f"/v1/projects/{ref}/config/database/pooler", 200)
    call("GET", f"/v1/projects/{absent}/config/database/pooler", 404)
    call("GET", f"/v1/projects/{ref}/api-keys/legacy", 200)
    call("GET", f"/v1/projects/{absent}/api-keys/legacy", 404)
    assert "export type Database" in call("GET", f"/v1/projects/{ref}/types/typescript", 200)["types"]
    call("GET", f"/v1/projects/{ref}/types/typescript?included_schemas=a;b", 400)
    call("GET", f"/v1/projects/{absent}/types/typescript", 404)
    # Buckets: none while the storage service has not made its table (test_functions.py lists one).
    call("GET", f"/v1/projects/{ref}/storage/buckets", 200)
    call("GET", f"/v1/projects/{absent}/storage/buckets", 404)
    # Advisors: our lints, in the document's shape (test_functions.py trips each of them).
    call("GET", f"/v1/projects/{ref}/advisors/security?lint_type=sql", 200)
    call("GET", f"/v1/projects/{ref}/advisors/security?lint_type=css", 400)
    call("GET", f"/v1/projects/{absent}/advisors/security", 404)
    call("GET", f"/v1/projects/{ref}/advisors/performance", 200)
    call("GET", f"/v1/projects/{absent}/advisors/performance", 404)
    # Logs: from the project's own containers (test_functions.py finds a line a change made).
    logs = f"/v1/projects/{ref}/analytics/endpoints/logs.all"
    sql = "select id, timestamp, event_message from storage_logs where event_message like '%listening%' limit 5"
    found = call("GET", f"{logs}?sql={urllib.parse.quote(sql)}&iso_timestamp_start=2020-01-01T00:00:00Z", 200)
    assert found["result"] and all("listening" in row["event_message"] for row in found["result"]), found
    assert {row["service"] for row in found["result"]} == {"storage"}
    unknown = urllib.parse.quote("select 1 from nope_logs")
    assert call("GET", f"{logs}?sql={unknown}", 400)["details"] == {"field": "sql"}
    call("GET", f"{logs}?iso_timestamp_start=soon", 400)
    call("GET", f"/v1/projects/{absent}/analytics/endpoints/logs.all", 404)
    # The migration above is the only one; the refused one left nothing.
    assert [m.get("name") for m in call("GET", f"{db}/migrations", 200)] == ["conformance"]


async def test_available_regions_answer_as_the_document_says(aiohttp_client, settings, tmp_path):
    """The regions of the inventory's hosts (test_fleet.py has the inventory itself)."""
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        {
            "fra1": {"supamanager_memory_mb": 4096},
            "fra2": {"supamanager_memory_mb": 8192},
            "virginia": {"supamanager_region": "us-east-1", "supamanager_memory_mb": 2048},
            "lab": {"supamanager_region": "lab"},  # not one of the document's codes: serves creates, not listed
        },
        groups={"frankfurt": {"vars": {"supamanager_region": "eu-central-1"}, "hosts": ["fra1", "fra2"]}},
    )
    client = await aiohttp_client(create_app(dataclasses.replace(settings, inventory=inventory)))
    await client.app[keys.POLLER].stop()
    url = "/v1/projects/available-regions?organization_slug=default"
    _, regions = await call(client, "GET", url, 200)
    assert [r["code"] for r in regions["all"]["specific"]] == ["eu-central-1", "us-east-1"]
    assert {g["code"] for g in regions["all"]["smartGroup"]} == {"americas", "emea", "apac"}
    # without a continent: the smart group of the region with the most free memory
    assert regions["recommendations"]["smartGroup"]["code"] == "emea"
    assert [r["code"] for r in regions["recommendations"]["specific"]] == ["eu-central-1"]
    assert all("status" not in r for r in regions["all"]["specific"])
    _, regions = await call(client, "GET", f"{url}&continent=NA&desired_instance_size=small", 200)
    assert regions["recommendations"]["smartGroup"]["code"] == "americas"
    # a small project (2048 + 1024 MiB) fits in Frankfurt, not in Virginia's 2048
    assert [r["code"] for r in regions["recommendations"]["specific"]] == []
    assert {r["code"]: r.get("status") for r in regions["all"]["specific"]} == {
        "eu-central-1": None,
        "us-east-1": "capacity",
    }
    await call(client, "GET", "/v1/projects/available-regions", 400)
    await call(client, "GET", "/v1/projects/available-regions?organization_slug=nope", 400)
    await call(client, "GET", f"{url}&continent=XX", 400)
    await call(client, "GET", f"{url}&desired_instance_size=huge", 400)


def test_every_served_operation_was_checked(settings):
    """Runs after the tests above (file order): each upstream operation we serve was called and checked."""
    app = create_app(settings)
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method not in ("HEAD", "*"):
            found = official_operation(route.method, path.replace("{", "").replace("}", ""))
            if found is not None:
                served.add((route.method, found[0]))
    assert served, "no upstream operation is served?"
    missing = sorted(served - set(EXERCISED))
    assert not missing, f"served but never checked against the document: {missing}"
    errors_only = sorted(op for op in served if not any(s < 300 for s in EXERCISED[op]))
    assert not errors_only, f"checked on errors only: {errors_only}"
