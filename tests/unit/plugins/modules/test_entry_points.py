"""The modules' main() as Ansible calls it (tests/unit/conftest.py's run_module): the failures a playbook
run can hardly be made to show, each a clear message with nothing changed: a host without PyJWT, a
Docker engine that does not answer, a file that cannot be read or written.

The happy paths run through real ansible-playbook runs: tests/integration/modules/ (jwt_keys,
project_files, project_backup_info, edge_route) and tests/integration/role/ (the role's create and
delete, which run project_config).
"""

import importlib.util
import json
import os
import sys

from ansible_collections.supamanager.supabase.plugins.module_utils import _jwt_keys, _port_registry
from ansible_collections.supamanager.supabase.plugins.modules import (
    edge_route,
    jwt_keys,
    project_backup_info,
    project_config,
    project_files,
)

from tests.unit.plugins.module_utils.test_backup_repository import T0, make_backup
from tests.unit.plugins.module_utils.test_edge_config import ROUTE, edge_dir

# A file name that its directory takes but the temporary file written beside it cannot have
# (NAME_MAX is 255; write_atomically's temporary name adds 14 characters): a real OSError when
# the file is written, after every check has passed.
LONG_NAME = "k" * 245


def files_below(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _dirs, names in os.walk(path) for f in names)


def test_without_pyjwt_the_key_modules_fail_naming_the_library_and_write_nothing(monkeypatch, run_module, tmp_path):
    # _jwt_keys as it loads on a host without PyJWT: a second copy of the file, the real one stays.
    monkeypatch.setitem(sys.modules, "jwt", None)
    spec = importlib.util.spec_from_file_location("_jwt_keys_without_pyjwt", _jwt_keys.__file__)
    bare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bare)
    assert bare.HAS_JWT is False and "import jwt" in bare.JWT_IMPORT_ERROR
    monkeypatch.setattr(jwt_keys, "HAS_JWT", False)
    monkeypatch.setattr(jwt_keys, "JWT_IMPORT_ERROR", bare.JWT_IMPORT_ERROR)
    monkeypatch.setattr(_jwt_keys, "HAS_JWT", False)
    monkeypatch.setattr(_jwt_keys, "JWT_IMPORT_ERROR", bare.JWT_IMPORT_ERROR)

    rc, result = run_module(jwt_keys, {"path": str(tmp_path / "keys" / "jwt.json")})
    assert rc == 1 and "PyJWT" in result["msg"] and result["exception"] == bare.JWT_IMPORT_ERROR
    rc, result = run_module(project_config, config_args(tmp_path))
    assert rc == 1 and "PyJWT" in result["msg"]
    assert os.listdir(tmp_path) == []


def test_jwt_keys_fails_clearly_when_its_file_cannot_be_read_made_or_written(run_module, tmp_path):
    (tmp_path / "a-directory").mkdir()
    rc, result = run_module(jwt_keys, {"path": str(tmp_path / "a-directory")})
    assert rc == 1 and result["msg"] == f"cannot read {tmp_path / 'a-directory'}: Is a directory"

    # The keys' directory below a link to a place that is gone (a disk that is not mounted).
    (tmp_path / "unmounted").symlink_to(tmp_path / "gone")
    rc, result = run_module(jwt_keys, {"path": str(tmp_path / "unmounted" / "shop" / "jwt.json")})
    assert rc == 1
    assert result["msg"] == f"cannot create directory {tmp_path / 'unmounted' / 'shop'}: No such file or directory"

    rc, result = run_module(jwt_keys, {"path": str(tmp_path / LONG_NAME)})
    assert rc == 1 and result["msg"].startswith(f"cannot write the keys file {tmp_path / LONG_NAME}: ")
    assert "File name too long" in result["msg"]
    assert files_below(tmp_path) == ["unmounted"] and not (tmp_path / "gone").exists()


def test_project_files_reports_a_file_it_cannot_write(run_module, tmp_path):
    root = tmp_path / "shop"
    files = [{"dest": LONG_NAME, "content": "secret=1\n", "mode": "0600"}]
    rc, result = run_module(project_files, {"path": str(root), "files": files})
    assert rc == 1 and result["msg"].startswith(f"cannot write the files in {root}: ")
    assert "File name too long" in result["msg"] and "secret=1" not in json.dumps(result)
    assert files_below(root) == []


