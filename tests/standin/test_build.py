"""tests/standin/build: one stand-in per image in the role's defaults, skipped when up to date."""

import json
import subprocess

import pytest

from tests.standin import kit

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker


def build(*args):
    return subprocess.run([str(kit.HERE / "build"), *args], capture_output=True, text=True, timeout=1200)


def test_lists_one_standin_per_default_image(standin_images):
    proc = build("--list")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == sorted(kit.IMAGES.values())
    assert len(kit.IMAGES) == 13


def test_every_image_is_labelled_and_never_tagged_with_its_upstream_name(standin_images):
    # Other suites add private tags of their own (role tests, molecule, bench pin the images
    # under a per-run prefix); what must never happen is a stand-in posing as the upstream image.
    for service, ref in kit.IMAGES.items():
        info = json.loads(kit.docker("image", "inspect", ref).stdout)[0]
        labels = info["Config"]["Labels"]
        assert labels["supamanager.standin.service"] == service
        assert len(labels["supamanager.standin.hash"]) == 24
        upstream = ref.removeprefix("standin.local/")
        assert ref in info["RepoTags"]
        assert not {upstream, f"docker.io/{upstream}", f"docker.io/library/{upstream}"} & set(info["RepoTags"])


def test_second_run_rebuilds_nothing(standin_images):
    # Run twice: another checkout on the same engine may have built its own version in between.
    build()
    proc = build()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("up to date: ") == 13, proc.stderr
    assert "built: " not in proc.stderr
    assert "debootstrap" not in proc.stderr


def test_unknown_service_is_refused(standin_images):
    proc = build("no-such-service")
    assert proc.returncode == 1
    assert "no stand-in for service(s): no-such-service" in proc.stderr
