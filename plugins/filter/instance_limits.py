# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""The containers' memory and CPU limits of a project of a given instance size (roles/project README)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: instance_limits
short_description: Memory and CPU limits per service for an instance size
description:
  - The compose keys C(mem_limit), C(memswap_limit) (the same, so no swap) and C(cpus) of each service of a
    project of instance size O(_input), as the platform names its compute sizes (C(nano), C(micro), ...).
  - The size sets the database's memory and CPUs (O(sizes)); every other service gets its own fixed
    ceiling (O(services)), whatever the size, so that no service of a project can take the host.
  - An empty size is a project without limits (what it was before sizes existed).
positional: sizes, services
options:
  _input:
    description: The instance size, a key of O(sizes), or empty.
    type: str
    required: true
  sizes:
    description: Size name to C({memory_mb, cpus}) of the database.
    type: dict
    required: true
  services:
    description: Service name to C({memory_mb, cpus}) of a service other than C(db).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The limits of a small project
  ansible.builtin.debug:
    msg: "{{ 'small' | supamanager.supabase.instance_limits(supabase_instance_sizes, supabase_service_limits) }}"
"""

RETURN = r"""
_value:
  description: Service name to C({mem_limit, memswap_limit, cpus}); empty for an empty size.
  type: dict
"""


def _limits(spec, what):
    try:
        memory_mb, cpus = int(spec["memory_mb"]), float(spec["cpus"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"{what}: memory_mb and cpus are required numbers ({exc})") from exc
    if memory_mb < 64 or cpus <= 0:
        raise AnsibleFilterError(f"{what}: memory_mb must be at least 64 and cpus above 0")
    return {"mem_limit": f"{memory_mb}m", "memswap_limit": f"{memory_mb}m", "cpus": cpus}


def instance_limits(size, sizes, services):
    """The limits per service ("db" from the size, the others fixed); {} without a size."""
    if not size:
        return {}
    if size not in sizes:
        raise AnsibleFilterError(f"unknown instance size {size!r}; known: {', '.join(sizes)}")
    out = {name: _limits(spec, f"supabase_service_limits.{name}") for name, spec in services.items() if name != "db"}
    out["db"] = _limits(sizes[size], f"supabase_instance_sizes.{size}")
    return out


class FilterModule:
    """The project role's instance size filter."""

    def filters(self):
        return {"instance_limits": instance_limits}
