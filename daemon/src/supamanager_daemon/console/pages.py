"""The console's routes. They call what the API calls (api/projects.py start_create, start_lifecycle,
start_delete; the store; the project files; the Docker client), so there is one source of truth.

Signing in: the API token, checked as the API checks it (auth.check_token: the same 401 message,
the same failed-attempt limit), kept in an HttpOnly, SameSite=Strict cookie; signing out forgets
it. Every form POST carries a CSRF token: a random value in its own HttpOnly SameSite=Strict cookie
that the form must repeat (double submit), compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import pathlib
import secrets
import time
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import errors, keys, models
from ..api.projects import load_project, path_ref, start_create, start_delete, start_lifecycle
from ..api.routing import parse_body
from ..api.usage import public_point
from ..auth import check_token
from ..fleet.docker import DockerError
from ..fleet.status import HEALTH_SERVICES, group_by_project, service_health
from ..middleware import status_of
from ..projects import connections
from ..projects.files import project_info, read_backups, read_env
from ..shapes.projects import V1CreateProjectBody
from ..store import DEFAULT_ORGANIZATION

STATIC = pathlib.Path(__file__).parent / "static"
TOKEN_COOKIE = "supamanager_token"  # noqa: S105 - a cookie's name
CSRF_COOKIE = "supamanager_csrf"
CSRF_FIELD = "csrf_token"
# A CSRF value minted for this request, set as a cookie on its answer.
NEW_CSRF = web.RequestKey("console_new_csrf", str)
# No inline script or style, nothing from elsewhere, no framing, forms only to us.
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
BUSY = {models.COMING_UP, "PAUSING", "RESTORING", "RESTARTING", "GOING_DOWN", "RESIZING", "UPGRADING"}
RECENT_OPERATIONS = 5
KEYS = (("anon", "ANON_KEY"), ("service_role", "SERVICE_ROLE_KEY"))

routes = web.RouteTableDef()


def is_console(path: str) -> bool:
    return path == "/" or path.startswith("/console/")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if is_console(request.path):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "no-store"


# -- sessions -------------------------------------------------------------------------------------
def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Strict", path="/", secure=request.secure)


def _csrf(request: web.Request) -> str:
    """The CSRF value of this browser (new ones get theirs set on the answer by _render)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = request.get(NEW_CSRF) or secrets.token_urlsafe(32)
        request[NEW_CSRF] = token
    return token


async def _check_csrf(request: web.Request) -> web.MultiDictProxy:
    form = await request.post()
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "") or request.headers.get("X-CSRF-Token", "")
    if not cookie or not isinstance(given, str) or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise errors.Forbidden("the form's CSRF token is missing or wrong: reload the page", code="csrf_failed")
    return form


def _signed_in(request: web.Request) -> bool:
    """Whether the request's cookie holds a token the API accepts (a wrong one counts as a failed attempt)."""
    token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        return False
    check_token(request, token)
    return True


def _require(request: web.Request) -> None:
    if not _signed_in(request):
        raise errors.Unauthorized("sign in with an API token", code="signed_out")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    context = {"csrf": _csrf(request), "signed_in": bool(request.cookies.get(TOKEN_COOKIE)), **context}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if request.get(NEW_CSRF):
        _cookie(response, request, CSRF_COOKIE, request[NEW_CSRF])
    return response


def _error_page(request: web.Request, exc: errors.DomainError, template: str = "error.html", **context) -> web.Response:
    """An error as the API says it: its code and message (and the status it would answer)."""
    status = status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    response = _render(request, template, {"error": {"code": exc.code, "message": exc.message}, **context}, status)
    response.headers.update(headers)
    if isinstance(exc, errors.Unauthorized):
        response.del_cookie(TOKEN_COOKIE, path="/")
    return response


@web.middleware
async def console_errors(request: web.Request, handler) -> web.StreamResponse:
    """Console pages answer errors as pages (the API's words), not as the API's JSON."""
    if not is_console(request.path) or request.path.startswith("/console/static/"):
        return await handler(request)
    try:
        return await handler(request)
    except errors.DomainError as exc:
        if isinstance(exc, errors.Unauthorized | errors.TooManyFailedAttempts):
            return _error_page(request, exc, "signin.html", signed_in=False)
        return _error_page(request, exc)


# -- data, from what the API reads ----------------------------------------------------------------
async def _organizations(request: web.Request) -> list[dict[str, Any]]:
    return await request.app[keys.STORE].list_organizations()


async def _files(request: web.Request, ref: str) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
    settings = request.app[keys.SETTINGS]

    def read():
        try:
            env = read_env(settings, ref)
        except FileNotFoundError:
            env = {}
        return project_info(settings, ref), env, read_backups(settings, ref)

    return await asyncio.to_thread(read)


async def _operations(request: web.Request, ref: str) -> list[dict[str, Any]]:
    store = request.app[keys.STORE]
    ops = (await store.operations_for(ref))[-RECENT_OPERATIONS:][::-1]
    for op in ops:
        op["steps"] = [
            {"type": e["type"], "name": e["name"], "at": e["at"], **e["data"]} for e in await store.events(op["id"])
        ]
    return ops


async def _health(request: web.Request, project: dict[str, Any]) -> list[dict[str, Any]] | None:
    ref = project["ref"]
    docker = request.app[keys.FLEET].client_of(project)  # the engine of the project's host
    if docker is None:
        return None
    try:
        raw = await docker.project_containers(ref)
    except DockerError:
        return None
    containers = group_by_project(raw).get(ref, [])
    return [service_health(name, containers) for name in HEALTH_SERVICES]


