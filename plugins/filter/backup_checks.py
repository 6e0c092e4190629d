# Copyright: SupaManager developers
# Apache License 2.0 (see galaxy.yml)
"""Turns the lines the backup check script prints into the checks a backup's manifest records."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: backup_checks
short_description: Parse the restorability checks of a backup
description:
  - "Reads the lines C(check: <name>: ok) and C(check: <name>: FAILED <why>) that the project role's check script
    (C(files/backup/check.sh)) prints, and returns one C({name, ok, message}) per check."
  - Output without any check line gives one failed check, so a check that did not run never passes.
options:
  _input:
    description: The script's output.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Publish with the verdict
  supamanager.supabase.project_backup:
    repository: /var/lib/supamanager/backups/shop
    action: commit
    staging: "{{ staging }}"
    checks: "{{ output | supamanager.supabase.backup_checks }}"
"""

RETURN = r"""
_value:
  description: The checks, in the order printed.
  type: list
  elements: dict
"""

CHECK_LINE = re.compile(r"check: (?P<name>[^:]+): (?:(?P<ok>ok)|FAILED ?(?P<why>.*))")


def backup_checks(output):
    checks = []
    for line in str(output).splitlines():
        match = CHECK_LINE.fullmatch(line.strip())
        if not match:
            continue
        name = match.group("name")
        if match.group("ok"):
            checks.append({"name": name, "ok": True, "message": f"{name}: ok"})
        else:
            checks.append({"name": name, "ok": False, "message": "{} {}".format(name, match.group("why") or "failed")})
    if not checks:
        checks.append({"name": "checks", "ok": False, "message": "the restorability checks printed no result"})
    return checks


class FilterModule:
    """Backup helpers of the project role."""

    def filters(self):
        return {"backup_checks": backup_checks}
