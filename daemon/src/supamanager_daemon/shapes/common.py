"""Shapes every tag shares: the one error shape, and the vocabulary's enums."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import models

ProjectStatus = enum.StrEnum("ProjectStatus", {s: s for s in models.STATUSES})


def _is_none(value: Any) -> bool:
    return value is None


def omitted(description: str = "", **options: Any) -> Any:
    """An optional field left out of the answer when it has no value (upstream: optional, not nullable)."""
    return Field(default=None, exclude_if=_is_none, description=description, **options)


class Request(BaseModel):
    """Base of request bodies: unknown fields are an error, no type is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Base of query-string models: values arrive as strings and are parsed (lax), unknown ones ignored."""

    model_config = ConfigDict(extra="ignore")


class Error(BaseModel):
    """Every error, whatever the status: `message` as upstream, plus our stable `code` and `details`."""

    code: str = Field(description="Stable machine-readable code, e.g. `project_not_found`.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] | None = omitted("The field(s) or operation concerned.")
