"""Changelog fragments (antsibull-changelog): they lint, and a release renders every one of them."""

import shutil

import yaml

from tests.conftest import REPO, run

FRAGMENTS = REPO / "changelogs" / "fragments"


def test_fragments_lint(venv_env):
    proc = run(["antsibull-changelog", "lint"], env=venv_env)
    assert proc.stdout.strip() == ""  # lint prints one line per problem


def test_a_release_renders_every_fragment(tmp_path, venv_env):
    """What `antsibull-changelog release` would write, in a scratch copy: each fragment's entries."""
    copy = tmp_path / "ansible_collections" / "supamanager" / "supabase"
    for name in ["changelogs", "plugins", "meta"]:
        shutil.copytree(REPO / name, copy / name)
    shutil.copy(REPO / "galaxy.yml", copy / "galaxy.yml")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    run(["antsibull-changelog", "release", "--version", version], env=venv_env, cwd=copy)
    release = yaml.safe_load((copy / "changelogs" / "changelog.yaml").read_text())["releases"][version]
    rendered = (copy / "CHANGELOG.md").read_text()
    fragments = sorted(FRAGMENTS.glob("*.yml"))
    assert fragments
    assert sorted(release["fragments"]) == sorted(f.name for f in fragments)
    for fragment in fragments:
        for section, entries in yaml.safe_load(fragment.read_text()).items():
            if section == "trivial":
                continue  # trivial entries are recorded, never rendered
            for entry in entries:
                assert entry in release["changes"][section], fragment.name
    assert "New Modules" in rendered and "port\\_allocation" in rendered
