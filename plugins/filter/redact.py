# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""Masks secret values in messages that are shown to the user (failure reasons of no_log tasks)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: redact
short_description: Mask secret values in a message
description:
  - Replaces every occurrence of each value of O(secrets) (8 characters or longer) in the input by C(********).
  - The project role uses it to report why a C(no_log) task failed without showing a secret.
positional: secrets
options:
  _input:
    description: The message.
    type: str
    required: true
  secrets:
    description: The values to mask.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Say why, without secrets
  ansible.builtin.fail:
    msg: "{{ result.msg | supamanager.supabase.redact(secret_values) }}"
"""

RETURN = r"""
_value:
  description: The message with secrets masked.
  type: str
"""


def redact(text, secrets):
    """Replace every secret value occurring in a message by ********."""
    text = str(text)
    for secret in sorted((str(s) for s in secrets or [] if s), key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "********")
    return text


class FilterModule:
    """Redaction helper of the project role."""

    def filters(self):
        return {"redact": redact}
