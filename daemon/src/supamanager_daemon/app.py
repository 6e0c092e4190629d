"""The application factory: routes, middlewares, and every resource in a cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
import yaml
from aiohttp import web

from . import api, console, events, keys, logging_json, metrics
from .api import projects as projects_api
from .api.backups import choose_backup
from .auth import FailedAuthLimiter, auth_middleware
from .fleet.docker import DockerClient
from .fleet.drain import Drains
from .fleet.healing import Healer, Policy
from .fleet.hosts import InventoryError
from .fleet.manager import FleetManager
from .fleet.poller import Poller
from .fleet.usage import UsageCollector
from .middleware import error_middleware
from .notifications import Notifier
from .operations.backup_schedule import BackupSchedule
from .operations.jobs import JobScheduler
from .projectdb import ProjectDatabases, Target, project_target
from .projects.files import project_info, read_env
from .settings import CHECKOUT, Settings, ensure_api_token
from .store import Store
from .tokens import TokenRegistry

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = Store(app[keys.SETTINGS].db_path)
    await store.open()
    app[keys.STORE] = store
    app[keys.TOKENS].load(await store.list_tokens())
    yield
    await store.close()


async def docker_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.DOCKER] = DockerClient(app[keys.SETTINGS].docker_socket)
    yield
    await app[keys.DOCKER].close()


def _instance_sizes(settings: Settings) -> dict:
    """The role's supabase_instance_sizes (playbook_vars' own first): what a size takes, for placement."""
    sizes = settings.playbook_vars.get("supabase_instance_sizes")
    if isinstance(sizes, dict):
        return sizes
    # The role of the collection the daemon runs, else of the checkout it sits in (as postgres_version).
    for collection in (settings.collection_dir, CHECKOUT):
        try:
            defaults = yaml.safe_load((collection / "roles" / "project" / "defaults" / "main.yml").read_text())
            return dict(defaults["supabase_instance_sizes"])
        except (OSError, KeyError, AttributeError, TypeError, ValueError, yaml.YAMLError):
            continue
    return {}


async def fleet_ctx(app: web.Application) -> AsyncIterator[None]:
    """The hosts of the inventory (one local host without one), reloaded on SIGHUP or POST /platform/fleet/reload."""
    manager = app[keys.FLEET]
    await manager.start(app[keys.DOCKER])
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()

    async def reload() -> None:
        try:
            await manager.reload()
        except InventoryError as exc:
            log.error("SIGHUP: the inventory was not reloaded, the hosts stay as they were: %s", exc)

    def on_hup() -> None:
        task = asyncio.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    hup = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        hup = True
    yield
    if hup:
        loop.remove_signal_handler(signal.SIGHUP)
    await manager.close()


async def poller_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    poller = Poller(app[keys.STORE], app[keys.DOCKER], settings.poll_interval, app[keys.FLEET])
    poller.on_poll = app[metrics.METRICS].poll_finished
    poller.healer = Healer(app[keys.STORE], settings.root, Policy.from_settings(settings))
    poller.healer.on_give_up = app[metrics.METRICS].heal_gave_up
    app[keys.POLLER] = poller
    poller.start()
    yield
    await poller.stop()


async def usage_ctx(app: web.Application) -> AsyncIterator[None]:
    """The usage collector, beside the poller: started and stopped with it. Its own Docker client,
    so that /healthz counts its calls apart from the poll's (the bench divides those by polls)."""
    settings = app[keys.SETTINGS]

    def target(project: dict) -> Target | None:
        ref = project["ref"]
        return project_target(project_info(settings, ref), read_env(settings, ref), ref)

    collector = UsageCollector(
        app[keys.STORE],
        DockerClient(settings.docker_socket),
        app[keys.PROJECT_DBS],
        target,
        interval=settings.usage_interval,
        retention_seconds=settings.usage_retention_days * 86400,
    )
    app[keys.USAGE] = collector
    collector.start()
    yield
    await collector.stop()
    await collector.docker.close()


async def direct_ctx(app: web.Application) -> AsyncIterator[None]:
    """What reads and SQL use, never a playbook: a pool per project database, one HTTP client."""
    settings = app[keys.SETTINGS]
    app[keys.PROJECT_DBS] = ProjectDatabases(
        statement_timeout=settings.sql_statement_timeout, max_result_bytes=settings.sql_max_result_bytes
    )
    app[keys.HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=5))
    yield
    await app[keys.HTTP].close()
    await app[keys.PROJECT_DBS].close()


async def notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """Webhook deliveries: their own tasks, cancelled at shutdown (notifications.py)."""
    settings = app[keys.SETTINGS]
    notifier = Notifier(
        app[keys.STORE],
        timeout=settings.notify_timeout,
        attempts=settings.notify_attempts,
        backoff=settings.notify_backoff,
        backoff_max=settings.notify_backoff_max,
    )
    app[keys.NOTIFIER] = notifier
    app[keys.POLLER].on_status_changed = notifier.status_changed
    app[keys.POLLER].on_host_changed = notifier.host_changed
    yield
    await notifier.stop()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    poller = app[keys.POLLER]
    job_metrics = app[metrics.METRICS]
    notifier = app[keys.NOTIFIER]

    def finished(op: dict) -> None:
        app[keys.PROJECT_DBS].reopen(op["ref"])
        poller.wake()
        job_metrics.job_finished(op)
        notifier.operation_finished(op)

    jobs = JobScheduler(settings, app[keys.STORE], on_finished=finished, fleet=app[keys.FLEET])
    app[keys.JOBS] = jobs
    poller.healer.enqueue = jobs.enqueue
    pruned = await app[keys.STORE].prune_operations(settings.operation_retention_days)
    if pruned:
        log.info("forgot %d operations that ended more than %g days ago", pruned, settings.operation_retention_days)
    # Operations a previous daemon left behind run again before new requests are served.
    await jobs.recover()
    schedule = BackupSchedule(settings, app[keys.STORE], choose_backup, jobs.enqueue)
    app[keys.BACKUP_SCHEDULE] = schedule
    schedule.start()
    yield
    await schedule.stop()
    await jobs.shutdown()


async def drains_ctx(app: web.Application) -> AsyncIterator[None]:
    """The hosts' drains; they stop before the jobs do (a drain records moves)."""

    async def start_move(ref: str) -> dict:
        return (await projects_api.start_move(app, ref, None))[1]

    drains = Drains(app[keys.FLEET], app[keys.STORE], start_move)
    app[keys.DRAINS] = drains
    yield
    await drains.close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[logging_json.context_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.API_TOKEN] = ensure_api_token(settings)
    app[keys.TOKENS] = TokenRegistry(app[keys.API_TOKEN])
    app[keys.AUTH_LIMITER] = FailedAuthLimiter(settings.auth_failures_per_minute)
    # The inventory is read before anything starts: a wrong one (InventoryError) stops the daemon here.
    app[keys.FLEET] = FleetManager(settings, _instance_sizes(settings))
    settings.jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Order matters: cleanup runs in reverse, so jobs stop before the poller, Docker and the store.
    app.cleanup_ctx.extend(
        [store_ctx, docker_ctx, fleet_ctx, direct_ctx, poller_ctx, usage_ctx, notifier_ctx, jobs_ctx, drains_ctx]
    )
    # Every route, documented: api/<tag>.py, shapes/<tag>.py (openapi.py derives /openapi.json).
    api.setup(app)
    metrics.setup(app)
    events.setup(app)
    # The web console at / (console/): pages on the same store and jobs as the API.
    console.setup(app)
    return app
