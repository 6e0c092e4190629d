"""The foundation: ansible finds community.docker, this collection and the default inventory."""

import json
import pathlib
import subprocess
import sys

from tests.conftest import run

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_community_docker_is_installed(venv_env):
    proc = run(["ansible-doc", "-t", "module", "community.docker.docker_container"], env=venv_env)
    assert "Manage the life cycle of Docker containers" in proc.stdout


def test_default_inventory_is_localhost_in_supabase_hosts(venv_env):
    proc = run(["ansible-inventory", "--list"], env=venv_env)
    inventory = json.loads(proc.stdout)
    assert inventory["supabase_hosts"]["hosts"] == ["localhost"]
    host = inventory["_meta"]["hostvars"]["localhost"]
    assert host["ansible_connection"] == "local"
    assert host["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"


def test_localhost_runs_a_module_with_the_playbook_python(venv_env, repo):
    proc = run(["ansible", "localhost", "-m", "ansible.builtin.ping", "-o"], env=venv_env)
    assert "SUCCESS" in proc.stdout


def test_modules_run_pipelined_so_no_module_file_is_written(venv_env, tmp_path):
    """An AnsiballZ file holds the module's arguments (a project's .env among them) and stays in
    ~/.ansible/tmp when a job is killed; pipelined, the module comes on stdin and no file is written."""
    playbook = tmp_path / "ping.yml"
    playbook.write_text("- hosts: supabase_hosts\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    proc = run(["ansible-playbook", "-vvv", str(playbook)], env=venv_env)
    assert "Pipelining is enabled." in proc.stdout
    assert "AnsiballZ_ping.py" not in proc.stdout


def test_a_failing_test_prints_no_secret_its_fixtures_or_frames_hold(tmp_path):
    # pytest's long tracebacks print each frame's arguments (a project's .env, a conninfo).
    secret = "s3cr3t-" + "x" * 12
    (tmp_path / "test_leak.py").write_text(
        "import pytest\n"
        "@pytest.fixture\n"
        f"def env():\n    return {{'POSTGRES_PASSWORD': {secret!r}}}\n"
        "def connect(conninfo):\n    raise ConnectionError('refused')\n"
        "def test_it(env):\n    connect('password=' + env['POSTGRES_PASSWORD'])\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stdout
    assert "ConnectionError" in out.stdout
    assert secret not in out.stdout + out.stderr
