"""The execution environment definition: ansible-builder 3 makes a build context from it.

No registry is reachable here, so the image itself is not built (README: "Execution environment"
says how). What is checked: `ansible-builder create` accepts the shipped definition and writes a
context with the collection's tarball, the collections to install and the pinned ansible-core and
runner; `ansible-builder introspect` finds the collection's own needs in the installed tarball.
"""

import shutil

import yaml

from tests.conftest import REPO, run
from tests.packaging.conftest import TARBALL_NAME

DEFINITION = REPO / "execution-environment.yml"


def test_ansible_builder_create_writes_the_build_context(tmp_path, collection_tarball, venv_env):
    # The layout of the docs' two commands: the definition, and the tarball built into build/.
    shutil.copy(DEFINITION, tmp_path / "execution-environment.yml")
    (tmp_path / "build").mkdir()
    shutil.copy(collection_tarball, tmp_path / "build" / TARBALL_NAME)
    context = tmp_path / "context"
    proc = run(
        [
            "ansible-builder",
            "create",
            "-f",
            "execution-environment.yml",
            "-c",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        env=venv_env,
        cwd=tmp_path,
    )
    assert "Complete!" in proc.stdout
    assert "WARNING" not in proc.stdout + proc.stderr  # e.g. "No matches for ... in additional_build_files"
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.18.19 ansible-runner==2.4.3"' in containerfile
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect.py introspect" in containerfile
    assert (context / "_build" / "collections" / TARBALL_NAME).read_bytes() == collection_tarball.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    entries = {entry["name"]: entry for entry in galaxy["collections"]}
    assert entries[f"collections/{TARBALL_NAME}"]["type"] == "file"
    # The community.docker of requirements.yml, the version the tests run with.
    pinned = {c["name"]: c["version"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert entries["community.docker"]["version"] == pinned["community.docker"]


def test_introspect_finds_the_collection_needs(installed_collections, venv_env):
    proc = run(["ansible-builder", "introspect", str(installed_collections)], env=venv_env)
    found = yaml.safe_load(proc.stdout)
    assert "PyJWT>=2.8  # from collection supamanager.supabase" in found["python"]
    assert "openssh-clients [platform:rpm]  # from collection supamanager.supabase" in found["system"]
    # community.docker's own needs are merged the same way.
    assert "docker  # from collection community.docker" in found["python"]
