"""The daemon for its users, through create_app and aiohttp's test client with the real
ansible-runner and the fake playbooks of conftest.py: the OpenAPI document (valid, and true of
every response of a lifecycle), the docs page, Server-Sent Events with Last-Event-ID, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re

from conftest import AUTH, TOKEN, wait_operation
from openapi_check import check_response, checked
from openapi_spec_validator import validate
from supamanager_daemon import keys, logging_json, models
from supamanager_daemon.app import create_app
from supamanager_daemon.console.pages import is_console
from supamanager_daemon.openapi import spec


def test_the_openapi_document_is_valid_and_covers_every_route(settings):
    validate(spec())
    app = create_app(settings)
    documented = {(m.upper(), p) for p, item in spec()["paths"].items() for m in item}
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        # The web console's pages answer HTML, not the API (test_console.py covers them).
        if route.method not in ("HEAD", "*") and not is_console(path):
            served.add((route.method, path))
    assert served == documented


async def test_openapi_json_and_docs_are_open_and_self_contained(client):
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert await resp.json() == json.loads(json.dumps(spec()))
    resp = await client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    for path in spec()["paths"]:
        assert path in page
    # Nothing is fetched from anywhere: no script, no external link, no remote asset.
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


async def test_every_response_of_a_lifecycle_matches_the_document(client, settings):
    """create, get, list, keys, health, 409, pause, 400, restore, restart, delete, and the errors."""
    # The fake playbooks start no container: keep the poller from reporting the project REMOVED.
    await client.app[keys.POLLER].stop()
    resp, project = await checked(client, "POST", "/v1/projects", json={"name": "shop"}, headers=AUTH)
    assert resp.status == 201
    ref, op_id = project["ref"], resp.headers["X-Operation-Id"]
    await wait_for(client, op_id)
    _resp, body = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert body["status"] == models.ACTIVE_HEALTHY
    await checked(client, "GET", "/v1/projects", headers=AUTH)
    _resp, api_keys = await checked(client, "GET", f"/v1/projects/{ref}/api-keys", headers=AUTH)
    assert {k["name"] for k in api_keys} == {"anon", "service_role"}
    await checked(client, "GET", f"/v1/projects/{ref}/health?services=db,rest", headers=AUTH)

    (settings.root / "hold").touch()
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/pause", headers=AUTH)
    assert resp.status == 200
    pause_id = resp.headers["X-Operation-Id"]
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/restart", headers=AUTH)
    assert resp.status == 409
    (settings.root / "hold").unlink()
    await wait_for(client, pause_id)
    resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/pause", headers=AUTH)
    assert resp.status == 400
    for action in ("restore", "restart"):
        resp, _ = await checked(client, "POST", f"/v1/projects/{ref}/{action}", headers=AUTH)
        assert resp.status == 200
        await wait_for(client, resp.headers["X-Operation-Id"])
    resp, _ = await checked(client, "DELETE", f"/v1/projects/{ref}", headers=AUTH)
    assert resp.status == 200
    await wait_for(client, resp.headers["X-Operation-Id"])
    resp, _ = await checked(client, "GET", f"/v1/projects/{ref}", headers=AUTH)
    assert resp.status == 404

    # Errors have the documented shape too.
    resp, _ = await checked(client, "GET", "/v1/projects")
    assert resp.status == 401
    resp, _ = await checked(client, "POST", "/v1/projects", data=b"{nope", headers=AUTH)
    assert resp.status == 400
    resp, _ = await checked(client, "POST", "/v1/projects", data=b"x" * 5000, headers=AUTH)
    assert resp.status == 413
    resp, _ = await checked(client, "GET", "/v1/operations/nope", headers=AUTH)
    assert resp.status == 404
    resp, _ = await checked(client, "GET", "/healthz")
    assert resp.status == 200


async def wait_for(client, op_id: str) -> dict:
    """wait_operation, with the operation checked against the document as it ends."""
    op = await wait_operation(client, op_id)
    check_response("GET", f"/v1/operations/{op_id}", 200, "application/json", op)
    assert op["state"] == models.SUCCEEDED, op
    return op


def parse_sse(text: str) -> list[dict]:
    """Messages of an event stream: {'id', 'event', 'data'} (data parsed as JSON)."""
    messages = []
    for block in text.split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            messages.append(fields)
    return messages


async def test_events_stream_each_step_live_and_resume_after_last_event_id(client, settings):
    (settings.root / "hold").touch()
    resp = await client.post("/v1/projects", json={"name": "live"}, headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    stream = await client.get(f"/v1/operations/{op_id}/events", headers=AUTH)
    assert stream.status == 200
    assert stream.content_type == "text/event-stream"
    check_response("GET", f"/v1/operations/{op_id}/events", 200, stream.headers["Content-Type"], None)

    # Live: the playbook holds at "Hold while asked to"; that step arrives while the job still runs.
    seen: list[dict] = []
    buffer = ""
    async with asyncio.timeout(60):
        while not any(m["data"].get("name") == "Hold while asked to" for m in seen):
            buffer += (await stream.content.readany()).decode()
            *complete, buffer = buffer.split("\n\n")
            seen += parse_sse("\n\n".join(complete) + "\n\n")
    op = await (await client.get(f"/v1/operations/{op_id}", headers=AUTH)).json()
    assert op["state"] == models.RUNNING
    (settings.root / "hold").unlink()
    rest = parse_sse(buffer + (await stream.text()))  # the server ends the stream once the job ended
    messages = seen + rest
    types = [m["event"] for m in messages]
    assert types[0] == "queued" and types[1] == "started" and types[-1] == "succeeded"
    steps = [m["data"]["name"] for m in messages if m["event"] == "step"]
    assert steps[:2] == ["Check the ref", "Record the extra vars"]
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [m["data"]["id"] for m in messages] == ids
    # The same steps as GET /v1/operations/{id} shows.
    op = await (await client.get(f"/v1/operations/{op_id}", headers=AUTH)).json()
    assert [s["id"] for s in op["steps"]] == ids

    # Resume: only what came after Last-Event-ID (header or query), then the stream ends.
    middle = ids[len(ids) // 2]
    again = await client.get(f"/v1/operations/{op_id}/events", headers={**AUTH, "Last-Event-ID": str(middle)})
    assert [int(m["id"]) for m in parse_sse(await again.text())] == [i for i in ids if i > middle]
    again = await client.get(f"/v1/operations/{op_id}/events?last_event_id={ids[-1]}", headers=AUTH)
    assert parse_sse(await again.text()) == []


async def test_events_bad_requests_get_json_errors(client):
    resp = await client.post("/v1/projects", json={"name": "x"}, headers=AUTH)
    op_id = resp.headers["X-Operation-Id"]
    for url, headers, status in (
        (f"/v1/operations/{op_id}/events", {}, 401),
        ("/v1/operations/unknown/events", AUTH, 404),
        (f"/v1/operations/{op_id}/events", {**AUTH, "Last-Event-ID": "abc"}, 400),
        (f"/v1/operations/{op_id}/events?last_event_id=-3", AUTH, 400),
    ):
        resp, body = await checked(client, "GET", url, headers=headers)
        assert resp.status == status, url
        assert body["code"]
    assert (await wait_operation(client, op_id))["state"] == "succeeded"


def parse_metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


async def scrape(client) -> dict[str, float]:
    resp = await client.get("/metrics")  # open, like /healthz
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    for family in (
        "supamanager_projects",
        "supamanager_jobs_total",
        "supamanager_job_duration_seconds",
        "supamanager_poll_duration_seconds",
        "supamanager_poll_errors_total",
    ):
        assert f"# TYPE {family} " in text
    return parse_metrics(text)


async def test_metrics_move_when_jobs_run(client, settings):
    await client.app[keys.POLLER].stop()  # polls happen below, when the test says so
    before = await scrape(client)
    ok_label = 'supamanager_jobs_total{kind="create",result="success"}'
    failed_label = 'supamanager_jobs_total{kind="create",result="failure"}'
    assert before[ok_label] == before[failed_label] == 0
    assert before['supamanager_projects{status="ACTIVE_HEALTHY"}'] == 0

    resp = await client.post("/v1/projects", json={"name": "good"}, headers=AUTH)
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "succeeded"
    (settings.root / "fail-create").touch()
    resp = await client.post("/v1/projects", json={"name": "bad"}, headers=AUTH)
    assert (await wait_operation(client, resp.headers["X-Operation-Id"]))["state"] == "failed"
    (settings.root / "fail-create").unlink()

    after = await scrape(client)
    assert after[ok_label] == 1
    assert after[failed_label] == 1
    assert after['supamanager_job_duration_seconds_count{kind="create"}'] == 2
    assert after['supamanager_job_duration_seconds_sum{kind="create"}'] > 0
    assert after['supamanager_job_duration_seconds_bucket{kind="create",le="+Inf"}'] == 2
    assert after['supamanager_projects{status="INIT_FAILED"}'] == 1
    assert after['supamanager_projects{status="ACTIVE_HEALTHY"}'] == 1

    await client.app[keys.POLLER].poll_once()
    polled = await scrape(client)
    assert polled["supamanager_poll_duration_seconds_count"] == after["supamanager_poll_duration_seconds_count"] + 1
    assert polled["supamanager_poll_duration_seconds_sum"] > after["supamanager_poll_duration_seconds_sum"]
    assert polled["supamanager_poll_errors_total"] == 0


async def test_poll_errors_are_counted(aiohttp_client, settings, tmp_path):
    broken = dataclasses.replace(settings, docker_socket=str(tmp_path / "no-docker.sock"))
    client = await aiohttp_client(create_app(broken))
    await client.app[keys.POLLER].poll_once()
    metrics = await scrape(client)
    assert metrics["supamanager_poll_errors_total"] >= 1
    assert metrics["supamanager_poll_duration_seconds_count"] >= 1


def test_json_log_lines_carry_ids_and_never_the_token():
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging_json.JsonFormatter(secrets=(TOKEN,)))
    log = logging.getLogger("test.jsonlog")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    async def job():
        logging_json.bind(operation_id="op-1", project_ref="abcdefghijklmnopqrst")
        log.info("job %s done", "op-1")
        try:
            raise ValueError(f"boom {TOKEN}")
        except ValueError:
            log.exception("failed with the token %s in it", TOKEN)

    asyncio.run(job())
    log.info("outside any job")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "job op-1 done"
    assert lines[0]["operation_id"] == "op-1" and lines[0]["project_ref"] == "abcdefghijklmnopqrst"
    assert lines[0]["level"] == "INFO" and lines[0]["time"].endswith("Z")
    assert "operation_id" not in lines[2]  # the context stayed in the job's task
    assert TOKEN not in stream.getvalue()
    assert lines[1]["message"] == "failed with the token *** in it"
    assert "boom ***" in lines[1]["exception"]
