"""Fixtures for the stand-in contract tests: images built once, one network and db per module."""

import subprocess

import pytest

from tests.standin import kit


@pytest.fixture(scope="session")
def standin_images():
    """Build (or find up to date) every stand-in image; seconds when nothing changed."""
    proc = subprocess.run([str(kit.HERE / "build")], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"tests/standin/build failed:\n{proc.stderr[-4000:]}"
    # Run containers from the image ids just built: another checkout on the same engine may build
    # its own version of the stand-ins under the same tags while this session runs.
    kit.pin_images()
    return kit.IMAGES


@pytest.fixture(scope="module")
def stack(standin_images):
    stack = kit.Stack()
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def db(stack):
    return kit.start_db(stack)
