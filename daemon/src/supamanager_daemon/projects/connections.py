"""How a client reaches a project: its API URL and database connection strings, from its files.

One place for what the pooler route (api/database.py), the Studio settings (api/studio.py) and the
console's project page show. The password is never in them: `[YOUR-PASSWORD]`, as upstream writes it.
"""

from __future__ import annotations

from typing import Any

from ..settings import Settings

PASSWORD_PLACEHOLDER = "[YOUR-PASSWORD]"  # noqa: S105 - a placeholder, as upstream's dashboard shows


def pooler(settings: Settings, ref: str, info: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | None:
    """The pooler's transaction-mode address (the edge's TLS front when the host has one), or None
    while the project has no pooler port yet."""
    port = (info.get("ports") or {}).get("pooler_transaction")
    if not port:
        return None
    host, port = (settings.pooler_host, settings.pooler_port) if settings.pooler_host else (settings.public_host, port)
    user = f"postgres.{env.get('POOLER_TENANT_ID') or ref}"
    dbname = env.get("POSTGRES_DB") or "postgres"
    return {
        "user": user,
        "host": host,
        "port": int(port),
        "dbname": dbname,
        "url": f"postgresql://{user}:{PASSWORD_PLACEHOLDER}@{host}:{port}/{dbname}",
    }


def direct(settings: Settings, info: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | None:
    """The database's own published port (role `postgres`), or None while it has none."""
    port = (info.get("ports") or {}).get("postgres")
    if not port:
        return None
    dbname = env.get("POSTGRES_DB") or "postgres"
    host = settings.public_host
    return {
        "user": "postgres",
        "host": host,
        "port": int(port),
        "dbname": dbname,
        "url": f"postgresql://postgres:{PASSWORD_PLACEHOLDER}@{host}:{port}/{dbname}",
    }
