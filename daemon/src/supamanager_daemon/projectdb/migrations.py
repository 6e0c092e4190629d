"""Migration history in supabase_migrations.schema_migrations, the table the Supabase CLI keeps.

The CLI creates it with `version text primary key`, `statements text[]` and `name text`; the
platform adds `created_by`, `idempotency_key` and `rollback`. We create the same, so `supabase
migration list` and `db push` read what the API applied and the other way round. An apply runs
the migration and records it in one transaction: a failing statement leaves nothing applied.
(A migration that says COMMIT itself ends that transaction early, as it would under `db push`.)
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from psycopg import AsyncRawCursor

from .pools import ProjectDatabases, Target

TABLE = "supabase_migrations.schema_migrations"
_CREATE = (
    "create schema if not exists supabase_migrations",
    f"create table if not exists {TABLE} (version text not null primary key)",
    f"alter table {TABLE} add column if not exists statements text[]",
    f"alter table {TABLE} add column if not exists name text",
    f"alter table {TABLE} add column if not exists created_by text",
    f"alter table {TABLE} add column if not exists idempotency_key text unique",
    f"alter table {TABLE} add column if not exists rollback text[]",
)
_LIST = "select version, name from supabase_migrations.schema_migrations order by version"
_LOCK = "lock table supabase_migrations.schema_migrations in exclusive mode"
_SEEN = "select version, name from supabase_migrations.schema_migrations where idempotency_key = $1"
_LATEST = "select max(version) from supabase_migrations.schema_migrations where version ~ '^[0-9]+$'"
_RECORD = (
    "insert into supabase_migrations.schema_migrations"
    " (version, name, statements, created_by, idempotency_key, rollback) values ($1, $2, $3, $4, $5, $6)"
)
VERSION_RE = re.compile(r"\d{1,32}")


async def list_migrations(dbs: ProjectDatabases, ref: str, target: Target) -> list[dict[str, Any]]:
    rows = await dbs.query(
        ref,
        target,
        "select to_regclass($1) is not null as present",
        [TABLE],
        read_only=True,
    )
    if not rows[0]["present"]:
        return []
    rows = await dbs.query(ref, target, _LIST, read_only=True)
    return [{"version": r["version"], **({"name": r["name"]} if r["name"] is not None else {})} for r in rows]


def _now_version() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")


async def apply_migration(
    dbs: ProjectDatabases,
    ref: str,
    target: Target,
    query: str,
    *,
    name: str | None = None,
    rollback: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Run query and record it, in one transaction; an Idempotency-Key already seen changes nothing."""
    async with dbs.transaction(ref, target) as conn:
        cur = AsyncRawCursor(conn)
        for statement in _CREATE:
            await cur.execute(statement)
        # One apply at a time per project: versions are minted from the clock and the table.
        await cur.execute(_LOCK)
        if idempotency_key is not None:
            await cur.execute(_SEEN, [idempotency_key])
            seen = await cur.fetchone()
            if seen:
                return {"version": seen[0], "name": seen[1]}
        await cur.execute(_LATEST)
        latest = (await cur.fetchone())[0]
        version = _now_version()
        if latest is not None and len(latest) == len(version) and latest >= version:
            version = str(int(latest) + 1)
        await cur.execute(query)  # the migration itself: simple protocol, several statements allowed
        await cur.execute(
            _RECORD,
            [version, name, [query], "supamanagerd", idempotency_key, [rollback] if rollback else None],
        )
    return {"version": version, "name": name}
