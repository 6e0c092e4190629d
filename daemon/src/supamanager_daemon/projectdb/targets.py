"""Where the daemon reaches a project's database on this host, from the project's files."""

from __future__ import annotations

from typing import Any

from .pools import Target

# Where the daemon reaches a project's host ports: the host it runs on.
LOCAL = "127.0.0.1"


def project_target(info: dict[str, Any], env: dict[str, str], ref: str) -> Target | None:
    """The database through the pooler's session port (user postgres.<tenant>), given the project's
    project.json and .env; None while they name no port or password yet."""
    port = (info.get("ports") or {}).get("postgres")
    if not port or not env.get("POSTGRES_PASSWORD"):
        return None
    return Target(
        host=LOCAL,
        port=int(port),
        user=f"postgres.{env.get('POOLER_TENANT_ID') or ref}",
        password=env["POSTGRES_PASSWORD"],
        dbname=env.get("POSTGRES_DB") or "postgres",
    )
