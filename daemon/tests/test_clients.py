"""The official clients the real-client tests drive are the pinned ones, installed from the lock file."""

from __future__ import annotations

import json
import os
import subprocess


def test_the_pinned_supabase_cli_and_management_js_are_installed(supabase_clients):
    out = subprocess.run(
        [str(supabase_clients.supabase), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "2.117.0"
    script = "console.log(JSON.stringify(Object.keys(require('supabase-management-js'))))"
    env = {**os.environ, "NODE_PATH": str(supabase_clients.node_modules)}
    out = subprocess.run(
        [str(supabase_clients.node), "-e", script], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert "SupabaseManagementAPI" in json.loads(out.stdout)
