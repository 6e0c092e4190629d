"""The edge's systemd unit (hosts with systemd; this machine runs the supervised form): rendered by
Ansible's template module from the role's template, verified by systemd-analyze."""

import subprocess

from tests.conftest import REPO, run


def test_the_rendered_unit_verifies_cleanly_and_runs_caddy_on_the_edge_config(tmp_path, venv_env, caddy_installed):
    unit = tmp_path / "supamanager-edge.service"
    edge_root = tmp_path / "edge"
    run(
        [
            "ansible", "localhost", "-m", "ansible.builtin.template",
            "-a", f"src={REPO}/roles/edge/templates/supamanager-edge.service.j2 dest={unit} mode=0644",
            "-e", f"_edge_admin_socket={edge_root}/admin.sock _edge_config_file={edge_root}/caddy.json",
            "-e", f"supamanager_edge_caddy=/usr/bin/caddy supamanager_edge_root={edge_root}",
        ],
        env=venv_env,
    )  # fmt: skip
    text = unit.read_text()
    assert f"ExecStart=/usr/bin/caddy run --config {edge_root}/caddy.json" in text
    assert f"ReadWritePaths={edge_root}" in text
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys too: a clean unit prints nothing.
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr
