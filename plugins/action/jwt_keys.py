# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Run the jwt_keys module on the managed host and mark its result no_log.

The module returns the JWT secret and the API keys. A module cannot hide its own results, but an
action can: with ``_ansible_no_log`` set, callbacks (the terminal, AWX, ansible-runner's event
data) print a censored result, while a registered variable keeps the real values.

A module masks every value of a no_log option in what it returns, so when the task passes
``secret``, ``jwt_secret`` comes back masked; the caller gave that value, so it is put back here.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

# What AnsibleModule returns in place of a value given to a no_log option.
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
        result["_ansible_no_log"] = True
        given = self._task.args.get("secret")
        if given and result.get("jwt_secret") == MASKED:
            result["jwt_secret"] = given
        return result