def _info(request: web.Request, project: dict[str, Any], info: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    api_url = info.get("api_url")
    return {
        "api_url": api_url,
        # Studio is behind the project's gateway, at its root (basic auth: DASHBOARD_USERNAME/_PASSWORD).
        "studio_url": f"{api_url.rstrip('/')}/" if api_url else None,
        "pooler": connections.pooler(settings, project["ref"], info, env),
        "direct": connections.direct(settings, info, env),
        "keys": [(name, env[var]) for name, var in KEYS if env.get(var)],
    }


# -- pages ----------------------------------------------------------------------------------------
@routes.get("/")
async def home(request: web.Request) -> web.Response:
    if not _signed_in(request):
        return _render(request, "signin.html", {})
    orgs = await _organizations(request)
    slug = request.query.get("org", DEFAULT_ORGANIZATION)
    if slug not in {o["slug"] for o in orgs}:
        slug = DEFAULT_ORGANIZATION
    return _render(request, "projects.html", {"orgs": orgs, "org": slug, **await _rows(request, slug)})


async def _rows(request: web.Request, slug: str) -> dict[str, Any]:
    projects = [p for p in await request.app[keys.STORE].list_projects() if p["organization_slug"] == slug]
    return {"projects": projects, "busy": BUSY}


@routes.get("/console/projects-rows")
async def project_rows(request: web.Request) -> web.Response:
    _require(request)
    return _render(request, "_rows.html", await _rows(request, request.query.get("org", DEFAULT_ORGANIZATION)))


@routes.post("/console/sign-in")
async def sign_in(request: web.Request) -> web.Response:
    form = await _check_csrf(request)
    token = str(form.get("token", "")).strip()
    check_token(request, token)
    response = _redirect("/")
    _cookie(response, request, TOKEN_COOKIE, token)
    return response


@routes.post("/console/sign-out")
async def sign_out(request: web.Request) -> web.Response:
    await _check_csrf(request)
    response = _redirect("/")
    response.del_cookie(TOKEN_COOKIE, path="/")
    return response


@routes.get("/console/new")
async def new_project(request: web.Request) -> web.Response:
    _require(request)
    orgs = await _organizations(request)
    return _render(request, "new.html", {"orgs": orgs, "org": request.query.get("org", DEFAULT_ORGANIZATION)})


@routes.post("/console/new")
async def create(request: web.Request) -> web.Response:
    _require(request)
    form = await _check_csrf(request)
    values: dict[str, Any] = {"name": str(form.get("name", "")), "organization_slug": str(form.get("organization", ""))}
    if form.get("password_choice") == "set":
        values["db_pass"] = str(form.get("db_pass", ""))
    try:
        body = parse_body(V1CreateProjectBody, values)
        project, _ = await start_create(request, body)
    except errors.DomainError as exc:
        orgs = await _organizations(request)
        return _error_page(request, exc, "new.html", orgs=orgs, org=values["organization_slug"], name=values["name"])
    return _redirect(f"/console/projects/{project['ref']}")


@routes.get("/console/projects/{ref}")
async def project_page(request: web.Request) -> web.Response:
    _require(request)
    project = await load_project(request)
    info, env, backups = await _files(request, project["ref"])
    points = await request.app[keys.STORE].usage_history(project["ref"], since=time.time() - 3600)
    return _render(
        request,
        "project.html",
        {
            "project": project,
            "info": _info(request, project, info, env),
            "backups": backups[::-1],
            "usage": public_point(points[-1]) if points else None,
            **await _live(request, project),
        },
    )


async def _live(request: web.Request, project: dict[str, Any]) -> dict[str, Any]:
    return {
        "project": project,
        "busy": BUSY,
        "operations": await _operations(request, project["ref"]),
        "health": await _health(request, project),
    }


@routes.get("/console/projects/{ref}/live")
async def project_live(request: web.Request) -> web.Response:
    _require(request)
    ref = path_ref(request)
    project = await request.app[keys.STORE].get_project(ref)
    if project is None:
        # Deleted meanwhile: the page's poll stops at this answer (286 is htmx's "stop polling").
        return _render(request, "_gone.html", {"ref": ref}, status=286)
    return _render(request, "_live.html", await _live(request, project))


@routes.get("/console/projects/{ref}/info")
async def project_info_part(request: web.Request) -> web.Response:
    _require(request)
    project = await load_project(request)
    info, env, _ = await _files(request, project["ref"])
    return _render(request, "_info.html", {"project": project, "info": _info(request, project, info, env)})


@routes.post("/console/projects/{ref}/{action:pause|resume|restart}")
async def action(request: web.Request) -> web.Response:
    _require(request)
    await _check_csrf(request)
    name = request.match_info["action"]
    await start_lifecycle(request, "restore" if name == "resume" else name)
    return _redirect(f"/console/projects/{request.match_info['ref']}")


@routes.post("/console/projects/{ref}/delete")
async def delete(request: web.Request) -> web.Response:
    _require(request)
    form = await _check_csrf(request)
    project = await load_project(request)
    if form.get("confirm_name") != project["name"]:
        raise errors.InvalidRequest("type the project's name to delete it", code="name_mismatch", field="confirm_name")
    await start_delete(request, backup=form.get("backup") == "on")
    return _redirect(f"/?org={project['organization_slug']}")


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(pathlib.Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.middlewares.append(console_errors)
    app.router.add_routes(routes)
    static = app.router.add_static("/console/static/", STATIC, name="console-static", append_version=True)
    # ?v=<hash of the file>: a new htmx or script is fetched anew, an unchanged one cached.
    env.globals["asset"] = lambda filename: str(static.url_for(filename=filename))
    app.on_response_prepare.append(_security_headers)
