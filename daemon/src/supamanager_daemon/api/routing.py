"""How a route is declared: its path, status code and shapes, once, for serving and for /openapi.json.

    api = Api("Projects")

    @api.get("/v1/projects/{ref}", "v1-get-project", "Get a project",
             response=V1ProjectWithDatabaseResponse, errors=(404,))
    async def get_project(request: web.Request) -> V1ProjectWithDatabaseResponse: ...

The wrapper parses and validates the JSON body (`body=`) and the query string (`query=`) into
their pydantic models and passes them as keyword arguments `body` and `query`; the handler returns
the response model (or a list of them, or a dict the model validates), or a `Reply` to add headers,
or a ready `web.StreamResponse`. The answer always carries the declared success status. Failures
are domain errors (errors.py), raised, and turned into the one error shape by middleware.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from aiohttp import web

from ..errors import InvalidRequest

JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class Reply:
    """A response model with response headers (e.g. X-Operation-Id)."""

    body: Any
    headers: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Operation:
    """One served operation: everything /openapi.json says about it, and what the wrapper enforces."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Callable[..., Awaitable[Any]]
    status: int = 200
    response: Any = None  # a pydantic model, list[Model], or None (no JSON body)
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    # Response headers documented on success: name -> description (all required).
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Ours beyond the Management API (documented as an extension).
    ours: bool = False
    # Open routes (no bearer token): /healthz, /metrics, the document itself.
    open: bool = False
    # Non-JSON answers: content type -> JSON schema of the body.
    content: dict[str, dict[str, Any]] | None = None
    # Extra documented parameters the query model cannot express (e.g. a header).
    extra_parameters: tuple[dict[str, Any], ...] = ()

    @property
    def adapter(self) -> pydantic.TypeAdapter | None:
        return _adapter(self.response) if self.response is not None else None


_ADAPTERS: dict[Any, pydantic.TypeAdapter] = {}


def _adapter(tp: Any) -> pydantic.TypeAdapter:
    key = repr(tp)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = pydantic.TypeAdapter(tp)
    return _ADAPTERS[key]


class Api:
    """The operations of one tag (one module under api/)."""

    def __init__(self, tag: str, description: str, *, ours: bool = False) -> None:
        self.tag = tag
        self.description = description
        self.ours = ours
        self.operations: list[Operation] = []

    def route(self, method: str, path: str, operation_id: str, summary: str, **options: Any):
        def decorate(handler: Callable[..., Awaitable[Any]]):
            options.setdefault("ours", self.ours)
            self.operations.append(
                Operation(method, path, operation_id, summary, self.tag, handler, **options)  # type: ignore[arg-type]
            )
            return handler

        return decorate

    def get(self, path: str, operation_id: str, summary: str, **options: Any):
        return self.route("GET", path, operation_id, summary, **options)

    def post(self, path: str, operation_id: str, summary: str, **options: Any):
        return self.route("POST", path, operation_id, summary, **options)

    def patch(self, path: str, operation_id: str, summary: str, **options: Any):
        return self.route("PATCH", path, operation_id, summary, **options)

    def put(self, path: str, operation_id: str, summary: str, **options: Any):
        return self.route("PUT", path, operation_id, summary, **options)

    def delete(self, path: str, operation_id: str, summary: str, **options: Any):
        return self.route("DELETE", path, operation_id, summary, **options)


# -- validation: pydantic errors become one InvalidRequest that names the field -------------------
def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else type(value).__name__


_TYPE_NAMES = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "true or false",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}


def invalid_request(exc: pydantic.ValidationError, where: str = "field") -> InvalidRequest:
    """The first problem pydantic found, as an InvalidRequest; never echoes the value."""
    extra = [".".join(str(p) for p in e["loc"]) for e in exc.errors() if e["type"] == "extra_forbidden"]
    if extra:
        return InvalidRequest(f"unknown {where}(s): {', '.join(sorted(extra))}", code="unknown_field", fields=extra)
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if not field:
        return InvalidRequest(
            f"request body must be a JSON object, not {_json_type(err.get('input'))}", code="invalid_body"
        )
    if kind == "missing" or (err.get("input", ...) is None and kind in _TYPE_NAMES):
        return InvalidRequest(f"{where} '{field}' is required", code="missing_field", field=field)
    if kind in _TYPE_NAMES:
        return InvalidRequest(
            f"{where} '{field}' must be {_TYPE_NAMES[kind]}, not {_json_type(err.get('input'))}",
            code="invalid_type",
            field=field,
        )
    # value_error: our own validators' messages (they never include the value).
    message = err["msg"].removeprefix("Value error, ")
    if kind == "string_too_long":
        message = f"longer than {err['ctx']['max_length']} characters"
    elif kind == "string_too_short":
        message = f"shorter than {err['ctx']['min_length']} characters"
    elif kind in ("literal_error", "enum"):
        # An enum's values are no secret: naming the wrong one helps.
        message = f"must be one of {err['ctx'].get('expected')}, not {str(err.get('input'))[:64]!r}"
    elif kind == "string_pattern_mismatch":
        message = "has an invalid format"
    elif kind in ("less_than_equal", "greater_than_equal"):
        bound = "le" if kind == "less_than_equal" else "ge"
        message = f"must be {'at most' if bound == 'le' else 'at least'} {err['ctx'][bound]}"
    return InvalidRequest(f"{where} '{field}' {message}", code="invalid_value", field=field)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 naming the problem when it is not (413 comes from aiohttp)."""
    raw = await request.read()
    if not raw.strip():
        raise InvalidRequest("request body must be a JSON object", code="invalid_body")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not UTF-8", code="malformed_json") from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply", code="malformed_json") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="malformed_json",
        ) from None


def parse_body(model: type[pydantic.BaseModel], value: Any) -> pydantic.BaseModel:
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise invalid_request(exc) from None


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in typing.get_args(annotation))


def parse_query(model: type[pydantic.BaseModel], request: web.Request) -> pydantic.BaseModel:
    """Query parameters into their model; a list field takes repeated and comma-separated values, others one."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in request.query:
            continue
        if _is_list(field.annotation):
            items: list[str] = []
            for raw in request.query.getall(key):
                # An empty item ("a,,b", "x=") is validated like any other, so refused: not dropped.
                items.extend(v.strip() for v in raw.split(","))
            values[key] = items
        else:
            given = request.query.getall(key)
            if len(given) > 1:
                # Taking the first (or last) of two values would answer a question nobody asked.
                raise InvalidRequest(
                    f"query parameter '{key}' is given more than once", code="repeated_parameter", field=key
                )
            values[key] = given[0]
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise invalid_request(exc, where="query parameter") from None


def dump(op: Operation, result: Any) -> Any:
    adapter = op.adapter
    assert adapter is not None, f"{op.operation_id} declares no JSON response"
    return adapter.dump_python(adapter.validate_python(result), mode="json", by_alias=True)


def aiohttp_handler(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if op.body is not None:
            kwargs["body"] = parse_body(op.body, await read_json(request))
        if op.query is not None:
            kwargs["query"] = parse_query(op.query, request)
        result = await op.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        headers = None
        if isinstance(result, Reply):
            result, headers = result.body, result.headers
        if op.response is None:
            return web.Response(status=op.status, headers=headers)
        return web.json_response(dump(op, result), status=op.status, headers=headers)

    handle.__name__ = op.handler.__name__
    return handle


PATH_PARAM = re.compile(r"\{([^}]+)\}")


def add_routes(app: web.Application, operations: list[Operation]) -> None:
    for op in operations:
        app.router.add_route(op.method, op.path, aiohttp_handler(op))
