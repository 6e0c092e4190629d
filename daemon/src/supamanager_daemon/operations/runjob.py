"""One job, in its own process: run a playbook with ansible-runner and report event summaries.

    python -m supamanager_daemon.operations.runjob <job dir> <daemon pid>

<job dir>/job.json names the playbook; <job dir>/runner is the private data dir, whose
env/extravars the daemon wrote (0600). One JSON object per line goes to stdout: task starts,
failures, and a final {"event": "done"}. Raw runner events never leave this process: they carry
the environment and extra vars. SIGTERM (also sent when the daemon dies) cancels the run.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
from typing import Any

ERROR_MAX = 1000
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Get SIGTERM when the daemon dies, so a killed daemon leaves no playbook running."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the daemon died before prctl took effect
        sys.exit(3)


def _failure_message(data: dict[str, Any]) -> str:
    res = data.get("res") or {}
    if res.get("censored"):
        msg = "output hidden (no_log)"
    else:
        msg = res.get("msg") or res.get("reason") or res.get("stderr") or "failed"
    if not isinstance(msg, str):
        msg = json.dumps(msg, default=str)
    task = data.get("task") or "task"
    return f"{task}: {msg}"[:ERROR_MAX]


def main(argv: list[str]) -> int:
    job_dir, parent = argv[0], int(argv[1])
    os.umask(0o077)
    _die_with_parent(parent)
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())

    # Our protocol owns the original stdout; anything else printed goes nowhere.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)

    def emit(obj: dict[str, Any]) -> None:
        try:
            proto.write(json.dumps(obj) + "\n")
        except (BrokenPipeError, OSError):
            cancel.set()  # the daemon is gone: stop

    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)

    import ansible_runner  # late: its import is slow and must not delay the signal setup

    state = {"tasks": 0, "error": None}

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            state["tasks"] += 1
            emit({"event": "task", "name": (data.get("task") or data.get("name") or "")[:200], "n": state["tasks"]})
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            message = _failure_message(data)
            # The last failure is the one that ended the run: those before it were rescued (a create's
            # rollback, a delete stopped by its final backup), and the rescue's message says what became of it.
            state["error"] = message
            emit({"event": "failed", "error": message})
        # False: the event is not written into the artifacts directory.
        return False

    try:
        result = ansible_runner.run(
            private_data_dir=os.path.join(job_dir, "runner"),
            project_dir=job["project_dir"],
            playbook=job["playbook"],
            ident="run",
            quiet=True,
            suppress_ansible_output=True,
            event_handler=on_event,
            cancel_callback=cancel.is_set,
            settings={"pexpect_timeout": 1, "suppress_ansible_output": True},
            rotate_artifacts=1,
            # With the daemon's inventory: its project's host alone (operations/jobs.py).
            **({"inventory": job["inventory"], "limit": job["limit"]} if job.get("limit") else {}),
        )
        status, rc = result.status, result.rc
    except Exception as exc:
        status, rc = "error", None
        state["error"] = state["error"] or f"ansible-runner: {type(exc).__name__}: {exc}"[:ERROR_MAX]
    emit({"event": "done", "status": status, "rc": rc, "tasks": state["tasks"], "error": state["error"]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