def config_args(tmp_path, **extra):
    args = {
        "project": "shop",
        "project_dir": str(tmp_path / "projects" / "shop"),
        "secrets_dir": str(tmp_path / "secrets" / "shop"),
        "port_registry": str(tmp_path / "ports.json"),
        "port_names": ["kong_http"],
        "port_range_start": 41000,
        "port_range_end": 41099,
        "bind_address": "127.0.0.1",
        "docker_host": f"unix://{tmp_path / 'no-engine.sock'}",
    }
    args.update(extra)
    return args


def test_project_config_without_an_engine_fails_writes_nothing_and_asks_for_no_rollback(run_module, tmp_path):
    """existed stays true when the run cannot tell: the role rolls back only a project this run began."""
    rc, result = run_module(project_config, config_args(tmp_path))
    assert rc == 1 and result["existed"] is True and result["project"] == "shop"
    assert result["msg"].startswith(f"Docker engine at {tmp_path / 'no-engine.sock'}: ")
    # With the project's directory there, the engine is first asked for its version.
    os.makedirs(tmp_path / "projects" / "shop")
    rc, result = run_module(project_config, config_args(tmp_path))
    assert rc == 1 and result["existed"] is True and result["msg"].startswith("Docker engine at ")
    assert files_below(tmp_path) == []
    assert not (tmp_path / "secrets").exists()


def test_project_config_refuses_a_bad_ref_before_anything(run_module, tmp_path):
    rc, result = run_module(project_config, config_args(tmp_path, project="../etc"))
    assert rc == 1 and "project" in result["msg"] and "../etc" in result["msg"]
    assert os.listdir(tmp_path) == []


def test_project_config_absent_checks_then_removes_then_changes_nothing(run_module, tmp_path):
    args = config_args(tmp_path, state="absent")
    os.makedirs(tmp_path / "projects" / "shop" / "volumes")
    registry = _port_registry.with_project(_port_registry.empty_registry(), "shop", {"kong_http": 41000})
    _port_registry.write_registry(args["port_registry"], registry)

    rc, checked = run_module(project_config, args, check_mode=True)
    assert rc == 0 and checked["changed"] is True and checked["removed"] == [args["project_dir"], "ports"]
    assert os.path.isdir(args["project_dir"])
    assert json.loads((tmp_path / "ports.json").read_text())["projects"] == {"shop": {"kong_http": 41000}}

    rc, removed = run_module(project_config, args)
    assert (rc, removed["changed"], removed["existed"]) == (0, True, True)
    assert not os.path.exists(args["project_dir"])
    assert json.loads((tmp_path / "ports.json").read_text())["projects"] == {}
    rc, again = run_module(project_config, args)
    assert (rc, again["changed"], again["removed"]) == (0, False, [])


def test_project_config_absent_reports_what_it_cannot_remove(run_module, tmp_path):
    # A crash leftover where the project's directory belongs: a plain file.
    args = config_args(tmp_path, state="absent")
    os.makedirs(tmp_path / "projects")
    (tmp_path / "projects" / "shop").write_text("left over\n")
    rc, result = run_module(project_config, args)
    assert rc == 1 and result["msg"].startswith("cannot keep the configuration of project shop: ")
    assert (tmp_path / "projects" / "shop").read_text() == "left over\n"


def test_edge_route_reports_an_edge_directory_it_cannot_write(run_module, tmp_path):
    root = edge_dir(tmp_path)
    (root / "routes").write_text("not a directory\n")
    args = {"root": str(root), "name": ROUTE["name"], "hosts": ROUTE["hosts"], "upstream": ROUTE["upstream"]}
    rc, result = run_module(edge_route, args)
    assert rc == 1 and result["msg"].startswith(f"cannot update the edge at {root}: ")
    assert not (root / "caddy.json").exists() and (root / "routes").read_text() == "not a directory\n"


def test_project_backup_info_reports_a_wal_file_that_went_while_it_was_listed(run_module, tmp_path):
    repo = tmp_path / "shop"
    chain = project_backup_info.repo_lib.switch_chain(str(repo), None, T0)["current"]
    make_backup(repo, T0)
    # What a prune running at the same moment leaves for the listing: a name whose file is gone.
    os.symlink(tmp_path / "gone", repo / "wal" / chain / "000000010000000000000003")
    rc, result = run_module(project_backup_info, {"repository": str(repo)})
    assert rc == 1 and result["msg"].startswith(f"backup repository {repo}: ")
    assert "No such file or directory" in result["msg"]
