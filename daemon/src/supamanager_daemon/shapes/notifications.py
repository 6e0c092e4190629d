"""Shapes of our notifications: an organization's webhooks, the notifications, their summary."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from .common import Query, Request

# http(s), a host, no credentials, no whitespace or control characters; the daemon posts to it.
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[\x21-\x7e]*)?")
_SECRET = re.compile(r"[\x21-\x7e]{16,256}")


class CreateWebhookBody(Request):
    url: str = Field(max_length=2048, description="Where each notification is posted (http or https, no credentials).")
    secret: str = Field(
        description="The HMAC-SHA256 key of the X-Supamanager-Signature header: 16-256 printable characters."
        " Never returned.",
        json_schema_extra={"writeOnly": True},
        repr=False,
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URL.fullmatch(value) or "@" in value.split("/", 3)[2]:
            raise ValueError("must be an http or https URL without credentials, spaces or control characters")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not _SECRET.fullmatch(value):
            raise ValueError("must be 16-256 printable ASCII characters")  # never echo the value
        return value


class Webhook(BaseModel):
    id: str
    organization_slug: str
    url: str
    created_at: str


class Delivery(BaseModel):
    webhook_id: str
    attempt: int
    status: int | None = Field(description="The receiver's HTTP status; null: no answer (see error).")
    error: str | None
    at: str


class Notification(BaseModel):
    id: int
    organization_slug: str
    ref: str
    event: str = Field(
        description="project.status_changed, host.unreachable, host.reachable, operation.failed or backup.failed."
    )
    data: dict[str, Any]
    created_at: str
    read_at: str | None
    deliveries: list[Delivery]


class NotificationsQuery(Query):
    unread: bool = Field(default=False, description="Only the unread ones.")
    limit: int = Field(default=100, ge=1, le=1000)


class MarkReadBody(Request):
    ids: list[int] | None = Field(default=None, description="The notifications to mark read; absent: all.")


class MarkReadResponse(BaseModel):
    marked: int


class NotificationsSummary(BaseModel):
    unread_count: int = Field(description="Notifications not marked read.")
    unread_by_event: dict[str, int]
    has_warning: bool = Field(description="An unread failed operation or backup.")
