"""The edge's systemd units (hosts with systemd; this machine runs the supervised form): rendered by
Ansible's template module from the role's templates, verified by systemd-analyze."""

import json
import subprocess

import pytest

from tests.conftest import REPO, run


def render_and_verify(tmp_path, venv_env, unit_name):
    unit = tmp_path / unit_name
    edge_root = tmp_path / "edge"
    front_argv = ["/usr/bin/python3", f"{edge_root}/pooler_front.py", f"{edge_root}/pooler-front.json"]
    front_argv += ["--stamp", "abc"]
    run(
        [
            "ansible", "localhost", "-m", "ansible.builtin.template",
            "-a", f"src={REPO}/roles/edge/templates/{unit_name}.j2 dest={unit} mode=0644",
            "-e", f"_edge_admin_socket={edge_root}/admin.sock _edge_config_file={edge_root}/caddy.json",
            "-e", json.dumps({"_edge_front_process": {"argv": front_argv}}),
            "-e", "supamanager_edge_caddy=/usr/bin/caddy supamanager_edge_python=/usr/bin/python3",
            "-e", f"supamanager_edge_root={edge_root}",
        ],
        env=venv_env,
    )  # fmt: skip
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys too: a clean unit prints nothing.
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr
    return unit.read_text(), edge_root


@pytest.mark.parametrize(
    "unit_name, exec_start, paths",
    [
        ("supamanager-edge.service", "/usr/bin/caddy run --config {root}/caddy.json", "ReadWritePaths={root}"),
        (
            "supamanager-pooler.service",
            "/usr/bin/python3 {root}/pooler_front.py {root}/pooler-front.json --stamp abc",
            "ReadOnlyPaths={root}",
        ),
    ],
    ids=["caddy", "postgres-front"],
)
def test_the_rendered_unit_verifies_cleanly_and_runs_its_program(
    tmp_path, venv_env, caddy_installed, unit_name, exec_start, paths
):
    text, edge_root = render_and_verify(tmp_path, venv_env, unit_name)
    assert f"ExecStart={exec_start.format(root=edge_root)}" in text
    assert paths.format(root=edge_root) in text
