"""Run the collection's modules through real ansible-playbook runs and hand back what they returned."""

import json
import pathlib
import sys
import uuid

import pytest

from tests.conftest import REPO, run

# test_docker_api.py imports the collection's module_utils as Ansible does (see tests/unit/conftest.py).
COLLECTIONS = REPO / ".venv" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


class PlaybookRunner:
    """Writes a one-task playbook per call; the registered result is saved to a file for the test to read."""

    def __init__(self, workdir: pathlib.Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.outputs: list[str] = []

    def command(self, module, args, *, check=False, diff=False, verbosity=0, task_extra=None, host_vars=None):
        name = uuid.uuid4().hex[:12]
        result_file = self.workdir / f"result-{name}.json"
        task = {"name": "Run the module", module: args, "register": "result", "ignore_errors": True}
        task.update(task_extra or {})
        play = {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": host_vars or {},
            "tasks": [
                task,
                {
                    "name": "Save the result for the test",
                    "ansible.builtin.copy": {
                        "content": "{{ result | to_json }}",
                        "dest": str(result_file),
                        "mode": "0600",
                    },
                    "check_mode": False,
                    "diff": False,
                    "no_log": True,
                },
            ],
        }
        playbook = self.workdir / f"play-{name}.yml"
        # JSON is YAML: the arguments reach the module exactly as typed here.
        playbook.write_text(json.dumps([play]))
        cmd = ["ansible-playbook", str(playbook)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        return cmd, result_file

    def __call__(self, module, args, **kwargs):
        """Run the module once; return its registered result (the real values, even of no_log results)."""
        cmd, result_file = self.command(module, args, **kwargs)
        proc = run(cmd, env=self.env)
        self.outputs.append(proc.stdout + proc.stderr)
        return json.loads(result_file.read_text())


@pytest.fixture
def playbook(tmp_path, venv_env):
    workdir = tmp_path / "playbooks"
    workdir.mkdir()
    return PlaybookRunner(workdir, venv_env)
