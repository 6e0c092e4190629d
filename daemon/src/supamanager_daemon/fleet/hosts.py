"""The fleet: the Docker hosts of the inventory's group `supabase_hosts`, their capacity and regions.

The Ansible inventory is the one description of the fleet: the daemon reads it with ansible-core's
own InventoryManager (any inventory the playbooks take: YAML, INI, a directory with group_vars),
and runs every job of a project's host limited to it. Without an inventory (SUPAMANAGER_INVENTORY
unset) the fleet is today's single local host, `localhost`, on the daemon's Docker socket.

Per host (host or group vars; a region is a group's var as often as a host's):

    docker_host                  unix:///path or tcp://host:port: the engine the daemon polls and
                                 the jobs drive (DOCKER_HOST); without one, a local host uses the
                                 daemon's socket, an SSH host is driven through its playbooks only
                                 and not polled (its projects are UNKNOWN)
    supamanager_region           the Management API region it serves (default SUPAMANAGER_REGION)
    supamanager_memory_mb        memory for projects (default: unlimited), placement's first measure
    supamanager_cpus             CPUs for projects (default: unlimited)
    supamanager_max_projects     projects it holds at most (default: unlimited)
    supamanager_max_jobs         playbook runs at once on it (default SUPAMANAGER_HOST_MAX_JOBS)
    supamanager_labels           a mapping of short strings, reported as they are
    supabase_port_range_start    the port allocator's range on that host (the role's own variables)
    supabase_port_range_end
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

GROUP = "supabase_hosts"
DEFAULT_HOST = "localhost"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._/: -]{0,128}")
_DOCKER_HOST = re.compile(r"unix:///[A-Za-z0-9._/-]+|tcp://[A-Za-z0-9.-]+:\d{1,5}")


class InventoryError(ValueError):
    """The inventory cannot be read or a host's variables are wrong; the message names the host and variable."""


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    region: str
    # The engine's URL (unix:// or tcp://); None: an SSH host whose engine only its playbooks reach.
    docker_host: str | None = None
    local: bool = True
    memory_mb: int | None = None
    cpus: float | None = None
    max_projects: int | None = None
    max_jobs: int = 4
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    port_range: tuple[int, int] | None = None

    @property
    def polled(self) -> bool:
        return self.docker_host is not None

    @property
    def socket_path(self) -> str | None:
        """The unix socket the daemon's client dials, None for tcp:// or no engine URL."""
        if self.docker_host and self.docker_host.startswith("unix://"):
            return self.docker_host.removeprefix("unix://")
        return None


@dataclasses.dataclass(frozen=True)
class Fleet:
    hosts: Mapping[str, Host]
    # Where it came from: the inventory path, or None for the single local host.
    source: str | None = None

    def in_region(self, region: str | None) -> list[Host]:
        return [h for h in self.hosts.values() if region is None or h.region == region]

    @property
    def regions(self) -> list[str]:
        return sorted({h.region for h in self.hosts.values()})


def single_host(docker_socket: str, region: str, max_jobs: int) -> Fleet:
    """Today's fleet: this machine, on the daemon's Docker socket."""
    host = Host(name=DEFAULT_HOST, region=region, docker_host=f"unix://{docker_socket}", max_jobs=max_jobs)
    return Fleet({host.name: host})


