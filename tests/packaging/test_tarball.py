"""The Galaxy tarball: what a Galaxy or AWX user needs, nothing of the development checkout."""

import tarfile

import yaml

# Top-level entries of the tarball (galaxy.yml build_ignore keeps the rest out).
ALLOWED_TOP = {
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "CHANGELOG.md",
    "changelogs",
    "docs",
    "meta",
    "playbooks",
    "plugins",
    "roles",
}


def names_of(tarball):
    with tarfile.open(tarball) as tar:
        return tar.getnames()


def test_tarball_holds_only_what_users_need(collection_tarball):
    names = names_of(collection_tarball)
    assert {n.split("/")[0] for n in names} <= ALLOWED_TOP
    assert not [n for n in names if "__pycache__" in n or "/molecule/" in n or n.startswith("changelogs/fragments")]
    assert not [n for n in names if n.endswith("awx-configure.yml")]  # needs awx.awx: an AWX-project file


def test_tarball_has_the_collection_content(collection_tarball):
    names = set(names_of(collection_tarball))
    for name in [
        "MANIFEST.json",
        "meta/runtime.yml",
        "meta/execution-environment.yml",
        "meta/ee-requirements.txt",
        "meta/ee-bindep.txt",
        "changelogs/changelog.yaml",
        "changelogs/config.yaml",
        "roles/project/defaults/main.yml",
        "roles/project/meta/argument_specs.yml",
        "roles/docker_host/meta/argument_specs.yml",
        "roles/docker_host/README.md",
        "plugins/modules/port_allocation.py",
        "plugins/module_utils/_port_registry.py",
    ]:
        assert name in names, name
    for playbook in ["create", "pause", "resume", "restart", "delete", "status"]:
        assert f"playbooks/{playbook}.yml" in names


def test_execution_environment_needs_name_only_the_plugins_needs(collection_tarball):
    with tarfile.open(collection_tarball) as tar:
        meta = yaml.safe_load(tar.extractfile("meta/execution-environment.yml"))
        python = tar.extractfile(meta["dependencies"]["python"]).read().decode()
    packages = [line.split(">")[0].split("=")[0] for line in python.splitlines() if line and not line.startswith("#")]
    # Not the daemon's nor the tests' packages (aiohttp, ansible-runner, pytest...): those are the checkout's.
    assert packages == ["PyJWT"]
