# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""Compose variable interpolation, so docker_container runs what docker-compose.yml says."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: compose_interpolate
short_description: Substitute C(${VAR}) references the way Docker Compose does
description:
  - Replaces C(${NAME}), C(${NAME:-default}), C(${NAME-default}) and C($NAME) in every string of a value
    (strings, lists and dicts, recursively) with entries of O(env), and C($$) with C($).
  - The project role writes its services in Compose syntax into C(docker-compose.yml) and feeds the same
    definition through this filter to community.docker.docker_container, so both run the same thing.
positional: env
options:
  _input:
    description: A string, list or dict whose strings hold Compose variable references.
    type: raw
    required: true
  env:
    description: The variables, as in the project's C(.env).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Environment of one service, with the values of .env
  ansible.builtin.set_fact:
    env: "{{ {'PGRST_DB_URI': 'postgres://authenticator:${POSTGRES_PASSWORD}@db:5432/postgres'}
             | supamanager.supabase.compose_interpolate({'POSTGRES_PASSWORD': 'x'}) }}"
"""

RETURN = r"""
_value:
  description: The input with every reference substituted.
  type: raw
"""

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _substitute(text: str, env: dict) -> str:
    def replace(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        value = env.get(name)
        if match.group("op") == ":-" and (value is None or value == ""):
            return match.group("default")
        if match.group("op") == "-" and value is None:
            return match.group("default")
        if value is None:
            raise AnsibleFilterError(f"compose_interpolate: variable {name} is not set")
        return str(value)

    return _REFERENCE.sub(replace, text)


def compose_interpolate(value, env):
    """Compose interpolation over strings inside lists and dicts."""
    if not isinstance(env, dict):
        raise AnsibleFilterError("compose_interpolate: env must be a dict")
    if isinstance(value, str):
        return _substitute(value, env)
    if isinstance(value, list):
        return [compose_interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: compose_interpolate(item, env) for key, item in value.items()}
    return value


class FilterModule:
    """Compose helpers of the project role."""

    def filters(self):
        return {"compose_interpolate": compose_interpolate}
