"""galaxy-importer (PyPI), the checks Galaxy runs on an upload, accepts the built tarball.

Configured for a machine without a container engine for it and without Galaxy
(tests/packaging/galaxy-importer.cfg): ansible-test inside a container is off (scripts/test runs
ansible-test sanity on the checkout instead); on: the metadata and layout checks, the changelog
check, ansible-doc of every plugin, and ansible-lint (offline) of the whole tarball.
"""

import pytest

from tests.conftest import run

CONFIG = __file__.rsplit("/", 1)[0] + "/galaxy-importer.cfg"


@pytest.mark.slow
def test_galaxy_importer_accepts_the_tarball(collection_tarball, bare_env, installed_collections, tmp_path):
    # ansible-lint inside the importer resolves community.docker's modules from the installed path.
    env = {**bare_env, "GALAXY_IMPORTER_CONFIG": CONFIG, "ANSIBLE_COLLECTIONS_PATH": str(installed_collections)}
    proc = run(["python", "-m", "galaxy_importer.main", str(collection_tarball)], env=env, cwd=tmp_path, timeout=1200)
    output = proc.stdout + proc.stderr
    assert "Importer processing completed successfully" in output
    assert "Linting collection via ansible-lint" in output  # the lint ran, offline
    assert "Getting doc strings via ansible-doc" in output
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert problems == []
