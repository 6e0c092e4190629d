"""Schemathesis fuzzes a real `supamanagerd` through its own OpenAPI document: no request may get a
500 (503 is the documented "cannot reach a part"), invalid input must be refused, and every response
must match the document (status, content type, headers, body schema); schemathesis.toml says so.

Why this cannot hurt: the daemon runs the fake playbooks of conftest.py (the real ansible-runner,
but playbooks that only write files under a temp root), with one job at a time, so the creates,
pauses and deletes the fuzzer sends start harmless jobs; Docker is only read (health, the poller).
The run is bounded: SUPAMANAGER_FUZZ_SECONDS (default 60) and at most 15 examples per operation,
with a fixed seed unless SUPAMANAGER_FUZZ_SEED says otherwise.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from conftest import TOKEN
from daemonproc import Daemon

ST = pathlib.Path(sys.executable).parent / "st"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]


@pytest.mark.slow
def test_fuzzing_finds_no_server_error_and_no_response_off_the_document(tmp_path, fake_collection):
    root = tmp_path / "root"
    (root / "projects").mkdir(parents=True)
    # The fuzzer sends requests without the token on purpose (ignored_auth, missing_required_header),
    # hundreds a minute from one address: the failed-auth limit (429; test_daemon_hardening.py) would
    # answer them all before long, whatever they test.
    # No Docker engine behind it: the fuzzer calls DELETE /v1/orphans too, and on a real engine that
    # removed every labelled container this daemon does not know (other tests' projects, a bench's).
    daemon = Daemon(
        tmp_path, fake_collection, root, max_jobs=1, max_body_bytes=4096, auth_failures_per_minute=100000,
        docker_socket=str(tmp_path / "no-docker.sock"),
    )  # fmt: skip
    daemon.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPAMANAGER_")}
        cmd = [
            str(ST),
            "--no-color",
            "--config-file",
            str(pathlib.Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"http://127.0.0.1:{daemon.port}/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "15",
            "--max-time",
            os.environ.get("SUPAMANAGER_FUZZ_SECONDS", "60"),
            "--workers",
            "1",
            "--seed",
            os.environ.get("SUPAMANAGER_FUZZ_SEED", "20261125"),
            "--request-timeout",
            "20",
        ]
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        # The failures, not the tail: the warnings and the summary after them push them out of view.
        failures = result.stdout.partition("= FAILURES =")[2].partition("= WARNINGS =")[0]
        assert result.returncode == 0, (failures or result.stdout)[:12000] + result.stderr[-2000:]
        assert "Test cases:" in result.stdout
        log = daemon.log.read_text()
        assert TOKEN not in log
        assert "unexpected error serving" not in log
    finally:
        daemon.stop()
