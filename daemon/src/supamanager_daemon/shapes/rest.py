"""Shapes of the Rest tag (a project's PostgREST settings, `postgrest`), as the Management API document has them."""

from __future__ import annotations

from pydantic import BaseModel, create_model

from .common import Request
from .settings import POSTGREST_FIELDS, request_field


class V1PostgrestConfigResponse(BaseModel):
    db_schema: str
    max_rows: int
    db_extra_search_path: str
    # null: PostgREST's own default pool (the document: "configured automatically")
    db_pool: int | None


class PostgrestConfigWithJWTSecretResponse(V1PostgrestConfigResponse):
    """The document's GET answer; its optional jwt_secret is never answered (a secret in clear)."""


V1UpdatePostgrestConfigBody = create_model(
    "V1UpdatePostgrestConfigBody",
    __base__=Request,
    __doc__="The PostgREST settings to change; a field left out is left as it is.",
    **{name: request_field(spec) for name, spec in POSTGREST_FIELDS.items()},
)
