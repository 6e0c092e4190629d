# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""An action that runs its module on the managed host and marks the module's result no_log.

A module cannot hide its own results, but an action can: with ``_ansible_no_log`` set, callbacks
(the terminal, AWX, ansible-runner's event data) print a censored result, while a registered
variable keeps the real values. The actions of modules that return secrets (jwt_keys,
project_config) derive from it. Private to this collection.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class NoLogResultAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
        result["_ansible_no_log"] = True
        return self.adjust(result)

    def adjust(self, result):
        """A subclass's last word on the censored result; this one keeps it as it is."""
        return result
