"""A project's edge functions on its host: `<root>/projects/<ref>/volumes/functions/<slug>/`.

The daemon is the one writer of a deployed function (the role renders only `main/`, the router):

    <slug>/function.json   the live version's record (id, version, verify_jwt, entrypoint, times)
    <slug>/<version>/...   that version's files, at the paths the client uploaded them under

A deploy writes the new version's directory whole, then replaces function.json atomically, then
removes the older versions: the main router (roles/project/templates/functions/main/index.ts.j2),
which reads function.json on every request, serves either the old version or the new one, never a
half-written one, and a crash at any point leaves the last complete version live. Slugs and file
paths are validated before anything is written; sizes are the caller's (api/functions.py) to limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..settings import Settings
from .files import project_dir

SLUG_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
SLUG_MAX = 64
# The router of the runtime, rendered by the role: never a deployed function.
RESERVED = frozenset({"main"})
RECORD = "function.json"
# A file path segment: no NUL, no backslash (a Windows separator), no control character.
_SEGMENT = re.compile(r"[^\x00-\x1f\x7f\\]+")
PATH_MAX = 512


class FunctionNotFound(NotFound):
    code = "function_not_found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"function {slug} not found", slug=slug)


def check_slug(slug: str) -> str:
    if not (SLUG_RE.fullmatch(slug) and len(slug) <= SLUG_MAX) or slug in RESERVED:
        raise InvalidRequest(
            f"function slug must match ^[A-Za-z][A-Za-z0-9_-]*$ (at most {SLUG_MAX} characters, not 'main')",
            code="invalid_slug",
            field="slug",
        )
    return slug


def check_path(path: str, field: str = "file") -> str:
    """A relative, `/`-separated path that stays inside the function's directory, normalized."""
    if not path or len(path) > PATH_MAX or path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise InvalidRequest(f"{field} path must be relative (at most {PATH_MAX} characters)", code="invalid_path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or not _SEGMENT.fullmatch(p) for p in parts):
        raise InvalidRequest(
            f"{field} path must not contain '..', a backslash or a control character", code="invalid_path"
        )
    return posixpath.join(*parts)


def functions_dir(settings: Settings, ref: str) -> pathlib.Path:
    return project_dir(settings, ref) / "volumes" / "functions"


def _read_record(directory: pathlib.Path) -> dict[str, Any] | None:
    try:
        record = json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def list_functions(settings: Settings, ref: str) -> list[dict[str, Any]]:
    root = functions_dir(settings, ref)
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if SLUG_RE.fullmatch(path.name) and path.name not in RESERVED and (record := _read_record(path)):
            found.append(record)
    return found


def get_function(settings: Settings, ref: str, slug: str) -> dict[str, Any]:
    record = _read_record(functions_dir(settings, ref) / check_slug(slug)) if SLUG_RE.fullmatch(slug) else None
    if record is None:
        raise FunctionNotFound(slug)
    return record


def read_files(settings: Settings, ref: str, slug: str) -> dict[str, bytes]:
    """The live version's files by their uploaded path."""
    record = get_function(settings, ref, slug)
    base = functions_dir(settings, ref) / slug / str(record["version"])
    return {str(path.relative_to(base)): path.read_bytes() for path in sorted(base.rglob("*")) if path.is_file()}


@contextlib.contextmanager
def _locked(settings: Settings, ref: str) -> Iterator[pathlib.Path]:
    root = functions_dir(settings, ref)
    if not root.is_dir():
        raise InvalidRequest(f"project {ref} has no functions directory on its host yet", code="project_not_ready")
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def _write_record(directory: pathlib.Path, record: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".function-", dir=directory)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, directory / RECORD)


def _prune(directory: pathlib.Path, keep: int) -> None:
    """Remove every version directory but the live one (and what a crashed deploy left)."""
    for path in directory.iterdir():
        if path.is_dir() and path.name != str(keep):
            shutil.rmtree(path, ignore_errors=True)


