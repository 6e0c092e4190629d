"""Temporary login roles for the Supabase CLI (`POST|DELETE /v1/projects/{ref}/cli/login-role`).

As the platform does: `cli_login_postgres` (member of postgres, which the CLI then SET ROLEs to)
or, read-only, `cli_login_supabase_read_only_user`; a fresh random password valid for ttl seconds.
The password reaches Postgres only as a SCRAM-SHA-256 verifier, so no server log can hold it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets

from psycopg import sql

from .pools import ProjectDatabases, Target

PREFIX = "cli_login_"
TTL_SECONDS = 3600
_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """What Postgres stores for a SCRAM-SHA-256 password (RFC 5802/7677), computed here."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def create_login_role(
    dbs: ProjectDatabases, ref: str, target: Target, *, read_only: bool, ttl_seconds: int = TTL_SECONDS
) -> dict[str, object]:
    member_of = "supabase_read_only_user" if read_only else "postgres"
    role = PREFIX + member_of
    password = secrets.token_urlsafe(24)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=ttl_seconds)
    verifier = scram_verifier(password)
    async with dbs.transaction(ref, target) as conn:
        exists = await (await conn.execute("select 1 from pg_roles where rolname = %s", [role])).fetchone()
        verb = "alter" if exists else "create"
        await conn.execute(
            sql.SQL("{} role {} with login password {} valid until {}").format(
                sql.SQL(verb), sql.Identifier(role), sql.Literal(verifier), sql.Literal(until.isoformat())
            )
        )
        await conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(member_of), sql.Identifier(role)))
    return {"role": role, "password": password, "ttl_seconds": ttl_seconds}


async def delete_login_roles(dbs: ProjectDatabases, ref: str, target: Target) -> list[str]:
    async with dbs.transaction(ref, target) as conn:
        cur = await conn.execute("select rolname from pg_roles where starts_with(rolname, %s) order by 1", [PREFIX])
        roles = [r[0] for r in await cur.fetchall()]
        for role in roles:
            await conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
    return roles
