"""Playbooks by name from the installed tarball alone, as sysadmins and AWX run them.

Both ways drive one project (the stand-in images; one create for both): `ansible-runner run
<private data dir>` with env/extravars, env/envvars and an inventory, as AWX runs a job, creates it
and reads its status; `ansible-playbook supamanager.supabase.<name>` in an empty directory with only
the installed collections reads its status and deletes it. Each way shows that the role of the
installed collection ran. No checkout file is used: not its ansible.cfg, roles or playbooks.
"""

import json
import random
import secrets

import pytest
import yaml

from tests.conftest import REPO, run
from tests.integration.role.conftest import STANDIN_REGISTRY, docker_names, random_ref
from tests.xdist_engines import port_blocks

INVENTORY = {
    "all": {
        "children": {
            "supabase_hosts": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    }
                }
            }
        }
    }
}
SERVICES = 13
ROLE_VARS = REPO / "roles" / "project" / "vars" / "main.yml"


def patient_healthchecks():
    """The role's own healthchecks with a long timeout and many retries.

    This test is about how the playbooks are invoked, not about health timing: on the shared
    2-core machine a check can take more than its 5 s under load, and three such checks make
    compose give up on a healthy service. The role tests keep the shipped values.
    """
    services = yaml.safe_load(ROLE_VARS.read_text())["_supabase_services"]
    return {
        name: {**service["healthcheck"], "timeout": "30s", "retries": 30}
        for name, service in services.items()
        if "healthcheck" in service
    }


def project_vars(root, ref):
    start = random.choice(port_blocks(30000, 48000, 200))
    return {
        "supabase_healthcheck_overrides": patient_healthchecks(),
        "project_ref": ref,
        "supabase_image_registry": STANDIN_REGISTRY,
        "supamanager_root": str(root),
        "supabase_port_range_start": start,
        "supabase_port_range_end": start + 199,
        "supabase_healthcheck_interval": "2s",
        "supabase_health_timeout": 300,
        # About how playbooks are invoked, not backups: without the backup agent (on by default).
        "supabase_backup_wal_enabled": False,
        # ... and its delete without the final backup (on by default: a whole backup per delete).
        "delete_backup": False,
    }


def env_secrets(root, ref):
    env = (root / "projects" / ref / ".env").read_text()
    pairs = [line.split("=", 1) for line in env.splitlines() if "=" in line and not line.startswith("#")]
    return [value.strip("'") for name, value in pairs if name.endswith(("PASSWORD", "SECRET", "_KEY")) and value]


def assert_running(ref):
    assert len(docker_names("container", ref)) == SERVICES
    assert len(docker_names("volume", ref)) == 4


def assert_gone(ref, root):
    assert docker_names("container", ref) == [] and docker_names("volume", ref) == []
    assert docker_names("network", ref) == []
    assert not (root / "projects" / ref).exists()


@pytest.fixture
def cleanup(user_env, tmp_path):
    """Delete whatever project a failed test left behind, by name, from the installed collection."""
    made = []
    yield made
    for ref, variables in made:
        if docker_names("container", ref) or docker_names("volume", ref):
            varfile = tmp_path / f"cleanup-{ref}.json"
            varfile.write_text(json.dumps({**variables, "delete_volumes": True}))
            inventory = tmp_path / "cleanup-inventory.yml"
            inventory.write_text(yaml.safe_dump(INVENTORY))
            command = ["ansible-playbook", "-i", str(inventory), "supamanager.supabase.delete", "-e", f"@{varfile}"]
            run(command, env=user_env, cwd=tmp_path, check=False, timeout=900)


def runner_job(pdd, ident, playbook, extravars, venv_env):
    """One AWX-style job: extravars written to env/extravars, the playbook given by name."""
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (pdd / "env" / "extravars").chmod(0o600)
    run(["ansible-runner", "run", str(pdd), "-p", playbook, "--ident", ident], env=venv_env, timeout=1500)
    artifacts = pdd / "artifacts" / ident
    assert (artifacts / "rc").read_text().strip() == "0", (artifacts / "stdout").read_text()
    assert (artifacts / "status").read_text().strip() == "successful"
    events = [json.loads(path.read_text()) for path in sorted((artifacts / "job_events").glob("*.json"))]
    return artifacts, events


@pytest.mark.docker
@pytest.mark.slow
def test_ansible_runner_and_ansible_playbook_run_the_collection_playbooks_by_name(
    user_env, installed_collections, tmp_path, cleanup
):
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))
    # What an AWX job's environment holds: where the project's collections are installed.
    envvars = {key: value for key, value in user_env.items() if key.startswith("ANSIBLE_")}
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    ref = random_ref("name")
    variables = project_vars(tmp_path / "root", ref)
    cleanup.append((ref, variables))
    runner_env = {key: value for key, value in user_env.items() if not key.startswith("ANSIBLE_")}

    # ansible-runner, as AWX: create, then status from the job events
    artifacts, _ = runner_job(
        pdd, f"create-{secrets.token_hex(3)}", "supamanager.supabase.create", variables, runner_env
    )
    assert "supamanager.supabase.project : " in (artifacts / "stdout").read_text()
    assert_running(ref)
    values = env_secrets(tmp_path / "root", ref)
    assert len(values) >= 5

    _, events = runner_job(pdd, "status", "supamanager.supabase.status", variables, runner_env)
    reported = [
        e["event_data"]["res"]["supabase_project_status"]
        for e in events
        if e.get("event") == "runner_on_ok" and "supabase_project_status" in e["event_data"].get("res", {})
    ]
    assert reported and reported[-1]["status"] == "ACTIVE_HEALTHY" and reported[-1]["ref"] == ref
    # Runner artifacts (stdout, events, the extravars AWX keeps) never hold a project secret.
    for path in (pdd / "artifacts").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [value for value in values if value in text], path

    # ansible-playbook by name in an empty directory: status, then delete
    work = tmp_path / "work"  # no ansible.cfg, no playbooks, no roles
    work.mkdir()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(INVENTORY))

    def playbook(name, env=None, **extra):
        varfile = tmp_path / f"{name}.json"
        varfile.write_text(json.dumps({**variables, **extra}))
        command = ["ansible-playbook", "-i", str(inventory), f"supamanager.supabase.{name}", "-e", f"@{varfile}"]
        return run(command, env={**user_env, **(env or {})}, cwd=work, timeout=1500)

    tree = tmp_path / "tree"
    shown = playbook("status", env={"ANSIBLE_CALLBACKS_ENABLED": "tree", "ANSIBLE_CALLBACK_TREE_DIR": str(tree)})
    assert "supamanager.supabase.project : " in shown.stdout  # the role of the installed collection ran
    status = json.loads((tree / "localhost").read_text())["supabase_project_status"]
    assert status["ref"] == ref and status["status"] == "ACTIVE_HEALTHY"
    assert len(status["services"]) == SERVICES
    playbook("delete", delete_volumes=True)
    assert_gone(ref, tmp_path / "root")
