#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: project_files
short_description: Write a project directory's files in one run
version_added: 0.1.0
description:
  - Makes a directory and the subdirectories listed, and writes each file given with its content and mode.
  - A file whose content and mode already match is left alone, so a second run changes nothing.
  - A file that differs is replaced atomically (a temporary file beside it, flushed to disk, then renamed), so a crash
    never leaves half a file.
  - Meant for the files a role renders with C(lookup('ansible.builtin.template', ...)) on the controller, so that one
    module run replaces a C(file) and a C(template) task per file.
  - File contents are never returned, and never shown in the invocation (they may hold secrets).
  - A symbolic link below O(path), on the way to a listed directory or file or as the file itself, makes the module
    fail before it writes anything. Containers write into some of these directories through bind mounts, and a link
    planted there would send the files elsewhere on the host.
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details:
      - Contents may hold secrets, so no diff is shown; RV(written) names the files that changed.
  idempotent:
    support: full
options:
  path:
    description:
      - The directory to write into. Created with mode O(directory_mode) when missing, with its parents.
    type: path
    required: true
  directories:
    description:
      - Subdirectories of O(path) to make (mode O(directory_mode)), relative paths. Parents are made too.
    type: list
    elements: str
    default: []
  directory_mode:
    description:
      - The mode of O(path) and of O(directories), as an octal string; set when it differs. V(0700) for a directory
        that only its owner may read.
    type: str
    default: "0755"
  files:
    description:
      - The files to write, relative to O(path). Their directories must be O(path) or listed in O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description:
          - The file's path relative to O(path). No C(..) and no absolute path.
        type: str
        required: true
      content:
        description:
          - The whole content of the file.
        type: str
        required: true
      mode:
        description:
          - The file's mode, as an octal string such as V(0644), or V(0600) for a file that holds secrets.
        type: str
        default: "0644"
seealso:
  - module: ansible.builtin.template
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Write the project directory
  supamanager.supabase.project_files:
    path: /var/lib/supamanager/projects/shop
    directories:
      - volumes/api
    files:
      - dest: docker-compose.yml
        content: "{{ lookup('ansible.builtin.template', 'docker-compose.yml.j2') }}"
      - dest: .env
        content: "{{ lookup('ansible.builtin.template', 'env.j2') }}"
        mode: "0600"
      - dest: volumes/api/kong.yml
        content: "{{ lookup('ansible.builtin.template', 'kong.yml.j2') }}"
"""

RETURN = r"""
written:
  description:
    - The files (relative paths) this run wrote, or would write in check mode, because they were missing or differed.
  returned: success
  type: list
  elements: str
  sample:
    - .env
    - docker-compose.yml
directories_made:
  description:
    - The directories (relative paths, V(.) for O(path)) this run made or whose mode it set to C(0755).
  returned: success
  type: list
  elements: str
  sample:
    - volumes/api
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supamanager.supabase.plugins.module_utils._project_files import (
    ProjectFilesError,
    files_argument_spec,
    run,
    write_failure,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            directory_mode=dict(type="str", default="0755"),
            **files_argument_spec(),
        ),
        supports_check_mode=True,
    )
    try:
        results = run(module.params, module.check_mode)
    except ProjectFilesError as exc:
        module.fail_json(msg=str(exc), path=module.params["path"])
    except OSError as exc:
        module.fail_json(msg=write_failure(module.params["path"], exc))
    module.exit_json(**results)


if __name__ == "__main__":
    main()
