"""The SupaManager bench: run by bench/run (which prepares .venv, Docker and the stand-in images).

Everything it creates carries its run id: playbook refs `smb<id>a...`, daemon projects live in its
own data dir and root (their refs are recorded), poll containers carry `supamanager.bench=<id>`.
All of it is removed at the end, also after a failure or Ctrl-C.
"""

# ruff: noqa: S608 - the SQL here is the bench's own, made of its integers and markers
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import platform
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib

REPO = pathlib.Path(__file__).resolve().parents[1]
VENV = REPO / ".venv" / "bin"
REGISTRY = "standin.local"
SERVICES = [
    *("db", "vector", "analytics", "auth", "rest", "realtime", "storage"),
    *("imgproxy", "meta", "functions", "kong", "studio", "supavisor", "backup"),
]
# Running and healthy, or running without a Docker healthcheck (as `compose up --wait` counts them).
HEALTHY = ("healthy", "none")
# Below this much available memory a scale step stops adding projects (others share this host).
MIN_AVAILABLE = 3 * 1024**3


def log(msg: str) -> None:
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
        self.work = pathlib.Path(tempfile.mkdtemp(prefix=f"smbench-{self.run_id}-"))
        self.root = self.work / "root"
        self.root.mkdir()
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.role_refs: set[str] = set()
        self.daemon_refs: set[str] = set()
        self.daemon: subprocess.Popen | None = None
        self.daemon_root: pathlib.Path | None = None
        self.results: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
        }
        # Host ports from a range of the bench's own: port registries of other roots (other test
        # runs on this host) cannot see our allocations before our containers bind them.
        base = args.port_base or 20000 + 1000 * secrets.randbelow(9)
        self.ports = {"supabase_port_range_start": base, "supabase_port_range_end": base + 999}
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{VENV}:{os.environ['PATH']}")
        if args.task_times:
            # Every playbook run appends when each task began and how long it took (the breakdown), and
            # prints the module's phases (-v): logs/tasktimes.txt and the logs, kept.
            args.keep_logs = True
            self.env.update(
                ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback_plugins"),
                ANSIBLE_CALLBACKS_ENABLED="tasktimes",
                ANSIBLE_VERBOSITY="1",
                TASKTIMES_OUT=str(self.logs / "tasktimes.txt"),
            )

    # -- commands ---------------------------------------------------------------------------
    def timed(self, name: str, cmd: list[str], cwd: pathlib.Path | None = None, timeout: float = 900) -> float:
        """Run cmd, its output to a log file; the wall time in seconds. Raises with the log's tail."""
        path = self.logs / f"{name}.log"
        start = time.perf_counter()
        with open(path, "w") as out:
            # Its own process group: an interrupted bench stops ansible's forked workers too.
            proc = subprocess.Popen(
                cmd, cwd=cwd or REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                proc.wait(timeout)
            except BaseException:
                kill_group(proc)
                raise
        took = time.perf_counter() - start
        if proc.returncode != 0:
            tail = path.read_text()[-3000:]
            raise RuntimeError(f"{name} failed (exit {proc.returncode}), log {path}:\n{tail}")
        log(f"{name}: {took:.1f}s")
        return took

    def role_vars(self) -> dict[str, Any]:
        """Variables every playbook run and the daemon's jobs get: the port range, the interval."""
        out: dict[str, Any] = dict(self.ports)
        if self.args.healthcheck_interval:
            out["supabase_healthcheck_interval"] = self.args.healthcheck_interval
        return out

    def playbook(self, name: str, ref: str, *extra: str, root: pathlib.Path | None = None) -> float:
        return self.timed(
            f"{name}-{ref}",
            [
                str(VENV / "ansible-playbook"),
                f"playbooks/{name}.yml",
                "-e",
                f"project_ref={ref}",
                "-e",
                f"supabase_image_registry={REGISTRY}",
                "-e",
                f"supamanager_root={root or self.root}",
                "-e",
                json.dumps(self.role_vars()),
                *extra,
            ],
        )

    def compose(self, step: str, ref: str, project_dir: pathlib.Path, *args: str) -> float:
        return self.timed(
            f"compose-{step}-{ref}",
            [
                str(VENV / "docker-compose"),
                "-p",
                f"smb{self.run_id}compose",
                "--env-file",
                str(project_dir / ".env"),
                "-f",
                str(project_dir / "docker-compose.yml"),
                *args,
            ],
            cwd=project_dir,
        )

    def wait_healthy(self, ref: str, timeout: float = 300) -> float:
        """Seconds until every container of ref runs healthy (polled every 0.25 s)."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if all_healthy(containers(ref)):
                return time.perf_counter() - start
            time.sleep(0.25)
        raise RuntimeError(f"{ref}: not all healthy after {timeout}s: {containers(ref)}")

    def check_healthy(self, ref: str) -> None:
        states = containers(ref)
        if not all_healthy(states):
            raise RuntimeError(f"{ref}: expected {len(SERVICES)} healthy containers, got {states}")

    # -- (1) + (2): one project, playbooks vs compose ---------------------------------------
    def lifecycle_round(self, i: int) -> dict[str, dict[str, float]]:
        ref = f"smb{self.run_id}{'abcdefgh'[i]}"
        self.role_refs.add(ref)
        role: dict[str, float] = {}
        theirs: dict[str, float] = {}
        role["create"] = self.playbook("create", ref)
        self.check_healthy(ref)
        role["pause"] = self.playbook("pause", ref)
        role["resume"] = self.playbook("resume", ref)
        self.check_healthy(ref)
        role["restart"] = self.playbook("restart", ref)
        self.check_healthy(ref)
        # The very files the role rendered and ran, kept aside before the role deletes them.
        copy = self.work / f"compose-{ref}"
        shutil.copytree(self.root / "projects" / ref, copy, symlinks=True)
        # Without the final backup (on by default): compose's down has none; the backup step times it.
        role["delete"] = self.playbook("delete", ref, "-e", "delete_volumes=true", "-e", "delete_backup=false")
        if containers(ref):
            raise RuntimeError(f"{ref}: containers left after delete.yml")
        # Same file, same ref, same ports: the role's objects are gone, so nothing collides.
        theirs["create"] = self.compose("up", ref, copy, "up", "-d", "--wait")
        self.check_healthy(ref)
        theirs["pause"] = self.compose("stop", ref, copy, "stop")
        t = self.compose("start", ref, copy, "start")
        theirs["resume"] = t + self.wait_healthy(ref)
        t = self.compose("restart", ref, copy, "restart")
        theirs["restart"] = t + self.wait_healthy(ref)
        theirs["delete"] = self.compose("down", ref, copy, "down", "-v")
        return {"ref": ref, "role": role, "compose": theirs}

    # -- (3) + (5): N concurrent creates through a real supamanagerd --------------------------
    def start_daemon(self) -> tuple[str, str]:
        data = self.work / "daemon"
        self.daemon_root = self.work / "daemon-root"
        port = free_port()
        token = secrets.token_hex(32)  # what the daemon takes: 32+ characters, no placeholder
        env = dict(
            self.env,
            SUPAMANAGER_HOST="127.0.0.1",
            SUPAMANAGER_PORT=str(port),
            SUPAMANAGER_DATA_DIR=str(data),
            SUPAMANAGER_ROOT=str(self.daemon_root),
            SUPAMANAGER_IMAGE_REGISTRY=REGISTRY,
            SUPAMANAGER_API_TOKEN=token,
        )
        if self.args.max_jobs:
            env["SUPAMANAGER_MAX_JOBS"] = str(self.args.max_jobs)
        config = self.work / "supamanagerd.toml"
        playbook_vars = self.role_vars()
        # JSON strings and numbers are valid TOML values.
        config.write_text("[playbook_vars]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in playbook_vars.items()))
        env["SUPAMANAGER_CONFIG"] = str(config)
        out = open(self.logs / "supamanagerd.log", "w")  # noqa: SIM115 - lives as long as the daemon
        self.daemon = subprocess.Popen(
            [str(VENV / "supamanagerd"), "--log-format", "text"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # a minute: a loaded host takes seconds to import the daemon
            try:
                http("GET", f"{base}/healthz")
                return base, token
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("supamanagerd did not answer /healthz")

    def scale_step(self, base: str, token: str, n: int) -> dict[str, Any]:
        daemon = psutil.Process(self.daemon.pid)
        result: dict[str, Any] = {"n": n}
        avail = psutil.virtual_memory().available
        if avail < MIN_AVAILABLE + n * 250 * 1024**2:
            result["note"] = f"skipped: only {avail / 1024**3:.1f} GiB available"
            log(f"N={n}: {result['note']}")
            return result
        start = time.perf_counter()
        ops: dict[str, str] = {}

        def post(i: int) -> None:
            status, body, headers = http(
                "POST",
                f"{base}/v1/projects",
                token,
                {"name": f"bench {self.run_id} {n}-{i}", "db_pass": "bench-password-123"},
            )
            if status != 201:
                raise RuntimeError(f"POST /v1/projects: {status} {body}")
            self.daemon_refs.add(body["ref"])
            ops[body["ref"]] = headers["X-Operation-Id"]

        threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(ops) != n:
            raise RuntimeError(f"only {len(ops)} of {n} creates were accepted")
        latencies: list[float] = []
        peak_rss = peak_tree = 0
        min_avail = psutil.virtual_memory().available
        done_at: dict[str, float] = {}
        final: dict[str, str] = {}
        deadline = start + self.args.scale_timeout
        # Bounded: at most one GET every 0.2 s until every project settled or the deadline.
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            _, body, _ = http("GET", f"{base}/v1/projects", token)
            latencies.append(time.perf_counter() - t0)
            mine = {p["ref"]: p["status"] for p in body if p["ref"] in ops}
            for ref, st in mine.items():
                if st in ("ACTIVE_HEALTHY", "INIT_FAILED") and ref not in done_at:
                    done_at[ref] = time.perf_counter() - start
                    final[ref] = st
            try:
                peak_rss = max(peak_rss, daemon.memory_info().rss)
                tree = sum(c.memory_info().rss for c in daemon.children(recursive=True) if c.is_running())
                peak_tree = max(peak_tree, tree)
            except psutil.Error:
                pass
            avail = psutil.virtual_memory().available
            min_avail = min(min_avail, avail)
            if avail < MIN_AVAILABLE:
                result["note"] = f"stopped waiting: MemAvailable fell to {avail / 1024**3:.1f} GiB"
                break
            if len(done_at) == n:
                break
            time.sleep(max(0.0, 0.2 - (time.perf_counter() - t0)))
        total = max(done_at.values()) if len(done_at) == n else None
        healthy = [r for r, st in final.items() if st == "ACTIVE_HEALTHY"]
        job_secs = []
        for op in ops.values():
            _, o, _ = http("GET", f"{base}/v1/operations/{op}", token)
            if o.get("started_at") and o.get("finished_at"):
                job_secs.append(iso_seconds(o["finished_at"]) - iso_seconds(o["started_at"]))
            if o.get("state") == "failed" and "note" not in result:
                result["note"] = f"a create failed: {str(o.get('error'))[:300]}"
        ports = []
        for ref in ops:
            info = self.daemon_root / "projects" / ref / "project.json"
            if info.exists():
                ports += list(json.loads(info.read_text())["ports"].values())
        result.update(
            total_s=total,
            per_project_s=total / n if total else None,
            mean_job_s=sum(job_secs) / len(job_secs) if job_secs else None,
            healthy=len(healthy),
            # Among the projects that kept their directory (a failed create rolls it back).
            ports_distinct=bool(ports) and len(ports) == len(set(ports)),
            daemon_peak_rss_mib=peak_rss / 1024**2,
            tree_peak_rss_mib=peak_tree / 1024**2,
            min_mem_available_gib=min_avail / 1024**3,
            get_p50_ms=benchlib.percentile(latencies, 50) * 1000,
            get_p99_ms=benchlib.percentile(latencies, 99) * 1000,
            get_count=len(latencies),
        )
        # "All reaching ACTIVE_HEALTHY" means at the same time: once the last one got there, look
        # at every project's containers in Docker directly (not the daemon's last poll).
        together = [ref for ref in healthy if all_healthy(containers(ref))]
        result["healthy_together"] = len(together)
        # What N healthy projects cost the host at rest (healthchecks, idle services), in % of all cores.
        result["settled_cpu_pct"] = psutil.cpu_percent(interval=self.args.settle_window)
        if n == max(self.args.scale) and self.args.checks_off:
            result.update(self.healthchecks_off(list(ops)))
        _, hz, _ = http("GET", f"{base}/healthz")
        result["daemon_polls"] = hz["polls"]
        result["daemon_docker_calls"] = hz["docker_api_calls"]
        log(f"N={n}: {json.dumps(result)}")
        # Delete them through the daemon, then make sure nothing is left.
        t0 = time.perf_counter()
        for ref in ops:
            http("DELETE", f"{base}/v1/projects/{ref}?backup=false", token)  # backups: the backup step
        while time.perf_counter() - t0 < 600:
            _, body, _ = http("GET", f"{base}/v1/projects", token)
            if not [p for p in body if p["ref"] in ops]:
                break
            time.sleep(1)
        result["delete_all_s"] = time.perf_counter() - t0
        for ref in ops:
            sweep(ref)
        return result

    def healthchecks_off(self, refs: list[str]) -> dict[str, Any]:
        """The same settled projects with Docker's healthchecks disabled, measured like the step.

        Each project is converged again (resume.yml on the daemon's root) with every healthcheck
        replaced by NONE: its containers are recreated without one and started in order (the role's
        start needs no healthcheck). The difference to the step's settled CPU is what the checks
        cost; the stand-ins' own idle work is in both figures.
        """
        off = {name: {"test": ["NONE"]} for name in SERVICES}
        extra = ["-e", json.dumps({"supabase_healthcheck_overrides": off})]
        jobs = self.args.max_jobs or 4
        t0 = time.perf_counter()
        errors: list[str] = []

        def converge(batch: list[str]) -> None:
            for ref in batch:
                try:
                    self.playbook("resume", ref, *extra, root=self.daemon_root)
                except RuntimeError as exc:
                    errors.append(str(exc)[:300])

        threads = [threading.Thread(target=converge, args=(refs[i::jobs],)) for i in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out: dict[str, Any] = {"checks_off_converge_s": time.perf_counter() - t0}
        if errors:
            out["note"] = f"checks off: {len(errors)} resumes failed: {errors[0]}"
            return out
        running = sum(
            1
            for ref in refs
            if all(v == "none" for v in containers(ref).values()) and len(containers(ref)) == len(SERVICES)
        )
        time.sleep(self.args.settle_window)  # the restarted services settle first
        out["settled_cpu_pct_checks_off"] = psutil.cpu_percent(interval=self.args.settle_window)
        out["checks_off_running"] = running
        log(f"checks off: {json.dumps(out)}")
        return out

    def idle_latency(self, base: str, token: str) -> dict[str, float]:
        lat = []
        for _ in range(200):
            t0 = time.perf_counter()
            http("GET", f"{base}/v1/projects", token)
            lat.append(time.perf_counter() - t0)
        return {"p50_ms": benchlib.percentile(lat, 50) * 1000, "p99_ms": benchlib.percentile(lat, 99) * 1000}

    # -- (6): the API under load: reads and SQL answered while creates run --------------------
    def api_under_load(self, base: str, token: str, creates: int = 4) -> dict[str, Any]:
        """p50/p99 of GET /v1/projects and of POST .../database/query `select 1` on a healthy
        project, first idle, then while `creates` creates run through the daemon (issue 19's goals:
        p99 < 20 ms and < 30 ms). Bounded: one request of each kind every 50 ms, at most 900 s."""
        result: dict[str, Any] = {"creates": creates}
        status, body, _ = http("POST", f"{base}/v1/projects", token, {"name": f"bench {self.run_id} sql"})
        if status != 201:
            raise RuntimeError(f"POST /v1/projects: {status} {body}")
        target = body["ref"]
        self.daemon_refs.add(target)
        self.wait_status(base, token, [target], timeout=900)
        query = f"{base}/v1/projects/{target}/database/query"

        def timed(method: str, url: str, payload: Any = None, want: int = 200) -> float:
            t0 = time.perf_counter()
            got, answer, _ = http(method, url, token, payload)
            took = time.perf_counter() - t0
            if got != want:
                raise RuntimeError(f"{method} {url}: {got} {str(answer)[:300]}")
            return took

        idle_sql = [timed("POST", query, {"query": "select 1"}, 201) for _ in range(200)]
        result["idle_query"] = {
            "p50_ms": benchlib.percentile(idle_sql, 50) * 1000,
            "p99_ms": benchlib.percentile(idle_sql, 99) * 1000,
        }
        refs = []
        for i in range(creates):
            status, body, _ = http("POST", f"{base}/v1/projects", token, {"name": f"bench {self.run_id} load {i}"})
            if status != 201:
                raise RuntimeError(f"POST /v1/projects: {status} {body}")
            refs.append(body["ref"])
            self.daemon_refs.add(body["ref"])
        gets: list[float] = []
        sqls: list[float] = []
        start = time.perf_counter()
        settled: set[str] = set()
        while time.perf_counter() - start < 900 and len(settled) < creates:
            t0 = time.perf_counter()
            gets.append(timed("GET", f"{base}/v1/projects"))
            sqls.append(timed("POST", query, {"query": "select 1"}, 201))
            if len(gets) % 20 == 0:
                _, listed, _ = http("GET", f"{base}/v1/projects", token)
                settled = {
                    p["ref"] for p in listed if p["ref"] in refs and p["status"] in ("ACTIVE_HEALTHY", "INIT_FAILED")
                }
            time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
        result.update(
            during_s=time.perf_counter() - start,
            settled=len(settled),
            get_p50_ms=benchlib.percentile(gets, 50) * 1000,
            get_p99_ms=benchlib.percentile(gets, 99) * 1000,
            get_count=len(gets),
            query_p50_ms=benchlib.percentile(sqls, 50) * 1000,
            query_p99_ms=benchlib.percentile(sqls, 99) * 1000,
            query_count=len(sqls),
        )
        log(f"api under load: {json.dumps(result)}")
        for ref in [target, *refs]:
            http("DELETE", f"{base}/v1/projects/{ref}?backup=false", token)  # backups: the backup step
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 600:
            _, listed, _ = http("GET", f"{base}/v1/projects", token)
            if not [p for p in listed if p["ref"] in (target, *refs)]:
                break
            time.sleep(1)
        for ref in [target, *refs]:
            sweep(ref)
        return result

    def wait_status(self, base: str, token: str, refs: list[str], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            _, listed, _ = http("GET", f"{base}/v1/projects", token)
            status = {p["ref"]: p["status"] for p in listed}
            if all(status.get(r) == "ACTIVE_HEALTHY" for r in refs):
                return
            if any(status.get(r) == "INIT_FAILED" for r in refs):
                raise RuntimeError(f"a create failed: {status}")
            time.sleep(1)
        raise RuntimeError(f"not ACTIVE_HEALTHY after {timeout}s")

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.daemon_root is not None and (self.daemon_root / "projects").exists():
            self.daemon_refs |= {p.name for p in (self.daemon_root / "projects").iterdir()}

    # -- (4): one poll cycle with N projects ---------------------------------------------------
    def poll_cycles(self) -> list[dict[str, Any]]:
        return asyncio.run(self._poll_cycles())

    async def _poll_cycles(self) -> list[dict[str, Any]]:
        from supamanager_daemon.fleet.docker import DockerClient
        from supamanager_daemon.fleet.poller import Poller
        from supamanager_daemon.fleet.usage import UsageCollector
        from supamanager_daemon.projectdb import ProjectDatabases
        from supamanager_daemon.store import Store

        out = []
        host = os.environ.get("DOCKER_HOST", "")
        docker = DockerClient(
            host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock", timeout=60
        )
        made = 0
        try:
            for n in (1, 10, 50):
                store = Store(self.work / f"poll-{n}.sqlite3")
                await store.open()
                try:
                    # Real containers, one per service (SERVICES), labelled as the role labels them. The first
                    # 10 projects run (`sleep`), the rest are created and stopped: the poller's cost
                    # is the engine listing them and our parsing, which count containers, not processes.
                    while made < n:
                        await make_fake_project(docker, self.run_id, made, running=made < 10)
                        made += 1
                    for i in range(n):
                        ref = fake_ref(self.run_id, i)
                        _, op = await store.create_project(
                            ref=ref, name=ref, organization_slug="default", region="local"
                        )
                        await store.mark_running(op["id"])
                        await store.finish_operation(op["id"], ok=True, services=list(SERVICES))
                    poller = Poller(store, docker, interval=3600)
                    await poller.poll_once()  # warm up the connection
                    walls, cpus = [], []
                    calls0 = docker.calls
                    cycles = 20
                    for _ in range(cycles):
                        c0, w0 = time.process_time(), time.perf_counter()
                        await poller.poll_once()
                        walls.append(time.perf_counter() - w0)
                        cpus.append(time.process_time() - c0)
                    listed = len(await docker.project_containers())
                    poll_calls = (docker.calls - calls0 - 1) / cycles  # the listing just above is not the poller's
                    # One usage cycle on the same projects: the cgroup files of the running
                    # containers and the engine's two lists (the fakes have no volume and no
                    # database: du and the SQL query are not in these figures).
                    usage = UsageCollector(
                        store, docker, ProjectDatabases(), lambda _p: None, interval=3600, retention_seconds=3600
                    )
                    usage_walls, usage_cpus = [], []
                    usage_calls0 = docker.calls
                    for _ in range(cycles):
                        c0, w0 = time.process_time(), time.perf_counter()
                        await usage.collect_once()
                        usage_walls.append(time.perf_counter() - w0)
                        usage_cpus.append(time.process_time() - c0)
                    row = {
                        "projects": n,
                        "containers": n * len(SERVICES),
                        "listed": listed,
                        "wall_ms": benchlib.median(walls) * 1000,
                        "cpu_ms": benchlib.median(cpus) * 1000,
                        "calls_per_cycle": poll_calls,
                        "usage_wall_ms": benchlib.median(usage_walls) * 1000,
                        "usage_cpu_ms": benchlib.median(usage_cpus) * 1000,
                        "usage_calls_per_cycle": (docker.calls - usage_calls0) / cycles,
                        "usage_containers_read": sum(len(pt["containers"]) for pt in usage.latest.values()),
                    }
                    log(f"poll N={n}: {json.dumps(row)}")
                    out.append(row)
                finally:
                    await store.close()
        finally:
            await docker.close()
            sweep_label(f"supamanager.bench={self.run_id}")
        return out

    # -- cleanup -------------------------------------------------------------------------------
    def cleanup(self) -> None:
        self.stop_daemon()
        for ref in sorted(self.role_refs | self.daemon_refs):
            sweep(ref)
        sweep_label(f"supamanager.bench={self.run_id}")
        # The compose project of the comparison (already down -v after a good run).
        for ref in self.role_refs:
            copy = self.work / f"compose-{ref}"
            if copy.exists():
                subprocess.run(
                    [
                        str(VENV / "docker-compose"),
                        "-p",
                        f"smb{self.run_id}compose",
                        "-f",
                        str(copy / "docker-compose.yml"),
                        "down",
                        "-v",
                    ],
                    cwd=copy,
                    capture_output=True,
                    check=False,
                )
        if self.args.keep_logs:
            log(f"logs kept in {self.logs}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- (8) backups: ours against pg_dump -Fc, a restore, the WAL's recovery-point lag ----------
    def backup_step(self) -> dict[str, Any]:
        """One project with the backup agent and a database of --backup-mb MB (generate_series rows)."""
        ref = f"smb{self.run_id}k"
        self.role_refs.add(ref)
        # No logging pair (as the test suites): what is measured is the database and its backups.
        extra = ("-e", json.dumps({"supabase_logs_enabled": False, "supabase_backup_wal_enabled": True}))
        result: dict[str, Any] = {"target_mb": self.args.backup_mb}
        result["create_s"] = self.playbook("create", ref, *extra)
        rows = benchlib.rows_for_mb(self.args.backup_mb)
        t0 = time.perf_counter()
        db_sql(ref, "create table bench_big (id bigint primary key, payload text not null)")
        db_sql(
            ref, f"insert into bench_big select g, md5(g::text) || repeat('x', 200) from generate_series(1, {rows}) g"
        )
        db_sql(ref, "checkpoint")
        result["fill_s"] = time.perf_counter() - t0
        result["rows"] = rows
        result["database_bytes"] = int(db_sql(ref, "select sum(pg_database_size(datname)) from pg_database"))
        log(f"backup step: {rows} rows, {result['database_bytes'] / 1024**2:.0f} MiB in all databases")

        result["backup_s"] = self.playbook("backup", ref, *extra)
        archive = self.root / "backups" / ref / "archive"
        manifest = json.loads(
            (
                archive / max((p.name for p in archive.iterdir() if p.name.isdigit()), key=int) / "backup.json"
            ).read_text()
        )
        result["backup_bytes"] = manifest["size"]
        result["backup_files"] = {name: f["size"] for name, f in manifest.get("files", {}).items()}
        result["pg_dump_s"], result["pg_dump_bytes"] = self.pg_dump(ref)
        result["time_ratio"] = benchlib.ratio(result["backup_s"], result["pg_dump_s"])
        result["size_ratio"] = benchlib.ratio(result["backup_bytes"], result["pg_dump_bytes"])

        result["restore_s"] = self.playbook("restore", ref, *extra, "-e", f"backup_id={manifest['id']}")
        restored = int(db_sql(ref, "select count(*) from bench_big"))
        if restored != rows:
            raise RuntimeError(f"{ref}: {restored} rows after the restore, {rows} before")
        result.update(self.wal_lag(ref))
        self.playbook("delete", ref, *extra, "-e", "delete_volumes=true", "-e", "delete_backup=false")
        log(f"backup step: {json.dumps(result)}")
        return result

    def pg_dump(self, ref: str) -> tuple[float, int]:
        """A plain `pg_dump -Fc` of the same database, as our backup reaches it: a one-shot container of
        the project's own Postgres image on the project's network (the password in a 0600 env file)."""
        image = subprocess.run(
            ["docker", "inspect", "-f", "{{.Config.Image}}", f"supamanager-{ref}-db"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        out = self.work / f"pg_dump-{ref}"
        out.mkdir(mode=0o700)
        envfile = self.work / f"pg_dump-{ref}.env"
        envfile.touch(mode=0o600)
        password = dotenv(self.root / "projects" / ref / ".env")["POSTGRES_PASSWORD"]
        envfile.write_text(f"PGPASSWORD={password}\n")
        took = self.timed(
            f"pg_dump-{ref}",
            ["docker", "run", "--rm", "--network", f"supamanager-{ref}", "--env-file", str(envfile),
             "-v", f"{out}:/out", image, "pg_dump", "-Fc", "-h", "db", "-U", "supabase_admin", "-d", "postgres",
             "-f", "/out/postgres.dump"],
        )  # fmt: skip
        size = (out / "postgres.dump").stat().st_size
        shutil.rmtree(out, ignore_errors=True)
        envfile.unlink()
        return took, size

    def wal_lag(self, ref: str, seconds: float = 60, every: float = 0.1) -> dict[str, Any]:
        """A row every `every` s for `seconds` s (one psql session in the database container, each row
        its own commit); for each row, how long after its commit (the database's clock: the same host)
        the backup agent had written its WAL on the host, read from wal/current every 0.1 s: the lag
        of the recovery point. Rows carry a text marker, which WAL records hold in clear."""
        chain = self.root / "backups" / ref / "wal" / "current"
        count = int(seconds / every)
        script = "create table if not exists bench_lag (n int primary key, note text not null);\n" + "".join(
            f"insert into bench_lag values ({i}, '{benchlib.lag_marker(i)}');"
            f" select 'committed {i} ' || extract(epoch from clock_timestamp()); select pg_sleep({every});\n"
            for i in range(count)
        )
        proc = subprocess.Popen(
            ["docker", "exec", "-i", f"supamanager-{ref}-db", "bash", "-c",
             'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -X -q -t -A -h 127.0.0.1 -U supabase_admin -d postgres'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        committed: dict[int, float] = {}

        def read_commits() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("committed "):
                    _, n, at = line.split()
                    committed[int(n)] = float(at)

        reader = threading.Thread(target=read_commits, daemon=True)
        reader.start()
        assert proc.stdin is not None
        proc.stdin.write(script)
        proc.stdin.close()
        seen: dict[int, float] = {}
        deadline = time.time() + seconds * 3 + 120
        while time.time() < deadline:
            top = benchlib.highest_marker(chain)
            now = time.time()
            for n in range(top + 1):
                seen.setdefault(n, now)  # WAL is written in order: every row up to the newest is there
            if proc.poll() is not None and len(seen) >= count:
                break
            time.sleep(0.1)
        proc.wait(30)
        reader.join(10)
        return benchlib.lag_figures(committed, seen)

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> None:
        steps = {"lifecycle"} if self.args.quick else set(self.args.steps)
        self.results["lifecycle_healthcheck_interval"] = self.args.healthcheck_interval or "the role's default"
        # The goals are medians of three rounds: --quick runs three unless --rounds says otherwise.
        rounds = self.args.rounds or (3 if self.args.quick else 1) if "lifecycle" in steps else 0
        lifecycle = []
        for i in range(rounds):
            log(f"lifecycle round {i + 1}/{rounds}")
            try:
                lifecycle.append(self.lifecycle_round(i))
            except Exception as exc:
                if self.args.quick:
                    raise
                # A full run goes on with the other measurements and says what failed.
                log(f"lifecycle round {i + 1} failed: {exc}")
                self.results.setdefault("errors", []).append(f"lifecycle round {i + 1}: {str(exc)[:500]}")
            self.results["lifecycle"] = lifecycle
            self.results["create_vs_compose_ratio"] = benchlib.lifecycle_rows(lifecycle)[0][4]
            self.write()
        if "poll" in steps:
            self.results["poll"] = self.poll_cycles()
            self.write()
        if "api" in steps:
            base, token = self.start_daemon()
            self.results["api_under_load"] = self.api_under_load(base, token)
            self.stop_daemon()
            self.daemon = None
            self.write()
        if "backup" in steps:
            self.results["backup"] = self.backup_step()
            self.write()
        if "scale" in steps:
            base, token = self.start_daemon()
            self.results["max_jobs"] = self.args.max_jobs or 4
            self.results["healthcheck_interval"] = self.args.healthcheck_interval or "the role's default"
            self.results["idle_get"] = self.idle_latency(base, token)
            scale = []
            for n in self.args.scale:
                log(f"scale N={n}")
                scale.append(self.scale_step(base, token, n))
                self.results["scale"] = scale
                self.write()

    def print_summary(self) -> None:
        """The lifecycle ratios; the last line is `create_vs_compose_ratio=X.XX`."""
        if not self.results.get("lifecycle"):
            return
        rows = benchlib.lifecycle_rows(self.results["lifecycle"])
        for step, cmd, ours, theirs, r in rows:
            print(
                f"{step}: playbook {benchlib.fmt(ours)}s, compose {cmd} {benchlib.fmt(theirs)}s,"
                f" ratio {benchlib.fmt(r)}"
            )
        print(f"create_vs_compose_ratio={benchlib.fmt(rows[0][4])}", flush=True)

    def write(self) -> None:
        # The load when the figures were written: other work on a shared host is in every figure.
        self.results["machine"]["load at end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        out = pathlib.Path(self.args.output)
        out.mkdir(parents=True, exist_ok=True)
        stem = "quick" if self.args.quick else "full"
        (out / f"{stem}.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (out / f"{stem}.md").write_text(benchlib.render_report(self.results))
        benchlib.chart(self.results, str(out / f"{stem}.png"))
        log(f"results in {out}/{stem}.md, .json, .png")


# -- Docker helpers (CLI, by label: they only ever touch objects labelled with our refs) ---------
def containers(ref: str) -> dict[str, str]:
    """service -> health ("healthy", "starting", "unhealthy", "none") or the state when not running."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=supamanager.project={ref}", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = {}
    for line in out.splitlines():
        c = json.loads(line)
        labels = dict(kv.split("=", 1) for kv in c["Labels"].split(",") if "=" in kv)
        status = c["Status"]
        if c["State"] != "running":
            health = c["State"]
        elif "(healthy)" in status:
            health = "healthy"
        elif "(unhealthy)" in status:
            health = "unhealthy"
        elif "starting" in status:
            health = "starting"
        else:
            health = "none"
        states[labels.get("supamanager.service", c["Names"])] = health
    return states


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM a child's process group, SIGKILL it after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
            if sig == signal.SIGTERM:
                time.sleep(1)  # forked workers outlive their parent by a moment
        except subprocess.TimeoutExpired:
            continue


def all_healthy(states: dict[str, str]) -> bool:
    """Every service of a project is there and running healthy (or without a healthcheck)."""
    return len(states) == len(SERVICES) and all(v in HEALTHY for v in states.values())


def sweep_label(label: str) -> None:
    """Remove containers, networks and volumes carrying label (k=v)."""

    def ids(kind: str) -> list[str]:
        cmd = ["docker", kind, "ls", "-q", "--filter", f"label={label}"]
        if kind == "container":
            cmd.insert(3, "-a")
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split()

    for kind in ("container", "network", "volume"):
        found = ids(kind)
        if found:
            rm = ["docker", kind, "rm", *(["-f"] if kind != "network" else []), *found]
            subprocess.run(rm, capture_output=True, check=False)


def sweep(ref: str) -> None:
    sweep_label(f"supamanager.project={ref}")


def db_sql(ref: str, sql: str) -> str:
    """Run sql as supabase_admin in the project's database container (its own password, which stays
    in the container); the output, trimmed."""
    return subprocess.run(
        ["docker", "exec", f"supamanager-{ref}-db", "bash", "-c",
         'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -U supabase_admin'
         ' -d postgres -c "$0"', sql],
        capture_output=True, text=True, check=True, timeout=7200,
    ).stdout.strip()  # fmt: skip


def dotenv(path: pathlib.Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name] = value.strip("'")
    return values


def fake_ref(run_id: str, i: int) -> str:
    return f"smb{run_id}poll{i:03d}"


async def make_fake_project(docker: Any, run_id: str, i: int, running: bool) -> None:
    """One labelled container per service of a project, from a stand-in image, running `sleep` or stopped."""
    ref = fake_ref(run_id, i)

    async def one(service: str) -> None:
        body = {
            "Image": f"{REGISTRY}/supabase/postgres-meta:v0.95.2",
            "Entrypoint": ["sleep", "infinity"],
            "Labels": {"supamanager.project": ref, "supamanager.service": service, "supamanager.bench": run_id},
            "HostConfig": {"NetworkMode": "none"},
        }
        name = f"{ref}-{service}"
        async with docker._session.post(f"http://docker/containers/create?name={name}", json=body) as resp:
            if resp.status != 201:
                raise RuntimeError(f"create {name}: {resp.status} {await resp.text()}")
        if running:
            async with docker._session.post(f"http://docker/containers/{name}/start") as resp:
                if resp.status not in (204, 304):
                    raise RuntimeError(f"start {name}: {resp.status} {await resp.text()}")

    await asyncio.gather(*(one(s) for s in SERVICES))


# -- small utilities ---------------------------------------------------------------------------------
def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any, dict]:
    data = json.dumps(body).encode() if body is not None else None
    # Only ever http://127.0.0.1:<port> of the daemon the bench started.
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            raw, status, headers = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, dict(exc.headers)
    return status, json.loads(raw) if raw else None, headers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso_seconds(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def machine() -> dict[str, str]:
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "kernel": platform.release(),
        "docker": docker.stdout.strip() or "?",
        "load at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="only one project: playbooks vs compose (under 10 minutes)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="lifecycle rounds (medians are reported; default 3 with --quick, 1 in a full run)",
    )
    parser.add_argument(
        "--steps",
        type=lambda s: s.split(","),
        default=["lifecycle", "poll", "api", "scale"],
        help="what a full run measures: any of lifecycle,poll,api,scale,backup (default: the first four;"
        " backup is never in CI: a database of --backup-mb MB)",
    )
    parser.add_argument(
        "--backup-mb", type=int, default=1024, help="the backup step's database size in MB (default 1024)"
    )
    parser.add_argument("--scale", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5, 10, 20])
    parser.add_argument("--scale-timeout", type=float, default=2400, help="seconds one scale step may take")
    parser.add_argument("--max-jobs", type=int, default=0, help="SUPAMANAGER_MAX_JOBS (default: the daemon's, 4)")
    parser.add_argument(
        "--healthcheck-interval",
        default="",
        help="supabase_healthcheck_interval for every project (playbooks and the daemon's), e.g. 60s"
        " (default: the role's: 5s on Docker older than 25, 60s on 25 and later)",
    )
    parser.add_argument(
        "--no-checks-off",
        dest="checks_off",
        action="store_false",
        help="skip measuring the largest scale step again with every healthcheck disabled",
    )
    parser.add_argument(
        "--settle-window", type=float, default=20, help="seconds of each settled-CPU measurement (default 20)"
    )
    parser.add_argument(
        "--port-base", type=int, default=0, help="host ports from here (+999); default random 20000-28000"
    )
    parser.add_argument("--output", default=str(REPO / "bench" / "results"))
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--task-times",
        action="store_true",
        help="time every playbook task (logs/tasktimes.txt) and print the module's phases (-v); keeps the logs",
    )
    args = parser.parse_args(argv)
    unknown = set(args.steps) - {"lifecycle", "poll", "api", "scale", "backup"}
    if unknown:
        parser.error(f"--steps: unknown {', '.join(sorted(unknown))} (choose from lifecycle, poll, api, scale, backup)")
    bench = Bench(args)
    # SIGTERM (a CI timeout, kill) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        bench.run()
    except BaseException:
        bench.args.keep_logs = True
        if bench.results.get("lifecycle") or bench.results.get("poll") or bench.results.get("backup"):
            bench.write()
        raise
    finally:
        log("cleaning up")
        bench.cleanup()
    # After the cleanup's log lines, so that the run ends with the ratio line.
    bench.print_summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
