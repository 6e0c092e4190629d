# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Writing a project directory's files: shared by project_files and project_services. Private to this collection."""

from __future__ import annotations

import os
import stat

from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically

DIR_MODE = 0o755


class ProjectFilesError(Exception):
    pass


def files_argument_spec():
    """The options of a module that writes a project directory's files (project_files, project_services)."""
    return dict(
        directories=dict(type="list", elements="str", default=[]),
        files=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                dest=dict(type="str", required=True),
                content=dict(type="str", required=True, no_log=True),
                mode=dict(type="str", default="0644"),
            ),
        ),
    )


def write_failure(path, exc):
    """The message for an OSError while writing the files in path."""
    return f"cannot write the files in {path}: {exc}"


def relative_path(value, what):
    """value as a normalized relative path inside the directory, or ProjectFilesError."""
    if not value or os.path.isabs(value):
        raise ProjectFilesError(f"{what} {value!r} must be a relative path")
    norm = os.path.normpath(value)
    if norm == ".." or norm.startswith(".." + os.sep) or "\0" in value:
        raise ProjectFilesError(f"{what} {value!r} must stay inside the directory")
    return norm


def file_mode(value, dest):
    try:
        mode = int(value, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ProjectFilesError(f"mode {value!r} of {dest} must be an octal string such as 0644")
    return mode


def file_is_current(path, content, mode):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode:
        return False
    with open(path, "rb") as handle:
        return handle.read() == content.encode("utf-8")


def refuse_links(root, relative):
    """Fail when a directory between root and root/relative is a symbolic link.

    Containers write into some of these directories (bind mounts): a link planted there would
    send our files anywhere on the host.
    """
    current = root
    for part in relative.split(os.sep):
        if part in ("", "."):
            continue
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise ProjectFilesError(f"{current} is a symbolic link: refused, nothing is written through it")


def ensure_directory(path, check_mode, mode=DIR_MODE):
    """Make path (with mode) and its parents; True when something changed."""
    try:
        st = os.stat(path)
    except OSError:
        if not check_mode:
            os.makedirs(path, mode)
            os.chmod(path, mode)  # makedirs' mode is filtered by the umask
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise ProjectFilesError(f"{path} exists and is not a directory")
    if stat.S_IMODE(st.st_mode) != mode:
        if not check_mode:
            os.chmod(path, mode)
        return True
    return False


def run(params, check_mode):
    root = params["path"]
    directories = ["."] + [relative_path(d, "directory") for d in params["directories"]]
    files = []
    for item in params["files"]:
        dest = relative_path(item["dest"], "file")
        files.append((dest, item["content"], file_mode(item["mode"], dest)))
    for relative in directories + [dest for dest, _content, _mode in files]:
        refuse_links(root, relative)
    dir_mode = file_mode(params.get("directory_mode") or "0755", "the directories")
    made = [d for d in directories if ensure_directory(os.path.join(root, d), check_mode, dir_mode)]
    written = []
    for dest, content, mode in files:
        target = os.path.join(root, dest)
        if file_is_current(target, content, mode):
            continue
        written.append(dest)
        if not check_mode:
            write_atomically(target, content, mode)
    return {"changed": bool(made or written), "written": written, "directories_made": made}
