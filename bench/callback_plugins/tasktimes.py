# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""The bench's task timer (bench/run --task-times): for each playbook run, when each task began and how
long it took, appended to the file TASKTIMES_OUT names. A benchmark aid, never loaded by the role."""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: tasktimes
type: aggregate
short_description: When each task began and how long it took (the bench's breakdown)
description:
  - Appends one block per playbook run to the file the environment variable TASKTIMES_OUT names.
requirements:
  - enabled with ANSIBLE_CALLBACKS_ENABLED=tasktimes and ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "tasktimes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        # The plugin loads once ansible-playbook has parsed its options: what came before is the
        # interpreter's and ansible's own start, which the bench's wall time of the command includes.
        self.t0 = time.time()
        self.playbook = ""
        self.current = None
        self.rows = []

    def _end(self):
        if self.current:
            name, start = self.current
            self.rows.append((start - self.t0, time.time() - start, name))
            self.current = None

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")
        self.rows.append((time.time() - self.t0, 0.0, "(playbook loaded)"))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._end()
        self.current = (task.get_name(), time.time())

    def v2_playbook_on_stats(self, stats):
        self._end()
        path = os.environ.get("TASKTIMES_OUT")
        if not path:
            return
        with open(path, "a") as out:
            out.write(f"---- {self.playbook} {time.strftime('%H:%M:%S')}\n")
            for at, took, name in self.rows:
                out.write(f"{at:7.2f} {took:6.2f} {name}\n")
            out.write(f"{time.time() - self.t0:7.2f}        (end, from the plugin's load)\n")
