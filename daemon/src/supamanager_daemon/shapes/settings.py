"""The service settings the project role takes (roles/project/vars/main.yml `_supabase_<group>_fields`),
written here in the role's own form ({type, min, max, pattern}; test_settings_shapes.py keeps the two
the same) and turned into the pydantic fields of the request shapes that take them: PostgREST's,
storage's, Postgres's. (The auth settings have their own table, shapes/auth.py, for the document's 237
fields.)"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

_SIZE = r"[0-9]{1,12}(B|kB|MB|GB|TB)?"
_TIME = r"[0-9]{1,12}(us|ms|s|min|h|d)?"
_SCHEMAS = r"[A-Za-z_][A-Za-z0-9_-]*( *, *[A-Za-z_][A-Za-z0-9_-]*)*"

POSTGREST_FIELDS: dict[str, dict[str, Any]] = {
    "db_schema": {"type": "str", "pattern": _SCHEMAS},
    "db_extra_search_path": {"type": "str", "pattern": f"({_SCHEMAS})?"},
    "max_rows": {"type": "int", "max": 1000000},
    "db_pool": {"type": "int", "max": 1000},
}

STORAGE_FIELDS: dict[str, dict[str, Any]] = {
    "file_size_limit": {"type": "int", "max": 536870912000},
    "image_transformation_enabled": {"type": "bool"},
    "s3_protocol_enabled": {"type": "bool"},
}

POSTGRES_FIELDS: dict[str, dict[str, Any]] = {
    "effective_cache_size": {"type": "str", "pattern": _SIZE},
    "logical_decoding_work_mem": {"type": "str", "pattern": _SIZE},
    "maintenance_work_mem": {"type": "str", "pattern": _SIZE},
    "track_activity_query_size": {"type": "str", "pattern": _SIZE},
    "max_connections": {"type": "int", "min": 1, "max": 262143},
    "max_locks_per_transaction": {"type": "int", "min": 10, "max": 2147483640},
    "max_parallel_maintenance_workers": {"type": "int", "max": 1024},
    "max_parallel_workers": {"type": "int", "max": 1024},
    "max_parallel_workers_per_gather": {"type": "int", "max": 1024},
    "max_replication_slots": {"type": "int", "max": 262143},
    "max_slot_wal_keep_size": {"type": "str", "pattern": f"-1|{_SIZE}"},
    "max_standby_archive_delay": {"type": "str", "pattern": f"-1|{_TIME}"},
    "max_standby_streaming_delay": {"type": "str", "pattern": f"-1|{_TIME}"},
    "max_wal_size": {"type": "str", "pattern": _SIZE},
    "max_wal_senders": {"type": "int", "max": 262143},
    "max_worker_processes": {"type": "int", "max": 262143},
    "session_replication_role": {"type": "str", "pattern": "origin|replica|local"},
    "shared_buffers": {"type": "str", "pattern": _SIZE},
    "statement_timeout": {"type": "str", "pattern": _TIME},
    "track_commit_timestamp": {"type": "bool"},
    "wal_keep_size": {"type": "str", "pattern": _SIZE},
    "wal_sender_timeout": {"type": "str", "pattern": _TIME},
    "work_mem": {"type": "str", "pattern": _SIZE},
    "checkpoint_timeout": {"type": "str", "pattern": _TIME},
    "hot_standby_feedback": {"type": "bool"},
}

KINDS = {"bool": bool, "int": int, "str": str}


def request_field(spec: dict[str, Any]) -> tuple[Any, Any]:
    """An optional request field with the role's limits (a pattern matches the whole value, as the
    role's filter settings_problems matches it)."""
    kind = KINDS[spec["type"]]
    if kind is int:
        return (Annotated[int | None, Field(ge=spec.get("min", 0), le=spec["max"])], None)
    if kind is str:
        limits = Field(max_length=spec.get("max_length", 1024), pattern=f"^(?:{spec['pattern']})$")
        return (Annotated[str | None, limits], None)
    return (bool | None, None)
