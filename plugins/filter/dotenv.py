# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""Checks the .env settings a user may override, before the project role writes any file."""

from __future__ import annotations

import json
import re

DOCUMENTATION = r"""
name: dotenv_problems
short_description: What is wrong with .env overrides
description:
  - Returns one sentence per problem of O(_input), a map of .env variable names to values, naming the variable
    but never showing its value (an override may be a password).
  - A name must be an upper-case shell variable name (C(A-Z), C(0-9), C(_), starting with a letter) and must not be
    one of O(owned), the variables the role sets itself (secrets, ports, paths).
  - A value must be a string, number or boolean without a quote (C('), C(")), a backslash, C($), a backtick or a
    control character (newline, carriage return, tab, ...). Any of them could end the quoted value in .env early
    and add a line, or be expanded by Compose or by a service's entrypoint.
  - An empty list means the overrides can be written.
positional: owned
options:
  _input:
    description: The overrides (supabase_env_overrides).
    type: dict
    required: true
  owned:
    description: Names a user may not set.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse overrides that could add a line to .env
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ supabase_env_overrides | supamanager.supabase.dotenv_problems(owned_names) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when every override is fine.
  type: list
  elements: str
"""

NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
# Anything that could close the quoted value, start a new line or be expanded downstream.
UNSAFE_RE = re.compile(r"""['"\\$`\x00-\x1f\x7f]""")


def dotenv_problems(overrides, owned):
    """One sentence per override that may not be written to .env (names only, never values)."""
    if not isinstance(overrides, dict):
        return ["supabase_env_overrides must be a map of variable names to values"]
    owned = set(owned or [])
    problems = []
    for name in sorted(overrides, key=str):
        value = overrides[name]
        shown = json.dumps(str(name)[:64])
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            problems.append(f"{shown} is not a variable name (A-Z, 0-9 and _, starting with a letter)")
        elif name in owned:
            problems.append(f"{shown} is set by the role itself and cannot be overridden")
        elif isinstance(value, (dict, list, tuple)) or value is None:
            problems.append(f"the value of {shown} must be a string, a number or a boolean")
        elif UNSAFE_RE.search(str(value)):
            problems.append(
                f"the value of {shown} holds a quote, a backslash, $, a backtick or a control character "
                "(newline, tab, ...), which .env cannot carry safely"
            )
    return problems


class FilterModule:
    """.env checks of the project role."""

    def filters(self):
        return {"dotenv_problems": dotenv_problems}
