"""Shapes of the Projects tag: create body, project, project with database, health, API keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from .. import models
from ..fleet.status import HEALTH_SERVICES
from .common import ProjectStatus, Query, Request, omitted

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# The password ends up in .env files and connection strings: keep to characters that need no quoting.
DB_PASS_RE = re.compile(r"[A-Za-z0-9_.~+=@%^!*,:-]{12,128}")
IGNORED = "Accepted for compatibility; ignored."


def check_db_pass(value: str) -> str:
    if not DB_PASS_RE.fullmatch(value):
        # Never echo the value.
        raise ValueError("must be 12-128 characters of letters, digits and _.~+=@%^!*,:-")
    return value


class V1CreateProjectBody(Request):
    name: str = Field(min_length=1, max_length=models.NAME_MAX, description="Display name.")
    db_pass: str | None = Field(
        default=None,
        description="Password of the `postgres` role; generated when absent. Never echoed.",
        json_schema_extra={"writeOnly": True},
        repr=False,
    )
    organization_slug: str | None = Field(default=None, description="Default: `default`.")
    region: str | None = Field(default=None, description="Default: `local`.")
    desired_instance_size: Any = Field(default=None, description=IGNORED)
    plan: Any = Field(default=None, description=IGNORED)
    template_url: Any = Field(default=None, description=IGNORED)
    release_channel: Any = Field(default=None, description=IGNORED)
    postgres_engine: Any = Field(default=None, description=IGNORED)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("organization_slug", "region")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value and not _SLUG.fullmatch(value):
            raise ValueError("must be 1-64 lowercase letters, digits or '-'")
        return value or None

    @field_validator("db_pass")
    @classmethod
    def _db_pass(cls, value: str | None) -> str | None:
        return None if value is None else check_db_pass(value)


class Database(BaseModel):
    host: str
    version: str
    postgres_engine: str
    release_channel: str


class Endpoints(BaseModel):
    """Ours: where the project answers, once its stack has been rendered."""

    api_url: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)


class V1ProjectWithDatabaseResponse(BaseModel):
    """A project with its database, as the Management API shows it."""

    id: str = Field(description="Same as `ref`.")
    ref: str = Field(pattern=r"^[a-z]{20}$")
    organization_id: str
    organization_slug: str
    name: str
    region: str
    created_at: str
    status: ProjectStatus
    database: Database
    endpoints: Endpoints | None = omitted("Ours: where the project answers, once known.")


class DeletedProject(BaseModel):
    id: str
    ref: str
    name: str


HealthService = Literal[tuple(HEALTH_SERVICES)]  # type: ignore[valid-type]


class HealthQuery(Query):
    services: list[HealthService] = Field(min_length=1, description="Services to report (comma-separated or repeated).")
    timeout_ms: Any = Field(default=None, description=IGNORED)


class V1ServiceHealthResponse(BaseModel):
    name: HealthService
    healthy: bool
    status: Literal["COMING_UP", "ACTIVE_HEALTHY", "UNHEALTHY"]
    error: str | None = omitted()
    info: dict[str, Any] | None = omitted()


class ApiKeysQuery(Query):
    reveal: Any = Field(default=None, description="Accepted for compatibility; legacy keys are always shown.")


class ApiKeyResponse(BaseModel):
    name: str
    api_key: str | None = Field(default=None, description="The key itself (a JWT for `legacy` keys).")
    id: str | None = None
    type: Literal["legacy", "publishable", "secret"] | None = None
    prefix: str | None = None
    description: str | None = None
    hash: str | None = None
    secret_jwt_template: dict[str, Any] | None = None
    inserted_at: str | None = None
    updated_at: str | None = None


class DeleteProjectQuery(Query):
    delete_volumes: bool = Field(default=True, description="Also remove the project's data volumes (ours).")
    backup: bool = Field(
        default=False,
        description="Take a final backup first, from which the deleted project can be restored (ours; off by"
        " default for now).",
    )
