"""supamanager.supabase.edge_route through real ansible-playbook runs, on an edge directory with no
Caddy running: check mode, apply, idempotence, removal, and what it refuses. Loading into a running
Caddy: tests/integration/edge/ (real Caddy); the other refusals: the unit tests of _edge_config."""

import json

MODULE = "supamanager.supabase.edge_route"


def edge_dir(tmp_path):
    root = tmp_path / "edge"
    root.mkdir()
    settings = {
        "http_port": 80,
        "https_port": 443,
        "admin_socket": str(root / "admin.sock"),
        "storage": str(root / "data"),
        "tls": {"mode": "internal"},
    }
    (root / "settings.json").write_text(json.dumps(settings))
    return root


def test_check_apply_idempotent_remove(playbook, tmp_path):
    root = edge_dir(tmp_path)
    pooler = {"tenant": "shop", "session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"}
    args = {
        "root": str(root),
        "name": "project-shop",
        "hosts": ["shop.example.com"],
        "upstream": "127.0.0.1:54321",
        "pooler": pooler,
    }
    checked = playbook(MODULE, args, check=True)
    assert checked["changed"] is True and not (root / "routes").exists()
    applied = playbook(MODULE, args)
    assert (applied["changed"], applied["running"], applied["loaded"]) == (True, False, False)
    assert applied["hosts"] == ["shop.example.com"]
    assert json.loads((root / "routes" / "project-shop.json").read_text())["upstream"] == "127.0.0.1:54321"
    assert applied["pooler_routes_changed"] is True
    assert json.loads((root / "pooler-routes.json").read_text())["tenants"] == {
        "shop": {"session": "127.0.0.1:54322", "transaction": "127.0.0.1:54323"}
    }
    assert playbook(MODULE, args)["changed"] is False
    removed = playbook(MODULE, {"root": str(root), "name": "project-shop", "state": "absent"})
    assert removed["changed"] is True and removed["hosts"] == []
    assert not (root / "routes" / "project-shop.json").exists()
    assert json.loads((root / "pooler-routes.json").read_text())["tenants"] == {}


def test_bad_input_fails_clearly_and_changes_nothing(playbook, tmp_path):
    root = edge_dir(tmp_path)
    bad = playbook(MODULE, {"root": str(root), "name": "x", "hosts": ["a b.example.com"], "upstream": "127.0.0.1:1"})
    assert bad["failed"] is True and "not a lowercase DNS name" in bad["msg"]
    assert not (root / "routes").exists() and not (root / "caddy.json").exists()
