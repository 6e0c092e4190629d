"""Unit tests of module_utils/_atomic_file.py's failure path; its writes are checked through the port
registry, the keys file and the project files (tests/unit/plugins/modules/)."""

import os

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically


def test_a_failed_rename_leaves_the_target_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("kept\n")
    with pytest.raises(IsADirectoryError):
        write_atomically(str(target), "secret=1\n", 0o600)
    assert os.listdir(tmp_path) == ["taken"] and (target / "inside").read_text() == "kept\n"
