"""Unit tests of supamanager.supabase.project_files' logic (run() on a real directory)."""

import os
import stat

import pytest
from ansible_collections.supamanager.supabase.plugins.modules import project_files as pf


def params(root, files=(), directories=()):
    return {"path": str(root), "directories": list(directories), "files": [dict(f) for f in files]}


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


FILES = [
    {"dest": ".env", "content": "POSTGRES_PASSWORD=s3cret\n", "mode": "0600"},
    {"dest": "docker-compose.yml", "content": "name: x\n", "mode": "0644"},
    {"dest": "volumes/api/kong.yml", "content": "_format_version: '2.1'\n", "mode": "0644"},
]


def test_first_run_writes_everything_with_modes_second_run_changes_nothing(tmp_path):
    root = tmp_path / "projects" / "shop"
    first = pf.run(params(root, FILES, ["volumes/api", "volumes/db"]), check_mode=False)
    assert first["changed"]
    assert first["written"] == [".env", "docker-compose.yml", "volumes/api/kong.yml"]
    assert first["directories_made"] == [".", "volumes/api", "volumes/db"]
    assert (root / ".env").read_text() == "POSTGRES_PASSWORD=s3cret\n"
    assert mode_of(root / ".env") == 0o600
    assert mode_of(root / "docker-compose.yml") == 0o644
    assert mode_of(root / "volumes" / "db") == 0o755
    second = pf.run(params(root, FILES, ["volumes/api", "volumes/db"]), check_mode=False)
    assert second == {"changed": False, "written": [], "directories_made": []}


def test_only_a_file_that_differs_in_content_or_mode_is_rewritten(tmp_path):
    pf.run(params(tmp_path, FILES, ["volumes/api"]), check_mode=False)
    os.chmod(tmp_path / ".env", 0o644)
    changed = [dict(f) for f in FILES]
    changed[1]["content"] = "name: y\n"
    result = pf.run(params(tmp_path, changed, ["volumes/api"]), check_mode=False)
    assert result["written"] == [".env", "docker-compose.yml"]
    assert mode_of(tmp_path / ".env") == 0o600
    assert (tmp_path / "docker-compose.yml").read_text() == "name: y\n"


def test_check_mode_reports_and_writes_nothing(tmp_path):
    root = tmp_path / "new"
    result = pf.run(params(root, FILES, ["volumes/api"]), check_mode=True)
    assert result["changed"]
    assert result["written"] == [".env", "docker-compose.yml", "volumes/api/kong.yml"]
    assert not root.exists()


def test_no_temporary_file_is_left_beside_the_files(tmp_path):
    pf.run(params(tmp_path, FILES, ["volumes/api"]), check_mode=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "docker-compose.yml", "volumes"]


@pytest.mark.parametrize(
    ("files", "directories", "message"),
    [
        ([{"dest": "../escape", "content": "x", "mode": "0644"}], [], "must stay inside the directory"),
        ([{"dest": "a/../../escape", "content": "x", "mode": "0644"}], [], "must stay inside the directory"),
        ([{"dest": "/etc/passwd", "content": "x", "mode": "0644"}], [], "must be a relative path"),
        ([], ["../up"], "must stay inside the directory"),
        ([{"dest": "f", "content": "x", "mode": "rw-r--r--"}], [], "must be an octal string"),
        ([{"dest": "f", "content": "x", "mode": "01777"}], [], "must be an octal string"),
    ],
)
def test_bad_paths_and_modes_are_refused_before_anything_is_written(tmp_path, files, directories, message):
    root = tmp_path / "root"
    good = [{"dest": "first", "content": "x", "mode": "0644"}]
    with pytest.raises(pf.ProjectFilesError, match=message):
        pf.run(params(root, good + files, directories), check_mode=False)
    assert not root.exists()


def test_a_file_where_a_directory_belongs_is_an_error(tmp_path):
    (tmp_path / "volumes").write_text("not a directory")
    with pytest.raises(pf.ProjectFilesError, match="is not a directory"):
        pf.run(params(tmp_path, [], ["volumes"]), check_mode=False)


@pytest.mark.parametrize("planted", ["volumes/functions", "volumes/functions/main", "volumes/functions/main/index.ts"])
def test_a_symbolic_link_planted_below_the_directory_is_refused(tmp_path, planted):
    """A container with the functions directory bind-mounted could plant a link: nothing is written through it."""
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = {
        "path": str(root),
        "directories": ["volumes/functions/main"],
        "files": [{"dest": "volumes/functions/main/index.ts", "content": "x", "mode": "0644"}],
    }
    pf.run(params, check_mode=False)
    link = root / planted
    if link.is_dir():
        os.rename(link, elsewhere / "moved")
    else:
        link.unlink()
    link.symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.rglob("*"))
    with pytest.raises(pf.ProjectFilesError, match="is a symbolic link"):
        pf.run(params, check_mode=False)
    assert sorted(p.name for p in elsewhere.rglob("*")) == before


def test_directory_mode_applies_to_the_directory_and_its_subdirectories(tmp_path):
    root = tmp_path / "secrets"
    pf.run({**params(root, FILES[:1], ["sub"]), "directory_mode": "0700"}, check_mode=False)
    assert mode_of(root) == 0o700 and mode_of(root / "sub") == 0o700
    assert mode_of(root / ".env") == 0o600
