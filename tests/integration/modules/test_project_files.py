"""supamanager.supabase.project_files through real ansible-playbook runs: one run, idempotent, no content shown."""

import stat

MODULE = "supamanager.supabase.project_files"
SECRET = "do-not-show-this-3f9a1c"


def test_writes_files_idempotently_and_never_shows_a_content(playbook, tmp_path):
    root = tmp_path / "projects" / "shop"
    args = {
        "path": str(root),
        "directories": ["volumes/db"],
        "files": [
            {"dest": ".env", "content": f"POSTGRES_PASSWORD={SECRET}\n", "mode": "0600"},
            {"dest": "volumes/db/roles.sql", "content": "select 1;\n"},
        ],
    }
    first = playbook(MODULE, args, verbosity=3)
    assert first["changed"] is True
    assert first["written"] == [".env", "volumes/db/roles.sql"]
    assert (root / ".env").read_text() == f"POSTGRES_PASSWORD={SECRET}\n"
    assert stat.S_IMODE((root / ".env").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "volumes" / "db" / "roles.sql").stat().st_mode) == 0o644

    second = playbook(MODULE, args, verbosity=3)
    assert second["changed"] is False
    assert second["written"] == []
    # -vvv prints the invocation; the content option is no_log.
    assert all(SECRET not in out for out in playbook.outputs)
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in playbook.outputs[0]


def test_a_path_outside_the_directory_fails_clearly(playbook, tmp_path):
    root = tmp_path / "root"
    result = playbook(MODULE, {"path": str(root), "files": [{"dest": "../x", "content": "select 1;"}]})
    assert result["failed"] is True
    assert "'../x' must stay inside the directory" in result["msg"]
    assert not root.exists()