def _int(host: str, var: str, value: Any, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise InventoryError(f"host {host}: {var} must be a whole number, not {str(value)[:40]!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise InventoryError(
            f"host {host}: {var} must be {low}..{high}" if high else f"host {host}: {var} must be at least {low}"
        )
    return number


def host_from_vars(name: str, hostvars: Mapping[str, Any], default_region: str, default_max_jobs: int) -> Host:
    """One host from its (host and group) variables, every value checked: InventoryError names the wrong one."""
    if not _NAME.fullmatch(name):
        raise InventoryError(f"host name {name[:60]!r} is not a plain host name")
    docker_host = hostvars.get("docker_host")
    if docker_host is not None:
        if not isinstance(docker_host, str) or not _DOCKER_HOST.fullmatch(docker_host):
            raise InventoryError(f"host {name}: docker_host must be unix:///path or tcp://host:port")
        if docker_host.startswith("tcp://") and not 0 < int(docker_host.rpartition(":")[2]) <= 65535:
            raise InventoryError(f"host {name}: docker_host's port must be 1..65535")
    region = hostvars.get("supamanager_region", default_region)
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise InventoryError(f"host {name}: supamanager_region must be 1-64 lowercase letters, digits or '-'")
    memory = hostvars.get("supamanager_memory_mb")
    cpus = hostvars.get("supamanager_cpus")
    if cpus is not None:
        try:
            cpus = float(cpus)
        except (TypeError, ValueError):
            raise InventoryError(f"host {name}: supamanager_cpus must be a number") from None
        if not 0 < cpus <= 4096:
            raise InventoryError(f"host {name}: supamanager_cpus must be more than 0")
    max_projects = hostvars.get("supamanager_max_projects")
    labels = hostvars.get("supamanager_labels") or {}
    if not isinstance(labels, Mapping) or len(labels) > 32:
        raise InventoryError(f"host {name}: supamanager_labels must be a mapping of at most 32 labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL.fullmatch(key):
            raise InventoryError(f"host {name}: label {str(key)[:40]!r} is not a plain name")
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not _LABEL_VALUE.fullmatch(str(value)):
            raise InventoryError(f"host {name}: label {key}'s value must be a short plain string")
    port_range = None
    if "supabase_port_range_start" in hostvars or "supabase_port_range_end" in hostvars:
        start = _int(name, "supabase_port_range_start", hostvars.get("supabase_port_range_start", 54320), 1024, 65535)
        end = _int(name, "supabase_port_range_end", hostvars.get("supabase_port_range_end", 65535), 1024, 65535)
        if end - start < 3:
            raise InventoryError(f"host {name}: the port range {start}-{end} holds no project (4 ports)")
        port_range = (start, end)
    return Host(
        name=name,
        region=region,
        docker_host=docker_host,
        local=hostvars.get("ansible_connection") == "local",
        memory_mb=None if memory is None else _int(name, "supamanager_memory_mb", memory, 256),
        cpus=cpus,
        max_projects=None if max_projects is None else _int(name, "supamanager_max_projects", max_projects, 0),
        max_jobs=_int(name, "supamanager_max_jobs", hostvars.get("supamanager_max_jobs", default_max_jobs), 1, 64),
        labels={str(k): str(v) for k, v in labels.items()},
        port_range=port_range,
    )


def load_inventory(path: str, *, default_region: str, default_max_jobs: int, local_socket: str) -> Fleet:
    """The hosts of group supabase_hosts in the inventory at path (InventoryError when it cannot be used).

    Blocking (ansible-core parses files): call it in a thread. A local host (ansible_connection=local)
    without docker_host drives the daemon's own socket; an SSH host without one is not polled.
    """
    # ansible-core reads its configuration at import: late, and only when an inventory is used.
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    if not os.path.exists(path):
        raise InventoryError(f"the inventory {path} does not exist")
    loader = DataLoader()
    try:
        inventory = InventoryManager(loader=loader, sources=[path], parse=False)
        inventory.parse_sources(cache=False)
    except AnsibleError as exc:
        raise InventoryError(f"cannot read the inventory {path}: {exc}") from None
    if GROUP not in inventory.groups:
        raise InventoryError(f"the inventory {path} has no group {GROUP}")
    variables = VariableManager(loader=loader, inventory=inventory)
    hosts: dict[str, Host] = {}
    for entry in inventory.groups[GROUP].get_hosts():
        # Inventory, group_vars and host_vars; no facts, no templating: our variables are plain values.
        hostvars = variables.get_vars(host=entry, include_hostvars=False, include_delegate_to=False)
        host = host_from_vars(entry.name, hostvars, default_region, default_max_jobs)
        if host.local and host.docker_host is None:
            host = dataclasses.replace(host, docker_host=f"unix://{local_socket}")
        hosts[host.name] = host
    if not hosts:
        raise InventoryError(f"the inventory {path}: group {GROUP} has no host")
    return Fleet(hosts, source=path)
