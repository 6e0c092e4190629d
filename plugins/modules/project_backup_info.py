#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: project_backup_info
short_description: List a project's backups, its recovery window, and plan a restore
version_added: 0.1.0
description:
  - Reads a project's backup repository (see M(supamanager.supabase.project_backup)); changes nothing.
  - Returns the published backups (a backup being written is never listed), the recovery window of point-in-time
    restores, and, given O(backup_id) or O(target_time) or O(latest), what a restore replays.
  - Listings hold ids, times, sizes, statuses and check names only; never a path inside a backup or a secret.
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  repository:
    description: The project's backup repository, C(<supamanager_backup_root>/<ref>).
    type: path
    required: true
  backup_id:
    description: Plan the restore of this backup (to its consistent end).
    type: str
  target_time:
    description:
      - Plan a point-in-time restore to this second (unix seconds, or ISO 8601 with a zone such as
        V(2026-12-01T22:40:00Z)).
    type: str
  latest:
    description: Plan a restore to the latest point the WAL reaches.
    type: bool
    default: false
seealso:
  - module: supamanager.supabase.project_backup
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: List the backups of shop
  supamanager.supabase.project_backup_info:
    repository: /var/lib/supamanager/backups/shop
  register: shop_backups

- name: Plan a point-in-time restore
  supamanager.supabase.project_backup_info:
    repository: /var/lib/supamanager/backups/shop
    target_time: "2026-12-01T22:40:00Z"
  register: plan
"""

RETURN = r"""
backups:
  description: The published backups, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: 1764629000, inserted_at: "2026-12-01T22:43:20Z", size: 5242880, status: COMPLETED, checks: []}
window:
  description: Earliest and latest unix second a point-in-time restore can reach (null without a completed backup).
  returned: always
  type: dict
  sample: {earliest: 1764629004, latest: 1764632000}
current_chain:
  description: The WAL chain the backup agent writes now (null when none).
  returned: always
  type: str
plan:
  description:
    - What a restore replays, C(id) (the base backup), C(chain) (its WAL chain), C(target) (V(immediate), V(latest)
      or V(time)) and C(target_time). Only with O(backup_id), O(target_time) or O(latest).
  returned: when asked
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supamanager.supabase.plugins.module_utils import _backup_repository as repo_lib


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repository=dict(type="path", required=True),
            backup_id=dict(type="str"),
            target_time=dict(type="str"),
            latest=dict(type="bool", default=False),
        ),
        mutually_exclusive=[["backup_id", "target_time"]],
        supports_check_mode=True,
    )
    p = module.params
    repo = p["repository"]
    try:
        result = {
            "changed": False,
            "backups": [repo_lib.summary(m) for m in repo_lib.backups(repo)],
            "window": repo_lib.window(repo),
            "current_chain": repo_lib.current_chain(repo),
        }
        if p["backup_id"] or p["target_time"] or p["latest"]:
            result["plan"] = repo_lib.plan(repo, p["backup_id"] or None, p["target_time"] or None)
    except repo_lib.BackupError as exc:
        module.fail_json(msg=str(exc))
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"backup repository {repo}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