def deploy(
    settings: Settings, ref: str, slug: str, meta: dict[str, Any], files: dict[str, bytes] | None
) -> dict[str, Any]:
    """Write a new version of the function (files None: keep the live version's files, change only
    the record) and return its record. meta: name, verify_jwt, entrypoint_path, import_map_path."""
    check_slug(slug)
    with _locked(settings, ref) as root:
        directory = root / slug
        old = _read_record(directory)
        now = int(time.time() * 1000)
        version = (old["version"] + 1) if old else 1
        before = old or {}
        entrypoint = meta.get("entrypoint_path") or before.get("entrypoint_path") or "index.ts"
        verify_jwt = meta.get("verify_jwt")
        record = {
            "id": old["id"] if old else str(uuid.uuid4()),
            "slug": slug,
            "name": meta.get("name") or before.get("name") or slug,
            "status": "ACTIVE",
            "version": version,
            "created_at": old["created_at"] if old else now,
            "updated_at": now,
            "verify_jwt": verify_jwt if verify_jwt is not None else before.get("verify_jwt", True),
            "entrypoint_path": check_path(entrypoint, "entrypoint"),
        }
        import_map = meta.get("import_map_path") or before.get("import_map_path")
        if import_map:
            record["import_map_path"] = check_path(import_map, "import map")
        record["import_map"] = bool(import_map)
        if files is None:
            if old is None:
                raise FunctionNotFound(slug)
            files = read_files(settings, ref, slug)
        files = {check_path(path): data for path, data in files.items()}
        if record["entrypoint_path"] not in files:
            raise InvalidRequest(
                f"entrypoint {record['entrypoint_path']} is not among the uploaded files", code="missing_entrypoint"
            )
        directory.mkdir(mode=0o755, exist_ok=True)
        staged = pathlib.Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=directory))
        for path, data in files.items():
            target = staged / path
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o644)
        staged.chmod(0o755)
        live = directory / str(version)
        if live.exists():  # left by a crash after the rename, before the record: not live
            shutil.rmtree(live)
        staged.rename(live)
        _write_record(directory, record)
        _prune(directory, version)
        return record


def delete(settings: Settings, ref: str, slug: str) -> dict[str, Any]:
    """Remove the function: its record first (the router stops serving it), then its files."""
    record = get_function(settings, ref, slug)
    with _locked(settings, ref) as root:
        directory = root / slug
        (directory / RECORD).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
    return record


# -- secrets: the functions' environment ----------------------------------------------------------
# <root>/secrets/<ref>/functions/secrets.json (0600, the directory 0700): {name: {value, updated_at}}.
# The functions container mounts that directory read-only (roles/project/vars/main.yml) and the main
# router passes the values to each worker's environment, a new worker whenever the file changes: no
# restart. They sit beside the project's other secrets, so backups carry them encrypted, never in clear.
SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_NAME_MAX = 256
SECRET_VALUE_MAX = 24576


def check_secret_name(name: str) -> str:
    if name.upper().startswith("SUPABASE_"):
        raise InvalidRequest("Secret name must not start with the SUPABASE_ prefix.", code="invalid_secret_name")
    if not (SECRET_NAME_RE.fullmatch(name) and len(name) <= SECRET_NAME_MAX):
        raise InvalidRequest(
            f"secret names are letters, digits and _, not starting with a digit (at most {SECRET_NAME_MAX})",
            code="invalid_secret_name",
        )
    return name


def secrets_file(settings: Settings, ref: str) -> pathlib.Path:
    return settings.root / "secrets" / ref / "functions" / "secrets.json"


def read_secrets(settings: Settings, ref: str) -> dict[str, dict[str, str]]:
    try:
        found = json.loads(secrets_file(settings, ref).read_text())
    except FileNotFoundError:
        return {}
    return found if isinstance(found, dict) else {}


def _write_secrets(settings: Settings, ref: str, change) -> None:
    path = secrets_file(settings, ref)
    if not path.parent.parent.is_dir():
        raise InvalidRequest(f"project {ref} has no secrets directory on its host yet", code="project_not_ready")
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with open(path.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        values = read_secrets(settings, ref)
        change(values)
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=path.parent)  # mkstemp: 0600 from the start
        with os.fdopen(fd, "w") as out:
            json.dump(values, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)


def set_secrets(settings: Settings, ref: str, pairs: list[tuple[str, str]]) -> None:
    for name, value in pairs:
        check_secret_name(name)
        if len(value) > SECRET_VALUE_MAX:
            raise InvalidRequest(f"secret {name}'s value is longer than {SECRET_VALUE_MAX}", code="invalid_secret")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entries = {name: {"value": value, "updated_at": stamp} for name, value in pairs}
    _write_secrets(settings, ref, lambda values: values.update(entries))


def unset_secrets(settings: Settings, ref: str, names: list[str]) -> None:
    _write_secrets(settings, ref, lambda values: [values.pop(name, None) for name in names])
