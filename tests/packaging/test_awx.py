"""The repository as an AWX project: its collection list, the surveys, the configure playbook.

No AWX is reachable here: playbooks/awx-configure.yml is checked by syntax and by ansible-lint
(scripts/test), not run against a controller.
"""

import shutil

import pytest
import yaml

from tests.conftest import REPO, run

SURVEYS = yaml.safe_load((REPO / "awx" / "surveys.yml").read_text())["surveys"]
SPEC = yaml.safe_load((REPO / "roles" / "project" / "meta" / "argument_specs.yml").read_text())
OPTIONS = SPEC["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((REPO / "roles" / "project" / "defaults" / "main.yml").read_text())
LIFECYCLE = ["create", "pause", "resume", "restart", "delete", "status", "backup", "restore", "hostname", "move"]


def test_every_lifecycle_playbook_has_a_survey():
    assert sorted(SURVEYS) == sorted(LIFECYCLE)
    for name in LIFECYCLE:
        assert (REPO / "playbooks" / f"{name}.yml").is_file()
        assert SURVEYS[name]["spec"][0]["variable"] == "project_ref"


@pytest.mark.parametrize("playbook", LIFECYCLE)
def test_survey_questions_are_role_options_with_the_role_defaults(playbook):
    for question in SURVEYS[playbook]["spec"]:
        variable = question["variable"]
        option = OPTIONS[variable]  # KeyError: a question the role does not take
        # The role's required options are required answers; an optional one may be asked for
        # only with the role's default as the survey's, so that AWX always sends a valid value.
        if option.get("required"):
            assert question["required"]
        elif question["required"]:
            assert question["default"] != "", variable
        if option["type"] == "bool":
            assert question["type"] == "multiplechoice" and sorted(question["choices"]) == ["false", "true"]
            assert question["default"] == str(DEFAULTS[variable]).lower()
        elif "choices" in option:
            assert question["type"] == "multiplechoice" and question["choices"] == option["choices"]
            assert question["default"] == DEFAULTS[variable]
        else:
            assert question["type"] == "text"
            if variable in DEFAULTS:
                assert question["default"] == DEFAULTS[variable], variable
        if variable == "project_ref":
            assert (question["min"], question["max"]) == (3, 40)


def test_delete_survey_asks_about_volumes_and_defaults_to_keeping_them():
    question = next(q for q in SURVEYS["delete"]["spec"] if q["variable"] == "delete_volumes")
    assert question["default"] == "false"


def test_restore_survey_leaves_every_choice_optional():
    # Unanswered, AWX sends an empty string (or nothing): the role treats both as "not given",
    # so an empty restore survey restores the project itself to its latest point.
    for question in SURVEYS["restore"]["spec"][3:]:
        assert not question["required"] and question["default"] == "", question["variable"]
    restore = (REPO / "roles" / "project" / "tasks" / "restore.yml").read_text()
    assert "default(project_ref)" not in restore.replace("default(project_ref, true)", "")


def test_awx_configure_playbook_passes_syntax_check(venv_env):
    proc = run(["ansible-playbook", "--syntax-check", str(REPO / "playbooks" / "awx-configure.yml")], env=venv_env)
    assert "playbook: " in proc.stdout


def copy_checkout(target):
    """Copy the files git knows, as AWX's project update does: the checkout's untracked run files
    (coverage data of the suite's own processes, written while we copy) are none of AWX's."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], env=None).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in a working tree is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_awx_project_requirements_install_this_checkout_as_the_collection(tmp_path, venv_env):
    """AWX runs `ansible-galaxy collection install -r collections/requirements.yml` in the project."""
    requirements = yaml.safe_load((REPO / "collections" / "requirements.yml").read_text())["collections"]
    entries = {entry["name"]: entry for entry in requirements}
    assert entries["."]["type"] == "dir"
    pinned = {c["name"]: c["version"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    for name, version in pinned.items():
        assert entries[name]["version"] == version
    assert "awx.awx" in entries
    # Galaxy is out of reach: install the one local entry, from the project's root as AWX does.
    project = tmp_path / "project"
    copy_checkout(project)
    (tmp_path / "local.yml").write_text(yaml.safe_dump({"collections": [entries["."]]}))
    target = tmp_path / "collections"
    run(
        [
            "ansible-galaxy",
            "collection",
            "install",
            "--no-deps",
            "--force",
            "-r",
            str(tmp_path / "local.yml"),
            "-p",
            str(target),
        ],
        env=venv_env,
        cwd=project,
    )
    installed = target / "ansible_collections" / "supamanager" / "supabase"
    assert (installed / "playbooks" / "create.yml").is_file()
    assert not (installed / "tests").exists() and not (installed / "daemon").exists()
