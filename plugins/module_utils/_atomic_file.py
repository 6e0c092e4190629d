# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Crash-safe file replacement shared by the modules. Private to this collection."""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_atomically(path, text, mode):
    """Replace path with text: a temporary file beside it, fsync, rename, fsync of the directory.

    mkstemp creates the temporary file with mode 0600, so content meant to be secret is never
    readable by others, not even briefly; the final mode is set before the rename.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except Exception:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    # The rename itself must survive a crash too.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
