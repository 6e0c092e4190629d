"""Shapes of the Projects tag: create body, project, project with database, health, API keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from .. import models
from ..fleet.status import HEALTH_SERVICES
from .billing import InstanceSize
from .common import ProjectStatus, Query, Request, omitted

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# The password ends up in .env files and connection strings: keep to characters that need no quoting
# there. 8 characters at least (upstream's own clients use e.g. `password123`).
DB_PASS_RE = re.compile(r"[A-Za-z0-9_.~+=^!*,-]{8,128}")
DB_PASS_RULE = "must be 8-128 characters of letters, digits and _.~+=^!*,-"  # noqa: S105 - a rule, not a password
IGNORED = "Accepted for compatibility; ignored."


def check_db_pass(value: str) -> str:
    if not DB_PASS_RE.fullmatch(value):
        # Never echo the value.
        raise ValueError(DB_PASS_RULE)
    return value


class RegionSelection(BaseModel):
    type: Literal["specific", "smartGroup"]
    code: str


class V1CreateProjectBody(Request):
    """POST /v1/projects, as the document has it; `db_pass` and `organization_slug` may be left out here
    (a password is minted, the default organization is used)."""

    name: str = Field(max_length=models.NAME_MAX, description="Display name.")
    db_pass: str | None = Field(
        default=None,
        description="Password of the `postgres` role; minted when absent. Never echoed. " + DB_PASS_RULE + ".",
        json_schema_extra={"writeOnly": True},
        repr=False,
    )
    organization_slug: str | None = Field(default=None, description="Default: the default organization.")
    organization_id: str | None = Field(default=None, description="Deprecated upstream: `organization_slug`.")
    region: str | None = Field(default=None, description="A name for where it runs; default `local`.")
    region_selection: RegionSelection | None = Field(default=None, description=IGNORED)
    desired_instance_size: InstanceSize | None = Field(
        default=None,
        description="The compute size (memory and CPU limits, roles/project README); absent: none, no limits.",
    )
    kps_enabled: bool | None = Field(default=None, description=IGNORED)
    plan: str | None = Field(default=None, description=IGNORED)
    template_url: str | None = Field(default=None, description=IGNORED)
    release_channel: str | None = Field(default=None, description=IGNORED)
    postgres_engine: str | None = Field(default=None, description=IGNORED)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if models.UNPRINTABLE.search(value):
            raise ValueError("must not contain control or bidirectional formatting characters")
        return value

    @field_validator("organization_slug", "organization_id", "region")
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


class V1ProjectResponse(BaseModel):
    """A project, as the Management API shows it."""

    id: str = Field(description="Same as `ref`.")
    ref: str = Field(pattern=r"^[a-z]{20}$")
    organization_id: str = Field(description="Same as `organization_slug`.")
    organization_slug: str
    name: str
    region: str
    created_at: str
    status: ProjectStatus
    endpoints: Endpoints | None = omitted("Ours: where the project answers, once known.")


class V1ProjectWithDatabaseResponse(V1ProjectResponse):
    """A project with its database, as the Management API shows it."""

    database: Database


class V1ProjectRefResponse(BaseModel):
    id: int = Field(description="The project's number (the document wants an integer); `ref` names it.")
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
        default=True,
        description="Take a final backup first, from which the deleted project can be restored while its"
        " retention lasts; a failed final backup deletes nothing (ours; false skips it).",
    )


# GET /v1/projects/available-regions: the document's region codes and smart groups. A host's region
# (supamanager_region) is listed when it is one of these codes; other names serve creates only.
RegionCode = Literal[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-east-1",
    "ap-southeast-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-central-1",
    "eu-central-2",
    "ca-central-1",
    "ap-south-1",
    "sa-east-1",
]
SmartGroupCode = Literal["americas", "emea", "apac"]
Continent = Literal["NA", "SA", "EU", "AF", "AS", "OC", "AN"]


class AvailableRegionsQuery(Query):
    organization_slug: str = Field(description="The organization the project would belong to.")
    continent: Continent | None = Field(default=None, description="Recommends the smart group of that continent.")
    desired_instance_size: InstanceSize | None = Field(
        default=None, description="A region whose hosts have no room for a project of this size is `capacity`."
    )


class SmartGroup(BaseModel):
    name: str
    code: SmartGroupCode
    type: Literal["smartGroup"]


class SpecificRegion(BaseModel):
    name: str
    code: RegionCode
    type: Literal["specific"]
    provider: Literal["AWS", "FLY", "AWS_K8S", "AWS_NIMBUS"] = Field(
        description="Always `AWS`: the document has no provider for a host of one's own."
    )
    status: Literal["capacity", "other"] | None = omitted("`capacity`: no host of the region has room.")


class RegionsRecommendations(BaseModel):
    smartGroup: SmartGroup
    specific: list[SpecificRegion]


class RegionsAll(BaseModel):
    smartGroup: list[SmartGroup]
    specific: list[SpecificRegion]


class RegionsInfo(BaseModel):
    """The regions the inventory's hosts serve (those named by one of the document's codes)."""

    recommendations: RegionsRecommendations
    all: RegionsAll


class MoveProjectBody(Request):
    """POST /v1/projects/{ref}/move (ours): the host of the inventory the project goes to."""

    target_host: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A host of the inventory's group supabase_hosts, not the project's own.",
    )
