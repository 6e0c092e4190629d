"""End to end for the user: `supamanager projects create --name x --wait` against a real
supamanagerd running the real playbooks on the real Docker engine with stand-in images
(registry standin.local, a temp SUPAMANAGER_ROOT). It shows each step as it happens and ends
ACTIVE_HEALTHY; /metrics moved; then `delete --wait` leaves nothing behind.

One create and one delete, no more: test_daemon_e2e.py covers the rest of the lifecycle (and
its every answer is checked against the OpenAPI document by daemonproc.Daemon.request).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import urllib.request

import pytest
from conftest import REPO, python_env
from daemonproc import Daemon
from test_usability_api import parse_metrics
from test_usability_cli import cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# As in test_daemon_e2e.py: another checkout's playbooks can stand in (e.g. a branch not landed yet).
COLLECTION = pathlib.Path(os.environ.get("SUPAMANAGER_TEST_COLLECTION", REPO))
if not (COLLECTION / "playbooks" / "create.yml").is_file():
    pytest.skip("the project playbooks are not there yet", allow_module_level=True)

PLAYBOOK_VARS = {
    # Our own port range, apart from test_daemon_e2e.py's, so parallel suites rarely compete.
    "supabase_port_range_start": 48100,
    "supabase_port_range_end": 48999,
    # 11 services instead of 14: the role's own tests cover log shipping and the backup agent
    # (on by default; test_backup.py, the live project of conftest.py); this one covers the CLI.
    "supabase_logs_enabled": False,
    "supabase_backup_wal_enabled": False,
}


def labelled(ref: str) -> list[str]:
    out = []
    for base, fmt in ((["ps", "-a"], "{{.Names}}"), (["network", "ls"], "{{.Name}}"), (["volume", "ls"], "{{.Name}}")):
        proc = subprocess.run(
            ["docker", *base, "--filter", f"label=supamanager.project={ref}", "--format", fmt],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        out += proc.stdout.split()
    return out


@pytest.fixture
def daemon(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    d = Daemon(tmp_path, COLLECTION, root, playbook_vars=PLAYBOOK_VARS)
    d.start()
    d.refs = []
    yield d
    d.stop()
    for ref in d.refs:  # whatever a failed assertion left behind goes, through the real delete playbook
        if labelled(ref):
            subprocess.run(
                [
                    str(REPO / ".venv" / "bin" / "ansible-playbook"),
                    str(COLLECTION / "playbooks" / "delete.yml"),
                    "-e",
                    json.dumps(
                        {
                            "project_ref": ref,
                            "supamanager_root": str(root),
                            "delete_volumes": True,
                            "delete_backup": False,
                        }
                    ),
                ],
                cwd=COLLECTION,
                env={**python_env(), "ANSIBLE_CONFIG": str(COLLECTION / "ansible.cfg")},
                capture_output=True,
                timeout=600,
            )


def metrics(daemon: Daemon) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=10) as resp:
        return parse_metrics(resp.read().decode())


def test_cli_create_wait_shows_progress_and_ends_active_healthy(daemon):
    before = metrics(daemon)
    result = cli(daemon, "projects", "create", "--name", "x", "--wait", timeout=1200)
    ref = next((w for w in result.stdout.split() if len(w) == 20 and w.isalpha()), None)
    if ref:
        daemon.refs.append(ref)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"project {ref} is ACTIVE_HEALTHY" in result.stdout
    assert "API URL: http://" in result.stdout
    steps = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(steps) >= 10, result.stderr  # the real playbook's tasks, one line each as it starts
    percents = [int(line[1:4]) for line in result.stderr.splitlines() if line.startswith("[")]
    assert percents == sorted(percents)

    health = cli(daemon, "projects", "health", ref)
    assert health.returncode == 0, health.stdout + health.stderr
    after = metrics(daemon)
    label = 'supamanager_jobs_total{kind="create",result="success"}'
    assert after[label] == before[label] + 1
    assert after['supamanager_job_duration_seconds_count{kind="create"}'] == 1
    assert after['supamanager_projects{status="ACTIVE_HEALTHY"}'] == 1

    result = cli(daemon, "projects", "delete", ref, "--no-backup", "--wait", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert labelled(ref) == []
    archive = daemon.root / "backups" / ref / "archive"
    assert not archive.exists() or not any(archive.iterdir()), "--no-backup took a final backup"
