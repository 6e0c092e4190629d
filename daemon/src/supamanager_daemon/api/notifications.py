"""Routes of ours: an organization's webhooks, and the notifications (notifications.py sends them).

A webhook's secret is taken once and never answered or logged; deliveries are signed with it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..errors import NotFound
from ..shapes.notifications import (
    CreateWebhookBody,
    MarkReadBody,
    MarkReadResponse,
    Notification,
    NotificationsQuery,
    NotificationsSummary,
    Webhook,
)
from .organizations import load_organization
from .routing import Api

api = Api("Notifications", "Webhooks per organization and the notifications sent to them (ours).", ours=True)

_WARNINGS = ("operation.failed", "backup.failed")


@api.post(
    "/v1/organizations/{slug}/webhooks",
    "createWebhook",
    "Register a webhook of the organization",
    description="Every notification of the organization's projects (status changes, failed operations, failed"
    " backups) is posted to `url` as JSON, signed: `X-Supamanager-Signature: sha256=<HMAC-SHA256 of the body"
    " with `secret`, hex>`. The secret is never returned.",
    body=CreateWebhookBody,
    response=Webhook,
    status=201,
    errors=(400, 404),
)
async def create_webhook(request: web.Request, body: CreateWebhookBody) -> dict[str, Any]:
    org = await load_organization(request)
    return await request.app[keys.STORE].add_webhook(org["slug"], body.url, body.secret)


@api.get(
    "/v1/organizations/{slug}/webhooks",
    "listWebhooks",
    "The organization's webhooks (without their secrets)",
    response=list[Webhook],
    errors=(404,),
)
async def list_webhooks(request: web.Request) -> list[dict[str, Any]]:
    org = await load_organization(request)
    return await request.app[keys.STORE].list_webhooks(org["slug"])


@api.delete(
    "/v1/organizations/{slug}/webhooks/{id}",
    "deleteWebhook",
    "Remove a webhook of the organization",
    response=Webhook,
    errors=(404,),
)
async def delete_webhook(request: web.Request) -> dict[str, Any]:
    org = await load_organization(request)
    hook_id = request.match_info["id"]
    store = request.app[keys.STORE]
    hook = next((h for h in await store.list_webhooks(org["slug"]) if h["id"] == hook_id), None)
    if hook is None or not await store.delete_webhook(org["slug"], hook_id):
        raise NotFound(f"webhook {hook_id[:64]!r} not found", code="webhook_not_found")
    return hook


@api.get(
    "/platform/notifications",
    "listNotifications",
    "The notifications, newest first, with every delivery attempt",
    query=NotificationsQuery,
    response=list[Notification],
)
async def list_notifications(request: web.Request, query: NotificationsQuery) -> list[dict[str, Any]]:
    return await request.app[keys.STORE].list_notifications(unread_only=query.unread, limit=query.limit)


@api.patch(
    "/platform/notifications",
    "markNotificationsRead",
    "Mark notifications read",
    body=MarkReadBody,
    response=MarkReadResponse,
    errors=(400,),
)
async def mark_read(request: web.Request, body: MarkReadBody) -> dict[str, Any]:
    return {"marked": await request.app[keys.STORE].mark_notifications_read(body.ids)}


@api.get(
    "/platform/notifications/summary",
    "getNotificationsSummary",
    "How many notifications are unread",
    response=NotificationsSummary,
)
async def summary(request: web.Request) -> dict[str, Any]:
    unread = await request.app[keys.STORE].unread_notifications()
    return {
        "unread_count": sum(unread.values()),
        "unread_by_event": unread,
        "has_warning": any(unread.get(event) for event in _WARNINGS),
    }
