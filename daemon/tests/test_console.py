"""The web console at / (console/pages.py) over HTTP, on the fake collection: what a browser test
cannot see as directly (headers, cookies, refusals). test_console_browser.py drives the same pages
in Chromium against real playbooks.
"""

from __future__ import annotations

import re

from conftest import AUTH, TOKEN, wait_operation
from supamanager_daemon import keys

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _csrf(client) -> str:
    """A page's CSRF value (the client keeps the cookie it came with)."""
    page = await (await client.get("/")).text()
    return CSRF.search(page).group(1)


async def _sign_in(client) -> str:
    csrf = await _csrf(client)
    resp = await client.post("/console/sign-in", data={"token": TOKEN, "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    return csrf


async def test_pages_carry_a_strict_csp_and_serve_htmx_with_its_license(client):
    resp = await client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    # Every script and style sheet is ours (a path of this daemon), none inline.
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/console/static/") for s in sources)
    assert re.search(r"<script>|<script [^>]*>[^<]", page) is None and " style=" not in page
    htmx = next(s for s in sources if "htmx" in s)
    got = await client.get(htmx)
    assert got.status == 200 and "htmx" in (await got.text())[:2000]
    assert got.headers["Content-Security-Policy"] == csp
    license_ = await client.get("/console/static/htmx-LICENSE")
    assert "Zero-Clause BSD" in await license_.text()


async def test_without_a_token_no_project_shows_and_a_wrong_token_gets_the_apis_error(client):
    # A project in the store (its create is not run: only what the pages show matters here).
    ref = "hiddenappabcdefghijk"
    await client.server.app[keys.STORE].create_project(
        ref=ref, name="hidden-app", organization_slug="default", region="local"
    )
    # No cookie: the sign-in page, nothing of the project; its page and the live parts are refused.
    page = await (await client.get("/")).text()
    assert 'id="sign-in"' in page and ref not in page and "hidden-app" not in page
    for path in (f"/console/projects/{ref}", f"/console/projects/{ref}/live", "/console/projects-rows"):
        resp = await client.get(path)
        assert resp.status == 401, path
        body = await resp.text()
        assert "hidden-app" not in body and "anon." not in body
    # A wrong token: what the API answers for it (401, its message), no data, no cookie kept.
    csrf = await _csrf(client)
    resp = await client.post("/console/sign-in", data={"token": "x" * 40, "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 401
    api = await (await client.get("/v1/projects", headers={"Authorization": "Bearer " + "x" * 40})).json()
    body = await resp.text()
    assert f"{api['code']}</strong>: {api['message']}" in body
    assert "hidden-app" not in body and ref not in body
    assert "supamanager_token" not in {c.key for c in client.session.cookie_jar}
    # A token that was right but is no longer (a stale cookie) is signed out the same way.
    client.session.cookie_jar.update_cookies({"supamanager_token": "y" * 40})
    resp = await client.get("/")
    assert resp.status == 401 and "hidden-app" not in await resp.text()


async def test_every_form_post_needs_the_csrf_token(client):
    csrf = await _sign_in(client)
    for path, data in (
        ("/console/sign-in", {"token": TOKEN}),
        ("/console/new", {"name": "x", "organization": "default", "password_choice": "generate"}),
        ("/console/projects/abcdefghijklmnopqrst/pause", {}),
        ("/console/projects/abcdefghijklmnopqrst/delete", {"confirm_name": "x"}),
        ("/console/sign-out", {}),
    ):
        for wrong in ({}, {"csrf_token": "not-" + csrf}):
            resp = await client.post(path, data={**data, **wrong}, allow_redirects=False)
            assert resp.status == 403, (path, wrong)
            assert "csrf_failed" in await resp.text()
    # A cross-site form carries no SameSite=Strict cookie at all: refused too.
    client.session.cookie_jar.clear(lambda c: c.key == "supamanager_csrf")
    resp = await client.post("/console/new", data={"name": "x", "csrf_token": csrf}, allow_redirects=False)
    assert resp.status in (401, 403)
    assert (await (await client.get("/v1/projects", headers=AUTH)).json()) == []


async def test_create_restart_and_delete_from_the_console_run_the_api_operations(client, settings, monkeypatch):
    monkeypatch.setattr(client.server.app[keys.POLLER], "wake", lambda: None)
    csrf = await _sign_in(client)
    home = await (await client.get("/?org=no-such-org")).text()
    assert 'id="new-project"' in home and "No project in this organization yet." in home
    form_page = await (await client.get("/console/new?org=default")).text()
    assert 'name="password_choice" value="generate" checked' in form_page
    # A bad password is refused as the API refuses it, nothing created.
    form = {"csrf_token": csrf, "name": "console-app", "organization": "default", "password_choice": "set"}
    resp = await client.post("/console/new", data={**form, "db_pass": "short"}, allow_redirects=False)
    assert resp.status == 400 and "field &#39;db_pass&#39; must be 8-128 characters" in await resp.text()
    resp = await client.post("/console/new", data={**form, "db_pass": "Console-pass_123"}, allow_redirects=False)
    assert resp.status == 303
    ref = resp.headers["Location"].rsplit("/", 1)[1]
    (project,) = await (await client.get("/v1/projects", headers=AUTH)).json()
    assert (project["ref"], project["name"]) == (ref, "console-app")
    ops = await client.server.app[keys.STORE].operations_for(ref)
    op = await wait_operation(client, ops[-1]["id"])
    assert op["kind"] == "create" and op["state"] == "succeeded"
    # The password went to the playbook, as POST /v1/projects sends it.
    assert '"password": "Console-pass_123"' in (settings.root / f"vars-{ref}-create.json").read_text()

    page = await (await client.get(f"/console/projects/{ref}")).text()
    assert 'id="key-anon"' in page and f"anon.{ref}" in page and 'type="password" readonly' in page
    assert "http://localhost:54321" in page and "ACTIVE_HEALTHY" in page and "create" in page
    assert ref in await (await client.get("/console/projects-rows?org=default")).text()
    info = await (await client.get(f"/console/projects/{ref}/info")).text()
    assert 'id="key-service_role"' in info and "hx-trigger" not in info  # complete: no more polling

    hold = settings.root / "hold"
    hold.touch()  # the fake playbook waits while this exists
    resp = await client.post(f"/console/projects/{ref}/restart", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    ops = await client.server.app[keys.STORE].operations_for(ref)
    assert ops[-1]["kind"] == "restart"
    # While it runs, another action is the API's 409, shown as the API says it.
    resp = await client.post(f"/console/projects/{ref}/pause", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 409
    assert f"operation_in_progress</strong>: operation {ops[-1]['id']}" in await resp.text()
    hold.unlink()
    await wait_operation(client, ops[-1]["id"])
    live = await (await client.get(f"/console/projects/{ref}/live")).text()
    assert 'data-kind="restart" data-state="succeeded"' in live

    # The delete: the name must be typed; the final backup is offered and taken unless unticked.
    resp = await client.post(
        f"/console/projects/{ref}/delete", data={"csrf_token": csrf, "confirm_name": "console"}, allow_redirects=False
    )
    assert resp.status == 400 and "name_mismatch" in await resp.text()
    resp = await client.post(
        f"/console/projects/{ref}/delete",
        data={"csrf_token": csrf, "confirm_name": "console-app"},
        allow_redirects=False,
    )
    assert resp.status == 303
    ops = await client.server.app[keys.STORE].operations_for(ref)
    assert (ops[-1]["kind"], ops[-1]["params"]["backup"]) == ("delete", False)
    await wait_operation(client, ops[-1]["id"])
    gone = await client.get(f"/console/projects/{ref}/live")
    assert gone.status == 286 and "is deleted" in await gone.text()

    resp = await client.post("/console/sign-out", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert 'id="sign-in"' in await (await client.get("/")).text()
