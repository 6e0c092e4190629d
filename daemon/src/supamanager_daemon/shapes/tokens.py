"""Shapes of ours: the API tokens beyond the configured one (`supamanager tokens ...`)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from .common import Request, omitted

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class CreateTokenBody(Request):
    name: str = Field(description="1-64 letters, digits and _.@- (unique).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits and _.@-, starting with a letter or digit")
        return value


class TokenResponse(BaseModel):
    """A token as listed: never the token itself, which only its creation shows."""

    id: str
    name: str
    created_at: str
    revoked_at: str | None
    token: str | None = omitted("The token: shown once, when it is created.")
