"""Fixtures for the project role's tests: real ansible-playbook runs against the real Docker engine.

Projects use the stand-in images (supabase_image_registry=standin.local), a temporary
supamanager_root and port registry, random refs, and a random port range; every project a test
makes is deleted with its volumes in teardown.
"""

import json
import pathlib
import random
import re
import secrets
import subprocess

import pytest
import yaml

from tests.conftest import REPO, run
from tests.xdist_engines import port_blocks

STANDIN_REGISTRY = "standin.local"
PORT_BLOCK = 200
DEFAULTS = REPO / "roles" / "project" / "defaults" / "main.yml"


def docker_names(kind, ref):
    """Names of the Docker objects of one kind (container, network, volume) labelled with the project."""
    cmd = [
        "docker",
        kind,
        "ls",
        "--filter",
        f"label=supamanager.project={ref}",
        "--format",
        "{{.Names}}" if kind == "container" else "{{.Name}}",
    ]
    if kind == "container":
        cmd.insert(3, "-a")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines() if line)


def random_ref(prefix="t"):
    return f"{prefix}{secrets.token_hex(4)}"


def changed_count(stdout):
    """The changed= figure of the PLAY RECAP (one host)."""
    found = re.findall(r"changed=(\d+)", stdout.split("PLAY RECAP", 1)[-1])
    assert found, "no PLAY RECAP in the output"
    return int(found[0])


def changed_tasks(stdout):
    """Names of the tasks that reported changed (for assertion messages; task output is no_log)."""
    names, task = [], None
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            task = line.split("]", 1)[0].removeprefix("TASK [")
        elif line.startswith("changed:") and task not in names:
            names.append(task)
    return names


def one_line(text):
    """Output with YAML's line folding undone, for substring checks."""
    return " ".join(text.split())


@pytest.fixture(scope="session")
def private_registry():
    """The stand-in images under a registry prefix of this session only.

    Other sessions on this machine rebuild standin.local/... while these tests run; a new image
    under the same tag would make the role (rightly) recreate containers and break the
    idempotence checks. Tags are removed afterwards (the images stay, under standin.local).
    """
    images = yaml.safe_load(DEFAULTS.read_text())["supabase_images"].values()
    prefix = f"standin-{secrets.token_hex(3)}.local"
    tagged = []
    try:
        for image in images:
            subprocess.run(["docker", "tag", f"{STANDIN_REGISTRY}/{image}", f"{prefix}/{image}"], check=True)
            tagged.append(f"{prefix}/{image}")
        yield prefix
    finally:
        if tagged:
            subprocess.run(["docker", "rmi", *tagged], check=False, capture_output=True)


class Host:
    """One temporary SupaManager host: a root directory, a port registry and a port range."""

    def __init__(self, root: pathlib.Path, venv_env, registry):
        self.root = root
        self.env = venv_env
        # This worker's blocks, below test_usability_e2e's fixed 48100-48999.
        start = random.choice(port_blocks(30000, 48000, PORT_BLOCK))
        self.vars = {
            "supabase_image_registry": registry,
            "supamanager_root": str(root),
            "supabase_port_registry": str(root / "ports.json"),
            "supabase_port_range_start": start,
            "supabase_port_range_end": start + PORT_BLOCK - 1,
            # The role's healthcheck interval: the start no longer waits for Docker's tick (the role
            # runs each check itself while a service starts), and on a busy 2-core machine checks at
            # 2 s (Python starts in some stand-ins) starved the services they were checking.
            # Generous: other suites share the 2 cores and slow every step down.
            "supabase_health_timeout": 300,
            # Upstream's 5 s instead of the role's 20 s (Docker 20.10): a create, resume and restart wait
            # for the last services' first check, one interval; these few projects are not about idle cost.
            "supabase_healthcheck_interval": "5s",
            # The backup agent (on by default) is a container and a start wave more per project: the
            # suites that are not about backups run without it (test_backup.py turns it on).
            "supabase_backup_wal_enabled": False,
            # A delete takes a final backup by default (a whole backup per delete): the same suites
            # delete without one (test_backup.py turns it on and tests it).
            "delete_backup": False,
        }
        self.refs = set()

    def playbook(self, name, ref, check=True, verbosity=0, **extra):
        """Run playbooks/<name>.yml for one project; extra vars go in a file, never on the command line."""
        self.refs.add(ref)
        varfile = self.root.parent / f"vars-{ref}-{name}-{secrets.token_hex(3)}.json"
        varfile.write_text(json.dumps({**self.vars, "project_ref": ref, **extra}))
        verbose = ["-" + "v" * verbosity] if verbosity else []
        return run(
            ["ansible-playbook", *verbose, str(REPO / "playbooks" / f"{name}.yml"), "-e", f"@{varfile}"],
            env=self.env,
            check=check,
            timeout=1500,
        )

    def start(self, name, ref, **extra):
        """Start a playbook in the background (for concurrent runs)."""
        self.refs.add(ref)
        varfile = self.root.parent / f"vars-{ref}-{name}-{secrets.token_hex(3)}.json"
        varfile.write_text(json.dumps({**self.vars, "project_ref": ref, **extra}))
        return subprocess.Popen(
            ["ansible-playbook", str(REPO / "playbooks" / f"{name}.yml"), "-e", f"@{varfile}"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def project_dir(self, ref):
        return self.root / "projects" / ref

    def dotenv(self, ref):
        """The project's .env as a dict (the tests read secrets from it; they never print them)."""
        values = {}
        for line in (self.project_dir(ref) / ".env").read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                values[name] = value.strip("'")
        return values

    def status(self, ref):
        """supabase_project_status as status.yml publishes it: its last task's result, through the tree callback."""
        return self.statuses(ref)[ref]

    def statuses(self, *refs):
        """status() of several projects, their status.yml runs at the same time; {ref: status}."""
        runs = {}
        for ref in refs:
            tree = self.root.parent / f"tree-{ref}-{secrets.token_hex(3)}"
            env = {**self.env, "ANSIBLE_CALLBACKS_ENABLED": "tree", "ANSIBLE_CALLBACK_TREE_DIR": str(tree)}
            varfile = self.root.parent / f"vars-{ref}-status-{secrets.token_hex(3)}.json"
            varfile.write_text(json.dumps({**self.vars, "project_ref": ref}))
            command = ["ansible-playbook", str(REPO / "playbooks" / "status.yml"), "-e", f"@{varfile}"]
            proc = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            runs[ref] = (proc, tree)
        found = {}
        for ref, (proc, tree) in runs.items():
            out = proc.communicate(timeout=1500)[0]
            assert proc.returncode == 0, f"status.yml of {ref} exited {proc.returncode}\n{out}"
            found[ref] = json.loads((tree / "localhost").read_text())["supabase_project_status"]
        return found

    def cleanup(self):
        for ref in self.refs:
            if (
                docker_names("container", ref)
                or docker_names("volume", ref)
                or docker_names("network", ref)
                or self.project_dir(ref).exists()
            ):
                self.playbook("delete", ref, check=False, delete_volumes=True, delete_backup=False)


@pytest.fixture(scope="module")
def host(tmp_path_factory, venv_env, private_registry):
    base = tmp_path_factory.mktemp("host")
    h = Host(base / "root", venv_env, private_registry)
    try:
        yield h
    finally:
        h.cleanup()
