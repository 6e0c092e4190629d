"""The vocabulary: project statuses, operation kinds and states, refs, and request validation."""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
from typing import Any

from .errors import BadRequest

# Project statuses, as the Management API names them (we use a subset).
ACTIVE_HEALTHY = "ACTIVE_HEALTHY"
ACTIVE_UNHEALTHY = "ACTIVE_UNHEALTHY"
COMING_UP = "COMING_UP"
INACTIVE = "INACTIVE"
UNKNOWN = "UNKNOWN"
GOING_DOWN = "GOING_DOWN"
INIT_FAILED = "INIT_FAILED"
REMOVED = "REMOVED"
RESTORING = "RESTORING"
PAUSING = "PAUSING"
RESTARTING = "RESTARTING"
RESTORE_FAILED = "RESTORE_FAILED"
PAUSE_FAILED = "PAUSE_FAILED"


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a kind of operation runs and which statuses it moves the project through."""

    name: str
    playbook: str
    busy: str  # status while the job is queued or running
    done: str | None  # status on success (None: the project is gone)
    failed: str  # status on failure
    desired: str  # desired state the project aims for


KINDS = {
    k.name: k
    for k in (
        Kind("create", "create.yml", COMING_UP, ACTIVE_HEALTHY, INIT_FAILED, "active"),
        Kind("pause", "pause.yml", PAUSING, INACTIVE, PAUSE_FAILED, "paused"),
        Kind("restore", "resume.yml", RESTORING, ACTIVE_HEALTHY, RESTORE_FAILED, "active"),
        # restore of a project whose containers are gone (or never came up): create it again.
        Kind("recreate", "create.yml", RESTORING, ACTIVE_HEALTHY, RESTORE_FAILED, "active"),
        Kind("restart", "restart.yml", RESTARTING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
        Kind("delete", "delete.yml", GOING_DOWN, None, UNKNOWN, "absent"),
        # the daemon's own: restart the failing services of an unhealthy project (healing.py); it
        # stays ACTIVE_UNHEALTHY while the restart runs, as it is.
        Kind("heal", "restart.yml", ACTIVE_UNHEALTHY, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
    )
}

# Operation states.
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
ACTIVE_STATES = (QUEUED, RUNNING)

REF_LENGTH = 20
REF_RE = re.compile(r"^[a-z]{20}$")


def mint_ref() -> str:
    """A project ref as the platform makes them: 20 random lowercase letters."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(REF_LENGTH))


def is_ref(value: str) -> bool:
    return bool(REF_RE.match(value))


# Names are display data only: any printable text, never evaluated anywhere.
NAME_MAX = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Fields the upstream API accepts that mean nothing here.
_IGNORED_FIELDS = frozenset({"desired_instance_size", "plan", "template_url", "release_channel", "postgres_engine"})
_CREATE_FIELDS = frozenset({"name", "db_pass", "organization_slug", "region"})
DEFAULT_ORGANIZATION = "default"
DEFAULT_REGION = "local"


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    name: str
    organization_slug: str
    region: str
    db_pass: str | None = dataclasses.field(default=None, repr=False)


def _string(body: dict, field: str, *, required: bool = False) -> str | None:
    if field not in body or body[field] is None:
        if required:
            raise BadRequest(f"field '{field}' is required", code="missing_field", field=field)
        return None
    value = body[field]
    if not isinstance(value, str):
        raise BadRequest(f"field '{field}' must be a string, not {_json_type(value)}", code="invalid_type", field=field)
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def validate_create(body: Any) -> CreateRequest:
    """Check a POST /v1/projects body; raise BadRequest naming the first problem."""
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, not {_json_type(body)}", code="invalid_body")
    unknown = sorted(set(body) - _CREATE_FIELDS - _IGNORED_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="unknown_field", fields=unknown)
    name = _string(body, "name", required=True)
    if not name.strip():
        raise BadRequest("field 'name' must not be empty", code="invalid_value", field="name")
    if len(name) > NAME_MAX:
        raise BadRequest(f"field 'name' is longer than {NAME_MAX} characters", code="invalid_value", field="name")
    if _CONTROL.search(name):
        raise BadRequest("field 'name' must not contain control characters", code="invalid_value", field="name")
    org = _string(body, "organization_slug") or DEFAULT_ORGANIZATION
    if not _SLUG_RE.match(org):
        raise BadRequest(
            "field 'organization_slug' must be 1-64 lowercase letters, digits or '-'",
            code="invalid_value",
            field="organization_slug",
        )
    region = _string(body, "region") or DEFAULT_REGION
    if not _SLUG_RE.match(region):
        raise BadRequest(
            "field 'region' must be 1-64 lowercase letters, digits or '-'", code="invalid_value", field="region"
        )
    db_pass = _string(body, "db_pass")
    if db_pass is not None:
        validate_db_pass(db_pass)
    return CreateRequest(name=name, organization_slug=org, region=region, db_pass=db_pass)


# The password ends up in .env files and connection strings: keep to characters that need no quoting.
_DB_PASS_RE = re.compile(r"^[A-Za-z0-9_.~+=@%^!*,:-]{12,128}$")


def validate_db_pass(value: str) -> None:
    if not _DB_PASS_RE.match(value):
        # Never echo the value.
        raise BadRequest(
            "field 'db_pass' must be 12-128 characters of letters, digits and _.~+=@%^!*,:-",
            code="invalid_value",
            field="db_pass",
        )
