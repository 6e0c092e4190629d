"""Shapes of the /platform routes Studio's platform mode reads (api/studio.py), each after the Studio
source that reads or serves it (supabase/supabase, apps/studio/...):

- a project in a list: `pages/api/constants.ts` DEFAULT_PROJECT (id, ref, name, organization_id,
  cloud_provider, status, region, inserted_at), and `organization_slug` as the list's pages map it;
- the list: `data/projects/projects-query.ts` ListProjectsPaginatedResponse `{pagination, projects}`
  (`Version: 2`);
- a project's detail: `data/projects/project-detail-query.ts` ProjectDetailResponse, whose
  `connectionString`, `db_host` and `restUrl` Studio uses to reach the project;
- settings: `lib/api/self-hosted/settings.ts` ProjectSettingsResponse (`app_config`, `db_*`,
  `service_api_keys`, `jwt_secret`, ...);
- organizations: `pages/api/constants.ts` DEFAULT_ORGANIZATION (id, name, slug, billing_email, plan)
  read by `data/organizations/organizations-query.ts`;
- the profile: `data/profile/types.ts` ProfileResponse (id, primary_email, username, first_name,
  last_name, gotrue_id, free_project_limit, is_alpha_user, disabled_features).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .common import ProjectStatus


class StudioProject(BaseModel):
    id: int = Field(description="The project's number.")
    ref: str
    name: str
    organization_id: int = Field(description="The organization's number (its place in GET /platform/organizations).")
    organization_slug: str
    cloud_provider: str
    status: ProjectStatus
    region: str
    inserted_at: str


class StudioPagination(BaseModel):
    count: int
    limit: int
    offset: int


class ListProjectsPaginatedResponse(BaseModel):
    pagination: StudioPagination
    projects: list[StudioProject]


class ProjectDetailResponse(StudioProject):
    db_host: str
    restUrl: str | None = Field(description="The project's API URL with /rest/v1/; null until its create wrote it.")
    connectionString: str | None = Field(
        description="Direct database connection string, the password as `[YOUR-PASSWORD]`; null until known."
    )


class StudioAppConfig(BaseModel):
    db_schema: str
    endpoint: str
    storage_endpoint: str
    protocol: str


class StudioServiceApiKey(BaseModel):
    api_key: str
    name: str
    tags: str


class ProjectSettingsResponse(BaseModel):
    app_config: StudioAppConfig | None
    cloud_provider: str
    db_dns_name: str
    db_host: str
    db_ip_addr_config: str
    db_name: str
    db_port: int | None
    db_user: str
    inserted_at: str
    jwt_secret: str | None = Field(description="The project's JWT secret (Studio signs with it).")
    name: str
    ref: str
    region: str
    service_api_keys: list[StudioServiceApiKey]
    ssl_enforced: bool
    status: ProjectStatus


class StudioPlan(BaseModel):
    id: str
    name: str


class OrganizationResponse(BaseModel):
    id: int
    name: str
    slug: str
    billing_email: str | None
    plan: StudioPlan


class ProfileResponse(BaseModel):
    id: int
    gotrue_id: str
    primary_email: str
    username: str
    first_name: str
    last_name: str
    free_project_limit: int
    is_alpha_user: bool
    disabled_features: list[str]
