"""Shapes of the Domains tag: the document's custom hostname (UpdateCustomHostnameBody, UpdateCustomHostnameResponse)
and vanity subdomain shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .common import Request, omitted

CustomHostnameStatus = Literal[
    "1_not_started", "2_initiated", "3_challenge_verified", "4_origin_setup_completed", "5_services_reconfigured"
]


class UpdateCustomHostnameBody(Request):
    custom_hostname: str = Field(min_length=1, max_length=253, examples=["docs.example.com"])


class ValidationRecord(BaseModel):
    txt_name: str
    txt_value: str


class ValidationError(BaseModel):
    message: str


class CustomHostnameSsl(BaseModel):
    status: str = Field(description="`active` once the edge serves the name, else `pending_validation`.")
    validation_records: list[ValidationRecord] = Field(
        description="Empty: the edge's own issuer validates the name once it points here."
    )
    validation_errors: list[ValidationError] | None = omitted()


class OwnershipVerification(BaseModel):
    type: str = Field(description="`txt`: a TXT record `name` holding `value` (or an address record to this host).")
    name: str
    value: str


class CustomHostnameResult(BaseModel):
    id: str
    hostname: str
    ssl: CustomHostnameSsl
    ownership_verification: OwnershipVerification
    custom_origin_server: str = Field(description="The project's own name on the edge, `<ref>.<base domain>`.")
    verification_errors: list[str] | None = omitted()
    status: str = Field(description="`active` once ownership is verified, else `pending`.")


class CustomHostnameDetails(BaseModel):
    success: bool
    errors: list[Any]
    messages: list[Any]
    result: CustomHostnameResult


class UpdateCustomHostnameResponse(BaseModel):
    status: CustomHostnameStatus
    custom_hostname: str
    data: CustomHostnameDetails


class VanitySubdomainBody(Request):
    vanity_subdomain: str = Field(
        max_length=63, examples=["acme-prod"], description="One DNS label: the project answers at `<it>.<base domain>`."
    )


class VanitySubdomainConfigResponse(BaseModel):
    status: Literal["not-used", "custom-domain-used", "active"] = Field(
        description="`active`: the project's URLs are its vanity subdomain's; `custom-domain-used`: a custom"
        " hostname's (read from its files)."
    )
    custom_domain: str | None = omitted("The name the project's URLs use, when it is not its own.", min_length=1)


class SubdomainAvailabilityResponse(BaseModel):
    available: bool


class ActivateVanitySubdomainResponse(BaseModel):
    custom_domain: str = Field(description="`<vanity subdomain>.<base domain>`.")
