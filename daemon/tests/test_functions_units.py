"""The contract of a project's functions directory (projects/functions.py): versions, the atomic
record, validation before anything is written. Through the API: test_conformance.py (shapes,
refusals) and test_functions.py (the official CLI, supabase-js and the real runtime)."""

from __future__ import annotations

import json
import pathlib

import pytest
from supamanager_daemon.errors import InvalidRequest
from supamanager_daemon.projects import functions

REF = "abcdefghijklmnopqrst"
ENTRY = "supabase/functions/hello/index.ts"


@pytest.fixture
def root(settings) -> pathlib.Path:
    path = functions.functions_dir(settings, REF)
    (path / "main").mkdir(parents=True)
    return path


def snapshot(path: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "path",
    ["../x.ts", "a/../../x.ts", "/etc/passwd", "C:/x.ts", "a\\..\\x.ts", "a/\x00.ts", "", ".", "a/" * 300],
)
def test_a_path_that_could_escape_or_is_not_a_plain_relative_path_is_refused(path):
    with pytest.raises(InvalidRequest) as exc:
        functions.check_path(path)
    assert exc.value.code == "invalid_path"


def test_a_relative_path_is_normalized():
    assert functions.check_path("./supabase//functions/./hello/index.ts") == ENTRY


@pytest.mark.parametrize("slug", ["9lives", "-x", "a.b", "a/b", "main", "", "a" * 65, "héllo"])
def test_slugs_are_validated(slug):
    with pytest.raises(InvalidRequest):
        functions.check_slug(slug)


def test_versions_count_up_and_only_the_live_version_stays(settings, root):
    meta = {"entrypoint_path": ENTRY, "name": "hello", "verify_jwt": None}
    first = functions.deploy(settings, REF, "hello", meta, {ENTRY: b"v1", "supabase/functions/_shared/a.ts": b"a"})
    assert (first["version"], first["verify_jwt"], first["status"]) == (1, True, "ACTIVE")
    second = functions.deploy(settings, REF, "hello", {**meta, "verify_jwt": False}, {ENTRY: b"v2"})
    assert (second["version"], second["id"], second["created_at"]) == (2, first["id"], first["created_at"])
    assert sorted(p.name for p in (root / "hello").iterdir()) == ["2", "function.json"]
    assert json.loads((root / "hello" / "function.json").read_text()) == second
    assert functions.read_files(settings, REF, "hello") == {ENTRY: b"v2"}
    # a record change only (PATCH without a body) keeps the files, as a new version
    third = functions.deploy(settings, REF, "hello", {"name": "Hello"}, None)
    assert (third["version"], third["name"], third["verify_jwt"]) == (3, "Hello", False)
    assert functions.read_files(settings, REF, "hello") == {ENTRY: b"v2"}
    assert [f["slug"] for f in functions.list_functions(settings, REF)] == ["hello"]  # main is never listed
    functions.delete(settings, REF, "hello")
    assert not (root / "hello").exists()
    with pytest.raises(functions.FunctionNotFound):
        functions.get_function(settings, REF, "hello")


def test_a_refused_deploy_writes_nothing(settings, root):
    meta = {"entrypoint_path": ENTRY, "name": "hello"}
    functions.deploy(settings, REF, "hello", meta, {ENTRY: b"v1"})
    before = snapshot(root)
    for files in ({ENTRY: b"v2", "../../escape.ts": b"x"}, {"other.ts": b"no entrypoint"}):
        with pytest.raises(InvalidRequest):
            functions.deploy(settings, REF, "hello", meta, files)
    with pytest.raises(InvalidRequest):
        functions.deploy(settings, REF, "hello", {**meta, "entrypoint_path": "../index.ts"}, {ENTRY: b"v2"})
    assert snapshot(root) == before
    assert not (root.parent / "escape.ts").exists()


def test_a_crashed_deploy_leaves_the_last_complete_version_live(settings, root):
    meta = {"entrypoint_path": ENTRY, "name": "hello"}
    functions.deploy(settings, REF, "hello", meta, {ENTRY: b"v1"})
    # what a crash leaves: a staged directory, and a next version's directory without its record
    (root / "hello" / ".v2-crashed").mkdir()
    (root / "hello" / "2").mkdir()
    assert functions.get_function(settings, REF, "hello")["version"] == 1
    again = functions.deploy(settings, REF, "hello", meta, {ENTRY: b"v2"})
    assert again["version"] == 2
    assert sorted(p.name for p in (root / "hello").iterdir()) == ["2", "function.json"]
    assert functions.read_files(settings, REF, "hello") == {ENTRY: b"v2"}


def test_a_project_without_its_functions_directory_is_not_ready(settings):
    with pytest.raises(InvalidRequest) as exc:
        functions.deploy(settings, REF, "hello", {"entrypoint_path": "index.ts"}, {"index.ts": b"x"})
    assert exc.value.code == "project_not_ready"
