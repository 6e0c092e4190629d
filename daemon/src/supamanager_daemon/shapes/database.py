"""Shapes of the Database tag (and the config, keys and types routes that read the project's database
or files): the document's V1RunQueryBody, V1CreateMigrationBody, CreateRoleBody, SupavisorConfigResponse,
LegacyApiKeysResponse and TypescriptResponse."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator

from .common import Query, Request, omitted
from .projects import DB_PASS_RULE, check_db_pass
from .settings import KINDS, POSTGRES_FIELDS, request_field


class V1RunQueryBody(Request):
    query: str = Field(min_length=1, description="SQL; several statements run as one script.")
    parameters: list[Any] | None = Field(default=None, description="Values for $1, $2, ... (one statement).")
    read_only: bool | None = Field(default=None, description="Run in a READ ONLY transaction, one statement.")


class V1ReadOnlyQueryBody(Request):
    query: str = Field(min_length=1)
    parameters: list[Any] | None = None


class V1CreateMigrationBody(Request):
    query: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=1024)
    rollback: str | None = None


class V1UpdatePasswordBody(Request):
    password: str = Field(
        description=DB_PASS_RULE + ". Never echoed.", json_schema_extra={"writeOnly": True}, repr=False
    )

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_db_pass(value)


class V1UpdatePasswordResponse(BaseModel):
    message: str


class V1Migration(BaseModel):
    version: str = Field(min_length=1)
    name: str | None = omitted()


class CreateRoleBody(Request):
    read_only: bool


class CreateRoleResponse(BaseModel):
    role: str = Field(min_length=1)
    password: str = Field(min_length=1)
    ttl_seconds: int = Field(ge=1)


class DeleteRolesResponse(BaseModel):
    message: Literal["ok"] = "ok"


class SupavisorConfigResponse(BaseModel):
    identifier: str
    database_type: Literal["PRIMARY", "READ_REPLICA"]
    is_using_scram_auth: bool
    db_user: str
    db_host: str
    db_port: int
    db_name: str
    connection_string: str
    connectionString: str = Field(description="Use connection_string instead")
    default_pool_size: int | None
    max_client_conn: int | None
    pool_mode: Literal["transaction", "session"]


class LegacyApiKeysResponse(BaseModel):
    enabled: bool


class TypescriptResponse(BaseModel):
    types: str


_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")


class TypescriptQuery(Query):
    included_schemas: str = Field(default="public", description="Comma-separated schema names.")

    @field_validator("included_schemas")
    @classmethod
    def _schemas(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names or len(names) > 64 or not all(_SCHEMA_RE.fullmatch(n) for n in names):
            raise ValueError("must be 1-64 comma-separated schema names (letters, digits, _ $ -)")
        return ",".join(names)


# -- config/database/postgres: the document's PostgresConfigResponse and UpdatePostgresConfigBody -------
def _response_field(spec: dict[str, Any]) -> tuple[Any, Any]:
    return (KINDS[spec["type"]] | None, omitted())


PostgresConfigResponse = create_model(
    "PostgresConfigResponse",
    __doc__="The Postgres settings the project's database was given (a setting left at its default: absent).",
    **{name: _response_field(spec) for name, spec in POSTGRES_FIELDS.items()},
)

UpdatePostgresConfigBody = create_model(
    "UpdatePostgresConfigBody",
    __base__=Request,
    __doc__="The Postgres settings to change (each one restarts the database); a field left out is left as it is."
    " `restart_database` is taken and changes nothing: a change always restarts the database.",
    restart_database=(bool | None, None),
    **{name: request_field(spec) for name, spec in POSTGRES_FIELDS.items()},
)
