# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""Checks a project's service settings (supabase_auth_settings, ...) before the project role writes any file."""

from __future__ import annotations

import json
import re

DOCUMENTATION = r"""
name: settings_problems
short_description: What is wrong with a project's service settings
description:
  - Returns one sentence per problem of O(_input), a map of setting names (the Management API's field names) to
    values, naming the setting but never showing its value (a setting may be a password).
  - A setting must be one of O(fields); a V(bool) one true or false, an V(int) one an integer within its C(min) (0)
    and C(max), a V(str) one a string of at most its C(max_length) (1024) characters, matching its C(pattern) when
    it has one, without a quote, a backslash, C($), a backtick or a control character (.env cannot carry them).
  - An empty list means the settings can be taken.
positional: fields, what
options:
  _input:
    description: The settings.
    type: dict
    required: true
  fields:
    description: The settings there are, each with its C(type) (V(bool), V(int), V(str)) and its limits.
    type: dict
    required: true
  what:
    description: The variable named in the problems.
    type: str
    default: supabase_auth_settings
"""

EXAMPLES = r"""
- name: Refuse settings the role cannot take
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ supabase_auth_settings | supamanager.supabase.settings_problems(_supabase_auth_fields) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when every setting is fine.
  type: list
  elements: str
"""

# Anything that could close the quoted value in .env, start a new line or be expanded downstream.
UNSAFE_RE = re.compile(r"""['"\\$`\x00-\x1f\x7f]""")


def settings_problems(settings, fields, what="supabase_auth_settings"):
    """One sentence per setting that may not be taken (names only, never values)."""
    if not isinstance(settings, dict):
        return [f"{what} must be a map of setting names to values"]
    problems = []
    for name in sorted(settings, key=str):
        value = settings[name]
        shown = json.dumps(str(name)[:64])
        field = fields.get(name) if isinstance(name, str) else None
        if field is None:
            problems.append(f"{shown} is not a setting of {what}")
        elif field["type"] == "bool":
            if not isinstance(value, bool):
                problems.append(f"{shown} must be true or false")
        elif field["type"] == "int":
            low, high = field.get("min", 0), field["max"]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{shown} must be an integer from {low} to {high}")
        else:
            longest = field.get("max_length", 1024)
            pattern = field.get("pattern")
            if not isinstance(value, str) or len(value) > longest:
                problems.append(f"{shown} must be a string of at most {longest} characters")
            elif UNSAFE_RE.search(value):
                problems.append(f"{shown} holds a quote, a backslash, $, a backtick or a control character")
            elif pattern and not re.fullmatch(pattern, value):
                problems.append(f"{shown} must match {pattern}")
    return problems


class FilterModule:
    """Settings checks of the project role."""

    def filters(self):
        return {"settings_problems": settings_problems}
