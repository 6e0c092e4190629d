"""Rows as JSON: what psycopg returns, turned into values json.dumps takes, as upstream answers them.

Integers stay numbers and json/jsonb columns arrive parsed (psycopg's loaders do both); numeric
stays a string so no digit is lost (as node-postgres, which upstream's pg-meta uses, answers it);
times are ISO 8601; bytea is Postgres's hex form; anything else is its text form.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from typing import Any


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def parameter_text(value: Any) -> str | None:
    """A JSON parameter as the text Postgres gets, untyped, as node-postgres sends every parameter."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))
