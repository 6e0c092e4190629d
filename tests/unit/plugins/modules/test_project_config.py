"""Unit tests of supamanager.supabase.project_config's logic on real files (a fake engine for the two
Docker questions it asks: labelled objects and the database volume; the role's lifecycle tests in
tests/integration/role/test_project.py run it against the real engine)."""

import json
import os
import pathlib
import stat

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils._docker_api import DockerError
from ansible_collections.supamanager.supabase.plugins.modules import project_config as pc

GENERATE = {"POSTGRES_PASSWORD": 32, "VAULT_ENC_KEY": 32}


class FakeEngine:
    def __init__(self, objects=False, volume=False, version="20.10.24"):
        self.objects, self.volume, self.ver = objects, volume, version

    def containers(self, label):
        assert label == "supamanager.project=shop"
        return [{"Id": "x"}] if self.objects else []

    def volumes(self, label):
        return []

    def version(self):
        return {"Version": self.ver}

    def request(self, method, path):
        assert path == "/volumes/supamanager-shop-db-data"
        if not self.volume:
            raise DockerError("no such volume", 404)
        return {}


def params(tmp_path, **extra):
    p = {
        "project": "shop",
        "project_dir": str(tmp_path / "projects" / "shop"),
        "secrets_dir": str(tmp_path / "secrets" / "shop"),
        "existing": False,
        "generate": dict(GENERATE),
        "predating": {},
        "db_volume": "supamanager-shop-db-data",
        "db_password": "",
        "jwt_issuer": "supabase",
        "jwt_expiry_days": 1825,
        "port_registry": str(tmp_path / "ports.json"),
        "port_names": ["kong_http", "postgres"],
        "port_range_start": 41000,
        "port_range_end": 41099,
        "bind_address": "127.0.0.1",
        "remove_secrets": False,
        "docker_host": None,
    }
    p.update(extra)
    return p


def present(p, engine=None, check_mode=False):
    result = {"existed": pc.existed(p, engine or FakeEngine())}
    pc.present(p, engine or FakeEngine(), check_mode, result)
    return result


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_makes_everything_second_run_returns_the_same(tmp_path):
    p = params(tmp_path)
    first = present(p)
    assert first["changed"] and first["existed"] is False
    assert first["engine_version"] == "20.10.24"
    assert set(first["secrets"]) == set(GENERATE) and all(len(v) == 32 for v in first["secrets"].values())
    assert set(first["jwt"]) == {"jwt_secret", "anon_key", "service_role_key"}
    assert first["ports"] == {"kong_http": 41000, "postgres": 41001}
    assert mode_of(p["secrets_dir"]) == 0o700
    assert mode_of(os.path.join(p["secrets_dir"], "secrets.json")) == 0o600
    assert mode_of(os.path.join(p["secrets_dir"], "jwt.json")) == 0o600
    second = present(p)
    assert second["changed"] is False and second["written"] == []
    assert second["existed"] is True  # its secrets directory is there now
    for key in ("secrets", "jwt", "ports"):
        assert second[key] == first[key]


def test_a_missing_secret_is_added_kept_ones_stay(tmp_path):
    p = params(tmp_path)
    first = present(p)
    again = present(params(tmp_path, generate={**GENERATE, "SECRET_KEY_BASE": 64}))
    assert again["changed"]
    assert len(again["secrets"]["SECRET_KEY_BASE"]) == 64
    assert again["secrets"]["POSTGRES_PASSWORD"] == first["secrets"]["POSTGRES_PASSWORD"]


def test_an_older_project_gets_the_predating_value_a_new_one_a_fresh_secret(tmp_path):
    # DB_ENC_KEY came after the first kept files: a project created before ran with upstream's value.
    predating = {"DB_ENC_KEY": "supabaserealtime"}
    present(params(tmp_path))
    older = present(params(tmp_path, generate={**GENERATE, "DB_ENC_KEY": 16}, predating=predating))
    assert older["secrets"]["DB_ENC_KEY"] == "supabaserealtime"
    fresh = present(params(tmp_path / "new", generate={**GENERATE, "DB_ENC_KEY": 16}, predating=predating))
    assert fresh["secrets"]["DB_ENC_KEY"] != "supabaserealtime" and len(fresh["secrets"]["DB_ENC_KEY"]) == 16


def test_check_mode_writes_nothing(tmp_path):
    p = params(tmp_path)
    result = present(p, check_mode=True)
    assert result["changed"]
    assert not os.path.exists(p["secrets_dir"]) and not os.path.exists(p["port_registry"])


def test_a_new_password_for_an_old_database_is_refused(tmp_path):
    with pytest.raises(pc.ConfigError, match=r"exists but .*secrets\.json does not"):
        present(params(tmp_path), FakeEngine(volume=True, objects=True))
    assert not os.path.exists(params(tmp_path)["secrets_dir"])


