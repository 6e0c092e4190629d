# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Host port registry of the port_allocation module.

Private to this collection: the interface may change without notice.

The registry is one JSON file on the managed host::

    {"version": 1, "projects": {"<project>": {"<port name>": <port>, ...}, ...}}

Every read-modify-write holds an exclusive ``fcntl`` lock on a lock file beside the registry
(``<registry>.lock``, never deleted, so every process locks the same inode), and every write goes
to a temporary file in the same directory that is fsynced and then renamed over the registry.
A reader therefore never sees a half-written registry, even without the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket

from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically

REGISTRY_VERSION = 1
REGISTRY_MODE = 0o644
REGISTRY_DIR_MODE = 0o755
# flock works on a descriptor opened read-only: a lock file others can read is a lock they can hold
# (and every create waits). Only the owner opens it.
LOCK_MODE = 0o600

# A project ref names Docker objects and host paths: lowercase DNS label, 3 to 40 characters.
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]\Z")
# Port names become variable names in the role and keys in the registry.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")

MIN_PORT = 1
MAX_PORT = 65535


class PortRegistryError(Exception):
    """A problem the caller should report as the module's failure message."""


class RangeExhausted(PortRegistryError):
    """No free port is left in the range."""


def validate_project(project):
    if not isinstance(project, str) or not PROJECT_RE.match(project):
        raise PortRegistryError(
            f"project {project!r} is not a valid project ref: use 3 to 40 characters of lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )


def validate_names(names):
    if not names:
        raise PortRegistryError("names must list at least one port name")
    seen = set()
    for name in names:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise PortRegistryError(
                f"port name {name!r} is not valid: use a lowercase letter followed by up to 62 lowercase letters, "
                "digits or underscores"
            )
        if name in seen:
            raise PortRegistryError(f"port name {name!r} is listed more than once in names")
        seen.add(name)


def validate_range(range_start, range_end):
    for label, value in (("range_start", range_start), ("range_end", range_end)):
        if not MIN_PORT <= value <= MAX_PORT:
            raise PortRegistryError(f"{label}={value} is not a TCP port (1-65535)")
    if range_start > range_end:
        raise PortRegistryError(f"range_start={range_start} is greater than range_end={range_end}")


def empty_registry():
    return {"version": REGISTRY_VERSION, "projects": {}}


def parse_registry(text, path="registry"):
    """Parse and check the registry's JSON text; an empty file counts as an empty registry."""
    if not text.strip():
        return empty_registry()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PortRegistryError(f"{path} is not valid JSON ({exc}); repair or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
        raise PortRegistryError(f'{path} has no "projects" object; repair or remove it')
    if data.get("version") != REGISTRY_VERSION:
        raise PortRegistryError(
            f"{path} has version {data.get('version')!r}, this module understands version {REGISTRY_VERSION}"
        )
    for project, ports in data["projects"].items():
        if not isinstance(ports, dict) or not all(
            isinstance(port, int) and not isinstance(port, bool) and MIN_PORT <= port <= MAX_PORT
            for port in ports.values()
        ):
            raise PortRegistryError(f"{path}: the entry of project {project!r} is not a map of names to ports")
    return data


def dump_registry(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def read_registry(path):
    """Read the registry; a missing file is an empty registry."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return empty_registry()
        raise PortRegistryError(f"cannot read {path}: {exc}") from exc
    return parse_registry(text, path)


def ensure_directory(path):
    """Create the registry's directory (and missing parents) with mode 0755."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, REGISTRY_DIR_MODE)
            # makedirs applies the umask; the directory is meant to be readable by all.
            os.chmod(directory, REGISTRY_DIR_MODE)
        except OSError as exc:
            if not os.path.isdir(directory):
                raise PortRegistryError(f"cannot create directory {directory}: {exc}") from exc
    return directory


def write_registry(path, data):
    """Atomically replace the registry: temporary file, fsync, rename, fsync of the directory."""
    write_atomically(path, dump_registry(data), REGISTRY_MODE)


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on ``<path>.lock`` for a read-modify-write of the registry."""
    ensure_directory(path)
    lock_path = path + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, LOCK_MODE)
    except OSError as exc:
        raise PortRegistryError(f"cannot open lock file {lock_path}: {exc}") from exc
    try:
        # An older lock file may be world-readable: tighten it (the creation mode goes through the umask).
        if os.fstat(fd).st_mode & 0o777 != LOCK_MODE:
            os.fchmod(fd, LOCK_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def _family(bind_address):
    return socket.AF_INET6 if ":" in bind_address else socket.AF_INET


def check_bind_address(bind_address):
    """Fail early when nothing can bind on the address, rather than reporting every port as taken."""
    try:
        sock = socket.socket(_family(bind_address), socket.SOCK_STREAM)
    except OSError as exc:
        raise PortRegistryError(f"bind_address {bind_address} cannot be used: {exc}") from exc
    try:
        sock.bind((bind_address, 0))
    except (OSError, OverflowError) as exc:
        raise PortRegistryError(f"bind_address {bind_address} cannot be used for the free-port check: {exc}") from exc
    finally:
        sock.close()


def _bindable(family, address, port, v6only=False):
    no_ipv6 = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        if v6only and exc.errno in no_ipv6:
            return True
        raise
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        if v6only:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError as exc:
        # Without IPv6 on the host nothing listens there. Otherwise EADDRINUSE, or EACCES for
        # privileged ports: either way the port is not ours to hand out.
        return v6only and exc.errno in no_ipv6
    finally:
        sock.close()
    return True


def port_is_free(port, bind_address="0.0.0.0"):  # noqa: S104 - the check must see listeners on any address
    """True when a TCP socket can bind the port on bind_address right now.

    SO_REUSEADDR stays off so that a port with a listener (or lingering connections) counts as taken.
    For the IPv4 wildcard the IPv6 wildcard must be free too: Docker publishes a port on both, and an
    IPv6-only listener (on ``::1``, say) does not block an IPv4 bind.
    """
    if not _bindable(_family(bind_address), bind_address, port):
        return False
    if bind_address == "0.0.0.0" and socket.has_ipv6:  # noqa: S104 - a comparison, not a bind
        return _bindable(socket.AF_INET6, "::", port, v6only=True)
    return True


def plan_allocation(registry, project, names, range_start, range_end, is_free):
    """Compute the project's ports after allocating ``names``; pure apart from calling ``is_free``.

    Ports the project already holds are kept as they are, even when something listens on them
    (that something is usually the project's own containers). Each missing name gets the lowest port
    in the range that no project holds and that ``is_free(port)`` accepts.

    Returns ``(after, allocated)``: the project's full map after the change and the names newly allocated.
    Raises RangeExhausted, naming the range, when the range has too few free ports; nothing is changed then.
    """
    projects = registry.get("projects", {})
    before = dict(projects.get(project, {}))
    taken = set()
    for ports in projects.values():
        taken.update(ports.values())
    after = dict(before)
    allocated = {}
    candidate = range_start
    for name in names:
        if name in after:
            continue
        while candidate <= range_end and (candidate in taken or not is_free(candidate)):
            candidate += 1
        if candidate > range_end:
            missing = [n for n in names if n not in after]
            raise RangeExhausted(
                f"port range {range_start}-{range_end} is exhausted: no free port left for "
                f"{', '.join(missing)} of project {project} (ports held by projects in the registry or by other "
                "listeners are skipped); widen the range or release projects"
            )
        after[name] = candidate
        allocated[name] = candidate
        taken.add(candidate)
        candidate += 1
    return after, allocated


def with_project(registry, project, ports):
    """A copy of the registry where the project holds exactly ``ports`` (none: the entry is gone)."""
    data = {"version": REGISTRY_VERSION, "projects": dict(registry.get("projects", {}))}
    if ports:
        data["projects"][project] = dict(ports)
    else:
        data["projects"].pop(project, None)
    return data
