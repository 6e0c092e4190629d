"""Shapes of the Advisors tag (our own lints of a project's database), as the Management API document has them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .common import Query, omitted


class LintMetadata(BaseModel):
    schema_: str | None = omitted(alias="schema")
    name: str | None = omitted()
    entity: str | None = omitted()
    type: Literal["table", "view", "auth", "function", "extension", "compliance"] | None = omitted()
    fkey_name: str | None = omitted()
    fkey_columns: list[int] | None = omitted()


class Lint(BaseModel):
    name: Literal[
        "unindexed_foreign_keys",
        "unused_index",
        "duplicate_index",
        "security_definer_view",
        "function_search_path_mutable",
        "rls_disabled_in_public",
    ]
    title: str
    level: Literal["ERROR", "WARN", "INFO"]
    facing: Literal["EXTERNAL"]
    categories: list[Literal["PERFORMANCE", "SECURITY"]]
    description: str
    detail: str
    remediation: str
    metadata: LintMetadata | None = omitted()
    cache_key: str


class V1ProjectAdvisorsResponse(BaseModel):
    lints: list[Lint]


class SecurityAdvisorsQuery(Query):
    lint_type: Literal["sql"] | None = None
