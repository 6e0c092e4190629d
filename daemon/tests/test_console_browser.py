"""The web console in a real browser: Playwright (PyPI) driving Debian's Chromium against a real
supamanagerd on the real playbooks and the stand-in images of DOCKER_HOST's engine.

One project, one full create: sign in, create it and watch its steps arrive and its status reach
ACTIVE_HEALTHY, pause and resume it, reveal and copy a key, delete it after typing its name (a
wrong name keeps the button disabled), sign out. Around it: a wrong token shows the API's error and
no data, the CSP stops an inline script and a script from elsewhere. The screenshots of the
README (docs/console/) are taken on the way (kept with SUPAMANAGER_SCREENSHOTS=1). Restart and
the CSRF refusals are checked over HTTP in test_console.py.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import time

import pytest
from conftest import REPO

from tests.xdist_engines import port_blocks

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHROMIUM = pathlib.Path("/usr/bin/chromium")
# The README's pictures: written into the checkout only when asked for
# (SUPAMANAGER_SCREENSHOTS=1), so that a run of the suite leaves the tree as it was.
README_SHOTS = REPO / "docs" / "console"
# A block of 100 ports of 29100-29999 (no other test uses it), chosen among this worker's blocks.
_PORTS = secrets.choice(port_blocks(29100, 30000, 100))
PLAYBOOK_VARS = {
    "supabase_port_range_start": _PORTS,
    "supabase_port_range_end": _PORTS + 99,
    # Nothing here needs the log services or the WAL agent (a start wave fewer); upstream's 5 s
    # healthcheck interval keeps the create's tail short; a loaded host needs patience.
    "supabase_logs_enabled": False,
    "supabase_healthcheck_interval": "5s",
    "supabase_backup_wal_enabled": False,
    "supabase_health_timeout": 900,
    "supabase_healthcheck_start_period": "600s",
}
# A long create on a loaded host: the page polls, the test waits on what it shows.
CREATE_TIMEOUT_MS = 900_000
ACTION_TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from daemonproc import Daemon

    tmp = tmp_path_factory.mktemp("console-browser")
    root = tmp / "root"
    root.mkdir()
    daemon = Daemon(
        tmp,
        pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO)),
        root,
        token="console-" + secrets.token_hex(20),
        playbook_vars=PLAYBOOK_VARS,
    )
    daemon.start()
    yield daemon
    # A project the test did not get to delete goes now, without a final backup.
    status, projects, _ = daemon.request("GET", "/v1/projects")
    for project in projects if status == 200 else []:
        _, _, headers = daemon.request("DELETE", f"/v1/projects/{project['ref']}?backup=false")
        if headers.get("X-Operation-Id"):
            daemon.wait(headers["X-Operation-Id"], lambda o: o["state"] in ("succeeded", "failed"), timeout=600)
    daemon.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/system-packages installs it (bindep.txt)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


# What htmx keeps in sessionStorage: the page's path (its history cache is off), nothing else.
HTMX_STORAGE = {"session:htmx-current-path-for-history"}


def _storage(page) -> set[str]:
    return set(
        page.evaluate(
            """() => [...Object.keys(localStorage).map(k => 'local:' + k),
                      ...Object.keys(sessionStorage).map(k => 'session:' + k)]"""
        )
    )


def _status(page, wanted: str, timeout: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_text(wanted, timeout=timeout)


def test_console_in_chromium(daemon, browser, tmp_path):
    shots = README_SHOTS if os.environ.get("SUPAMANAGER_SCREENSHOTS") == "1" else tmp_path
    from playwright.sync_api import expect

    base = f"http://127.0.0.1:{daemon.port}"
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    page.set_default_timeout(60_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

    # Without a token: the sign-in page and nothing else.
    page.goto("/")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("table.projects")).to_have_count(0)

    # The CSP: neither an inline script nor one from another origin runs.
    page.evaluate(
        """() => {
        window.__blocked = [];
        document.addEventListener('securitypolicyviolation', e => window.__blocked.push(e.violatedDirective));
        const inline = document.createElement('script');
        inline.textContent = 'window.__inline = true';
        document.body.appendChild(inline);
        const outside = document.createElement('script');
        outside.src = 'http://127.0.0.2:9/outside.js';
        document.body.appendChild(outside);
    }"""
    )
    page.wait_for_function("window.__blocked.length >= 2")
    assert page.evaluate("window.__inline") is None
    assert all(d.startswith("script-src") for d in page.evaluate("window.__blocked"))
    violations.clear()  # from here on, any violation is one of the console's own pages

    # A wrong token: the API's own error, no data, still signed out.
    page.fill("#token", "wrong-" + secrets.token_hex(20))
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#error")).to_have_text("unauthorized: invalid bearer token")
    expect(page.locator("table.projects")).to_have_count(0)

    page.fill("#token", daemon.token)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#new-project")).to_be_visible()
    assert page.evaluate("document.cookie") == "", "the token cookie must be HttpOnly"
    assert _storage(page) <= HTMX_STORAGE

    # Create: the steps arrive on the project's page while it runs, then the URL and the keys.
    page.click("#new-project")
    page.fill("#name", "browser-app")
    started = time.monotonic()
    page.click("#create button[type=submit]")
    expect(page.locator("#project-name")).to_contain_text("browser-app")
    ref = page.url.rsplit("/", 1)[1]
    assert daemon.token not in page.url
    expect(page.locator("details.operation[data-kind=create] ol.steps li").nth(5)).to_be_attached(timeout=300_000)
    assert page.locator("#status").inner_text() == "COMING_UP"
    page.screenshot(path=shots / "create-in-progress.png", full_page=True)
    _status(page, "ACTIVE_HEALTHY", CREATE_TIMEOUT_MS)
    print(f"console browser test: create {time.monotonic() - started:.0f} s")
    expect(page.locator("details.operation[data-kind=create]")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#key-anon")).to_be_attached(timeout=30_000)
    expect(page.locator("#api-url")).to_contain_text("http://")
    expect(page.locator("#health li.ok")).to_have_count(6, timeout=120_000)
    page.screenshot(path=shots / "project-page.png", full_page=True)

    # A key: masked, revealed, copied.
    status, api_keys, _ = daemon.request("GET", f"/v1/projects/{ref}/api-keys")
    assert status == 200, api_keys
    anon = next(k["api_key"] for k in api_keys if k["name"] == "anon")
    assert page.locator("#key-anon").get_attribute("type") == "password"
    page.click("#reveal-anon")
    assert page.locator("#key-anon").get_attribute("type") == "text"
    assert page.locator("#key-anon").input_value() == anon
    page.click("#copy-anon")
    expect(page.locator("#copy-anon")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == anon
    assert _storage(page) <= HTMX_STORAGE
    assert anon not in page.evaluate("sessionStorage.getItem('htmx-current-path-for-history')")

    # The list, live.
    page.goto("/")
    row = page.locator(f"tr[data-ref={ref}]")
    expect(row.locator("[data-status]")).to_have_text("ACTIVE_HEALTHY")
    page.screenshot(path=shots / "projects-list.png", full_page=True)

    # Pause and resume, with their progress.
    row.locator("a").click()
    started = time.monotonic()
    page.click("#pause")
    expect(page.locator("details.operation").first).to_have_attribute("data-kind", "pause")
    _status(page, "INACTIVE", ACTION_TIMEOUT_MS)
    print(f"console browser test: pause {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    page.click("#resume")
    expect(page.locator("details.operation").first).to_have_attribute("data-kind", "restore")
    _status(page, "ACTIVE_HEALTHY", ACTION_TIMEOUT_MS)
    print(f"console browser test: resume {time.monotonic() - started:.0f} s")
    expect(page.locator("details.operation[data-kind=restore]").first).to_have_attribute("data-state", "succeeded")

    # Delete: the button stays disabled until the name is typed exactly.
    page.click("#delete")
    confirm = page.locator("#delete-confirm")
    expect(confirm).to_be_disabled()
    page.fill("#confirm-name", "browser-ap")
    expect(confirm).to_be_disabled()
    page.fill("#confirm-name", "browser-app ")
    expect(confirm).to_be_disabled()
    page.fill("#confirm-name", "browser-app")
    expect(confirm).to_be_enabled()
    # The final backup is offered and ticked; this suite is not about backups: none.
    expect(page.locator("#final-backup")).to_be_checked()
    page.uncheck("#final-backup")
    started = time.monotonic()
    confirm.click()
    expect(page.locator("#new-project")).to_be_visible()
    deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
    while daemon.request("GET", f"/v1/projects/{ref}")[0] != 404:
        assert time.monotonic() < deadline, "the delete did not end"
        time.sleep(1)
    print(f"console browser test: delete {time.monotonic() - started:.0f} s")
    expect(page.locator(f"tr[data-ref={ref}]")).to_have_count(0, timeout=30_000)

    # Sign out: the cookie is gone, the page shows no project.
    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    page.goto("/")
    expect(page.locator("#sign-in")).to_be_visible()
    assert context.cookies() == [] or all(c["name"] != "supamanager_token" for c in context.cookies())
    assert violations == []
    context.close()
