"""The collection as its users get it: the built tarball, installed into an empty collections path.

Galaxy is out of reach here, so the tarball is installed with --no-deps and the collections it
depends on (galaxy.yml) are copied from the ones scripts/setup put in .venv/collections, as
`ansible-galaxy collection install` would have fetched them.
"""

import os
import shutil

import pytest
import yaml

from tests.conftest import REPO, run

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
TARBALL_NAME = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
VENV_COLLECTIONS = REPO / ".venv" / "collections" / "ansible_collections"
# What community.docker itself needs besides ansible-core.
DEPENDENCIES = ["community.docker", "community.library_inventory_filtering_v1"]


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory, venv_env):
    out = tmp_path_factory.mktemp("tarball")
    run(["ansible-galaxy", "collection", "build", "--output-path", str(out), str(REPO)], env=venv_env)
    tarball = out / TARBALL_NAME
    assert tarball.is_file()
    return tarball


@pytest.fixture(scope="session")
def user_home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def bare_env(user_home):
    """A user's environment without the checkout: no ansible.cfg, no ANSIBLE_* settings of ours."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env["HOME"] = str(user_home)
    env["ANSIBLE_CONFIG"] = str(user_home / "ansible.cfg")  # does not exist
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    env["ANSIBLE_ROLES_PATH"] = str(user_home / "roles")
    return env


@pytest.fixture(scope="session")
def installed_collections(tmp_path_factory, collection_tarball, bare_env):
    """A collections path holding only the installed tarball and its dependencies."""
    path = tmp_path_factory.mktemp("collections")
    env = {**bare_env, "ANSIBLE_COLLECTIONS_PATH": str(path)}
    proc = run(
        ["ansible-galaxy", "collection", "install", "--no-deps", "-p", str(path), str(collection_tarball)],
        env=env,
        cwd=path,
    )
    assert "was installed successfully" in proc.stdout
    for name in DEPENDENCIES:
        namespace, collection = name.split(".")
        target = path / "ansible_collections" / namespace / collection
        shutil.copytree(VENV_COLLECTIONS / namespace / collection, target)
    installed = path / "ansible_collections" / "supamanager" / "supabase"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    return path


@pytest.fixture(scope="session")
def user_env(bare_env, installed_collections):
    """bare_env whose only collections are the installed ones."""
    return {**bare_env, "ANSIBLE_COLLECTIONS_PATH": str(installed_collections)}
