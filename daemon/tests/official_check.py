"""Check a response of the daemon against the official Management API document
(a copy of the team's ../shared/reference/management-api.openapi.json in reference/, so that a clone
alone can run the tests; OpenAPI 3.0: `nullable`, `$ref`s resolved).

- a path the document does not have is one of ours: left to openapi_check (our own document);
- a success status must be the document's success status for the operation, and the body must
  validate against its schema (required fields, types, enums; extra fields are allowed, as the
  clients ignore them);
- an error must carry `message` (a string), as upstream's do, and match the document's schema
  for that status when it gives one.

Every operation checked here is recorded in EXERCISED, so a test can assert that every served
operation of the document has been checked (test_conformance.py).
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from typing import Any

from openapi_schema_validator import OAS30Validator

DOCUMENT = pathlib.Path(__file__).resolve().parent / "reference" / "management-api.openapi.json"
# The team's reference beside the checkout, when there is one: the copy must not drift from it.
SHARED_DOCUMENT = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "management-api.openapi.json"
# (METHOD, template) -> set of statuses seen
EXERCISED: dict[tuple[str, str], set[int]] = {}


@functools.cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


@functools.cache
def _routes() -> list[tuple[re.Pattern, str]]:
    routes = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        routes.append((re.compile(pattern), template))
    # Literal segments before parameters: /v1/projects/{ref}/api-keys/legacy is not .../{id}.
    routes.sort(key=lambda r: (r[1].count("{"), -len(r[1])))
    return routes


def official_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The document's (template, operation) for a concrete path, or None when it is not upstream's."""
    path = path.split("?", 1)[0]
    for pattern, template in _routes():
        if pattern.fullmatch(path):
            op = document()["paths"][template].get(method.lower())
            if op is not None:
                return template, op
    return None


def official_operations() -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in document()["paths"].items() for m in item}


def validate(schema: dict[str, Any], body: Any) -> None:
    # The document's `#/components/...` references resolve inside the schema: give it the components.
    OAS30Validator({**schema, "components": document()["components"]}).validate(body)


def check_official(method: str, path: str, status: int, body: Any) -> bool:
    """Assert the answer is what the document says; False when the path is not the document's."""
    found = official_operation(method, path)
    if found is None:
        return False
    template, op = found
    EXERCISED.setdefault((method.upper(), template), set()).add(status)
    responses = op["responses"]
    if status < 400:
        successes = sorted(s for s in responses if s.startswith("2"))
        assert str(status) in responses, f"{method} {template}: {status}, the document says {successes}"
    else:
        assert isinstance(body, dict) and isinstance(body.get("message"), str), (
            f"{method} {template} {status}: an error without `message`: {body!r}"
        )
    schema = responses.get(str(status), {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        validate(schema, body)
    return True


def check_official_file(method: str, path: str, status: int) -> bool:
    """A success that is not JSON (a function's files, multipart) of an upstream operation: the document
    must call it a file (StreamableFile, whose schema says nothing of the bytes); False when the path is
    not the document's."""
    found = official_operation(method, path)
    if found is None:
        return False
    template, op = found
    schema = op["responses"].get(str(status), {}).get("content", {}).get("application/json", {}).get("schema", {})
    assert schema.get("$ref", "").endswith("/StreamableFile"), f"{method} {template} {status}: not a file upstream"
    EXERCISED.setdefault((method.upper(), template), set()).add(status)
    return True
