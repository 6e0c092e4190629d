# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""Run the project_config module on the managed host and mark its result no_log.

The module returns the project's secrets and API keys (plugin_utils/_no_log_result.py).
"""

from __future__ import annotations

from ansible_collections.supamanager.supabase.plugins.plugin_utils._no_log_result import NoLogResultAction


class ActionModule(NoLogResultAction):
    pass
