# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Run the project_config module on the managed host and mark its result no_log.

The module returns the project's secrets and API keys; with ``_ansible_no_log`` set, callbacks
(the terminal, AWX, ansible-runner's event data) print a censored result, while a registered
variable keeps the real values.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
        result["_ansible_no_log"] = True
        return result
