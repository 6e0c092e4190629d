"""The OpenAPI 3.1 document of the daemon's API, served at /openapi.json, and a docs page at /docs.

The document is built from the dicts below (no generator magic), so a reader sees exactly what
we promise. Tests validate the document itself and every response of a lifecycle run against it.
Both routes are open, like /healthz: they describe the API and hold no data or secret.
"""

from __future__ import annotations

import functools
import html
import json
from typing import Any

from aiohttp import web

from . import __version__, models
from .status import HEALTH_SERVICES

STATUSES = [
    "INACTIVE",
    "ACTIVE_HEALTHY",
    "ACTIVE_UNHEALTHY",
    "COMING_UP",
    "UNKNOWN",
    "GOING_DOWN",
    "INIT_FAILED",
    "REMOVED",
    "RESTORING",
    "UPGRADING",
    "PAUSING",
    "RESTORE_FAILED",
    "RESTARTING",
    "PAUSE_FAILED",
    "RESIZING",
]
OPERATION_STATES = [models.QUEUED, models.RUNNING, models.SUCCEEDED, models.FAILED]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    if headers is OPERATION_HEADER:
        response["links"] = LINKS
    return response


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
SLUG_OR_EMPTY = "^([a-z0-9][a-z0-9-]{0,63})?$"
# Upstream fields and parameters we accept whatever their value and ignore.
IGNORED: dict[str, Any] = {"description": "Accepted for compatibility; ignored."}
# Where an accepted change leads: its operation, its event stream, the project.
LINKS = {
    "operation": {"operationId": "getOperation", "parameters": {"op_id": "$response.header.X-Operation-Id"}},
    "events": {"operationId": "streamOperationEvents", "parameters": {"op_id": "$response.header.X-Operation-Id"}},
    "project": {"operationId": "getProject", "parameters": {"ref": "$response.body#/ref"}},
}
OPERATION_HEADER = {
    "X-Operation-Id": {
        "description": "The operation that carries the change out: follow it at /v1/operations/{id}.",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error, whatever the status.",
        "required": ["code", "message"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "description": "Stable machine-readable code, e.g. `project_not_found`."},
            "message": {"type": "string", "description": "What went wrong, for a person."},
            "details": {"type": "object", "description": "The field(s) or operation concerned."},
        },
    },
    "Database": {
        "type": "object",
        "required": ["host", "version", "postgres_engine", "release_channel"],
        "additionalProperties": False,
        "properties": {
            "host": {"type": "string"},
            "version": {"type": "string"},
            "postgres_engine": {"type": "string"},
            "release_channel": {"type": "string"},
        },
    },
    "Project": {
        "type": "object",
        "description": "A project with its database, as the Management API shows it.",
        "required": [
            "id",
            "ref",
            "organization_id",
            "organization_slug",
            "name",
            "region",
            "created_at",
            "status",
            "database",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "Same as `ref`."},
            "ref": {"type": "string", "pattern": "^[a-z]{20}$"},
            "organization_id": {"type": "string"},
            "organization_slug": {"type": "string"},
            "name": {"type": "string"},
            "region": {"type": "string"},
            "created_at": TIMESTAMP,
            "status": {"type": "string", "enum": STATUSES},
            "database": _ref("Database"),
            "endpoints": {
                "type": "object",
                "description": "Ours: where the project answers, once its stack has been rendered.",
                "properties": {
                    "api_url": NULLABLE_STRING,
                    "ports": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
    },
    "CreateProjectBody": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": models.NAME_MAX, "description": "Display name."},
            "db_pass": {
                "type": ["string", "null"],
                "pattern": "^[A-Za-z0-9_.~+=@%^!*,:-]{12,128}$",
                "description": "Password of the `postgres` role; generated when absent. Never echoed.",
                "writeOnly": True,
            },
            # Empty or null: the default.
            "organization_slug": {"type": ["string", "null"], "pattern": SLUG_OR_EMPTY, "default": "default"},
            "region": {"type": ["string", "null"], "pattern": SLUG_OR_EMPTY, "default": "local"},
            "desired_instance_size": IGNORED,
            "plan": IGNORED,
            "template_url": IGNORED,
            "release_channel": IGNORED,
            "postgres_engine": IGNORED,
        },
    },
    "DeletedProject": {
        "type": "object",
        "required": ["id", "ref", "name"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string"}, "ref": {"type": "string"}, "name": {"type": "string"}},
    },
    "ServiceHealth": {
        "type": "object",
        "required": ["name", "healthy", "status"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "enum": list(HEALTH_SERVICES)},
            "healthy": {"type": "boolean"},
            "status": {"type": "string", "enum": ["COMING_UP", "ACTIVE_HEALTHY", "UNHEALTHY"]},
            "error": {"type": "string"},
            "info": {"type": "object"},
        },
    },
    "ApiKey": {
        "type": "object",
        "required": ["name", "api_key", "id", "type"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "enum": ["anon", "service_role"]},
            "api_key": {"type": "string", "description": "The key itself (a JWT for `legacy` keys)."},
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["legacy", "publishable", "secret"]},
            "prefix": NULLABLE_STRING,
            "description": NULLABLE_STRING,
            "hash": NULLABLE_STRING,
            "secret_jwt_template": {"type": ["object", "null"]},
            "inserted_at": NULLABLE_TIMESTAMP,
            "updated_at": NULLABLE_TIMESTAMP,
        },
    },
    "Step": {
        "type": "object",
        "description": "One event of an operation. `step` events name the playbook task that started;"
        " `n` and `progress` come with them. Ids increase: they are the SSE event ids.",
        "required": ["id", "at", "type"],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "at": TIMESTAMP,
            "type": {
                "type": "string",
                "description": "queued, started, step, task_failed, rollback, requeued, succeeded or failed.",
            },
            "name": NULLABLE_STRING,
            "n": {"type": "integer"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "error": NULLABLE_STRING,
            "reason": {"type": "string"},
            "attempt": {"type": "integer"},
        },
    },
    "ServerSentEvent": {
        "type": "object",
        "description": "One message of GET /v1/operations/{op_id}/events.",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The step id, for Last-Event-ID."},
            "event": {"type": "string", "description": "The step's type."},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref("Step")},
        },
    },
    "Operation": {
        "type": "object",
        "description": "A job on one project: what runs, how far it got, how it ended.",
        "required": [
            "id",
            "ref",
            "kind",
            "state",
            "step",
            "progress",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "steps",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "ref": {"type": "string"},
            "kind": {"type": "string", "enum": list(models.KINDS)},
            "state": {"type": "string", "enum": OPERATION_STATES},
            "step": {**NULLABLE_STRING, "description": "The playbook task running now (or last)."},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "error": {**NULLABLE_STRING, "description": "Why it failed."},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": TIMESTAMP,
            "started_at": NULLABLE_TIMESTAMP,
            "finished_at": NULLABLE_TIMESTAMP,
            "steps": {"type": "array", "items": _ref("Step")},
        },
    },
    "Healthz": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "docker": {"type": "string", "enum": ["ok", "error"]},
            "polls": {"type": "integer"},
            "jobs_running": {"type": "integer"},
            "jobs_queued": {"type": "integer"},
        },
    },
}

