"""Unit tests import the collection's code as Ansible does: ansible_collections.supamanager.supabase.*

scripts/setup links this checkout into .venv/collections; that directory goes on sys.path here.
"""

import json
import sys

import pytest
from ansible.module_utils import basic

from tests.conftest import REPO

COLLECTIONS = REPO / ".venv" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


def pytest_configure(config):
    # ansible-test units runs these files with its own pytest config and --strict-markers, without
    # pytest.ini's markers: a file marked docker (test_project_services_run.py) failed its collection.
    config.addinivalue_line("markers", "docker: needs the Docker engine")


@pytest.fixture
def run_module(monkeypatch, capsys, tmp_path):
    """Run a module's main() in this process as Ansible would: arguments in, (exit code, JSON result) out.

    The arguments reach AnsibleModule as AnsiballZ hands them over (basic._ANSIBLE_ARGS); exit_json and
    fail_json print the result and leave through SystemExit. The integration tests run the same modules
    through real ansible-playbook runs (tests/integration/modules/, tests/integration/role/).
    """

    def run(module, args, check_mode=False, diff=False):
        internal = {
            "_ansible_check_mode": check_mode,
            "_ansible_diff": diff,
            "_ansible_module_name": module.__name__.rsplit(".", 1)[-1],
            "_ansible_remote_tmp": str(tmp_path / "ansible-tmp"),
            "_ansible_keep_remote_files": False,
        }
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, **internal)}).encode()
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", payload)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            module.main()
        return exited.value.code, json.loads(capsys.readouterr().out)

    return run
