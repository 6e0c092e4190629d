"""Unit tests of the filter supamanager.supabase.backup_checks (the check script's lines)."""

from ansible_collections.supamanager.supabase.plugins.filter.backup_checks import FilterModule, backup_checks


def test_ok_and_failed_lines_become_checks_other_lines_are_ignored():
    output = "step: x\ncheck: db/5.dump: ok\ncheck: storage.tar: FAILED does not match its SHA-256\nnoise\n"
    assert backup_checks(output) == [
        {"name": "db/5.dump", "ok": True, "message": "db/5.dump: ok"},
        {"name": "storage.tar", "ok": False, "message": "storage.tar does not match its SHA-256"},
    ]


def test_no_check_line_is_a_failure():
    assert backup_checks("") == [
        {"name": "checks", "ok": False, "message": "the restorability checks printed no result"}
    ]
    assert FilterModule().filters()["backup_checks"] is backup_checks
