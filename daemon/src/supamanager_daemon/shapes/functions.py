"""Shapes of the Edge Functions tag, as the Management API document has them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel

from .common import Query, Request, omitted

FunctionStatus = Literal["ACTIVE", "REMOVED", "THROTTLED"]


class FunctionResponse(BaseModel):
    id: str = Field(description="A UUID, kept across versions.")
    slug: str
    name: str
    status: FunctionStatus
    version: int = Field(description="1 at the first deploy, one more at each deploy or update.")
    created_at: int = Field(description="Unix milliseconds.")
    updated_at: int = Field(description="Unix milliseconds.")
    verify_jwt: bool = Field(description="The main router answers 401 without a valid JWT of the project.")
    import_map: bool
    entrypoint_path: str = Field(description="The entrypoint's path among the uploaded files.")
    import_map_path: str | None = omitted()


class FunctionSlugResponse(FunctionResponse):
    pass


class DeployFunctionResponse(FunctionResponse):
    pass


class BulkUpdateFunction(BaseModel):
    """One function of PUT .../functions: what the CLI's deploys answered (extra fields ignored)."""

    id: str
    slug: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    name: str
    status: FunctionStatus
    version: int


class BulkUpdateFunctionBody(RootModel[list[BulkUpdateFunction]]):
    pass


class BulkUpdateFunctionResponse(BaseModel):
    functions: list[FunctionResponse]


class FunctionDeployMetadata(Request):
    """The `metadata` part of a deploy (what `supabase functions deploy --use-api` sends)."""

    entrypoint_path: str
    import_map_path: str | None = None
    static_patterns: list[str] | None = None
    verify_jwt: bool | None = None
    name: str | None = Field(default=None, max_length=256)


class DeployFunctionQuery(Query):
    slug: str | None = Field(default=None, description="Else the metadata's `name`.")
    bundleOnly: bool = Field(default=False, description="Accepted; the function is deployed all the same.")


class V1CreateFunctionBody(Request):
    """POST .../functions with JSON: `body` becomes the function's index.ts."""

    slug: str
    name: str = Field(max_length=256)
    body: str
    verify_jwt: bool | None = None


class V1UpdateFunctionBody(Request):
    """PATCH with JSON: `body` replaces the entrypoint's source (a new version)."""

    name: str | None = Field(default=None, max_length=256)
    body: str | None = None
    verify_jwt: bool | None = None


class UpdateFunctionQuery(Query):
    name: str | None = None
    verify_jwt: bool | None = None


ESZIP = "application/vnd.denoland.eszip"
