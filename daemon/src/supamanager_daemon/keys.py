"""Typed application keys: every object the app shares lives under one of these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from .auth import FailedAuthLimiter
    from .fleet.docker import DockerClient
    from .fleet.drain import Drains
    from .fleet.manager import FleetManager
    from .fleet.poller import Poller
    from .fleet.usage import UsageCollector
    from .notifications import Notifier
    from .operations.backup_schedule import BackupSchedule
    from .operations.jobs import JobScheduler
    from .projectdb import ProjectDatabases
    from .settings import Settings
    from .store import Store
    from .tokens import TokenRegistry

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
API_TOKEN = web.AppKey("api_token", str)
TOKENS: web.AppKey[TokenRegistry] = web.AppKey("tokens")
AUTH_LIMITER: web.AppKey[FailedAuthLimiter] = web.AppKey("auth_limiter")
STORE: web.AppKey[Store] = web.AppKey("store")
DOCKER: web.AppKey[DockerClient] = web.AppKey("docker")
# The hosts of the inventory, their Docker clients, placement (fleet/manager.py).
FLEET: web.AppKey[FleetManager] = web.AppKey("fleet")
POLLER: web.AppKey[Poller] = web.AppKey("poller")
# The hosts' drains (fleet/drain.py): their projects moving away, one at a time.
DRAINS: web.AppKey[Drains] = web.AppKey("drains")
USAGE: web.AppKey[UsageCollector] = web.AppKey("usage")
JOBS: web.AppKey[JobScheduler] = web.AppKey("jobs")
NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier")
BACKUP_SCHEDULE: web.AppKey[BackupSchedule] = web.AppKey("backup_schedule")
# The daemon's direct paths into projects: SQL pools, and HTTP to their gateways (postgres-meta).
PROJECT_DBS: web.AppKey[ProjectDatabases] = web.AppKey("project_dbs")
HTTP = web.AppKey("http", aiohttp.ClientSession)
