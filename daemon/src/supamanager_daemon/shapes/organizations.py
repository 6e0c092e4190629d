"""Shapes of the Organizations tag. An organization's `id` is its `slug` (the CLI sends one for the other)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .. import models
from .common import ProjectStatus, Query, Request


class CreateOrganizationV1(Request):
    name: str = Field(min_length=1, max_length=256)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or models.UNPRINTABLE.search(value):
            raise ValueError("must be printable text (no control or bidirectional formatting characters), not empty")
        return value


class OrganizationResponseV1(BaseModel):
    id: str = Field(description="Same as `slug`.")
    slug: str
    name: str


class V1OrganizationSlugResponse(BaseModel):
    id: str = Field(description="Same as the slug.")
    name: str
    plan: Literal["free", "pro", "team", "enterprise", "platform"] = "free"
    opt_in_tags: list[str] = Field(default_factory=list)
    allowed_release_channels: list[Literal["internal", "alpha", "beta", "ga", "withdrawn", "preview"]] = ["ga"]


DatabaseStatus = Literal[
    "ACTIVE_HEALTHY",
    "ACTIVE_UNHEALTHY",
    "COMING_UP",
    "GOING_DOWN",
    "INIT_FAILED",
    "REMOVED",
    "RESTORING",
    "UNKNOWN",
    "INIT_READ_REPLICA",
    "INIT_READ_REPLICA_FAILED",
    "RESTARTING",
    "RESIZING",
]


class OrganizationProjectDatabase(BaseModel):
    region: str
    status: DatabaseStatus
    cloud_provider: str
    identifier: str
    type: Literal["PRIMARY", "READ_REPLICA"] = "PRIMARY"


class OrganizationProject(BaseModel):
    ref: str
    name: str
    cloud_provider: str
    region: str
    is_branch: bool = False
    status: ProjectStatus
    inserted_at: str
    databases: list[OrganizationProjectDatabase]


class Pagination(BaseModel):
    count: int
    limit: int
    offset: int


class OrganizationProjectsResponse(BaseModel):
    projects: list[OrganizationProject]
    pagination: Pagination


class OrganizationProjectsQuery(Query):
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=100)
    search: str | None = Field(default=None, max_length=256, description="Part of the project's name.")
    sort: Literal["name_asc", "name_desc", "created_asc", "created_desc"] = Field(
        default="name_asc", description="The order of the projects."
    )
    statuses: list[ProjectStatus] | None = Field(default=None, description="Only projects in these statuses.")