REF_PARAM = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "Project ref: 20 lowercase letters (anything else is 404).",
    "schema": {"type": "string"},
}
OP_PARAM = {"name": "op_id", "in": "path", "required": True, "schema": {"type": "string"}}

UNAUTHORIZED = _error("Missing or wrong bearer token.")
PROJECT_NOT_FOUND = _error("No such project.")
BAD_REQUEST = _error("Bad input; the body names the problem.")
CONFLICT = _error("Another operation is still running on this project.")


def _lifecycle(summary: str, description: str, operation_id: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["projects"],
            "summary": summary,
            "description": description + " Answers at once; the playbook runs in the background.",
            "parameters": [REF_PARAM],
            "responses": {
                "202": _json(_ref("Project"), "Accepted: the project in its busy status.", OPERATION_HEADER),
                "400": _error("Not possible in the project's status (e.g. already paused)."),
                "401": UNAUTHORIZED,
                "404": PROJECT_NOT_FOUND,
                "409": CONFLICT,
            },
        }
    }


PATHS: dict[str, Any] = {
    "/v1/projects": {
        "get": {
            "operationId": "listProjects",
            "tags": ["projects"],
            "summary": "List all projects",
            "responses": {
                "200": _json({"type": "array", "items": _ref("Project")}, "Every project."),
                "401": UNAUTHORIZED,
            },
        },
        "post": {
            "operationId": "createProject",
            "tags": ["projects"],
            "summary": "Create a project",
            "description": "Records the project (status COMING_UP) and starts the create playbook. Answers at once"
            " with the new project and the `X-Operation-Id` to follow; the status becomes ACTIVE_HEALTHY, or"
            " INIT_FAILED with the reason in the operation.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CreateProjectBody")}},
            },
            "responses": {
                "201": _json(_ref("Project"), "Created; the stack comes up in the background.", OPERATION_HEADER),
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "413": _error("The body is too large."),
            },
        },
    },
    "/v1/projects/{ref}": {
        "get": {
            "operationId": "getProject",
            "tags": ["projects"],
            "summary": "Get a project",
            "parameters": [REF_PARAM],
            "responses": {"200": _json(_ref("Project"), "The project."), "401": UNAUTHORIZED, "404": PROJECT_NOT_FOUND},
        },
        "delete": {
            "operationId": "deleteProject",
            "tags": ["projects"],
            "summary": "Delete a project",
            "description": "Status GOING_DOWN, then the project is gone (404). Answers at once.",
            "parameters": [
                REF_PARAM,
                {
                    "name": "delete_volumes",
                    "in": "query",
                    "required": False,
                    "description": "Also remove the project's data volumes (default true).",
                    "schema": {"type": "boolean", "default": True},
                },
            ],
            "responses": {
                "202": _json(_ref("DeletedProject"), "Accepted.", OPERATION_HEADER),
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "404": PROJECT_NOT_FOUND,
                "409": CONFLICT,
            },
        },
    },
    "/v1/projects/{ref}/pause": _lifecycle(
        "Pause a project", "Stops its containers (PAUSING, then INACTIVE).", "pauseProject"
    ),
    "/v1/projects/{ref}/restore": _lifecycle(
        "Restore (resume) a paused project", "Starts it again (RESTORING, then ACTIVE_HEALTHY).", "restoreProject"
    ),
    "/v1/projects/{ref}/restart": _lifecycle(
        "Restart a project (ours)", "Restarts its services (RESTARTING, then ACTIVE_HEALTHY).", "restartProject"
    ),
    "/v1/projects/{ref}/health": {
        "get": {
            "operationId": "getProjectHealth",
            "tags": ["projects"],
            "summary": "Health of a project's services, asked of Docker now",
            "parameters": [
                REF_PARAM,
                {
                    "name": "services",
                    "in": "query",
                    "required": True,
                    "style": "form",
                    "explode": False,
                    "description": "Services to report (comma-separated or repeated).",
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "enum": list(HEALTH_SERVICES)},
                    },
                },
                {
                    "name": "timeout_ms",
                    "in": "query",
                    "required": False,
                    "description": "Accepted for compatibility; ignored.",
                    "schema": {},
                },
            ],
            "responses": {
                "200": _json({"type": "array", "items": _ref("ServiceHealth")}, "One entry per service asked."),
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "404": PROJECT_NOT_FOUND,
                "503": _error("Docker cannot be asked right now."),
            },
        }
    },
    "/v1/projects/{ref}/api-keys": {
        "get": {
            "operationId": "getProjectApiKeys",
            "tags": ["projects"],
            "summary": "The project's anon and service_role keys (type legacy)",
            "parameters": [
                REF_PARAM,
                {
                    "name": "reveal",
                    "in": "query",
                    "required": False,
                    "description": "Accepted for compatibility; legacy keys are always shown.",
                    "schema": {},
                },
            ],
            "responses": {
                "200": _json({"type": "array", "items": _ref("ApiKey")}, "The keys."),
                "401": UNAUTHORIZED,
                "404": _error("No such project, or its keys do not exist yet."),
            },
        }
    },
    "/v1/operations/{op_id}": {
        "get": {
            "operationId": "getOperation",
            "tags": ["operations"],
            "summary": "An operation (ours): state, current step, progress, error and the steps so far",
            "parameters": [OP_PARAM],
            "responses": {
                "200": _json(_ref("Operation"), "The operation."),
                "401": UNAUTHORIZED,
                "404": _error("No such operation."),
            },
        }
    },
    "/v1/operations/{op_id}/events": {
        "get": {
            "operationId": "streamOperationEvents",
            "tags": ["operations"],
            "summary": "The operation's steps as Server-Sent Events (ours)",
            "description": "Replays the stored events after `Last-Event-ID` (header, or the `last_event_id` query"
            " parameter), then sends new ones as they happen, and ends once the operation has succeeded or"
            " failed. Each event: `id:` the step id, `event:` its type, `data:` the Step object as JSON."
            " A comment line every 15 seconds keeps idle connections open.",
            "parameters": [
                OP_PARAM,
                {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
                {
                    "name": "last_event_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                },
            ],
            "responses": {
                "200": {
                    "description": "An event stream.",
                    # Before OpenAPI 3.2 (itemSchema), the schema of an event stream describes one event.
                    "content": {"text/event-stream": {"schema": _ref("ServerSentEvent")}},
                },
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "404": _error("No such operation."),
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "tags": ["service"],
            "summary": "Liveness of the daemon (open)",
            "security": [],
            "responses": {"200": _json(_ref("Healthz"), "The daemon answers.")},
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["service"],
            "summary": "Prometheus metrics, text exposition format 0.0.4 (open)",
            "security": [],
            "responses": {
                "200": {
                    "description": "Metrics prefixed `supamanager_`.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "tags": ["service"],
            "summary": "This document (open)",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }
    },
    "/docs": {
        "get": {
            "operationId": "docs",
            "tags": ["service"],
            "summary": "This document as a page (open)",
            "security": [],
            "responses": {
                "200": {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
            },
        }
    },
}


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document (built once; callers must not modify it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SupaManager control daemon",
            "version": __version__,
            "description": "A subset of the Supabase Management API (v1) for self-hosted projects, plus our"
            " extensions: restart, operations and their event stream, metrics. Every /v1 route needs"
            " `Authorization: Bearer <token>`; /healthz, /metrics, /openapi.json and /docs are open.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "projects", "description": "Projects, in the Management API's shapes."},
            {"name": "operations", "description": "Jobs that carry changes out (ours)."},
            {"name": "service", "description": "The daemon itself."},
        ],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


# -- the docs page: rendered here from the same dicts, self-contained (no script, no external asset) --
_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:62rem;padding:1rem 1.5rem;color:#1c1c1c}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.op{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.5rem .9rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace;text-transform:uppercase}
.get{color:#0b6bcb}.post{color:#1a7f37}.delete{color:#b42318}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #e3e3e3;padding:.15rem .5rem;text-align:left;vertical-align:top}
.open{font-size:12px;background:#eef;border-radius:3px;padding:0 .3rem}
"""


def _schema_html(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{name}"><code>{html.escape(name)}</code></a>'
    if schema.get("type") == "array" and "items" in schema:
        return "array of " + _schema_html(schema["items"])
    return f"<code>{html.escape(json.dumps(schema))}</code>"


def render_docs(doc: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>{e(doc['info']['title'])} API</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc['info']['title'])} <small>{e(doc['info']['version'])}</small></h1>",
        f"<p>{e(doc['info']['description'])}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
    ]
    for tag in doc["tags"]:
        parts.append(f"<h2>{e(tag['name'])}</h2><p>{e(tag['description'])}</p>")
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if tag["name"] not in op.get("tags", []):
                    continue
                is_open = op.get("security") == []
                parts.append(f'<div class=op id="{e(op["operationId"])}">')
                parts.append(
                    f"<p><span class='m {method}'>{method}</span> <code>{e(path)}</code> "
                    f"&mdash; {e(op['summary'])}{' <span class=open>no auth</span>' if is_open else ''}</p>"
                )
                if op.get("description"):
                    parts.append(f"<p>{e(op['description'])}</p>")
                if op.get("parameters"):
                    parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th><th>about</th></tr>")
                    for p in op["parameters"]:
                        req = " (required)" if p.get("required") else ""
                        parts.append(
                            f"<tr><td><code>{e(p['name'])}</code>{req}</td><td>{e(p['in'])}</td>"
                            f"<td>{_schema_html(p['schema'])}</td><td>{e(p.get('description', ''))}</td></tr>"
                        )
                    parts.append("</table>")
                if "requestBody" in op:
                    for ctype, media in op["requestBody"]["content"].items():
                        parts.append(f"<p>Body ({e(ctype)}): {_schema_html(media['schema'])}</p>")
                parts.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
                for status, resp in op["responses"].items():
                    body = ", ".join(
                        f"{e(ctype)} {_schema_html(media['schema'])}"
                        for ctype, media in resp.get("content", {}).items()
                    )
                    parts.append(f"<tr><td>{e(status)}</td><td>{e(resp['description'])}</td><td>{body}</td></tr>")
                parts.append("</table></div>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(
            f'<h3 id="schema-{e(name)}">{e(name)}</h3><pre>{e(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>'
        )
    parts.append("</body></html>")
    return "\n".join(parts)


routes = web.RouteTableDef()


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec())


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=render_docs(spec()),
        content_type="text/html",
        # A page that needs nothing from elsewhere can say so.
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