def test_a_chosen_password_replaces_the_kept_one_and_is_kept(tmp_path):
    first = present(params(tmp_path))
    assert first["db_existed"] is False
    chosen = present(params(tmp_path, db_password="chosen.Pass-1"), FakeEngine(volume=True, objects=True))
    assert chosen["changed"] and chosen["db_existed"] is True
    # Not returned: Ansible masks a no_log option's value in the result; the caller has it.
    assert "POSTGRES_PASSWORD" not in chosen["secrets"]
    assert chosen["secrets"]["VAULT_ENC_KEY"] == first["secrets"]["VAULT_ENC_KEY"]
    kept = json.loads(pathlib.Path(params(tmp_path)["secrets_dir"], "secrets.json").read_text())
    assert kept["POSTGRES_PASSWORD"] == "chosen.Pass-1"
    # The next run without one keeps the chosen password; with the same one nothing changes.
    assert present(params(tmp_path))["secrets"]["POSTGRES_PASSWORD"] == "chosen.Pass-1"
    assert present(params(tmp_path, db_password="chosen.Pass-1"))["changed"] is False


def test_an_old_database_without_kept_secrets_takes_a_chosen_password(tmp_path):
    result = present(params(tmp_path, db_password="chosen.Pass-1"), FakeEngine(volume=True, objects=True))
    assert result["db_existed"] is True
    kept = json.loads(pathlib.Path(params(tmp_path)["secrets_dir"], "secrets.json").read_text())
    assert kept["POSTGRES_PASSWORD"] == "chosen.Pass-1"


def test_existing_requires_the_compose_file_and_the_secrets(tmp_path):
    p = params(tmp_path, existing=True)
    with pytest.raises(pc.ConfigError, match=r"has no docker-compose.yml\); create it first"):
        present(p)
    os.makedirs(p["project_dir"])
    open(os.path.join(p["project_dir"], "docker-compose.yml"), "w").close()
    with pytest.raises(pc.ConfigError, match="no secrets under"):
        present(p)
    present(params(tmp_path))
    assert present(p)["changed"] is False


def test_labelled_objects_mean_the_project_existed(tmp_path):
    assert pc.existed(params(tmp_path), FakeEngine(objects=True)) is True
    assert pc.existed(params(tmp_path), FakeEngine()) is False


def test_a_damaged_secrets_file_is_reported_without_its_content(tmp_path):
    p = params(tmp_path)
    os.makedirs(p["secrets_dir"])
    with open(os.path.join(p["secrets_dir"], "secrets.json"), "w") as handle:
        handle.write("POSTGRES_PASSWORD=hunter2-not-json")
    with pytest.raises(pc.ConfigError, match="is not valid JSON") as err:
        present(p)
    assert "hunter2" not in str(err.value)
    with open(os.path.join(p["secrets_dir"], "secrets.json"), "w") as handle:
        handle.write("[1, 2]")
    with pytest.raises(pc.ConfigError, match="does not hold a JSON object"):
        present(p)


def test_a_loose_mode_is_tightened(tmp_path):
    p = params(tmp_path)
    present(p)
    os.chmod(p["secrets_dir"], 0o750)  # noqa: S103 - the test loosens it on purpose
    os.chmod(os.path.join(p["secrets_dir"], "secrets.json"), 0o640)
    result = present(p)
    assert result["changed"]
    assert mode_of(p["secrets_dir"]) == 0o700
    assert mode_of(os.path.join(p["secrets_dir"], "secrets.json")) == 0o600


def test_absent_removes_the_directory_and_ports_and_with_remove_secrets_the_secrets(tmp_path):
    p = params(tmp_path)
    present(p)
    os.makedirs(p["project_dir"])
    gone = pc.absent(p, check_mode=True)
    assert gone["changed"] and os.path.exists(p["project_dir"])
    gone = pc.absent(p, check_mode=False)
    assert gone["removed"] == [p["project_dir"], "ports"]
    assert not os.path.exists(p["project_dir"]) and os.path.exists(p["secrets_dir"])
    assert json.loads(pathlib.Path(p["port_registry"]).read_text())["projects"] == {}
    assert pc.absent(p, check_mode=False)["changed"] is False
    gone = pc.absent(params(tmp_path, remove_secrets=True), check_mode=False)
    assert gone["removed"] == [p["secrets_dir"]] and not os.path.exists(p["secrets_dir"])
    # Nothing there at all, not even a registry: nothing changes, nothing is created.
    empty = tmp_path / "empty"
    assert pc.absent(params(empty), check_mode=False)["changed"] is False
    assert not empty.exists()


class FailingEngine(FakeEngine):
    def request(self, method, path):
        raise DockerError(f"{method} {path}: 500 the engine failed", 500)


def test_an_unreadable_secrets_file_or_a_failing_engine_stops_before_anything_is_written(tmp_path):
    p = params(tmp_path)
    with pytest.raises(DockerError, match="500 the engine failed"):
        present(p, FailingEngine())
    assert not os.path.exists(p["secrets_dir"]) and not os.path.exists(p["port_registry"])
    # A directory where the secrets file belongs (a crash leftover, a mistaken mount): never overwritten.
    os.makedirs(os.path.join(p["secrets_dir"], "secrets.json"))
    with pytest.raises(pc.ConfigError, match=r"cannot read .*/secrets\.json: Is a directory"):
        present(p)
    assert os.listdir(p["secrets_dir"]) == ["secrets.json"] and not os.path.exists(p["port_registry"])
