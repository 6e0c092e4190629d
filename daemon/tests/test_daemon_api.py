"""The HTTP API through create_app and aiohttp's test client, with the real ansible-runner
running the fake playbooks of conftest.py (the end-to-end tests use the real ones)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import shutil
import stat
import tempfile

import pytest
from conftest import AUTH, TOKEN, wait_operation
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
from test_notifications import register, signed, until


async def create(client, body=None):
    resp = await client.post("/v1/projects", json=body or {"name": "demo"}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json(), resp.headers["X-Operation-Id"]


async def test_healthz_is_open_and_v1_needs_the_token(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        resp = await client.get("/v1/projects", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        body = await resp.json()
        assert body["code"] == "unauthorized"
        assert TOKEN not in json.dumps(body)
    resp = await client.post("/v1/projects", json={"name": "x"})
    assert resp.status == 401
    assert await (await client.get("/v1/projects", headers=AUTH)).json() == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "invalid_body"),
        (b"[1, 2]", 400, "invalid_body"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b'{"name": 12}', 400, "invalid_type"),
        (b'{"region": "x"}', 400, "missing_field"),
        (b'{"name": "x", "organization_slug": {}}', 400, "invalid_type"),
        (b'{"name": "x", "extra": 1}', 400, "unknown_field"),
        (b'{"name": "' + b"x" * 5000 + b'"}', 413, "body_too_large"),
    ],
)
async def test_bad_create_bodies_get_a_clear_error_and_change_nothing(client, data, status, code):
    resp = await client.post("/v1/projects", data=data, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == status
    body = await resp.json()
    assert body["code"] == code
    assert body["message"]
    assert await (await client.get("/v1/projects", headers=AUTH)).json() == []
    assert not os.listdir(client.app[keys.SETTINGS].jobs_dir)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/projects/abcdefghijklmnopqrst"),
        ("GET", "/v1/projects/NOT-A-REF"),
        ("DELETE", "/v1/projects/abcdefghijklmnopqrst"),
        ("POST", "/v1/projects/abcdefghijklmnopqrst/pause"),
        ("POST", "/v1/projects/abcdefghijklmnopqrst/restore"),
        ("POST", "/v1/projects/abcdefghijklmnopqrst/restart"),
        ("GET", "/v1/projects/abcdefghijklmnopqrst/health?services=db"),
        ("GET", "/v1/projects/abcdefghijklmnopqrst/api-keys"),
        ("GET", "/v1/operations/nope"),
        ("GET", "/v1/nothing-here"),
    ],
)
async def test_unknown_things_are_404_json(client, method, path):
    resp = await client.request(method, path, headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["code"].endswith("not_found")


async def test_wrong_method_is_405_json(client):
    resp = await client.put("/v1/projects", headers=AUTH)
    assert resp.status == 405
    assert (await resp.json())["code"] == "method_not_allowed"


async def test_create_answers_at_once_then_runs_the_playbook(client, settings):
    hold = settings.root / "hold"
    hold.touch()  # the fake playbook waits while this exists: the answer must not
    project, op_id = await asyncio.wait_for(create(client, {"name": "My app", "region": "eu-1"}), 30)
    ref = project["ref"]
    assert len(ref) == 20
    assert ref.isalpha()
    assert ref.islower()
    assert project["status"] == "COMING_UP"
    assert (project["name"], project["region"], project["organization_slug"]) == ("My app", "eu-1", "default")
    assert project["database"]["host"] == "localhost"

    # While the job runs: every mutating request on the project is 409, naming the operation.
    for method, path in (
        ("POST", f"/v1/projects/{ref}/pause"),
        ("POST", f"/v1/projects/{ref}/restart"),
        ("POST", f"/v1/projects/{ref}/restore"),
        ("DELETE", f"/v1/projects/{ref}"),
    ):
        resp = await client.request(method, path, headers=AUTH)
        assert resp.status == 409, path
        body = await resp.json()
        assert (body["code"], body["details"]["operation_id"]) == ("operation_in_progress", op_id)

    # The extra vars file is 0600 and the job reports steps while it runs.
    for _ in range(200):
        op = await (await client.get(f"/v1/operations/{op_id}", headers=AUTH)).json()
        if op["step"] == "Hold while asked to":
            break
        await asyncio.sleep(0.1)
    assert op["state"] == "running"
    extravars = settings.jobs_dir / op_id / "runner" / "env" / "extravars"
    assert stat.S_IMODE(extravars.stat().st_mode) == 0o600
    assert "My app" not in extravars.read_text()  # the name is display data only
    hold.unlink()

    op = await wait_operation(client, op_id)
    assert op["state"] == "succeeded", op
    assert op["progress"] == 100
    names = [s["name"] for s in op["steps"] if s["type"] == "step"]
    assert names[:2] == ["Check the ref", "Record the extra vars"]
    assert [s["type"] for s in op["steps"]][-1] == "succeeded"
    # Nothing of the job is left behind: no artifacts, no extra vars file.
    assert not (settings.jobs_dir / op_id).exists()

    recorded = json.loads((settings.root / f"vars-{ref}-create.json").read_text())
    assert recorded["registry"] == "standin.local"
    assert recorded["root"] == str(settings.root)
    assert recorded["public_host"] == "localhost"
    # Strings we pass are never templated: the configured "{{ 7 * 6 }}" stays as written.
    assert recorded["extra"] == "{{ 7 * 6 }}"

    keys_ = await (await client.get(f"/v1/projects/{ref}/api-keys", headers=AUTH)).json()
    assert [(k["name"], k["type"], k["api_key"]) for k in keys_] == [
        ("anon", "legacy", f"anon.{ref}"),
        ("service_role", "legacy", f"service.{ref}"),
    ]

    listed = await (await client.get("/v1/projects", headers=AUTH)).json()
    assert [p["ref"] for p in listed] == [ref]
    # Ours: where the project answers, from the role's project.json.
    assert listed[0]["endpoints"] == {"api_url": "http://localhost:54321", "ports": {"kong_http": 54321}}
    assert (await client.app[keys.STORE].get_project(ref))["services"] == ["db", "kong"]

    # delete: 200 at once with {id (an integer, as the document wants), ref, name}, volumes deleted by
    # default, then 404.
    resp = await client.delete(f"/v1/projects/{ref}", headers=AUTH)
    assert resp.status == 200
    deleted = await resp.json()
    assert (deleted["ref"], deleted["name"]) == (ref, "My app")
    assert isinstance(deleted["id"], int)
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "succeeded", op
    recorded = json.loads((settings.root / f"vars-{ref}-delete.json").read_text())
    assert (recorded["delete_volumes"], recorded["rollback"]) == (True, False)
    assert (await client.get(f"/v1/projects/{ref}", headers=AUTH)).status == 404
    # The operation outlives its project.
    assert (await client.get(f"/v1/operations/{op['id']}", headers=AUTH)).status == 200


async def test_a_template_in_the_name_is_never_evaluated(client, settings):
    # A short path: the name holds it three times and names are at most 256 characters (tmp_path
    # under an xdist worker is too long for that).
    marker = pathlib.Path(tempfile.mkdtemp(prefix="t", dir="/tmp")) / "p"
    try:
        name = f"{{{{ lookup('pipe', 'touch {marker}') }}}} $(touch {marker}) `touch {marker}`"
        project, op_id = await create(client, {"name": name})
        op = await wait_operation(client, op_id)
        assert op["state"] == "succeeded", op
        stored = await (await client.get(f"/v1/projects/{project['ref']}", headers=AUTH)).json()
        assert stored["name"] == name
        assert not marker.exists()
    finally:
        shutil.rmtree(marker.parent)


async def test_a_failed_create_is_init_failed_with_the_reason(client, settings, receivers):
    # the organization's webhook hears of it, signed (test_notifications.py: the rest of notifications)
    receiver, url = await receivers()
    await register(client, url)
    (settings.root / "fail-create").touch()
    project, op_id = await create(client)
    op = await wait_operation(client, op_id)
    await until(lambda: len(receiver.got) >= 2)
    await client.app[keys.NOTIFIER].drain()
    events = [(e["event"], e["ref"], e.get("kind") or e.get("status")) for e in receiver.events()]
    assert sorted(events) == [("operation.failed", project["ref"], "create"),
                              ("project.status_changed", project["ref"], "INIT_FAILED")]  # fmt: skip
    failure = next(e for e in receiver.events() if e["event"] == "operation.failed")
    assert failure["operation_id"] == op_id and "simulated failure of create" in failure["error"]
    assert all(signed(headers, body) for headers, body, _ in receiver.got)
    assert op["state"] == "failed"
    assert "simulated failure of create" in op["error"]
    assert op["error"].endswith("(rolled back)")
    types = [s["type"] for s in op["steps"]]
    assert types.index("task_failed") < types.index("rollback") < types.index("failed")
    # The rollback is the delete playbook, volumes included, as a rollback: the role keeps the
    # volumes of a project that came up once (test_daemon_e2e.py, the resumed create).
    recorded = json.loads((settings.root / f"vars-{project['ref']}-delete.json").read_text())
    assert (recorded["delete_volumes"], recorded["rollback"]) == (True, True)
    stored = await (await client.get(f"/v1/projects/{project['ref']}", headers=AUTH)).json()
    assert stored["status"] == "INIT_FAILED"
    # pause and restart make no sense now: 400; restore creates it again.
    for action in ("pause", "restart"):
        resp = await client.post(f"/v1/projects/{project['ref']}/{action}", headers=AUTH)
        assert resp.status == 400
        assert (await resp.json())["code"] == "invalid_state"
    (settings.root / "fail-create").unlink()
    resp = await client.post(f"/v1/projects/{project['ref']}/restore", headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["status"] == "RESTORING"
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"]) == ("recreate", "succeeded")


async def test_db_pass_reaches_the_playbook_only_through_a_private_file(client, settings):
    password = "Sup3r-secret-pass"
    project, op_id = await create(client, {"name": "p", "db_pass": password})
    op = await wait_operation(client, op_id)
    assert op["state"] == "succeeded", op
    recorded = json.loads((settings.root / f"vars-{project['ref']}-create.json").read_text())
    assert recorded["password"] == password
    assert password.encode() not in settings.db_path.read_bytes()
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    assert not wal.exists() or password.encode() not in wal.read_bytes()
    assert not (settings.jobs_dir / op_id).exists()


async def test_db_pass_is_ignored_when_the_role_takes_none(aiohttp_client, settings):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, db_pass_var="")))
    project, op_id = await create(client, {"name": "p", "db_pass": "Sup3r-secret-pass"})
    assert (await wait_operation(client, op_id))["state"] == "succeeded"
    recorded = json.loads((settings.root / f"vars-{project['ref']}-create.json").read_text())
    assert recorded["password"] is None


async def test_jobs_beyond_max_jobs_wait_their_turn(client, settings):
    """On the fake playbooks; test_daemon_e2e.py shows it on the real ones (a create queued behind a restart)."""
    hold = settings.root / "hold"
    hold.touch()
    ops = [(await create(client, {"name": f"p{i}"}))[1] for i in range(3)]

    async def current():
        return [await (await client.get(f"/v1/operations/{o}", headers=AUTH)).json() for o in ops]

    # Wait until two jobs hold (max_jobs = 2): however long that takes, the third cannot start.
    deadline = asyncio.get_running_loop().time() + 120
    while sum(op["step"] == "Hold while asked to" for op in await current()) < 2:
        assert asyncio.get_running_loop().time() < deadline, await current()
        await asyncio.sleep(0.2)
    assert sorted(op["state"] for op in await current()) == ["queued", "running", "running"]
    jobs = client.app[keys.JOBS]
    assert (jobs.running, jobs.queued) == (2, 1)
    hold.unlink()
    for o in ops:
        assert (await wait_operation(client, o))["state"] == "succeeded"


async def test_health_needs_known_services(client):
    project, op_id = await create(client)
    assert (await wait_operation(client, op_id))["state"] == "succeeded"
    base = f"/v1/projects/{project['ref']}/health"
    resp = await client.get(base, headers=AUTH)
    assert (resp.status, (await resp.json())["code"]) == (400, "missing_field")
    resp = await client.get(base + "?services=db,bogus", headers=AUTH)
    assert resp.status == 400
    assert "bogus" in (await resp.json())["message"]
    # No containers exist for a fake project: every service reports it.
    resp = await client.get(base + "?services=db&services=pooler", headers=AUTH)
    assert resp.status == 200
    health = await resp.json()
    assert [(h["name"], h["healthy"], h["status"]) for h in health] == [
        ("db", False, "UNHEALTHY"),
        ("pooler", False, "UNHEALTHY"),
    ]


async def test_an_organization_s_projects_are_sorted_paged_and_their_query_checked(client):
    for name in ("beta", "alpha", "gamma"):
        _, op_id = await create(client, {"name": name})
        assert (await wait_operation(client, op_id))["state"] == "succeeded"
    base = "/v1/organizations/default/projects"

    async def names(query: str) -> list[str]:
        resp = await client.get(base + query, headers=AUTH)
        assert resp.status == 200, await resp.text()
        return [p["name"] for p in (await resp.json())["projects"]]

    assert await names("") == ["alpha", "beta", "gamma"]  # the document's default: name_asc
    assert await names("?sort=name_desc") == ["gamma", "beta", "alpha"]
    assert await names("?sort=created_asc") == ["beta", "alpha", "gamma"]
    assert await names("?sort=created_desc&limit=2") == ["gamma", "alpha"]
    assert await names("?offset=1&limit=1") == ["beta"]
    status = (await (await client.get(base, headers=AUTH)).json())["projects"][0]["status"]
    other = "INACTIVE" if status != "INACTIVE" else "ACTIVE_HEALTHY"
    assert await names(f"?statuses={other},{status}") == ["alpha", "beta", "gamma"]
    assert await names(f"?statuses={other}") == []
    # A scalar given twice, a sort or a page size the document does not allow, an empty status: 400.
    cases = {"?search=a&search=b": "search", "?sort=size": "sort", "?limit=101": "limit", "?statuses=": "statuses.0"}
    for query, field in cases.items():
        resp = await client.get(base + query, headers=AUTH)
        body = await resp.json()
        assert (resp.status, body["details"]["field"]) == (400, field), body


async def test_delete_keeping_the_volumes_tells_the_playbook_so(client, settings):
    # The role's side (delete_volumes false keeps the four volumes) is test_project.py's lifecycle.
    project, op_id = await create(client)
    assert (await wait_operation(client, op_id))["state"] == "succeeded"
    ref = project["ref"]
    resp = await client.delete(f"/v1/projects/{ref}?delete_volumes=maybe", headers=AUTH)
    assert resp.status == 400
    resp = await client.delete(f"/v1/projects/{ref}?delete_volumes=false", headers=AUTH)
    assert resp.status == 200
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert op["state"] == "succeeded", op
    assert json.loads((settings.root / f"vars-{ref}-delete.json").read_text())["delete_volumes"] is False
    assert (await client.get(f"/v1/projects/{ref}", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    "front, address",
    [({}, "localhost:54323"), ({"pooler_host": "pooler.example.com", "pooler_port": 6543}, "pooler.example.com:6543")],
    ids=["own-port", "edge-front"],
)
async def test_the_pooler_config_points_at_the_edge_front_when_the_host_has_one(
    aiohttp_client, settings, front, address
):
    """With SUPAMANAGER_POOLER_HOST the connection string is the edge's TLS front, which routes
    postgres.<ref> to the project's own pooler (tests/integration/edge/ shows the front doing so)."""
    app = create_app(dataclasses.replace(settings, **front))
    client = await aiohttp_client(app)
    ref = "abcdefghijklmnopqrst"
    await app[keys.STORE].create_project(ref=ref, name="n", organization_slug="default", region="r")
    directory = settings.root / "projects" / ref
    directory.mkdir(parents=True)
    (directory / "project.json").write_text(json.dumps({"ports": {"pooler_transaction": 54323}}))
    (directory / ".env").write_text(f"POOLER_TENANT_ID={ref}\nPOSTGRES_DB=postgres\n")
    resp = await client.get(f"/v1/projects/{ref}/config/database/pooler", headers=AUTH)
    assert resp.status == 200, await resp.text()
    [entry] = await resp.json()
    assert entry["connection_string"] == f"postgresql://postgres.{ref}:[YOUR-PASSWORD]@{address}/postgres"
    host, port = address.split(":")
    assert (entry["db_host"], entry["db_port"]) == (host, int(port))


def test_the_pooler_host_setting_is_checked():
    from supamanager_daemon.settings import SettingsError, load_settings

    assert load_settings(environ={"SUPAMANAGER_POOLER_HOST": "pooler.example.com"}).pooler_host == "pooler.example.com"
    with pytest.raises(SettingsError, match="'pooler_host' must be a lowercase DNS name"):
        load_settings(environ={"SUPAMANAGER_POOLER_HOST": "pooler example"})
    with pytest.raises(SettingsError, match=r"'pooler_port' must be 1\.\.65535"):
        load_settings(environ={"SUPAMANAGER_POOLER_PORT": "0"})
