"""Shapes of the Secrets tag (the edge functions' secrets), as the Management API document has them."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

from .common import Request, omitted


class SecretResponse(BaseModel):
    name: str
    value: str = Field(description="The SHA-256 of the value (hex), never the value.")
    updated_at: str | None = omitted()


class CreateSecret(Request):
    name: str = Field(max_length=256, description="Secret name must not start with the SUPABASE_ prefix.")
    value: str = Field(max_length=24576)


class CreateSecretBody(RootModel[list[CreateSecret]]):
    pass


class DeleteSecretsBody(RootModel[list[str]]):
    pass
