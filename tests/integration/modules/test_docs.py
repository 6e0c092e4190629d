"""The modules document themselves through ansible-doc, attributes and returns included."""

import json

import pytest

from tests.conftest import run


@pytest.mark.parametrize(
    ("module", "options", "returns"),
    [
        (
            "port_allocation",
            {"project", "state", "names", "range_start", "range_end", "registry", "bind_address"},
            {"ports", "allocated", "released", "registry"},
        ),
        (
            "jwt_keys",
            {"path", "issuer", "expiry_days", "rotate", "secret"},
            {"jwt_secret", "anon_key", "service_role_key", "expires_at", "reasons", "path"},
        ),
        ("project_files", {"path", "directories", "directory_mode", "files"}, {"written", "directories_made"}),
        (
            "project_services",
            {"project", "project_dir", "state", "existing", "directories", "files", "services", "timeout"}
            | {"probe_interval", "remove_volumes", "gateway_url", "gateway_headers", "secrets", "docker_host"}
            | {"compose_command", "max_restarts", "secret_env", "only_recreated"},
            {"services", "timings", "started", "stopped", "removed", "ready_s", "written", "recreated"},
        ),
        (
            "project_config",
            {"project", "state", "project_dir", "secrets_dir", "existing", "generate", "db_volume", "port_registry"}
            | {"jwt_issuer", "jwt_expiry_days", "port_names", "port_range_start", "port_range_end", "bind_address"}
            | {"remove_secrets", "docker_host", "db_password", "predating"},
            {"existed", "db_existed", "engine_version", "secrets", "jwt", "ports", "written", "removed"},
        ),
    ],
)
def test_ansible_doc_renders_the_module(venv_env, module, options, returns):
    name = f"supamanager.supabase.{module}"
    text = run(["ansible-doc", name], env=venv_env).stdout
    assert "ATTRIBUTES" in text
    assert "EXAMPLES" in text
    doc = json.loads(run(["ansible-doc", "--json", name], env=venv_env).stdout)[name]
    assert set(doc["doc"]["options"]) == options
    assert set(doc["return"]) == returns
    assert {"check_mode", "diff_mode", "idempotent"} <= set(doc["doc"]["attributes"])
