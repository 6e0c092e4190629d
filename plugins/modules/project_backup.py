#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: project_backup
short_description: Write, publish, check and prune the backups in a project's backup repository
version_added: 0.1.0
description:
  - Manages the backups of one project in its repository on the host, C(<supamanager_backup_root>/<ref>/) (every
    directory 0700, every file 0600). The role C(supamanager.supabase.project) fills a backup with one-shot containers
    from the project's own Postgres image; this module does the parts on the host.
  - O(action=begin) removes what crashed runs left (staging directories C(archive/.tmp-<id>/)) and makes a staging
    directory for a new backup, whose id (an integer, its start in unix seconds) it returns.
  - O(action=seal) packs the project's settings and secrets into C(settings.tar.enc), encrypted with C(openssl enc)
    (AES-256-CBC, PBKDF2) under the host's backup key O(key_file) (made on first use, 0600); a source that lies inside
    the staging directory is removed once sealed.
  - O(action=commit) writes the manifest C(backup.json) (id, time, size, status, checks, every file's size and SHA-256,
    the base backup's WAL range and chain) and renames the staging directory to C(archive/<id>/). Only then is the
    backup listed, so a crash never leaves a partial backup that counts. A failed check makes it V(FAILED).
  - O(action=mark) recomputes every file's checksum of a published backup and records the checks given with it; a
    mismatch or a failed check marks the backup V(FAILED).
  - O(action=prune) applies the retention (O(keep_daily), O(keep_weekly), O(wal_keep_days)).
  - O(action=mark_deleted) records in the repository (when there is one) that its project was deleted now.
  - O(action=prune_deleted) removes the repositories beside O(repository) (every project's of the host) of the
    projects deleted O(deleted_keep_days) days ago or more, while their directory under O(projects_root) is gone.
    With O(mark_deleted) it first does what O(action=mark_deleted) does (a delete's one run for both).
  - O(action=unseal) decrypts a backup's settings into O(dest).
  - O(action=switch_chain) points C(wal/current) at a new WAL chain (or O(chain)), for a database with a new history.
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: partial
    details:
      - Only O(action=prune), O(action=prune_deleted) and O(action=mark_deleted) run in check mode (they report
        what they would change); the others fail in check mode.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every O(action=begin) starts a new backup.
      - O(action=prune), O(action=prune_deleted) and O(action=switch_chain) with O(chain) are idempotent.
options:
  repository:
    description: The project's backup repository, C(<supamanager_backup_root>/<ref>).
    type: path
    required: true
  action:
    description: What to do (see the description).
    type: str
    required: true
    choices: [begin, seal, commit, mark, prune, unseal, switch_chain, mark_deleted, prune_deleted]
  staging:
    description: The staging directory O(action=begin) returned (O(action=seal), O(action=commit)).
    type: path
  sources:
    description:
      - For O(action=seal), what goes into the encrypted archive. A missing source is left out.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: A file or directory on the host.
        type: path
        required: true
      name:
        description: Its name in the archive.
        type: str
        required: true
  key_file:
    description: The host's backup key (O(action=seal), O(action=unseal)). Keep a copy off the host.
    type: path
  info:
    description: Fields of the manifest the role knows (O(action=commit)), such as C(ref), C(chain) and C(databases).
    type: dict
    default: {}
  checks:
    description:
      - The results of the restorability checks (O(action=commit), O(action=mark)), each with C(name), C(ok) and
        C(message).
    type: list
    elements: dict
    default: []
  backup_id:
    description: The backup to act on (O(action=mark), O(action=unseal)).
    type: str
  dest:
    description: Where O(action=unseal) unpacks (made 0700; files 0600).
    type: path
  chain:
    description: For O(action=switch_chain), an existing chain to point at (a rollback); omitted, a new one.
    type: str
  keep_daily:
    description: Keep the newest backup of each of this many days (at least the newest backup is kept).
    type: int
    default: 7
  keep_weekly:
    description: Keep the newest backup of each of this many ISO weeks.
    type: int
    default: 4
  wal_keep_days:
    description: Keep every WAL file younger than this many days, and all WAL a kept backup needs.
    type: int
    default: 7
  deleted_keep_days:
    description: Keep a deleted project's repository (its backups and WAL) this many days after its delete.
    type: int
    default: 7
  projects_root:
    description: The directory of the projects' directories (O(action=prune_deleted)).
    type: path
  mark_deleted:
    description: With O(action=prune_deleted), first record that the project of O(repository) was deleted now.
    type: bool
    default: false
seealso:
  - module: supamanager.supabase.project_backup_info
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Start a backup
  supamanager.supabase.project_backup:
    repository: /var/lib/supamanager/backups/shop
    action: begin
  register: backup

- name: Publish it
  supamanager.supabase.project_backup:
    repository: /var/lib/supamanager/backups/shop
    action: commit
    staging: "{{ backup.staging }}"
    info: {ref: shop}
    checks: [{name: pg_restore --list, ok: true}]
"""

RETURN = r"""
id:
  description: The backup's id (O(action=begin)).
  returned: action is begin
  type: int
  sample: 1764629000
staging:
  description: The staging directory to fill (O(action=begin)).
  returned: action is begin
  type: str
stale_removed:
  description: Staging directories of crashed runs that O(action=begin) removed.
  returned: action is begin
  type: list
  elements: str
backup:
  description: The backup as listings show it (id, time, inserted_at, size, status, reason, checks, chain, base_end).
  returned: action is commit or mark
  type: dict
removed:
  description: Ids of the backups O(action=prune) removed (or would remove, in check mode).
  returned: action is prune
  type: list
  elements: int
deleted_removed:
  description: Refs whose repositories O(action=prune_deleted) removed (or would remove, in check mode).
  returned: action is prune_deleted
  type: list
  elements: str
wal_removed:
  description: How many WAL files O(action=prune) removed.
  returned: action is prune
  type: int
files:
  description: Names O(action=unseal) unpacked.
  returned: action is unseal
  type: list
  elements: str
previous:
  description: The chain C(wal/current) named before O(action=switch_chain) (null when none).
  returned: action is switch_chain
  type: str
current:
  description: The chain C(wal/current) names now.
  returned: action is switch_chain
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supamanager.supabase.plugins.module_utils import _backup_repository as repo_lib

ACTIONS = ["begin", "seal", "commit", "mark", "prune", "unseal", "switch_chain", "mark_deleted", "prune_deleted"]


def run(module):
    p = module.params
    repo = p["repository"]
    action = p["action"]
    now = time.time()
    if action == "prune":
        result = repo_lib.prune(repo, p["keep_daily"], p["keep_weekly"], p["wal_keep_days"], now, module.check_mode)
        result["changed"] = bool(result["removed"] or result["wal_removed"])
        return result
    if action == "prune_deleted":
        require(p, "projects_root")
        backup_root = repo_lib.os.path.dirname(repo_lib.os.path.normpath(repo))
        keep = p["deleted_keep_days"]
        marked = False
        if p["mark_deleted"]:
            marked = repo_lib.os.path.isdir(repo) if module.check_mode else repo_lib.mark_deleted(repo, now)
        removed = repo_lib.prune_deleted(backup_root, p["projects_root"], keep, now, module.check_mode)
        return {"changed": marked or bool(removed), "deleted_removed": removed}
    if action == "mark_deleted":
        if module.check_mode:
            return {"changed": repo_lib.os.path.isdir(repo)}
        return {"changed": repo_lib.mark_deleted(repo, now)}
    if module.check_mode:
        raise repo_lib.BackupError(f"action={action} does not run in check mode")
    if action == "begin":
        result = repo_lib.begin(repo, now)
    elif action == "seal":
        require(p, "staging", "key_file")
        repo_lib.ensure_key(p["key_file"])
        sources = [(s["src"], s["name"]) for s in p["sources"]]
        repo_lib.seal(
            module.run_command, module.get_bin_path("openssl", required=True), p["staging"], sources, p["key_file"]
        )
        result = {}
    elif action == "commit":
        require(p, "staging")
        result = {"backup": repo_lib.commit(repo, p["staging"], p["info"], p["checks"], now)}
    elif action == "mark":
        require(p, "backup_id")
        problems = repo_lib.verify_files(repo, p["backup_id"])
        checks = [{"name": "checksums", "ok": not problems, "message": "; ".join(problems) or "every file matches"}]
        result = {"backup": repo_lib.mark(repo, p["backup_id"], checks + p["checks"], now)}
    elif action == "unseal":
        require(p, "backup_id", "key_file", "dest")
        path = repo_lib.os.path.join(repo_lib.archive_dir(repo), str(repo_lib.check_id(p["backup_id"])))
        openssl = module.get_bin_path("openssl", required=True)
        result = {"files": repo_lib.unseal(module.run_command, openssl, path, p["key_file"], p["dest"])}
    else:  # switch_chain
        result = repo_lib.switch_chain(repo, p["chain"], now)
        result["changed"] = result["previous"] != result["current"]
        return result
    result["changed"] = True
    return result


def require(params, *names):
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise repo_lib.BackupError("action={} needs {}".format(params["action"], ", ".join(missing)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repository=dict(type="path", required=True),
            action=dict(
                type="str",
                required=True,
                choices=ACTIONS,
            ),
            staging=dict(type="path"),
            sources=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(src=dict(type="path", required=True), name=dict(type="str", required=True)),
            ),
            key_file=dict(type="path", no_log=False),
            info=dict(type="dict", default={}),
            checks=dict(type="list", elements="dict", default=[]),
            backup_id=dict(type="str"),
            dest=dict(type="path"),
            chain=dict(type="str"),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            wal_keep_days=dict(type="int", default=7),
            deleted_keep_days=dict(type="int", default=7),
            projects_root=dict(type="path"),
            mark_deleted=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except repo_lib.BackupError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="backup repository {}: {}".format(module.params["repository"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
