"""Two projects on one host at once, and a create that fails and leaves nothing behind."""

import json

import pytest

from tests.conftest import run
from tests.integration.role.conftest import changed_count, docker_names, one_line, random_ref

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker


def test_concurrent_creates_get_distinct_ports_and_stay_apart(host):
    # Without analytics and vector (11 services each): the point here is isolation, not logging.
    first, second = random_ref("c"), random_ref("c")
    procs = [host.start("create", ref, supabase_logs_enabled=False) for ref in (first, second)]
    outputs = [proc.communicate(timeout=900)[0] for proc in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]

    ports = {ref: json.loads((host.project_dir(ref) / "project.json").read_text())["ports"] for ref in (first, second)}
    assert not set(ports[first].values()) & set(ports[second].values())
    for status in host.statuses(first, second).values():
        assert status["status"] == "ACTIVE_HEALTHY"
        assert len(status["services"]) == 11

    host.playbook("pause", first)
    statuses = host.statuses(first, second)
    assert statuses[first]["status"] == "INACTIVE"
    assert statuses[second]["status"] == "ACTIVE_HEALTHY"

    host.playbook("delete", first, delete_volumes=True)
    for kind in ["container", "network", "volume"]:
        assert docker_names(kind, first) == [], kind
    assert host.status(second)["status"] == "ACTIVE_HEALTHY"
    assert len(docker_names("container", second)) == 11


def test_failed_create_leaves_nothing(host):
    ref = random_ref("f")
    proc = host.playbook("create", ref, check=False, supabase_image_registry="nonexistent.invalid")
    assert proc.returncode != 0
    out = one_line(proc.stdout)
    assert f"Creating project {ref} failed" in out
    # Compose's own reason: the image could not be pulled from the registry.
    assert "docker compose create failed: " in out
    assert "nonexistent.invalid" in out.split("docker compose create failed: ")[1]
    assert "Everything this run made was removed" in out
    # What this run made before compose: its files and its ports. Docker holds nothing of the
    # project yet when the pull fails (kept checked, should compose ever create the network
    # first); the next test rolls back real containers, a network and volumes.
    for kind in ["container", "network", "volume"]:
        assert docker_names(kind, ref) == [], kind
    assert not host.project_dir(ref).exists()
    assert not (host.root / "secrets" / ref).exists()
    registry = host.root / "ports.json"
    assert not registry.exists() or ref not in json.loads(registry.read_text())["projects"]


def test_unhealthy_service_fails_the_create_with_its_last_check(host):
    # imgproxy depends on nothing, so it starts at once; a check that always fails makes it unhealthy.
    ref = random_ref("u")
    failing = {"imgproxy": {"test": ["CMD", "sh", "-c", "echo imgproxy-check-says-no; exit 1"], "retries": 1}}
    # The start fails on Docker's verdict (unhealthy after one failed check), not at the deadline:
    # a short deadline all the same, so that a start that waited it out fails in bounded time.
    proc = host.playbook(
        "create",
        ref,
        check=False,
        supabase_logs_enabled=False,
        supabase_healthcheck_overrides=failing,
        supabase_health_timeout=90,
    )
    assert proc.returncode != 0
    out = one_line(proc.stdout)
    assert f"Creating project {ref} failed" in out
    reason = out.split("Starting the services failed: ")[1]
    assert reason.startswith("given up by Docker (unhealthy"), reason
    # imgproxy ran, on the project's network: the rollback had containers, a network and volumes to remove.
    assert "imgproxy: running, health unhealthy, last check: imgproxy-check-says-no" in reason
    assert "Everything this run made was removed" in out
    for kind in ["container", "network", "volume"]:
        assert docker_names(kind, ref) == [], kind
    assert not host.project_dir(ref).exists()
    assert not (host.root / "secrets" / ref).exists()
    registry = host.root / "ports.json"
    assert not registry.exists() or ref not in json.loads(registry.read_text())["projects"]


def test_bad_ref_creates_nothing(host):
    projects = host.root / "projects"
    before = sorted(projects.iterdir()) if projects.exists() else []
    proc = host.playbook("create", "Not_A_Ref", check=False)
    assert proc.returncode != 0
    assert "lowercase DNS-safe slug" in one_line(proc.stdout)
    assert (sorted(projects.iterdir()) if projects.exists() else []) == before
    assert docker_names("container", "Not_A_Ref") == []


def test_delete_of_absent_project_changes_nothing(host):
    proc = host.playbook("delete", random_ref("gone"), delete_volumes=True)
    assert changed_count(proc.stdout) == 0


@pytest.mark.parametrize("came_up", [True, False])
def test_a_rollback_keeps_the_volumes_of_a_project_that_came_up(host, came_up):
    """delete.yml as the daemon's rollback (delete_as_rollback, delete_volumes): the volumes and
    secrets of a project that came up once stay (its data); those of one that never did go.
    (A real create, rows and a resumed failing create: daemon/tests/test_daemon_e2e.py.)"""
    ref = random_ref("rb")
    host.refs.add(ref)
    volume = f"supamanager-{ref}-db-data"
    # A project's file, its container, network and volume made by Compose as a create makes them
    # (labelled with the project, as the role's definition labels them): the rollback's removal of
    # the containers and network must not take the volume either.
    project_dir = host.root / "projects" / ref
    project_dir.mkdir(parents=True)
    (project_dir / "docker-compose.yml").write_text(
        json.dumps(
            {
                "name": f"supamanager-{ref}",
                "services": {
                    "db": {
                        "image": "standin.local/base:bookworm",
                        "labels": {"supamanager.project": ref},
                        "volumes": ["db-data:/data"],
                    }
                },
                "networks": {"default": {"name": f"supamanager-{ref}", "labels": {"supamanager.project": ref}}},
                "volumes": {"db-data": {"name": volume, "labels": {"supamanager.project": ref}}},
            }
        )
    )
    run(["docker", "compose", "--project-directory", str(project_dir), "create"], env=None)
    secrets_dir = host.root / "secrets" / ref
    secrets_dir.mkdir(parents=True)
    (secrets_dir / "secrets.json").write_text("{}\n")
    if came_up:
        (secrets_dir / "came-up").touch()
    try:
        host.playbook("delete", ref, delete_volumes=True, delete_as_rollback=True)
        assert docker_names("volume", ref) == ([volume] if came_up else [])
        assert docker_names("container", ref) == [] and docker_names("network", ref) == []
        assert (secrets_dir / "secrets.json").exists() == came_up
    finally:
        run(["docker", "volume", "rm", "-f", volume], env=None, check=False)
