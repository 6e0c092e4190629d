"""Routes of the Database tag and its neighbours that read a project's database or files: SQL,
migrations, TypeScript types, CLI login roles, the pooler's connection info, legacy keys.

Answered by the daemon directly, never by a playbook run (ARCHITECTURE decision 13): SQL goes to
the project's own database through its pooler on the host (projectdb/), types come from its
postgres-meta through its gateway, the way Studio reaches meta. No SQL text is ever logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from .. import keys, models
from ..errors import DomainError, InvalidState, Unavailable
from ..projectdb import Target, migrations, roles
from ..projectdb.targets import LOCAL, project_target
from ..projects import connections
from ..projects.files import project_info, read_env
from ..shapes.database import (
    CreateRoleBody,
    CreateRoleResponse,
    DeleteRolesResponse,
    LegacyApiKeysResponse,
    PostgresConfigResponse,
    SupavisorConfigResponse,
    TypescriptQuery,
    TypescriptResponse,
    UpdatePostgresConfigBody,
    V1CreateMigrationBody,
    V1Migration,
    V1ReadOnlyQueryBody,
    V1RunQueryBody,
    V1UpdatePasswordBody,
    V1UpdatePasswordResponse,
)
from ..shapes.settings import KINDS, POSTGRES_FIELDS
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply
from .settings import change_settings, read_settings, typed

api = Api("Database", "SQL, migrations, types and connection details of a project's own database.")

# The statuses in which a project's database runs (UNKNOWN: Docker does not answer; try anyway).
_RUNNING = frozenset({models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY, models.RESTARTING, models.UNKNOWN})
_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "A key seen before answers 200 and applies nothing again.",
}


class TypesFailed(DomainError):
    """postgres-meta answered, but not with types (the document's 500)."""

    code = "types_failed"


async def _files(request: web.Request, ref: str) -> tuple[dict[str, Any], dict[str, str]]:
    settings = request.app[keys.SETTINGS]
    try:
        return await asyncio.to_thread(lambda: (project_info(settings, ref), read_env(settings, ref)))
    except FileNotFoundError:
        raise Unavailable(f"project {ref} has no files on its host yet", code="project_not_ready") from None


def _running(project: dict[str, Any]) -> None:
    status = project["status"]
    if status in (models.INACTIVE, models.PAUSING, models.PAUSE_FAILED):
        raise InvalidState(
            f"project {project['ref']} is paused ({status}): restore it to reach its database",
            code="project_paused",
        )
    if status not in _RUNNING:
        raise InvalidState(
            f"project {project['ref']} is {status}: its database is not running", code="project_not_running"
        )


async def _target(request: web.Request) -> tuple[str, Target]:
    """The running project's database through its pooler's session port: user postgres.<tenant>."""
    project = await load_project(request)
    _running(project)
    ref = project["ref"]
    info, env = await _files(request, ref)
    target = project_target(info, env, ref)
    if target is None:
        raise Unavailable(f"project {ref} has no database port yet", code="project_not_ready")
    return ref, target


async def project_database(request: web.Request) -> tuple[str, Target, dict[str, str]]:
    """For the routes of other tags that read the project's database: (ref, target, its .env)."""
    project = await load_project(request)
    _running(project)
    ref = project["ref"]
    info, env = await _files(request, ref)
    target = project_target(info, env, ref)
    if target is None:
        raise Unavailable(f"project {ref} has no database port yet", code="project_not_ready")
    return ref, target, env


# -- SQL ----------------------------------------------------------------------------------------
# The rows of the last statement, each an object of column name -> value (the document gives no schema).
_ROWS = {"application/json": {"type": "array", "items": {"type": "object", "additionalProperties": True}}}


@api.post(
    "/v1/projects/{ref}/database/query",
    "v1-run-a-query",
    "Run SQL in the project's database; the last statement's rows",
    status=201,
    body=V1RunQueryBody,
    content=_ROWS,
    errors=(400, 404, 503),
)
async def run_query(request: web.Request, body: V1RunQueryBody) -> web.Response:
    ref, target = await _target(request)
    rows = await request.app[keys.PROJECT_DBS].query(
        ref, target, body.query, body.parameters, read_only=bool(body.read_only)
    )
    return web.json_response(rows, status=201)


@api.post(
    "/v1/projects/{ref}/database/query/read-only",
    "v1-read-only-query",
    "Run one SQL statement in a read-only transaction",
    status=201,
    body=V1ReadOnlyQueryBody,
    content=_ROWS,
    errors=(400, 404, 503),
)
async def read_only_query(request: web.Request, body: V1ReadOnlyQueryBody) -> web.Response:
    ref, target = await _target(request)
    rows = await request.app[keys.PROJECT_DBS].query(ref, target, body.query, body.parameters, read_only=True)
    return web.json_response(rows, status=201)


# -- migrations ---------------------------------------------------------------------------------
@api.get(
    "/v1/projects/{ref}/database/migrations",
    "v1-list-migration-history",
    "The migrations applied (supabase_migrations.schema_migrations)",
    response=list[V1Migration],
    errors=(400, 404, 503),
)
async def list_migrations(request: web.Request) -> list[dict[str, Any]]:
    ref, target = await _target(request)
    return await migrations.list_migrations(request.app[keys.PROJECT_DBS], ref, target)


@api.post(
    "/v1/projects/{ref}/database/migrations",
    "v1-apply-a-migration",
    "Apply a migration and record it, in one transaction",
    body=V1CreateMigrationBody,
    errors=(400, 404, 503),
    extra_parameters=(_IDEMPOTENCY_HEADER,),
)
async def apply_migration(request: web.Request, body: V1CreateMigrationBody) -> None:
    ref, target = await _target(request)
    key = request.headers.get("Idempotency-Key")
    await migrations.apply_migration(
        request.app[keys.PROJECT_DBS],
        ref,
        target,
        body.query,
        name=body.name,
        rollback=body.rollback,
        idempotency_key=key[:256] if key else None,
    )


# -- the project's password ---------------------------------------------------------------------
def _choose_password(project: dict[str, Any]) -> str:
    _running(project)
    return "password"


@api.patch(
    "/v1/projects/{ref}/database/password",
    "v1-update-database-password",
    "Change the project's database password",
    description="An operation (kind `password`): the database roles take the new password, the services that"
    " use it are recreated with it (RESTARTING, then ACTIVE_HEALTHY); data stays. Answers at once.",
    body=V1UpdatePasswordBody,
    response=V1UpdatePasswordResponse,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def update_password(request: web.Request, body: V1UpdatePasswordBody) -> Reply:
    ref = path_ref(request)
    var = request.app[keys.SETTINGS].db_pass_var
    if not var:
        raise InvalidState("this daemon's collection takes no database password (db_pass_var is empty)")
    jobs = request.app[keys.JOBS]

    async def write() -> tuple[dict[str, Any], dict[str, Any]]:
        project, op = await request.app[keys.STORE].start_operation(ref, _choose_password)
        jobs.save_secrets(op["id"], {var: body.password})
        return project, op

    _, op = await record(request, write)
    return accepted({"message": f"the password of project {ref} is being changed: operation {op['id']}"}, op)


# -- CLI login roles ----------------------------------------------------------------------------
@api.post(
    "/v1/projects/{ref}/cli/login-role",
    "v1-create-login-role",
    "A temporary login role for the CLI (member of postgres, or read-only)",
    status=201,
    body=CreateRoleBody,
    response=CreateRoleResponse,
    errors=(400, 404, 503),
)
async def create_login_role(request: web.Request, body: CreateRoleBody) -> dict[str, Any]:
    ref, target = await _target(request)
    return await roles.create_login_role(request.app[keys.PROJECT_DBS], ref, target, read_only=body.read_only)


@api.delete(
    "/v1/projects/{ref}/cli/login-role",
    "v1-delete-login-roles",
    "Drop the CLI's temporary login roles",
    response=DeleteRolesResponse,
    errors=(400, 404, 503),
)
async def delete_login_roles(request: web.Request) -> dict[str, Any]:
    ref, target = await _target(request)
    await roles.delete_login_roles(request.app[keys.PROJECT_DBS], ref, target)
    return {"message": "ok"}


# -- connection info, keys, types ---------------------------------------------------------------
@api.get(
    "/v1/projects/{ref}/config/database/pooler",
    "v1-get-pooler-config",
    "The pooler's connection details (one PRIMARY entry)",
    response=list[SupavisorConfigResponse],
    errors=(400, 404),
)
async def pooler_config(request: web.Request) -> list[dict[str, Any]]:
    project = await load_project(request)
    ref = project["ref"]
    try:
        info, env = await _files(request, ref)
    except Unavailable:
        info, env = {}, {}
    found = connections.pooler(request.app[keys.SETTINGS], ref, info, env)
    if found is None:
        # A create still queued or running: the client asked too early (as the SQL routes answer it).
        raise InvalidState(f"project {ref} has no pooler port yet", code="project_not_ready")
    user, host, port, dbname, url = (found[k] for k in ("user", "host", "port", "dbname", "url"))

    def number(name: str) -> int | None:
        value = env.get(name, "")
        return int(value) if value.isdigit() else None

    return [
        {
            "identifier": ref,
            "database_type": "PRIMARY",
            "is_using_scram_auth": True,
            "db_user": user,
            "db_host": host,
            "db_port": int(port),
            "db_name": dbname,
            "connection_string": url,
            "connectionString": url,
            "default_pool_size": number("POOLER_DEFAULT_POOL_SIZE"),
            "max_client_conn": number("POOLER_MAX_CLIENT_CONN"),
            "pool_mode": "transaction",
        }
    ]


@api.get(
    "/v1/projects/{ref}/api-keys/legacy",
    "v1-get-project-legacy-api-keys",
    "Whether the legacy (JWT) keys are enabled: always, here",
    response=LegacyApiKeysResponse,
    errors=(404,),
)
async def legacy_api_keys(request: web.Request) -> dict[str, Any]:
    await load_project(request)
    return {"enabled": True}


@api.get(
    "/v1/projects/{ref}/types/typescript",
    "v1-generate-typescript-types",
    "TypeScript types of the project's schemas, from its postgres-meta",
    query=TypescriptQuery,
    response=TypescriptResponse,
    errors=(400, 404, 500, 503),
)
async def typescript_types(request: web.Request, query: TypescriptQuery) -> dict[str, Any]:
    project = await load_project(request)
    _running(project)
    ref = project["ref"]
    info, env = await _files(request, ref)
    port = (info.get("ports") or {}).get("kong_http")
    if not port or not env.get("SERVICE_ROLE_KEY"):
        raise Unavailable(f"project {ref} has no gateway port yet", code="project_not_ready")
    # The gateway's /pg/ route is meta's, for the service_role key only (admin ACL), as Studio uses it.
    url = f"http://{LOCAL}:{int(port)}/pg/generators/typescript"
    headers = {"apikey": env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {env['SERVICE_ROLE_KEY']}"}
    try:
        async with request.app[keys.HTTP].get(
            url, params={"included_schemas": query.included_schemas}, headers=headers
        ) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise TypesFailed(f"postgres-meta answered {resp.status}: {text[:500]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"the project's postgres-meta does not answer: {exc}", code="meta_unavailable") from None
    return {"types": text}


# -- the database's Postgres settings: through the one settings machinery (settings.py) --------------
async def _postgres_config(request: web.Request, ref: str) -> dict[str, Any]:
    """The settings given to the database (a `-c` flag each); those left at their default are absent."""
    _, raw = await read_settings(request, ref, "postgres")
    answer = {name: typed(KINDS[POSTGRES_FIELDS[name]["type"]], value) for name, value in raw.items()}
    return {name: value for name, value in answer.items() if name in POSTGRES_FIELDS and value not in (None, "")}


@api.get(
    "/v1/projects/{ref}/config/database/postgres",
    "v1-get-postgres-config",
    "Gets project's Postgres config",
    description="The Postgres settings the project's database was given (`SHOW` in SQL tells the values of the"
    " others).",
    response=PostgresConfigResponse,
    errors=(404, 503),
)
async def get_postgres_config(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    return await _postgres_config(request, project["ref"])


@api.put(
    "/v1/projects/{ref}/config/database/postgres",
    "v1-update-postgres-config",
    "Updates project's Postgres config",
    description="An operation (kind `settings`): the database is restarted (its container recreated with a `-c`"
    " flag per setting; the pooler restarts after it) and waited for, its data kept; when it does not come up"
    " healthy (a value Postgres refuses to start with) the settings before are put back and the operation fails"
    " saying so. The settings given are added to those given before. Sizes are an integer with an optional unit"
    " (B, kB, MB, GB, TB), times an integer with an optional unit (us, ms, s, min, h, d); an unknown field, a"
    " wrong type or a value out of range is 400 naming it, and nothing changes.",
    body=UpdatePostgresConfigBody,
    response=PostgresConfigResponse,
    errors=(400, 404, 409, 503),
    headers=OPERATION_HEADER,
)
async def update_postgres_config(request: web.Request, body: Any) -> Reply:
    ref = path_ref(request)
    change = body.model_dump(exclude_none=True)
    change.pop("restart_database", None)
    op = await change_settings(request, ref, "postgres", change)
    return accepted({**await _postgres_config(request, ref), **change}, op)
