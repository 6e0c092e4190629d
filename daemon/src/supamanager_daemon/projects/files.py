"""Reading a project's directory, `<root>/projects/<ref>/`, which the project role writes.

project.json: ports, services and api_url (no secrets); .env: the project's settings and keys
(mode 0600). The role's `files` tasks are the other side of this contract.
"""

from __future__ import annotations

import json
import pathlib
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
