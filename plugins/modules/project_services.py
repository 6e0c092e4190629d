#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: project_services
short_description: Bring the services of a rendered Docker Compose project up, down, restarted or stopped, fast
version_added: 0.1.0
description:
  - Runs the project's C(docker-compose.yml) as written. V(present) lets C(docker compose create) make the network,
    the volumes and the containers (a container is recreated only when its definition changed), then starts each
    service as soon as its C(depends_on) services are ready, and returns once every service is healthy by Docker's
    own healthcheck.
  - Readiness without waiting for the healthcheck tick. While a service starts, the module runs the container's own
    healthcheck command (C(docker exec), the very command Docker runs) every O(probe_interval) seconds (each failure
    doubles the wait, up to 2 seconds; never two at once in a container); the moment it
    succeeds, the services that wait for it start. C(docker compose up --wait) waits for Docker's first check instead,
    which an engine older than 25 runs one full healthcheck interval after the start, for each dependency level.
  - Fails as soon as Docker gives its own verdict on a service, as C(docker compose up --wait) does, with the
    service's last healthcheck output. The verdict is V(unhealthy) (its healthcheck failed C(retries) times in a row,
    in a check Docker ran during this run, not an older one) or exited and not restarting. A service whose health is
    still V(starting) (a slow start, or within its start period) is waited for until O(timeout).
  - Services start concurrently wherever the dependencies allow. A V(service_started) dependency (a service without a
    healthcheck) is ready once its container runs.
  - V(stopped) stops every container, the services that depend on others first, each level at once. V(restarted)
    restarts the containers in place, as C(docker compose restart) does (the engine's restart of each container, its
    stop timeout, then a start), all at once; a service whose C(depends_on) says C(restart) after another is stopped
    at once too and started once that one is ready again by its probe. Only the services that another one waits for
    in the run are probed (what a follower follows, what a stopped service depends on, which starts as V(present)
    starts it); the run returns once all are healthy by Docker's own check, as C(docker compose restart) followed by
    a wait for health would. V(absent) stops and removes the project's containers (all at once, once stopped) and
    network (a container that is not the project's is disconnected from it, not removed), and with O(remove_volumes)
    its volumes. With O(remove_volumes) only the containers with a writable bind mount outside O(project_dir) (what
    they write there outlives the delete, as the backup agent's WAL does) are stopped first; the others are killed
    as they are removed, since nothing they hold survives.
  - With O(files), V(present) first writes the project's files (one module run for the files and the start).
  - Only objects that carry the label C(supamanager.project=<project>) are touched.
  - O(gateway_url) is asked with O(gateway_headers) until it answers 200, after the services are healthy. Either may
    name variables of the project's C(.env) as C(${NAME}) (a restart reads the port and key of what runs).
  - Talks to the engine through its Unix socket (C(DOCKER_HOST) or O(docker_host)); runs C(docker compose) only for
    V(present).
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether anything would be created, started, stopped or removed; runs nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(restarted) restarts on every run.
options:
  project:
    description:
      - The project's ref, the value of the label C(supamanager.project) on its containers, network and volumes.
    type: str
    required: true
  project_dir:
    description:
      - The directory with C(docker-compose.yml) and C(.env). Needed for V(present), O(existing), O(secret_env) and a
        C(${NAME}) in the gateway check. With V(absent) and O(remove_volumes), a bind mount inside it does not count
        as one that outlives the delete.
    type: path
  existing:
    description:
      - The project must exist, so fail unless O(project_dir) has a C(docker-compose.yml) (pause, restart).
    type: bool
    default: false
  directories:
    description:
      - With V(present), subdirectories of O(project_dir) to make before anything starts (mode C(0755)).
    type: list
    elements: str
    default: []
  files:
    description:
      - With V(present), the project's files to write into O(project_dir) before C(docker compose create), as
        M(supamanager.supabase.project_files) writes them (a file that matches is left alone, one that differs is
        replaced atomically). Contents are never returned.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The file's path relative to O(project_dir).
        type: str
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: The file's mode, an octal string.
        type: str
        default: "0644"
  state:
    description:
      - V(present) creates what is missing or changed and starts everything, waiting for health.
      - V(stopped) stops every container. V(restarted) restarts every container in place and waits for health.
      - V(absent) removes the containers and the network (and the volumes with O(remove_volumes)).
    type: str
    choices: [present, stopped, restarted, absent]
    default: present
  services:
    description:
      - With V(restarted), restart only these services, and with them every service whose C(depends_on) says
        C(restart) after one of them (Compose's rule), each such follower once what it follows is ready again, and
        wait for their health alone.
      - With V(present), start only these services and what they depend on, and wait for their health alone (the
        role sets the database's passwords before the other services log in). C(docker compose create) still
        makes every container.
      - Empty means all.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds the whole start may take, until every service is healthy and the gateway answers (less when Docker
        gives up on a service first).
    type: int
    default: 300
  probe_interval:
    description:
      - Seconds between two runs of a starting service's healthcheck command.
    type: float
    default: 0.5
  only_recreated:
    description:
      - With V(present), start and wait for only the services whose containers C(docker compose create) made anew
        (their definition changed), and the services whose C(depends_on) says C(restart) after one of them, which
        are restarted in place once it is ready (the pooler after the database); every other service is left as
        it is and not judged, so that a change of a few services' settings is not failed by an untouched one
        missing a healthcheck on a loaded host. When nothing was recreated, nothing is waited for. O(services) is
        ignored.
    type: bool
    default: false
  max_restarts:
    description:
      - With V(present) or V(restarted), a service that Docker's restart policy started again more than this many
        times during the wait has failed at once (it crashes at start, on a setting it cannot take), instead of
        being waited for until O(timeout). Unset (the default), a crashing service is waited for, as it may recover.
    type: int
  remove_volumes:
    description:
      - With V(absent), also remove the project's volumes (its database).
    type: bool
    default: false
  gateway_url:
    description:
      - A URL that must answer 200 once the services are healthy (V(present), V(restarted)). A C(${NAME}) in it is
        replaced by that variable of O(project_dir)/C(.env).
    type: str
  gateway_headers:
    description:
      - Headers sent to O(gateway_url), for example the C(apikey). A C(${NAME}) in a value is replaced by that
        variable of O(project_dir)/C(.env).
    type: dict
    default: {}
  secrets:
    description:
      - Values that must never appear in the module's output; every message is masked with them.
    type: list
    elements: str
    default: []
  secret_env:
    description:
      - Names of variables of O(project_dir)/C(.env) whose values are masked as those of O(secrets) are.
    type: list
    elements: str
    default: []
  docker_host:
    description:
      - The engine's socket, C(unix:///path). Default C(DOCKER_HOST), else C(unix:///var/run/docker.sock).
    type: str
  compose_command:
    description:
      - The Docker Compose command, as a list.
    type: list
    elements: str
    default: [docker, compose]
requirements:
  - The Docker CLI with the compose plugin 2.18 or later (V(present)).
seealso:
  - module: community.docker.docker_compose_v2
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Start the project, each service once its dependencies are ready
  supamanager.supabase.project_services:
    project: shop
    project_dir: /var/lib/supamanager/projects/shop
    gateway_url: http://127.0.0.1:54321/rest/v1/
    gateway_headers:
      apikey: "{{ anon_key }}"
  no_log: true

- name: Pause
  supamanager.supabase.project_services:
    project: shop
    state: stopped
"""

RETURN = r"""
services:
  description:
    - Every service of the project after the run, with its container, state and Docker health
      (V(healthy), V(unhealthy), V(starting), V(none)).
  returned: always
  type: dict
  sample:
    db: {container: supamanager-shop-db, state: running, health: healthy}
ready_s:
  description:
    - For each service this run started, or restarted and probed (V(restarted) probes only the services another one
      waits for), seconds from the start of the run until its probe passed (or it ran, for a service without a
      healthcheck).
  returned: when O(state) is V(present) or V(restarted)
  type: dict
  sample: {vector: 0.6, db: 3.9, kong: 8.2}
timings:
  description:
    - Seconds spent in each phase (compose create, start until every service is ready by its probe (C(ready)), or
      restart until every restart returned and the probed ones passed (C(restart)), until Docker's own checks report
      healthy, until the gateway answers, stop, remove).
  returned: always
  type: dict
  sample: {compose_create: 1.2, ready: 9.8, docker_healthy: 4.1, gateway: 0.1}
started:
  description: The services this run started or restarted.
  returned: always
  type: list
  elements: str
recreated:
  description: With O(only_recreated), the services whose containers C(docker compose create) made anew.
  returned: when O(only_recreated) is set with V(present)
  type: list
  elements: str
stopped:
  description:
    - The services this run stopped (not those V(restarted) restarts, see RV(started)); with V(absent) and
      O(remove_volumes), also those killed as they were removed.
  returned: always
  type: list
  elements: str
removed:
  description: The containers, networks and volumes this run removed.
  returned: always
  type: list
  elements: str
written:
  description: The files (relative to O(project_dir)) this run wrote because they were missing or differed.
  returned: always
  type: list
  elements: str
"""

import os
import re
import socket
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.supamanager.supabase.plugins.module_utils._docker_api import DockerAPI, DockerError
from ansible_collections.supamanager.supabase.plugins.module_utils._project_files import (
    ProjectFilesError,
    files_argument_spec,
    write_failure,
)
from ansible_collections.supamanager.supabase.plugins.module_utils._project_files import run as write_files

PROJECT_LABEL = "supamanager.project"
SERVICE_LABEL = "com.docker.compose.service"
DEPENDS_LABEL = "com.docker.compose.depends_on"
# While none of a container's exposed ports accepts connections, its healthcheck command runs at most this often.
REFUSED_PROBE_EVERY = 2.0
# A line of .env, and a reference to one of its variables in the gateway check's URL or headers.
ENV_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
ENV_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Container states in which a container is up (stop or restart applies to it).
RUNNING_STATES = ("running", "restarting", "paused")
# A network the engine refuses to remove (an endpoint that lingers after its container went) is tried again.
NETWORK_TRIES = 6
NETWORK_RETRY_DELAY = 2.0


class ServicesError(Exception):
    pass


def parse_depends_on(label):
    """compose's depends_on label ("db:service_healthy:false,rest:service_started:false") -> {dep: condition}."""
    deps = {}
    for item in (label or "").split(","):
        parts = item.strip().split(":")
        if parts and parts[0]:
            deps[parts[0]] = parts[1] if len(parts) > 1 and parts[1] else "service_started"
    return deps


def restarts_after(label):
    """The services a depends_on label says to restart after ("db:service_healthy:true" -> {"db"})."""
    out = set()
    for item in (label or "").split(","):
        parts = item.strip().split(":")
        if len(parts) > 2 and parts[0] and parts[2] == "true":
            out.add(parts[0])
    return out


def restart_followers(labels_by_service, names):
    """names, with every service whose depends_on says restart after one of them, transitively."""
    out = set(names)
    grown = True
    while grown:
        grown = False
        for service, label in labels_by_service.items():
            if service not in out and restarts_after(label) & out:
                out.add(service)
                grown = True
    return out


def with_dependencies(deps, names):
    """names, with every service they depend on, transitively."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(deps.get(name, {}))
    return out


def probe_command(healthcheck):
    """The command Docker runs for a healthcheck (Config.Healthcheck.Test), or None when there is none."""
    test = (healthcheck or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)


def health_of(summary):
    """Docker's health from a container list entry: healthy, unhealthy, starting or none."""
    status = summary.get("Status") or ""
    if "(healthy)" in status:
        return "healthy"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(health: starting)" in status:
        return "starting"
    return "none"


def last_check(state):
    """When Docker's last healthcheck of a container began (its Health.Log), '' when none ran."""
    log = (state.get("Health") or {}).get("Log") or []
    return (log[-1].get("Start") or "") if log else ""


def state_of(info):
    """A container's inspect State, with its RestartCount (which Docker keeps beside State)."""
    return dict(info["State"], RestartCount=info.get("RestartCount", 0))


def given_up(state, since, restarts_allowed=None):
    """Docker's own verdict that a container will not come up by itself, or None while it may.

    V(unhealthy): its healthcheck failed C(retries) times in a row (out of the start period), in a
    check that began after C(since), the last check seen when the wait began: a container that
    was unhealthy before this run is judged by Docker's next check, not its old verdict (a start
    resets the health to starting but keeps the log). V(exited): it stopped and Docker will not
    start it again (while a restart policy brings it back, its status is restarting). C(docker
    compose up --wait) fails on both at once; a container still starting is waited for until the
    deadline. V(crashing): Docker's restart policy started it again more than C(restarts_allowed)
    times in all (the count it had when the wait began plus the module's max_restarts; state_of
    puts the count into the state).
    """
    if state.get("Status") in ("exited", "dead") and not state.get("Running"):
        return "exited"
    if restarts_allowed is not None and state.get("RestartCount", 0) > restarts_allowed:
        return "crashing"
    if (state.get("Health") or {}).get("Status") == "unhealthy" and last_check(state) != since:
        return "unhealthy"
    return None


def dependency_order(deps):
    """Services in levels: each level depends only on earlier ones. ServicesError on a cycle."""
    remaining = dict((name, set(d for d in ds if d in deps)) for name, ds in deps.items())
    levels, done = [], set()
    while remaining:
        level = sorted(name for name, ds in remaining.items() if ds <= done)
        if not level:
            raise ServicesError("the services' depends_on form a cycle: {}".format(", ".join(sorted(remaining))))
        levels.append(level)
        done.update(level)
        for name in level:
            del remaining[name]
    return levels


class Project:
    """The containers of one project as the engine reports them, keyed by compose service."""

    def __init__(self, api, project):
        self.api = api
        self.project = project
        self.refresh()

    def refresh(self):
        self.containers = {}
        for c in self.api.containers(f"{PROJECT_LABEL}={self.project}"):
            labels = c.get("Labels") or {}
            service = labels.get(SERVICE_LABEL) or labels.get("supamanager.service") or c["Names"][0].lstrip("/")
            self.containers[service] = c
        return self.containers

    def deps(self):
        return dict(
            (name, parse_depends_on((c.get("Labels") or {}).get(DEPENDS_LABEL))) for name, c in self.containers.items()
        )

    def summary(self):
        return dict(
            (name, {"container": c["Names"][0].lstrip("/"), "state": c["State"], "health": health_of(c)})
            for name, c in sorted(self.refresh().items())
        )


class Starter:
    """Starts services as soon as their dependencies are ready, or restarts them in place (restart=True);
    one thread per service."""

    def __init__(self, api, project, deadline, probe_interval, only=None, max_restarts=None, restart=False):
        self.api = api
        # restart: True (every running service of only, in place), or the services to restart in place
        self.restarting = None if restart is True else set(restart or ())
        self.max_restarts = max_restarts
        self.project = project
        self.deadline = deadline
        self.probe_interval = probe_interval
        self.t0 = time.time()
        self.deps = project.deps()
        self.only = only
        # service -> what it restarts after (depends_on restart: true), when restarting in place
        self.restart_after = (
            dict(
                (name, restarts_after((c.get("Labels") or {}).get(DEPENDS_LABEL)) & set(self.deps))
                for name, c in project.containers.items()
            )
            if restart
            else None
        )
        # In a restart, the services another one waits for in this run (what a follower follows, what a
        # stopped service depends on): only they are probed. Everything else restarted at once, as
        # compose restarts, and Docker's own checks (wait_docker_healthy) say when it is healthy: probing it
        # too would only take CPU from the starts on a small host.
        self.awaited = self._awaited(project) if restart else None
        self.started_evt = dict((n, threading.Event()) for n in self.deps)
        self.ready_evt = dict((n, threading.Event()) for n in self.deps)
        self.ready_at = {}
        self.acted = []
        self.errors = {}
        # service -> Docker's verdict (given_up), and the last check each had when its wait began
        self.gave_up = {}
        self.since = {}
        # service -> the restarts it may reach (max_restarts over its count when its wait began)
        self.restarts_allowed = {}
        # Set on the first verdict: every other service stops waiting, the start has failed.
        self.abort = threading.Event()
        self.lock = threading.Lock()

    def _awaited(self, project):
        out = set()
        for name, c in project.containers.items():
            if self.only is not None and name not in self.only:
                continue
            if c["State"] in RUNNING_STATES:
                out |= self.restart_after[name]
            else:
                out |= set(self.deps[name]) & set(self.deps)
        return out

    def run(self):
        dependency_order(self.deps)  # refuses a cycle before anything starts
        threads = [threading.Thread(target=self._guard, args=(name,)) for name in sorted(self.deps)]
        for t in threads:
            t.daemon = True
            t.start()
        for t in threads:
            t.join(max(0.0, self.deadline - time.time()) + 5)
        return [n for n in sorted(self.deps) if not self.ready_evt[n].is_set()]

    def _guard(self, name):
        try:
            self._service(name)
        except DockerError as exc:
            with self.lock:
                self.errors[name] = str(exc)

    def _waiting(self):
        return time.time() <= self.deadline and not self.abort.is_set()

    def _wait_for(self, name, events):
        while not events[name].wait(0.05):
            if not self._waiting():
                return False
        return True

    def _judge(self, name, state):
        """True (and the start aborted) once Docker gave its verdict on the service."""
        verdict = given_up(state, self.since.get(name, ""), self.restarts_allowed.get(name))
        if verdict:
            with self.lock:
                self.gave_up[name] = verdict
            self.abort.set()
        return bool(verdict)

    def _service(self, name):
        if self.only is not None and name not in self.only:
            self._ready(name)  # not part of this restart: left as it is
            self.ready_at.pop(name)
            return
        container = self.project.containers[name]
        cid = container["Id"]
        restarted = (
            self.restart_after is not None
            and (self.restarting is None or name in self.restarting)
            and container["State"] in RUNNING_STATES
        )
        if restarted:
            # In place and at once, as `docker compose restart` does. A follower of another service (its
            # pools die with the database) is stopped now with the others and started once that one is
            # ready again: its stop overlaps theirs instead of coming after. Docker resets the health to
            # starting, so a probe below sees the restarted service, not its old verdict. A stopped one
            # starts below, once its dependencies are ready, as a resume starts it.
            follows = sorted(self.restart_after[name])
            if follows:
                self.api.stop(cid)
                for dep in follows:
                    if not self._wait_for(dep, self.ready_evt):
                        return
                self.api.start(cid)
            else:
                self.api.restart(cid)
            self._acted(name)
            if name not in self.awaited:
                state = state_of(self.api.inspect(cid))
                self.since[name] = last_check(state)
                if self.max_restarts is not None:
                    self.restarts_allowed[name] = state.get("RestartCount", 0) + self.max_restarts
                self._ready(name)  # nothing waits for it: no probe, Docker's check decides
                self.ready_at.pop(name)
                return
        for dep, condition in self.deps[name].items():
            if dep not in self.deps:
                continue
            events = self.ready_evt if condition == "service_healthy" else self.started_evt
            if not self._wait_for(dep, events):
                return
        info = self.api.inspect(cid)
        state = state_of(info)
        command = probe_command(info["Config"].get("Healthcheck"))
        health = (state.get("Health") or {}).get("Status")
        self.since[name] = last_check(state)
        if self.max_restarts is not None:
            self.restarts_allowed[name] = state.get("RestartCount", 0) + self.max_restarts
        if not state.get("Running"):
            self.api.start(cid)
            if not restarted:
                self._acted(name)
        elif health == "healthy" or command is None:
            self._ready(name)
            return
        self.started_evt[name].set()
        if command is None:
            ready = self._wait_running(name, cid)
        else:
            timeout = (info["Config"]["Healthcheck"].get("Timeout") or 30 * 10**9) / 1e9
            ready = self._probe(name, cid, command, timeout)
        if ready:
            self._ready(name)

    def _acted(self, name):
        with self.lock:
            self.acted.append(name)

    def _ready(self, name):
        self.ready_at[name] = time.time() - self.t0
        self.started_evt[name].set()
        self.ready_evt[name].set()

    def _wait_running(self, name, cid):
        while self._waiting():
            state = state_of(self.api.inspect(cid))
            if state.get("Running"):
                return True
            if self._judge(name, state):
                return False
            time.sleep(self.probe_interval)
        return False

    def _probe(self, name, cid, command, timeout):
        """Run the healthcheck command until it exits 0 (or Docker's own check said healthy): True.
        False at the deadline, on Docker's verdict that it will not come up (given_up), or when
        another service's verdict aborted the start.

        An exec costs the engine far more CPU than a TCP connect, and a dozen services probing at
        once slow their own start on a small host: while none of the container's exposed ports
        accepts a connection yet, the command runs only every REFUSED_PROBE_EVERY seconds (a
        service may listen on a port its image does not expose).
        """
        last_exec = time.time()
        # Each failed probe doubles the wait before the next, up to REFUSED_PROBE_EVERY: a service
        # that takes long to start is not probed at full rate all that time.
        delay = self.probe_interval
        # A probe still running after its timeout (a starved host) is a failed check, as Docker
        # counts it, whatever it exits with later; the next one waits for it to end, so that probes
        # never pile up in a container and slow down the service they wait for.
        pending = None
        while self._waiting():
            began = time.time()
            info = self.api.inspect(cid)
            state = state_of(info)
            if (state.get("Health") or {}).get("Status") == "healthy":
                return True
            if self._judge(name, state):
                return False
            if pending is not None:
                try:
                    still_running = self.api.exec_inspect(pending).get("Running")
                except DockerError:
                    still_running = False
                if still_running:
                    time.sleep(delay)
                    continue
                pending = None
            due = listening(info) is not False or began - last_exec >= REFUSED_PROBE_EVERY
            if state.get("Running") and not state.get("Restarting") and due:
                last_exec = began
                try:
                    exec_id = self.api.exec_start(cid, command)
                except DockerError:
                    exec_id = None  # restarting, or just exited: try again at the next tick
                # The check's timeout counts from its own start, as Docker's does.
                exec_began = time.time()
                while exec_id and time.time() - exec_began < timeout and not self.abort.is_set():
                    result = self.api.exec_inspect(exec_id)
                    if not result.get("Running"):
                        if result.get("ExitCode") == 0:
                            return True
                        exec_id = None
                        break
                    time.sleep(0.05)
                pending = exec_id
                delay = min(delay * 2, max(REFUSED_PROBE_EVERY, self.probe_interval))
            time.sleep(max(0.0, delay - (time.time() - began)))
        return False


def listening(info, timeout=0.2):
    """True when one of the container's exposed TCP ports accepts a connection on one of its
    addresses, False when every try was refused, None when it cannot tell (no port, no address,
    or the address is not reachable from here)."""
    ports = [int(p.split("/")[0]) for p in (info["Config"].get("ExposedPorts") or {}) if p.endswith("/tcp")]
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = [n.get("IPAddress") for n in networks.values() if n.get("IPAddress")]
    if not ports or not addresses:
        return None
    refused = True
    for address in addresses:
        for port in ports:
            try:
                socket.create_connection((address, port), timeout).close()
                return True
            except ConnectionRefusedError:
                continue
            except (OSError, socket.timeout):
                refused = False
    return False if refused else None


def wait_docker_healthy(project, deadline, only=None, since=None, restarts_allowed=None):
    """Until every container (of only) runs healthy by Docker's own check (or has none), or Docker gave
    its verdict on one (given_up, each judged against since[service], else the last check it had when
    this wait first saw it unwell, and restarts_allowed[service]): (those that do not, {service: verdict})."""
    since = dict(since or {})
    restarts_allowed = restarts_allowed or {}
    while True:
        bad = [
            name
            for name, c in project.refresh().items()
            if (only is None or name in only) and (c["State"] != "running" or health_of(c) not in ("healthy", "none"))
        ]
        verdicts = {}
        for name in bad:
            c = project.containers[name]
            if c["State"] != "running" or health_of(c) == "unhealthy":
                state = state_of(project.api.inspect(c["Id"]))
                verdict = given_up(state, since.setdefault(name, last_check(state)), restarts_allowed.get(name))
                if verdict:
                    verdicts[name] = verdict
        if not bad or verdicts or time.time() > deadline:
            return bad, verdicts
        time.sleep(0.25)


def wait_gateway(url, headers, deadline):
    last = None
    while True:
        try:
            resp = open_url(url, headers=headers, timeout=5, validate_certs=False)
            if resp.getcode() == 200:
                return None
            last = f"HTTP {resp.getcode()}"
        except Exception as exc:  # HTTPError, URLError, socket errors: try again until the deadline
            last = str(exc)
        if time.time() > deadline:
            return last
        time.sleep(0.25)


def at_once(action, items):
    """action(item) for every item, concurrently (the engine removes containers and volumes in parallel,
    as compose asks it to); the first DockerError once all have ended."""
    errors = []

    def one(item):
        try:
            action(item)
        except DockerError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def stop_all(api, project, only=None):
    """Stop running containers (of only, when given), dependants before their dependencies, each level at once."""
    containers = project.containers
    errors = []

    def stop(name):
        try:
            api.stop(containers[name]["Id"])
        except DockerError as exc:
            errors.append(f"{name}: {exc}")

    stopped = []
    for level in reversed(dependency_order(project.deps())):
        running = [n for n in level if containers[n]["State"] in RUNNING_STATES and (only is None or n in only)]
        threads = [threading.Thread(target=stop, args=(name,)) for name in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise ServicesError("; ".join(errors))
        stopped.extend(running)
    return sorted(stopped)


def writes_to_host(container, project_dir):
    """Whether a container (a list entry) has a writable bind mount outside project_dir (which a delete
    removes): what it writes there outlives its volumes."""
    inside = os.path.join(os.path.realpath(project_dir), "") if project_dir else None
    for mount in container.get("Mounts") or []:
        if mount.get("Type") == "bind" and mount.get("RW"):
            source = os.path.join(os.path.realpath(mount.get("Source") or "/"), "")
            if inside is None or not source.startswith(inside):
                return True
    return False


def remove_network(api, network_id):
    """Remove a network of the project. What is still attached (a container that is not the project's) is
    disconnected first, and as Docker 20.10 can still count an endpoint of a container it has just removed
    ("has active endpoints"), a refusal is tried again, NETWORK_TRIES times in all."""
    for attempt in range(NETWORK_TRIES):
        try:
            for container in api.network(network_id).get("Containers") or {}:
                api.disconnect(network_id, container)
            api.remove_network(network_id)
            return
        except DockerError as exc:
            if exc.status == 404:
                return
            if attempt == NETWORK_TRIES - 1:
                raise
        time.sleep(NETWORK_RETRY_DELAY)


def describe_not_ready(api, project, names):
    """One line per service that is not ready: state, health, last health output."""
    lines = []
    for name in sorted(names):
        c = project.containers.get(name)
        if c is None:
            lines.append(f"{name}: missing")
            continue
        try:
            state = state_of(api.inspect(c["Id"]))
        except DockerError as exc:
            lines.append(f"{name}: {exc}")
            continue
        health = state.get("Health") or {}
        line = "{}: {}, health {}".format(name, state.get("Status"), health.get("Status", "none"))
        if state.get("Status") == "exited":
            line += ", exit code {}".format(state.get("ExitCode"))
        if state.get("RestartCount"):
            line += ", restarted {} times by its restart policy".format(state["RestartCount"])
        log = health.get("Log") or []
        if log:
            line += ", last check: {}".format((log[-1].get("Output") or "").strip()[:300])
        lines.append(line)
    return "; ".join(lines)


def gave_up_message(api, project, timeout, verdicts, not_ready):
    """The failure when Docker gave up on services: each with its state and last check, then the
    others that were not ready yet."""
    described = describe_not_ready(api, project, verdicts)
    msg = f"given up by Docker (unhealthy, or exited and not restarting), not waiting out the {timeout}s: {described}"
    others = sorted(set(not_ready) - set(verdicts))
    return msg + ("; not ready yet: " + ", ".join(others) if others else "")


def needs_env(url, headers):
    """Whether the gateway's URL or headers name a variable of .env (${NAME})."""
    return any(ENV_PLACEHOLDER.search(str(text or "")) for text in [url, *headers.values()])


def read_env(project_dir):
    """The variables of project_dir/.env, as the role writes them (NAME=value or NAME='value')."""
    if not project_dir:
        raise ServicesError("project_dir is required to read .env (secret_env, or ${NAME} in the gateway check)")
    path = os.path.join(project_dir, ".env")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ServicesError(f"cannot read {path}: {exc.strerror}") from exc
    env = {}
    for line in lines:
        match = ENV_LINE.fullmatch(line)
        if match:
            name, value = match.groups()
            env[name] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value
    return env


def fill_env(text, env):
    """text with each ${NAME} replaced by that variable of .env; ServicesError for one it lacks."""

    def value(match):
        if match.group(1) not in env:
            raise ServicesError(f"the project's .env has no {match.group(1)} (named by the gateway check)")
        return env[match.group(1)]

    return ENV_PLACEHOLDER.sub(value, text)


def compose_create(module, params):
    directory = params["project_dir"]
    cmd = [
        *params["compose_command"],
        "--project-directory",
        directory,
        "-f",
        os.path.join(directory, "docker-compose.yml"),
        "--env-file",
        os.path.join(directory, ".env"),
        "create",
        "--remove-orphans",
        "--pull",
        "missing",
    ]
    env = {"DOCKER_HOST": params["docker_host"]} if params["docker_host"] else {}
    rc, out, err = module.run_command(cmd, cwd=directory, environ_update=env)
    if rc != 0:
        raise ServicesError(f"docker compose create failed: {(err or out).strip()[-2000:]}")


def run(module, api):
    p = module.params
    result = dict(changed=False, services={}, timings={}, started=[], stopped=[], removed=[], ready_s={}, written=[])
    t0 = time.time()
    deadline = t0 + p["timeout"]
    state = p["state"]

    if (state == "present" or p["existing"]) and not p["project_dir"]:
        raise ServicesError("project_dir is required for state=present and for existing=true")
    if p["existing"] and not os.path.exists(os.path.join(p["project_dir"], "docker-compose.yml")):
        raise ServicesError(
            "Project {} does not exist here ({} has no docker-compose.yml); create it first.".format(
                p["project"], p["project_dir"]
            )
        )
    gateway = None
    if p["gateway_url"] or p["secret_env"]:
        env = read_env(p["project_dir"]) if p["secret_env"] or needs_env(p["gateway_url"], p["gateway_headers"]) else {}
        # Masked in every message and result, as the values of O(secrets) are (Ansible's no_log values).
        module.no_log_values.update(value for name, value in env.items() if name in p["secret_env"] and value)
        if p["gateway_url"]:
            gateway = {
                "url": fill_env(p["gateway_url"], env),
                "headers": dict((k, fill_env(str(v), env)) for k, v in p["gateway_headers"].items()),
            }
    if state == "present" and (p["files"] or p["directories"]):
        written = write_files(
            {"path": p["project_dir"], "directories": p["directories"], "files": p["files"]}, module.check_mode
        )
        result["written"] = written["written"]
        result["changed"] = written["changed"]

    project = Project(api, p["project"])
    before = dict((n, (c["Id"], c["State"])) for n, c in project.containers.items())

    if state in ("stopped", "absent"):
        running = [n for n, c in project.containers.items() if c["State"] in RUNNING_STATES]
        if module.check_mode:
            result["changed"] = bool(running) or (state == "absent" and bool(project.containers))
            return result
        if state == "absent" and p["remove_volumes"]:
            # Nothing a container holds outlives a delete that removes its volumes, except what it writes
            # to the host through a bind mount (the backup agent's WAL): those stop first, with their
            # stop timeout; the others are killed as they are removed, no stop timeout waited out
            # (postgres-meta's node ignores SIGTERM: 10 s on every stop).
            graceful = set(n for n, c in project.containers.items() if writes_to_host(c, p["project_dir"]))
            result["stopped"] = sorted(set(stop_all(api, project, only=graceful)) | set(running))
        else:
            result["stopped"] = stop_all(api, project)
        result["timings"]["stop"] = round(time.time() - t0, 2)
        result["changed"] = bool(result["stopped"])
        if state == "absent":
            t1 = time.time()
            containers = sorted(project.containers.values(), key=lambda c: c["Names"][0])
            at_once(lambda c: api.remove(c["Id"], volumes=True), containers)
            removed = [c["Names"][0].lstrip("/") for c in containers]
            label = "{}={}".format(PROJECT_LABEL, p["project"])
            for net in api.networks(label):
                remove_network(api, net["Id"])
                removed.append(net["Name"])
            if p["remove_volumes"]:
                volumes = sorted(vol["Name"] for vol in api.volumes(label))
                at_once(api.remove_volume, volumes)
                removed.extend(volumes)
            result["removed"] = removed
            result["changed"] = result["changed"] or bool(removed)
            result["timings"]["remove"] = round(time.time() - t1, 2)
            return result
        result["services"] = project.summary()
        return result

    if module.check_mode:
        result["changed"] = (
            result["changed"]
            or state == "restarted"
            or not before
            or any(st != "running" for cid, st in before.values())
        )
        return result

    if state == "present":
        compose_create(module, p)
        result["timings"]["compose_create"] = round(time.time() - t0, 2)
        project.refresh()
    if not project.containers:
        raise ServicesError("project {} has no containers".format(p["project"]))

    only, restart = None, state == "restarted"
    if state == "present" and p["only_recreated"]:
        recreated = set(n for n, c in project.containers.items() if before.get(n, (None,))[0] != c["Id"])
        labels = dict((n, (c.get("Labels") or {}).get(DEPENDS_LABEL)) for n, c in project.containers.items())
        only = restart_followers(labels, recreated)
        restart = only - recreated
        result["recreated"] = sorted(recreated)
    elif p["services"]:
        unknown = sorted(set(p["services"]) - set(project.containers))
        if unknown:
            raise ServicesError("project {} has no service {}".format(p["project"], ", ".join(unknown)))
        if state == "restarted":
            labels = dict((n, (c.get("Labels") or {}).get(DEPENDS_LABEL)) for n, c in project.containers.items())
            only = restart_followers(labels, p["services"])
        else:
            only = with_dependencies(project.deps(), p["services"])
    t1 = time.time()
    starter = Starter(api, project, deadline, p["probe_interval"], only, p["max_restarts"], restart=restart)
    not_ready = starter.run()
    result["timings"]["restart" if state == "restarted" else "ready"] = round(time.time() - t1, 2)
    result["started"] = sorted(starter.acted)
    after = dict((n, c["Id"]) for n, c in project.refresh().items())
    result["changed"] = (
        result["changed"] or bool(starter.acted) or any(before.get(n, (None,))[0] != cid for n, cid in after.items())
    )
    if starter.gave_up:
        raise ServicesError(gave_up_message(api, project, p["timeout"], starter.gave_up, not_ready))
    if not_ready or starter.errors:
        msg = describe_not_ready(api, project, set(not_ready) | set(starter.errors))
        errors = "; ".join("{}: {}".format(*kv) for kv in sorted(starter.errors.items()))
        raise ServicesError(
            "not ready within {}s: {}{}".format(p["timeout"], msg, (" (" + errors + ")") if errors else ""),
        )

    t2 = time.time()
    unhealthy, verdicts = wait_docker_healthy(project, deadline, only, starter.since, starter.restarts_allowed)
    result["timings"]["docker_healthy"] = round(time.time() - t2, 2)
    if verdicts:
        raise ServicesError(gave_up_message(api, project, p["timeout"], verdicts, unhealthy))
    if unhealthy:
        raise ServicesError(
            "not healthy by Docker's healthcheck within {}s: {}".format(
                p["timeout"], describe_not_ready(api, project, unhealthy)
            )
        )
    if gateway:
        t3 = time.time()
        failure = wait_gateway(gateway["url"], gateway["headers"], deadline)
        result["timings"]["gateway"] = round(time.time() - t3, 2)
        if failure:
            raise ServicesError(
                "the gateway {} did not answer 200 within {}s: {}".format(gateway["url"], p["timeout"], failure)
            )
    result["services"] = project.summary()
    result["ready_s"] = dict((name, round(at, 2)) for name, at in starter.ready_at.items())
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", required=True),
            project_dir=dict(type="path"),
            existing=dict(type="bool", default=False),
            **files_argument_spec(),
            state=dict(type="str", default="present", choices=["present", "stopped", "restarted", "absent"]),
            timeout=dict(type="int", default=300),
            probe_interval=dict(type="float", default=0.5),
            max_restarts=dict(type="int"),
            only_recreated=dict(type="bool", default=False),
            remove_volumes=dict(type="bool", default=False),
            gateway_url=dict(type="str"),
            gateway_headers=dict(type="dict", default={}, no_log=True),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
            secret_env=dict(type="list", elements="str", default=[], no_log=False),
            docker_host=dict(type="str"),
            compose_command=dict(type="list", elements="str", default=["docker", "compose"]),
            services=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        api = DockerAPI(module.params["docker_host"], timeout=60)
        results = run(module, api)
    except (ServicesError, DockerError, ProjectFilesError) as exc:
        module.fail_json(msg=str(exc), project=module.params["project"], state=module.params["state"])
    except OSError as exc:
        module.fail_json(msg=write_failure(module.params["project_dir"], exc))
    module.exit_json(**results)


if __name__ == "__main__":
    main()
