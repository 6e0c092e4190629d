"""The OpenAPI 3.1 document of the daemon's API (/openapi.json) and its page (/docs), both derived.

Nothing here is written by hand: paths, parameters, status codes and headers come from the route
declarations (api/<tag>.py), schemas from the pydantic models (shapes/<tag>.py). So a route cannot
be served without being documented, and the document cannot say what the code does not do.
"""

from __future__ import annotations

import functools
import html
import json
import typing
from typing import Any

import pydantic
from pydantic.json_schema import models_json_schema

from . import __version__
from .api.routing import Operation
from .shapes.common import Error

REF = "#/components/schemas/{model}"
_ERROR_MEANING = {
    400: "Bad input, or not possible in the project's state; the body names the problem.",
    401: "Missing or wrong bearer token.",
    403: "A limit of the host is reached (e.g. SUPAMANAGER_MAX_PROJECTS).",
    404: "No such object.",
    409: "Another operation is still running on this project.",
    413: "The body is too large.",
    429: "Too many failed authentications from this address (SUPAMANAGER_AUTH_FAILURES_PER_MINUTE); see Retry-After.",
    503: "A part the daemon needs cannot be reached, or too many event streams are open; see Retry-After if sent.",
}
PATH_PARAMETERS = {
    "ref": "Project ref: 20 lowercase letters (anything else is 404).",
    "slug": "Organization slug.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _models(tp: Any) -> list[type[pydantic.BaseModel]]:
    """The pydantic models a declared type names (a model, or a list of them)."""
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models(arg)]


def _schema_of(tp: Any, refs: dict) -> dict[str, Any]:
    if isinstance(tp, dict):
        return tp
    if typing.get_origin(tp) is list:
        return {"type": "array", "items": _schema_of(typing.get_args(tp)[0], refs)}
    return refs[(tp, "serialization")]


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params = []
    for name in (part[1:-1] for part in op.path.split("/") if part.startswith("{")):
        param = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        if name in PATH_PARAMETERS:
            param["description"] = PATH_PARAMETERS[name]
        params.append(param)
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=REF)
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", "")
            prop.pop("title", None)
            param = {"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    params.extend(op.extra_parameters)
    return params


def _tags(tags) -> list[dict[str, str]]:
    """One entry per tag name: several route modules share one (backups and SQL are both Database upstream)."""
    merged: dict[str, list[str]] = {}
    for tag in tags:
        merged.setdefault(tag.tag, []).append(tag.description)
    return [
        {"name": name, "description": " ".join(d for d in descriptions if d)} for name, descriptions in merged.items()
    ]


def _operation(op: Operation, refs: dict) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag], "summary": op.summary}
    if op.description:
        doc["description"] = op.description
    if op.ours:
        doc["x-supamanager-extension"] = True
    if op.open:
        doc["security"] = []
    params = _parameters(op)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": _schema_of(op.response, refs)}}
    elif op.content is not None:
        success["content"] = {ctype: {"schema": _schema_of(tp, refs)} for ctype, tp in op.content.items()}
    if op.headers:
        success["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in op.headers.items()
        }
    responses = {str(op.status): success}
    # Every route that needs the token: 401 for a wrong one, 429 for an address that failed too often.
    errors = set(op.errors) | (set() if op.open else {401, 429})
    # Input the route parses can be wrong (400); a body can be larger than the daemon reads (413).
    if op.query is not None or op.body is not None:
        errors.add(400)
    if op.body is not None:
        errors.add(413)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _ERROR_MEANING.get(status, "Error."),
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    doc["responses"] = responses
    return doc


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document (built once; callers must not modify it)."""
    from .api import TAGS, all_operations  # late: the api modules serve this document

    operations = all_operations()
    wanted: dict[tuple[type[pydantic.BaseModel], str], None] = {(Error, "serialization"): None}
    for op in operations:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        for tp in [op.response, *((op.content or {}).values())]:
            if tp is not None and not isinstance(tp, dict):
                for model in _models(tp):
                    wanted[(model, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=REF)
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SupaManager control daemon",
            "version": __version__,
            "description": "The Supabase Management API (v1) for self-hosted projects, in the official document's"
            " shapes, plus our extensions (marked `x-supamanager-extension`): restart, operations and their event"
            " stream, metrics. Every /v1 route needs `Authorization: Bearer <token>`; /healthz, /metrics,"
            " /openapi.json and /docs are open.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": _tags(TAGS),
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


# -- the docs page: rendered from the same document, self-contained (no script, no external asset) --
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
