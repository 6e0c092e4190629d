"""Check a response of the daemon against its own OpenAPI document (jsonschema, Draft 2020-12,
which is what OpenAPI 3.1 schemas are), and against the official document (official_check.py)."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
from official_check import check_official, check_official_file
from supamanager_daemon.openapi import spec


@functools.cache
def _routes() -> list[tuple[re.Pattern, str]]:
    routes = []
    for template in spec()["paths"]:
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        routes.append((re.compile(pattern), template))
    # Literal paths before templated ones: /v1/operations/{id}/events is not /v1/operations/{id}.
    routes.sort(key=lambda r: r[1].count("{"))
    return routes


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for pattern, template in _routes():
        if pattern.match(path):
            ops = spec()["paths"][template]
            assert method.lower() in ops, f"{method} {path}: method not in the document ({template})"
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path}: no path of the document matches")


def check_response(method: str, path: str, status: int, content_type: str, body: Any, headers=None) -> None:
    """Assert that the status is documented for this operation and the body matches its schema."""
    template, op = find_operation(method, path)
    responses = op["responses"]
    assert str(status) in responses, f"{method} {template}: status {status} is not documented"
    response = responses[str(status)]
    media = content_type.split(";")[0].strip()
    content = response.get("content", {})
    # An answer without a body is documented without content.
    assert media in content or not (media or content), (
        f"{method} {template} {status}: content type {media} is not documented"
    )
    for name, header in response.get("headers", {}).items():
        if header.get("required"):
            assert headers is not None and name in headers, f"{method} {template} {status}: header {name} missing"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": spec()["components"]}
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)
    if media == "application/json" or not media:
        # And what the official Management API document says of the same operation, when it is upstream's.
        check_official(method, path, status, body)
    else:
        check_official_file(method, path, status)


def check_documented(method: str, path: str, status: int, body: Any, headers) -> None:
    """check_response for a documented path (query string ignored); other paths are left alone."""
    path = path.split("?", 1)[0]
    if any(pattern.match(path) for pattern, _ in _routes()):
        check_response(method, path, status, headers.get("Content-Type", ""), body, headers)


async def checked(client, method: str, url: str, **kwargs):
    """client.request(...) whose response is checked against the document; returns (resp, body)."""
    resp = await client.request(method, url, **kwargs)
    if resp.content_type == "application/json":
        body = await resp.json()
    else:
        body = await resp.text()
    path = url.split("?", 1)[0]
    check_response(method, path, resp.status, resp.headers.get("Content-Type", ""), body, resp.headers)
    return resp, body
