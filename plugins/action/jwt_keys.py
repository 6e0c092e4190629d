# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Run the jwt_keys module on the managed host and mark its result no_log.

The module returns the JWT secret and the API keys (plugin_utils/_no_log_result.py).

A module masks every value of a no_log option in what it returns, so when the task passes
``secret``, ``jwt_secret`` comes back masked; the caller gave that value, so it is put back here.
"""

from __future__ import annotations

from ansible_collections.supamanager.supabase.plugins.plugin_utils._no_log_result import NoLogResultAction

# What AnsibleModule returns in place of a value given to a no_log option.
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


class ActionModule(NoLogResultAction):
    def adjust(self, result):
        given = self._task.args.get("secret")
        if given and result.get("jwt_secret") == MASKED:
            result["jwt_secret"] = given
        return result
