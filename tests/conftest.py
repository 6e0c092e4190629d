"""Shared fixtures: paths of the checkout and the tools in .venv."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def venv_env() -> dict[str, str]:
    """Environment for running the checkout's tools: .venv first on PATH, from the repo root."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    return env


def run(cmd, *, env, cwd=REPO, check=True, timeout=600) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; on failure the assertion shows what it printed."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def pooler_query(env: dict[str, str], sql: str, params=None):
    """Runs SQL on a project through its published transaction pooler port, as postgres.<tenant>,
    from the project's .env values: a check from outside the code under test."""
    import psycopg  # not at the top: ansible-test units loads this file in a venv without it

    with psycopg.connect(
        host="127.0.0.1",
        port=int(env["POOLER_PROXY_PORT_TRANSACTION"]),
        dbname="postgres",
        user=f"postgres.{env['POOLER_TENANT_ID']}",
        password=env["POSTGRES_PASSWORD"],
        connect_timeout=10,
        autocommit=True,
    ) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else None
