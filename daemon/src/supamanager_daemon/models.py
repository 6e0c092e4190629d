"""The vocabulary: project statuses, operation kinds and states, refs. (Request shapes: shapes/.)"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string

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
RESIZING = "RESIZING"
# Every status the Management API knows, in its document's order (the ones we never set included).
STATUSES = (
    INACTIVE,
    ACTIVE_HEALTHY,
    ACTIVE_UNHEALTHY,
    COMING_UP,
    UNKNOWN,
    GOING_DOWN,
    INIT_FAILED,
    REMOVED,
    RESTORING,
    "UPGRADING",
    PAUSING,
    RESTORE_FAILED,
    RESTARTING,
    PAUSE_FAILED,
    RESIZING,
)


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
        # a restore from the project's backups (a backup id, or a point in time): restore.yml puts
        # the project back as it was when it fails, so a failure is the poll's to judge again.
        Kind("restore_backup", "restore.yml", RESTORING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
        # POST .../database/backups (ours) or the daemon's backup schedule: backup.yml takes one while
        # the project runs on, healthy (only a healthy project is backed up by the daemon; a failure
        # changes nothing in the project, and the metrics count it).
        Kind("backup", "backup.yml", ACTIVE_HEALTHY, ACTIVE_HEALTHY, ACTIVE_HEALTHY, "active"),
        # PATCH .../database/password: the services that use the password are recreated meanwhile.
        Kind("password", "password.yml", RESTARTING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
        # PATCH .../billing/addons (compute_instance): resume.yml with the new supabase_instance_size
        # recreates the containers whose limits change (api/billing.py).
        Kind("resize", "resume.yml", RESIZING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
        # POST .../custom-hostname/activate and DELETE .../custom-hostname: hostname.yml routes the
        # name (certificate first) or removes it, and recreates the services that hold the URLs.
        Kind("custom_hostname", "hostname.yml", RESTARTING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
        # PATCH .../config/auth: settings.yml recreates the services whose settings change, the project
        # running on meanwhile; it puts the settings before back when they do not come up healthy.
        Kind("settings", "settings.yml", ACTIVE_HEALTHY, ACTIVE_HEALTHY, ACTIVE_HEALTHY, "active"),
        # POST .../move (ours) and a host's drain: move.yml stops the project on its host, restores its
        # final backup on the target and removes it from the source; a failure before the switch starts
        # it on the source again, for the poll to judge.
        Kind("move", "move.yml", RESTORING, ACTIVE_HEALTHY, ACTIVE_UNHEALTHY, "active"),
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
REF_RE = re.compile(r"[a-z]{20}")


def mint_ref() -> str:
    """A project ref as the platform makes them: 20 random lowercase letters."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(REF_LENGTH))


def is_ref(value: str) -> bool:
    return bool(REF_RE.fullmatch(value))


# A daily backup's time of day, UTC, as the Management API writes it (`schedule_for`, "04:00:00").
TIME_OF_DAY_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
# A restore point's name: it is written into a backup's manifest and passed to backup.yml, so it is
# kept to letters, digits and . _ - (at most 20, as upstream).
RESTORE_POINT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,19}")


def is_time_of_day(value: str) -> bool:
    return bool(TIME_OF_DAY_RE.fullmatch(value))


# Names are display data only: any printable text, never evaluated anywhere.
NAME_MAX = 256
# What a terminal acts on instead of printing: C0 and C1 controls (escape sequences), DEL, and the
# bidirectional overrides and isolates that make it show text other than what is stored. Names
# holding one are refused; the CLI prints these escaped wherever they come from.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
