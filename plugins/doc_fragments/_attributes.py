# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Attribute descriptions shared by the collection's modules (private: not part of the public API)."""

from __future__ import annotations


class ModuleDocFragment:
    # The standard attributes; each module declares its own level of support.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description:
      - Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
"""

    # For modules that come with an action plugin of the same name; use together with the standard fragment.
    ACTION = r"""
options: {}
attributes:
  action:
    description:
      - Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
"""
