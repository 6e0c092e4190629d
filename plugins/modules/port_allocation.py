#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: port_allocation
short_description: Allocate the host ports of a Supabase project
version_added: 0.1.0
description:
  - Hands a project the host ports it needs from a range, and records them in a registry file on the managed host.
  - The same project gets the same ports on every run. Two projects never share a port. A port that another process
    already listens on (checked by binding a TCP socket on O(bind_address)) is never handed out.
  - Ports the project already holds are kept, even when something listens on them, since that is normally the
    project's own containers.
  - Concurrent runs for different projects are safe. Every change takes an exclusive lock on a lock file beside the
    registry (O(registry) with C(.lock) appended), and the new registry is written to a temporary file, flushed to disk
    and renamed over the old one.
  - The registry's directory is created with mode C(0755) and the registry with mode C(0644) when they are missing.
    The registry holds no secrets.
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: full
    details:
      - The free-port check binds sockets in check mode too, but nothing is written.
  diff_mode:
    support: full
    details:
      - The diff shows all the ports the project holds, before and after.
  idempotent:
    support: full
options:
  project:
    description:
      - The ref of the project the ports are for.
      - A lowercase DNS-safe name of 3 to 40 characters, that is lowercase letters, digits and hyphens, starting and
        ending with a letter or digit. Anything else is refused.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the project holds a port for each name in O(names). Names it already holds keep their
        port, only missing names are allocated. Names the project holds but that are not listed are kept.
      - V(absent) releases every port the project holds.
    type: str
    choices:
      - present
      - absent
    default: present
  names:
    description:
      - The names of the ports the project needs, for example the host ports published by its gateway and pooler.
      - Each name is a lowercase letter followed by lowercase letters, digits or underscores, listed once.
      - Ignored when O(state=absent).
    type: list
    elements: str
    default:
      - kong_http
      - kong_https
      - postgres
      - pooler_transaction
  range_start:
    description:
      - The lowest port that may be allocated.
    type: int
    default: 54320
  range_end:
    description:
      - The highest port that may be allocated. Must not be below O(range_start).
      - When the range has no free port left for a missing name, the module fails, says which range is exhausted,
        and changes nothing.
    type: int
    default: 65535
  registry:
    description:
      - Path of the registry file on the managed host.
      - All projects that share a host must use the same registry, or they may be handed the same port.
    type: path
    default: /var/lib/supamanager/ports.json
  bind_address:
    description:
      - The address the free-port check binds to.
      - Use the address the project's ports are published on. The default V(0.0.0.0) finds listeners on any IPv4
        address, and on any IPv6 address too when the host has IPv6, since Docker publishes ports on both.
    type: str
    default: 0.0.0.0
notes:
  - The free-port check sees listening sockets. Ports published by Docker without its userland proxy, or ports of a
    service that is stopped right now, cannot be seen. Keep all projects of a host in one registry.
seealso:
  - module: supamanager.supabase.jwt_keys
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Allocate the host ports of project abcdefghijklmnopqrst
  supamanager.supabase.port_allocation:
    project: abcdefghijklmnopqrst
  register: project_ports

- name: Show the gateway's HTTP port
  ansible.builtin.debug:
    msg: "Kong listens on {{ project_ports.ports.kong_http }}"

- name: Allocate from a small range, in a registry of its own
  supamanager.supabase.port_allocation:
    project: demo-project
    names:
      - kong_http
      - postgres
    range_start: 40000
    range_end: 40099
    registry: /srv/supamanager/ports.json
    bind_address: 127.0.0.1

- name: Release the ports of a deleted project
  supamanager.supabase.port_allocation:
    project: demo-project
    state: absent
    registry: /srv/supamanager/ports.json
"""

RETURN = r"""
ports:
  description:
    - The port of each name in O(names), after the change.
    - Empty when O(state=absent).
  returned: success
  type: dict
  sample:
    kong_http: 54320
    kong_https: 54321
    postgres: 54322
    pooler_transaction: 54323
allocated:
  description:
    - The ports that this run allocated (or would allocate, in check mode), by name.
  returned: success
  type: dict
  sample:
    pooler_transaction: 54323
released:
  description:
    - The ports that this run released (or would release, in check mode), by name.
  returned: success
  type: dict
  sample: {}
registry:
  description:
    - The path of the registry file.
  returned: success
  type: str
  sample: /var/lib/supamanager/ports.json
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supamanager.supabase.plugins.module_utils._port_registry import (
    PortRegistryError,
    check_bind_address,
    locked,
    plan_allocation,
    port_is_free,
    read_registry,
    validate_names,
    validate_project,
    validate_range,
    with_project,
    write_registry,
)


class PortAllocator:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.results = {
            "changed": False,
            "ports": {},
            "allocated": {},
            "released": {},
            "registry": self.params["registry"],
        }
        self.before = {}
        self.after = {}

    def is_free(self, port):
        return port_is_free(port, self.params["bind_address"])

    def present(self, registry):
        """Plan against the registry just read; return the registry to write, or None when nothing changes."""
        p = self.params
        self.before = dict(registry["projects"].get(p["project"], {}))
        self.after, allocated = plan_allocation(
            registry, p["project"], p["names"], p["range_start"], p["range_end"], self.is_free
        )
        self.results["ports"] = dict((name, self.after[name]) for name in p["names"])
        self.results["allocated"] = allocated
        return with_project(registry, p["project"], self.after) if allocated else None

    def absent(self, registry):
        self.before = dict(registry["projects"].get(self.params["project"], {}))
        self.after = {}
        self.results["released"] = dict(self.before)
        return with_project(registry, self.params["project"], None) if self.before else None

    def run(self):
        p = self.params
        path = p["registry"]
        plan = self.present if p["state"] == "present" else self.absent
        if p["state"] == "present":
            check_bind_address(p["bind_address"])
        if self.check_mode:
            # Writes are atomic renames, so reading without the lock sees a whole registry.
            plan(read_registry(path))
        elif p["state"] == "absent" and not os.path.exists(path):
            # Nothing to release: do not create the directory or lock file just to find that out.
            plan(read_registry(path))
        else:
            with locked(path):
                new_registry = plan(read_registry(path))
                if new_registry is not None:
                    write_registry(path, new_registry)
        self.results["changed"] = self.before != self.after
        if self.module._diff:
            self.results["diff"] = {
                "before": {"project": p["project"], "ports": self.before},
                "after": {"project": p["project"], "ports": self.after},
                "before_header": f"{path} (project {p['project']})",
                "after_header": f"{path} (project {p['project']})",
            }
        return self.results


def main():
    argument_spec = dict(
        project=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        names=dict(type="list", elements="str", default=["kong_http", "kong_https", "postgres", "pooler_transaction"]),
        range_start=dict(type="int", default=54320),
        range_end=dict(type="int", default=65535),
        registry=dict(type="path", default="/var/lib/supamanager/ports.json"),
        bind_address=dict(type="str", default="0.0.0.0"),  # noqa: S104 - binds only to test, then closes
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        validate_project(p["project"])
        if p["state"] == "present":
            validate_names(p["names"])
            validate_range(p["range_start"], p["range_end"])
        results = PortAllocator(module).run()
    except PortRegistryError as exc:
        module.fail_json(msg=str(exc), project=p["project"], registry=p["registry"])
    except OSError as exc:
        module.fail_json(msg=f"cannot update the port registry {p['registry']}: {exc}", registry=p["registry"])
    module.exit_json(**results)


if __name__ == "__main__":
    main()
