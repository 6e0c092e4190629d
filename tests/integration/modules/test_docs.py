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
        ("project_files", {"path", "directories", "files"}, {"written", "directories_made"}),
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
