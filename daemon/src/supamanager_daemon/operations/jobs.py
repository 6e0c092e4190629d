"""The job scheduler: one operation at a time per project, SUPAMANAGER_MAX_JOBS at a time overall.

Each job runs `python -m supamanager_daemon.operations.runjob` in its own process and private data dir.
Extra vars go through a 0600 file (never a command line); the job dir is removed when the
operation ends, so no runner artifact outlives it. Secrets a queued job needs (db_pass) wait in
<job dir>/secrets.json (0600) until then.

Stopping (SIGTERM): running jobs are cancelled (their playbooks killed), given shutdown_timeout
to exit, and put back in the queue; every queued operation resumes at the next start, re-running
its idempotent playbook. A daemon killed with -9 takes its jobs with it (runjob dies with its
parent) and the same recovery applies at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import shutil
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from .. import logging_json, models
from ..fleet.hosts import DEFAULT_HOST, Host
from ..fleet.placement import Admission
from ..projects.files import project_info
from ..settings import Settings
from ..store import Store

if TYPE_CHECKING:
    from ..fleet.manager import FleetManager

log = logging.getLogger(__name__)

# Progress denominators until a playbook has succeeded once and its real task count is known.
_DEFAULT_TASKS = {"create.yml": 120, "delete.yml": 20}
_ENV_ALLOW = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "DOCKER_HOST", "DOCKER_CERT_PATH", "USER")
# coverage.py's settings (scripts/test measures the job processes and the modules they run): paths only.
_ENV_ALLOW_COVERAGE = (
    "COVERAGE_PROCESS_START",
    "COVERAGE_ROOT",
    "_ANSIBLE_COVERAGE_CONFIG",
    "_ANSIBLE_COVERAGE_OUTPUT",
)
RUNJOB_MODULE = "supamanager_daemon.operations.runjob"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _yaml_value(value: Any) -> str:
    """A value as YAML flow text, every string in it !unsafe (a JSON string is a valid YAML
    double-quoted scalar, JSON's maps and lists valid flow collections)."""
    if isinstance(value, str):
        return f"!unsafe {json.dumps(value)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return json.dumps(value)


def extravars_yaml(extravars: dict[str, Any]) -> str:
    """Extra vars as YAML where every string is !unsafe, in maps and lists too: Ansible never
    templates what we pass."""
    lines = ["---"]
    for key, value in extravars.items():
        if not key or not set(key) <= _KEY_CHARS:
            raise ValueError(f"invalid extra var name {key!r}")
        lines.append(f"{key}: {_yaml_value(value)}")
    return "\n".join(lines) + "\n"


def _write_private(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _is_runjob(pid: int, job_dir: pathlib.Path) -> bool:
    """Is pid the job process of this job dir? After a reboot or pid reuse it may be anything else,
    another daemon's job included: its command line must name this very job dir."""
    try:
        argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return RUNJOB_MODULE.encode() in argv and os.fsencode(str(job_dir)) in argv


class JobScheduler:
    def __init__(self, settings: Settings, store: Store, on_finished=None, fleet: FleetManager | None = None) -> None:
        self.settings = settings
        self.store = store
        self.on_finished = on_finished
        # The hosts (fleet/manager.py): with an inventory, each job runs its playbook limited to its
        # project's host, on that host's engine, within that host's own job limit.
        self.fleet = fleet
        self.admission = Admission(settings.admit_load, settings.admit_memory_mb, settings.admit_spacing)
        self._slots = asyncio.Semaphore(settings.max_jobs)
        self._host_slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._proc_hosts: dict[str, Host] = {}
        # Creates past the admission gate whose playbook has not started yet: they count as running.
        self._admitted: set[str] = set()
        self._tasks: dict[str, asyncio.Task] = {}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._cancelled: set[str] = set()
        self._stopping = False
        self.started = 0

    # -- paths and inputs -------------------------------------------------------------------------
    def job_dir(self, op_id: str) -> pathlib.Path:
        return self.settings.jobs_dir / op_id

    def save_secrets(self, op_id: str, secrets: dict[str, Any]) -> None:
        """Keep secret extra vars for a job (0600) until its operation ends; never in SQLite."""
        if secrets:
            _write_private(self.job_dir(op_id) / "secrets.json", json.dumps(secrets))

    def extravars(
        self, op: dict[str, Any], playbook: str, rollback: bool = False, host: Host | None = None
    ) -> dict[str, Any]:
        extravars = dict(self.settings.playbook_vars)
        target = self._move_target(op)
        if host is not None and host.port_range is not None and target is None:
            # The host's own range (its inventory variables) wins over playbook_vars' one for all hosts.
            extravars["supabase_port_range_start"], extravars["supabase_port_range_end"] = host.port_range
        extravars.update(
            project_ref=op["ref"],
            supabase_image_registry=self.settings.image_registry,
            supamanager_root=str(self.settings.root),
            # One knob for the host clients use: the daemon's database.host and the role's URLs.
            supabase_public_host=self.settings.public_host,
        )
        if op["kind"] in ("create", "resize") and op["params"].get("instance_size"):
            # One of the document's sizes (shapes/billing.py); the role checks it again.
            extravars["supabase_instance_size"] = str(op["params"]["instance_size"])
        if op["kind"] == "heal":
            # Only the failing service and those that must follow it (healing.py); names checked there.
            extravars["supabase_restart_services"] = list(op["params"]["services"])
            extravars["supabase_health_timeout"] = int(self.settings.heal_timeout)
        if op["kind"] == "restore_backup":
            # restore.yml's inputs, as strings of digits (it checks them again); integers in the params.
            if "backup_id" in op["params"]:
                extravars["backup_id"] = str(int(op["params"]["backup_id"]))
            else:
                extravars["recovery_target_time"] = str(int(op["params"]["recovery_time_target_unix"]))
        if op["kind"] == "backup":
            # Recorded in the backup's manifest: taken on request, or by the daemon's schedule.
            extravars["supabase_backup_kind"] = "scheduled" if op["params"].get("scheduled") else "manual"
            if op["params"].get("restore_point"):
                # A restore point: its name (checked by the shape, and by the role) goes into the manifest.
                extravars["supabase_backup_restore_point"] = str(op["params"]["restore_point"])
        if target is not None and host is not None:
            # move.yml runs on both hosts, each with its own variables (its port range) and engine.
            extravars["move_source"], extravars["move_target"] = host.name, target.name
            extravars["supamanager_move_engines"] = {
                h.name: h.docker_host for h in (host, target) if h.docker_host is not None
            }
        if op["kind"] == "custom_hostname":
            # Checked by api/domains.py (and by the role again); "" removes it.
            extravars["supabase_custom_hostname"] = str(op["params"]["hostname"])
        if playbook == "delete.yml":
            extravars["delete_volumes"] = bool(op["params"].get("delete_volumes", True))
            # A rollback takes the volumes of a project that never came up (they hold nothing), but
            # the role keeps those of one that came up once, e.g. in a create resumed after a crash.
            extravars["delete_as_rollback"] = rollback
            # A delete takes a final backup unless told not to (?backup=false); a rollback's project holds nothing.
            extravars["delete_backup"] = op["kind"] == "delete" and bool(op["params"].get("backup", True))
        secrets_file = self.job_dir(op["id"]) / "secrets.json"
        if secrets_file.exists():
            extravars.update(json.loads(secrets_file.read_text()))
        return extravars

    def child_env(self, host: Host | None = None) -> dict[str, str]:
        """An allow-listed environment: the daemon's own variables (e.g. its token) stay out."""
        env = {k: os.environ[k] for k in (*_ENV_ALLOW, *_ENV_ALLOW_COVERAGE) if k in os.environ}
        if host is not None and host.docker_host is not None:
            # The engine of the project's host: the modules and the docker CLI of a local connection use it.
            env["DOCKER_HOST"] = host.docker_host
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "/usr/bin:/bin")])
        env["PYTHONUNBUFFERED"] = "1"
        env["ANSIBLE_NOCOLOR"] = "1"
        env["ANSIBLE_FORCE_COLOR"] = "0"
        # Modules on stdin: no AnsiballZ file with a project's secrets in ~/.ansible/tmp, where a
        # killed job would leave it (ansible.cfg says so too; this holds for any collection dir).
        env["ANSIBLE_PIPELINING"] = "1"
        if self.settings.ansible_config is not None:
            env["ANSIBLE_CONFIG"] = str(self.settings.ansible_config)
        return env

    # -- scheduling -------------------------------------------------------------------------------
    def enqueue(self, op: dict[str, Any]) -> None:
        task = asyncio.create_task(self._run(op["id"]), name=f"job-{op['id']}")
        self._tasks[op["id"]] = task
        task.add_done_callback(lambda _t, op_id=op["id"]: self._tasks.pop(op_id, None))

    @property
    def running(self) -> int:
        return len(self._procs)

    def running_on(self, host: str) -> int:
        return sum(1 for h in self._proc_hosts.values() if h.name == host)

    def _running_on_this_machine(self) -> int:
        """Our jobs running on this machine: every job without an inventory, a local host's with one."""
        running = sum(1 for op_id in self._procs if (h := self._proc_hosts.get(op_id)) is None or h.local)
        return running + len(self._admitted)

    def _admission_host(self, host: Host | None) -> Host | None:
        """The host whose admission a create passes: its inventory host, or without an inventory the
        single host, this machine, whose jobs run with no --limit (host None for the job itself)."""
        if host is not None or self.fleet is None or self.fleet.from_inventory:
            return host
        return self.fleet.host(DEFAULT_HOST)

    def _host_slot(self, host: Host | None) -> asyncio.Semaphore | contextlib.nullcontext:
        if host is None:
            return contextlib.nullcontext()
        return self._host_slots.setdefault((host.name, host.max_jobs), asyncio.Semaphore(host.max_jobs))

    def _move_target(self, op: dict[str, Any]) -> Host | None:
        """A move's target host (None for any other kind, or when it left the inventory)."""
        if op["kind"] != "move" or self.fleet is None:
            return None
        return self.fleet.host(op["params"]["target"])

    async def _host_of(self, op: dict[str, Any]) -> tuple[Host | None, str | None]:
        """The inventory host the operation's project is on (None without an inventory), or why it has none.
        A move's is its source, as recorded: a move resumed after its switch still starts there."""
        if self.fleet is None or not self.fleet.from_inventory:
            return None, None
        if op["kind"] == "move":
            name = op["params"]["source"]
            if self._move_target(op) is None:
                return None, f"host {op['params']['target']!r}, the move's target, is not in the inventory (any more)"
        else:
            project = await self.store.get_project(op["ref"])
            name = project["host"] if project is not None else None
        host = self.fleet.host(name) if name else None
        if host is None:
            return None, f"host {name!r} of project {op['ref']} is not in the inventory (any more): add it and reload"
        return host, None

    @property
    def queued(self) -> int:
        return len(self._tasks) - len(self._procs)

    def cancel(self, op_id: str) -> bool:
        """Ask a running job to stop (its playbook is killed); False when it is not running here."""
        proc = self._procs.get(op_id)
        if proc is None or proc.returncode is not None:
            return False
        self._cancelled.add(op_id)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        return True

    async def recover(self) -> None:
        """At start: resume every operation a previous daemon left queued or running."""
        active = await self.store.active_operations()
        self._remove_stale_job_dirs({op["id"] for op in active})
        for op in active:
            if op["pid"] and _is_runjob(op["pid"], self.job_dir(op["id"])):
                await self._reap(op["pid"], self.job_dir(op["id"]))
            if op["state"] == models.RUNNING:
                log.warning("operation %s (%s %s) was interrupted: running it again", op["id"], op["kind"], op["ref"])
                op = await self.store.requeue(op["id"], "the daemon stopped while it ran; running the playbook again")
            self.enqueue(op)

    def _remove_stale_job_dirs(self, active: set[str]) -> None:
        """A daemon that died between finishing an operation and cleaning up left its job dir, with
        its secrets (extra vars, db_pass): only queued or running operations keep theirs."""
        try:
            entries = list(self.settings.jobs_dir.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.name not in active and entry.is_dir() and not entry.is_symlink():
                log.info("removing the job dir of finished operation %s", entry.name)
                shutil.rmtree(entry, ignore_errors=True)

    async def _reap(self, pid: int, job_dir: pathlib.Path) -> None:
        """An orphaned job of a previous daemon: it got SIGTERM when that died; make sure it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while _is_runjob(pid, job_dir) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if _is_runjob(pid, job_dir):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    async def shutdown(self) -> None:
        """Cancel running jobs, wait up to shutdown_timeout, then kill what is left."""
        self._stopping = True
        for op_id in list(self._procs):
            self.cancel(op_id)
        for op_id, task in list(self._tasks.items()):
            if op_id not in self._procs:  # not started yet: it stays queued in the store
                task.cancel()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=self.settings.shutdown_timeout)
            for op_id, proc in list(self._procs.items()):
                log.warning("job %s did not stop in time: killing it", op_id)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if still:
                await asyncio.wait(still, timeout=5)

    # -- one job ----------------------------------------------------------------------------------
    async def _run(self, op_id: str) -> None:
        queued = await self.store.get_operation(op_id)
        host, missing = await self._host_of(queued)
        async with self._host_slot(host):
            gate = self._admission_host(host)
            if gate is not None and queued["kind"] == "create":

                async def waiting(why: str) -> None:
                    await self.store.record_step(op_id, f"waiting for room on host {gate.name}: {why}", 0, 0)

                await self.admission.admit(gate, self._running_on_this_machine, waiting)
                if gate.local:
                    self._admitted.add(op_id)
            try:
                await self._run_admitted(op_id, host, missing)
            finally:
                self._admitted.discard(op_id)

    async def _run_admitted(self, op_id: str, host: Host | None, missing: str | None) -> None:
        async with self._slots:
            if self._stopping:
                return
            op = await self.store.mark_running(op_id)
            if missing is not None:
                op = await self.store.finish_operation(op_id, ok=False, error=missing)
                log.warning("operation %s (%s %s) failed: %s", op_id, op["kind"], op["ref"], missing)
                shutil.rmtree(self.job_dir(op_id), ignore_errors=True)
                if self.on_finished is not None:
                    self.on_finished(op)
                return
            logging_json.bind(operation_id=op_id, project_ref=op["ref"])
            kind = models.KINDS[op["kind"]]
            ok, error = False, None
            try:
                ok, error = await self._execute(op, kind.playbook, host=host)
                if not ok and kind.name == "create" and not self._stopping:
                    error = await self._roll_back(op, error, host)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the job machinery failed, not the playbook
                log.exception("job %s failed to run", op_id)
                error = f"the job could not run: {type(exc).__name__}: {exc}"
            if self._stopping and not ok:
                await self.store.requeue(op_id, "the daemon stopped; resumes at the next start")
                shutil.rmtree(self.job_dir(op_id) / "runner", ignore_errors=True)
                return
            if ok and kind.name == "move":
                # The switch: from now on the project's jobs, polls and health reads go to the target.
                await self.store.set_project_host(op["ref"], op["params"]["target"])
            services = None
            if ok and kind.done is not None:
                services = (await asyncio.to_thread(project_info, self.settings, op["ref"])).get("services")
            op = await self.store.finish_operation(op_id, ok=ok, error=error, services=services)
            shutil.rmtree(self.job_dir(op_id), ignore_errors=True)
            if ok:
                log.info("operation %s (%s %s) succeeded", op_id, op["kind"], op["ref"])
            else:
                log.warning("operation %s (%s %s) failed: %s", op_id, op["kind"], op["ref"], error)
            if self.on_finished is not None:
                self.on_finished(op)

    async def _roll_back(self, op: dict[str, Any], error: str | None, host: Host | None = None) -> str | None:
        """A create failed: remove whatever it made, through the delete playbook.

        The role rolls back a failed create of a new project itself, but a create resumed after a
        crash finds the project's files from the first attempt and treats the project as existing.
        The volumes of a project that came up once stay (delete_as_rollback): it may hold data.
        """
        await self.store.add_event(op["id"], "rollback", "delete.yml", {})
        ok, rollback_error = await self._execute(op, "delete.yml", rollback=True, host=host)
        error = error or "create failed"
        if ok:
            return f"{error} (rolled back)"
        return f"{error} (rollback failed: {rollback_error})"

    async def _execute(
        self, op: dict[str, Any], playbook_name: str, rollback: bool = False, host: Host | None = None
    ) -> tuple[bool, str | None]:
        job_dir = self.job_dir(op["id"])
        runner_dir = job_dir / "runner"
        shutil.rmtree(runner_dir, ignore_errors=True)  # a previous attempt's leftovers
        playbook = self.settings.playbooks_dir / playbook_name
        if not playbook.is_file():
            return False, f"playbook {playbook} not found"
        extravars = self.extravars(op, playbook_name, rollback, host)
        _write_private(runner_dir / "env" / "extravars", extravars_yaml(extravars))
        job = {"playbook": str(playbook), "project_dir": str(self.settings.collection_dir)}
        if host is not None:
            # The inventory's one host: its variables (connection, Python, ranges) apply, no other host is touched.
            target = self._move_target(op)
            # A move's plays run on its source and its target (playbooks/move.yml).
            limit = f"{host.name},{target.name}" if target is not None else host.name
            job.update(inventory=self.settings.inventory, limit=limit)
        _write_private(job_dir / "job.json", json.dumps(job))
        expected = await self.store.task_count(playbook_name) or _DEFAULT_TASKS.get(playbook_name, 40)

        stderr_path = job_dir / "stderr.log"
        with open(stderr_path, "wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                RUNJOB_MODULE,
                str(job_dir),
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=self.child_env(host),
                cwd=str(self.settings.collection_dir),
                start_new_session=True,
            )
        self._procs[op["id"]] = proc
        if host is not None:
            self._proc_hosts[op["id"]] = host
        self._admitted.discard(op["id"])
        self.started += 1
        done: dict[str, Any] | None = None
        timed_out = False
        try:
            await self.store.set_pid(op["id"], proc.pid)
            try:
                async with asyncio.timeout(self.settings.job_timeout):
                    done = await self._follow(op["id"], proc, expected)
            except TimeoutError:
                timed_out = True
                self.cancel(op["id"])
                done = await self._follow(op["id"], proc, expected)
            await proc.wait()
        finally:
            self._procs.pop(op["id"], None)
            self._proc_hosts.pop(op["id"], None)
        if done is None:
            tail = stderr_path.read_text(errors="replace").strip().splitlines()[-1:] if stderr_path.exists() else []
            return False, f"job process exited with code {proc.returncode}" + (f": {tail[0][:300]}" if tail else "")
        if done["status"] == "successful":
            return True, None
        if timed_out:
            return False, f"timed out after {self.settings.job_timeout:g} s"
        if done["status"] == "canceled":
            return False, "cancelled"
        return False, done.get("error") or f"playbook {playbook_name} ended {done['status']} (rc {done.get('rc')})"

    async def _follow(self, op_id: str, proc: asyncio.subprocess.Process, expected: int) -> dict[str, Any] | None:
        done = None
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("event") == "task":
                n = int(msg.get("n", 0))
                await self.store.record_step(op_id, str(msg.get("name", "")), n, min(99, n * 100 // expected))
            elif msg.get("event") == "failed":
                await self.store.add_event(op_id, "task_failed", None, {"error": msg.get("error")})
            elif msg.get("event") == "done":
                done = msg
        return done
