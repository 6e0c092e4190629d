"""Reading a project's directory, `<root>/projects/<ref>/`, which the project role writes.

project.json: ports, services and api_url (no secrets); .env: the project's settings and keys
(mode 0600). The role's `files` tasks are the other side of this contract. Its backups live in
`<root>/backups/<ref>/` (module_utils/_backup_repository.py writes them): `archive/<id>/backup.json`
per published backup, `wal/current` while the backup agent streams the WAL.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from ..settings import Settings


def project_dir(settings: Settings, ref: str) -> pathlib.Path:
    return settings.root / "projects" / ref


def project_info(settings: Settings, ref: str) -> dict[str, Any]:
    """The role's project.json, or {} while it is not written (or unreadable)."""
    try:
        info = json.loads((project_dir(settings, ref) / "project.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def read_env(settings: Settings, ref: str) -> dict[str, str]:
    """The project's .env as a dict; FileNotFoundError while the project has none."""
    values = {}
    for line in (project_dir(settings, ref) / ".env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


_BACKUP_ID = re.compile(r"[0-9]{1,12}")


def backups_dir(settings: Settings, ref: str) -> pathlib.Path:
    return settings.root / "backups" / ref


def read_backups(settings: Settings, ref: str) -> list[dict[str, Any]]:
    """The published backups' manifests, oldest first; a backup being written (.tmp-<id>) is never one."""
    archive = backups_dir(settings, ref) / "archive"
    found = []
    for path in archive.iterdir() if archive.is_dir() else []:
        if not _BACKUP_ID.fullmatch(path.name):
            continue
        try:
            manifest = json.loads((path / "backup.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and isinstance(manifest.get("id"), int):
            found.append(manifest)
    return sorted(found, key=lambda m: m["id"])


def wal_streamed(settings: Settings, ref: str) -> bool:
    """True while the project has a WAL chain (its backup agent streams into wal/current)."""
    return (backups_dir(settings, ref) / "wal" / "current").is_symlink()
