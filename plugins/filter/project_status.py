# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""A project's status from its containers: the definition the daemon uses too (module_utils/_project_status.py)."""

from __future__ import annotations

from ansible_collections.supamanager.supabase.plugins.module_utils._project_status import project_status as _status

DOCUMENTATION = r"""
name: project_status
short_description: A project's status from its containers
description:
  - The Management API status (C(REMOVED), C(INACTIVE), C(ACTIVE_UNHEALTHY), C(COMING_UP), C(ACTIVE_HEALTHY))
    of a project, from the containers that carry its label. The daemon maps what it polls with the same definition.
  - No container at all is C(REMOVED), whether or not the project's files remain; containers of which none
    runs are C(INACTIVE).
positional: expected
options:
  _input:
    description:
      - Service name to C({state, health}), as observe.yml builds it.
      - Docker's state; health C(healthy), C(unhealthy), C(starting) or C(none).
    type: dict
    required: true
  expected:
    description: The services the project should have (its C(project.json)); a missing one makes it C(ACTIVE_UNHEALTHY).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The status
  ansible.builtin.debug:
    msg: "{{ _supabase_containers | supamanager.supabase.project_status(['db', 'kong']) }}"
"""

RETURN = r"""
_value:
  description: The status.
  type: str
"""


def project_status(containers, expected=None):
    """The status of a project from observe.yml's service -> {state, health} map."""
    triples = [
        (name, c.get("state"), None if c.get("health") in (None, "none") else c.get("health"))
        for name, c in (containers or {}).items()
    ]
    return _status(triples, expected or ())


class FilterModule:
    """The project role's status filter."""

    def filters(self):
        return {"project_status": project_status}
