"""`supamanager`: the command line over supamanagerd's HTTP API (stdlib only: urllib).

    supamanager projects create --name shop --wait
    supamanager projects list --json
    supamanager operations wait <operation id>

The URL and token come from --url / --token or SUPAMANAGER_URL / SUPAMANAGER_API_TOKEN.
--wait follows the operation through its event stream (GET /v1/operations/{id}/events), printing
each step as it starts, and falls back to polling when the stream cannot be read. Progress goes to
stderr and results to stdout, so `--json` output can be piped. Exit status: 0 done, 1 the request
or the operation failed, 2 bad usage, 3 the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import __version__
from .models import UNPRINTABLE

DEFAULT_URL = "http://127.0.0.1:8085"
TERMINAL = ("succeeded", "failed")
HEALTH_SERVICES = ("auth", "db", "pooler", "realtime", "rest", "storage")
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: urllib would send the token along, to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx answer then ends the request as an HTTPError


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def _request(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/json", "User-Agent": f"supamanager/{__version__}", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        # main() accepts only http(s) URLs.
        return urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)  # noqa: S310

    def call(self, method: str, path: str, body: Any = None) -> tuple[Any, dict[str, str]]:
        """JSON in, JSON out; an HTTP error becomes a CliError with the daemon's message."""
        req = self._request(method, path, body)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return (json.loads(raw) if raw else None), dict(resp.headers)
        except urllib.error.HTTPError as err:
            raise CliError(_http_error(err)) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise CliError(f"cannot reach supamanagerd at {self.url}: {reason}", EXIT_UNREACHABLE) from None

    def stream(self, path: str, last_event_id: int):
        """Yield (event type, data) from a Server-Sent Events stream; returns when the server ends it."""
        req = self._request("GET", path, headers={"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)})
        try:
            resp = self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            raise CliError(_http_error(err)) from None
        with resp:
            event, data = "message", []
            for raw in resp:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)


def _http_error(err: urllib.error.HTTPError) -> str:
    if 300 <= err.code < 400:
        return f"HTTP {err.code}: the daemon redirects to {err.headers.get('Location', '?')}; not followed"
    try:
        body = json.loads(err.read() or b"{}")
        message = body.get("message") or err.reason
        code = body.get("code")
    except (ValueError, AttributeError):
        message, code = err.reason, None
    return f"HTTP {err.code}{f' {code}' if code else ''}: {message}"


# -- output -----------------------------------------------------------------------------------------
# Whatever the daemon sends is printed with controls and bidi characters escaped (\u202e): a name
# could otherwise move the cursor, rewrite the screen or reorder what a person reads.
def _safe(value: Any, keep: str = "") -> str:
    return UNPRINTABLE.sub(lambda m: m.group() if m.group() in keep else f"\\u{ord(m.group()):04x}", str(value))


def _print(text: Any, **options: Any) -> None:
    print(_safe(text, keep="\n"), **options)


def _print_json(value: Any) -> None:
    # json.dumps escapes C0 controls inside strings; the newlines left are the indentation's.
    _print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [{c: _safe(r.get(c, "")) for c in columns} for r in rows]
    widths = {c: max([len(c)] + [len(row[c]) for row in cells]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in cells:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def _print_project(project: dict[str, Any]) -> None:
    for key in ("ref", "name", "status", "organization_slug", "region", "created_at"):
        print(f"{key + ':':<19}{_safe(project.get(key))}")
    endpoints = project.get("endpoints") or {}
    if endpoints.get("api_url"):
        print(f"{'api_url:':<19}{_safe(endpoints['api_url'])}")


def _progress(message: str) -> None:
    _print(message, file=sys.stderr, flush=True)


# -- following an operation -------------------------------------------------------------------------
def _show_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "step":
        _progress(f"[{event.get('progress', 0):>3}%] {event.get('name')}")
    elif kind == "started":
        _progress(f"started {event.get('name')} (attempt {event.get('attempt', 1)})")
    elif kind == "task_failed":
        _progress(f"task failed: {event.get('error')}")
    elif kind == "rollback":
        _progress(f"rolling back through {event.get('name')}")
    elif kind == "requeued":
        _progress(f"requeued: {event.get('reason')}")
    elif kind == "queued":
        _progress(f"queued {event.get('name')}")


def follow(client: Client, op_id: str, timeout: float, poll_interval: float = 1.0) -> dict[str, Any]:
    """Show the operation's steps as they happen; return it once it has ended."""
    deadline = time.monotonic() + timeout
    last_id = 0
    use_stream = True
    failures = 0
    while time.monotonic() < deadline:
        if use_stream:
            try:
                for _type, event in client.stream(f"/v1/operations/{op_id}/events", last_id):
                    last_id = max(last_id, int(event.get("id", 0)))
                    _show_event(event)
                    if time.monotonic() >= deadline:
                        break
            except CliError as exc:  # e.g. an older daemon without the stream: poll instead
                _progress(f"event stream unavailable ({exc}); polling instead")
                use_stream = False
            except (OSError, ValueError) as exc:  # dropped connection, timeout, garbled stream
                failures += 1
                if failures >= 3:
                    _progress(f"event stream unavailable ({exc}); polling instead")
                    use_stream = False
                time.sleep(min(2.0, 0.5 * failures))
        op, _ = client.call("GET", f"/v1/operations/{urllib.parse.quote(op_id)}")
        if not use_stream:
            for event in op.get("steps", []):
                if event.get("id", 0) > last_id:
                    last_id = event["id"]
                    _show_event(event)
        if op["state"] in TERMINAL:
            return op
        if not use_stream:
            time.sleep(poll_interval)
    raise CliError(f"operation {op_id} still running after {timeout:g} s (it goes on; see `operations wait`)")


def _finish(client: Client, args: argparse.Namespace, op_id: str, ref: str | None) -> int:
    """--wait: follow the operation, then report how it ended (and the project's status)."""
    op = follow(client, op_id, args.timeout)
    project = None
    if op["state"] == "succeeded" and ref and op["kind"] != "delete":
        project, _ = client.call("GET", f"/v1/projects/{ref}")
    if args.json:
        _print_json({"operation": op, "project": project} if project else {"operation": op})
    elif op["state"] == "succeeded":
        status = f"; project {ref} is {project['status']}" if project is not None else ""
        print(f"{op['kind']} of project {op['ref']} succeeded in {_took(op)}{status}")
        api_url = ((project or {}).get("endpoints") or {}).get("api_url")
        if api_url:
            print(f"API URL: {api_url} (keys: supamanager projects keys {ref})")
    if op["state"] != "succeeded":
        _print(f"supamanager: {op['kind']} of project {op['ref']} failed: {op.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _took(op: dict[str, Any]) -> str:
    from datetime import datetime

    try:
        start = datetime.fromisoformat(op["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(op["finished_at"].replace("Z", "+00:00"))
    except (AttributeError, KeyError, TypeError, ValueError):
        return "?"
    return f"{(end - start).total_seconds():.1f} s"


# -- commands ---------------------------------------------------------------------------------------
def _ref_path(ref: str, suffix: str = "") -> str:
    return f"/v1/projects/{urllib.parse.quote(ref, safe='')}{suffix}"


def cmd_list(client: Client, args) -> int:
    projects, _ = client.call("GET", "/v1/projects")
    if args.json:
        _print_json(projects)
    else:
        _print_table(projects, ["ref", "name", "status", "region", "created_at"])
    return 0


def cmd_get(client: Client, args) -> int:
    project, _ = client.call("GET", _ref_path(args.ref))
    if args.json:
        _print_json(project)
    else:
        _print_project(project)
    return 0


def cmd_create(client: Client, args) -> int:
    body: dict[str, Any] = {"name": args.name}
    db_pass = os.environ.get("SUPAMANAGER_DB_PASS") if args.db_pass_env else None
    if args.db_pass_env and not db_pass:
        raise CliError("--db-pass-from-env: SUPAMANAGER_DB_PASS is not set", EXIT_USAGE)
    if db_pass:
        body["db_pass"] = db_pass
    if args.organization_slug:
        body["organization_slug"] = args.organization_slug
    if args.region:
        body["region"] = args.region
    project, headers = client.call("POST", "/v1/projects", body)
    return _accepted(client, args, project, headers, f"creating project {project['ref']} ({project['name']})")


def _accepted(client: Client, args, body: dict[str, Any], headers: dict[str, str], what: str) -> int:
    op_id = headers.get("X-Operation-Id")
    if args.wait and op_id:
        if not args.json:
            _progress(f"{what}: operation {op_id}")
        return _finish(client, args, op_id, body.get("ref"))
    if args.json:
        _print_json({**body, "operation_id": op_id})
    else:
        print(f"{what}: operation {op_id}")
        print(f"follow it with: supamanager operations wait {op_id}")
    return 0


def _lifecycle(path_suffix: str, verb: str):
    def run(client: Client, args) -> int:
        body, headers = client.call("POST", _ref_path(args.ref, path_suffix))
        return _accepted(client, args, body, headers, f"{verb} project {args.ref}")

    return run


def cmd_delete(client: Client, args) -> int:
    params = ([] if args.delete_volumes else ["delete_volumes=false"]) + ([] if args.backup else ["backup=false"])
    query = "?" + "&".join(params) if params else ""
    body, headers = client.call("DELETE", _ref_path(args.ref) + query)
    return _accepted(client, args, body, headers, f"deleting project {args.ref}")


def cmd_keys(client: Client, args) -> int:
    keys, _ = client.call("GET", _ref_path(args.ref, "/api-keys"))
    if args.json:
        _print_json(keys)
    else:
        _print_table(keys, ["name", "type", "api_key"])
    return 0


def cmd_health(client: Client, args) -> int:
    services = ",".join(args.services or HEALTH_SERVICES)
    health, _ = client.call("GET", _ref_path(args.ref, f"/health?services={urllib.parse.quote(services)}"))
    if args.json:
        _print_json(health)
    else:
        _print_table(health, ["name", "healthy", "status", "error"])
    return 0 if all(h["healthy"] for h in health) else EXIT_FAILED


def _size(value: float | None) -> str:
    """Bytes for a person: 512 B, 3.4 MiB, 1.2 GiB; - when unknown."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _cpu(seconds: float | None, share: float | None = None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" + ("" if share is None else f" ({share:.2f} cores)")


def _api_requests(history: list[dict], hours: int) -> str:
    """The gateway's requests of the history's points, summed by kind; "-" when no point counted any."""
    counted = [p["api_requests"] for p in history if p.get("api_requests")]
    if not counted:
        return "-"
    sums = {kind: sum(c[kind] for c in counted) for kind in ("rest", "auth", "storage", "realtime", "total")}
    kinds = ", ".join(f"{kind} {sums[kind]}" for kind in ("rest", "auth", "storage", "realtime"))
    return f"{sums['total']} in {hours} h ({kinds})"


def cmd_usage(client: Client, args) -> int:
    usage, _ = client.call("GET", _ref_path(args.ref, f"/usage?hours={args.hours}"))
    if args.json:
        _print_json(usage)
        return 0
    latest = usage["latest"]
    if latest is None:
        print(f"no usage collected yet (a point every {usage['interval_seconds']:g} s)")
        return 0
    rows = {
        "collected_at": latest["collected_at"],
        "cpu": _cpu(latest["cpu_seconds"], latest["cpu_share"]),
        "memory": _size(latest["memory_bytes"]),
        "memory_limit": _size(latest["memory_limit_bytes"]) if latest["memory_limit_bytes"] else "none",
        "disk": _size(latest["disk_bytes"]),
        "database_size": _size(latest["database_size_bytes"]),
        "connections": "-" if latest["connections"] is None else latest["connections"],
        "api_requests": _api_requests(usage["history"], args.hours),
    }
    for key, value in rows.items():
        print(f"{key + ':':<15}{_safe(value)}")
    if latest["containers"]:
        print()
        table = [
            {"service": c["service"], "cpu": _cpu(c["cpu_seconds"]), "memory": _size(c["memory_bytes"]),
             "peak": _size(c["memory_peak_bytes"])}
            for c in latest["containers"]
        ]  # fmt: skip
        _print_table(table, ["service", "cpu", "memory", "peak"])
    if latest["volumes"]:
        print()
        _print_table([{"volume": v["name"], "disk": _size(v["bytes"])} for v in latest["volumes"]], ["volume", "disk"])
    return 0


def cmd_backups_list(client: Client, args) -> int:
    body, _ = client.call("GET", _ref_path(args.ref, "/database/backups"))
    if args.json:
        _print_json(body)
    else:
        _print_table(body["backups"], ["id", "status", "inserted_at"])
        window = body["physical_backup_data"]
        if window.get("earliest_physical_backup_date_unix") is not None:
            print(
                f"point-in-time restores reach {window['earliest_physical_backup_date_unix']}"
                f" (unix seconds) onwards; WAL streamed: {'yes' if body['pitr_enabled'] else 'no'}"
            )
    return 0


def cmd_backups_create(client: Client, args) -> int:
    _, headers = client.call("POST", _ref_path(args.ref, "/database/backups"))
    return _accepted(client, args, {"ref": args.ref}, headers, f"backing up project {args.ref}")


def cmd_backups_restore(client: Client, args) -> int:
    if args.time is not None:
        path, body = "/database/backups/restore-pitr", {"recovery_time_target_unix": args.time}
    else:
        path, body = "/database/backups/restore", {"id": args.id}
    _, headers = client.call("POST", _ref_path(args.ref, path), body)
    return _accepted(client, args, {"ref": args.ref}, headers, f"restoring project {args.ref}")


def cmd_backups_schedule(client: Client, args) -> int:
    path = _ref_path(args.ref, "/database/backups/schedule")
    if args.set is not None:
        body, _ = client.call("PATCH", path, {"schedule_for": args.set})
    else:
        body, _ = client.call("GET", path)
    if args.json:
        _print_json(body)
    else:
        print(f"daily backup at {_safe(body['schedule_for'])} UTC (set {_safe(body['updated_at'])})")
    return 0


def cmd_backups_restore_point(client: Client, args) -> int:
    path = _ref_path(args.ref, "/database/backups/restore-point")
    if args.name is None or args.show:
        query = "" if args.name is None else "?" + urllib.parse.urlencode({"name": args.name})
        body, _ = client.call("GET", path + query)
        if args.json:
            _print_json(body)
        else:
            _print_table([body], ["name", "status", "completed_on", "backup_id"])
        return 0
    body, headers = client.call("POST", path, {"name": args.name})
    return _accepted(
        client, args, {**body, "ref": args.ref}, headers, f"restore point {args.name} of project {args.ref}"
    )


def cmd_operation_get(client: Client, args) -> int:
    op, _ = client.call("GET", f"/v1/operations/{urllib.parse.quote(args.op_id, safe='')}")
    if args.json:
        _print_json(op)
        return 0
    for key in ("id", "ref", "kind", "state", "step", "progress", "error", "attempts", "created_at", "finished_at"):
        print(f"{key + ':':<12}{_safe(op.get(key))}")
    return 0


def cmd_operation_wait(client: Client, args) -> int:
    op, _ = client.call("GET", f"/v1/operations/{urllib.parse.quote(args.op_id, safe='')}")
    return _finish(client, args, op["id"], op["ref"])


def cmd_healing(client: Client, args) -> int:
    if args.on or args.off:
        state, _ = client.call("PUT", _ref_path(args.ref, "/healing"), {"enabled": bool(args.on)})
    else:
        state, _ = client.call("GET", _ref_path(args.ref, "/healing"))
    if args.json:
        _print_json(state)
        return 0
    print(f"healing: {'on' if state['enabled'] else 'off'}")
    rows = [{"service": name, **record} for name, record in sorted(state["services"].items())]
    if rows:
        _print_table(rows, ["service", "attempts", "gave_up", "next_attempt_at", "reason"])
    return 0


def cmd_move(client: Client, args) -> int:
    _, headers = client.call("POST", _ref_path(args.ref, "/move"), {"target_host": args.to})
    return _accepted(client, args, {"ref": args.ref}, headers, f"moving project {args.ref} to {args.to}")


def cmd_drain(client: Client, args) -> int:
    path = f"/platform/fleet/hosts/{urllib.parse.quote(args.host, safe='')}/drain"
    method = "GET" if args.show else ("DELETE" if args.undo else "POST")
    drain, _ = client.call(method, path)
    if args.json:
        _print_json(drain)
        return 0
    mark = "draining" if drain["draining"] else "not draining"
    print(
        f"host {drain['host']}: {mark}, {drain['projects_left']} project(s) left{'' if drain['done'] else ', moving'}"
    )
    for move in drain["moves"]:
        print(f"  {move['ref']} -> {move['target']}: {move['state']} (operation {move['operation_id']})")
    for skipped in drain["skipped"]:
        print(f"  {skipped['ref']} stays: {skipped['reason']}")
    return 0


def cmd_orphans_list(client: Client, args) -> int:
    found, _ = client.call("GET", "/v1/orphans")
    if args.json:
        _print_json(found)
        return 0
    rows = [
        {"kind": kind.rstrip("s"), "ref": o["ref"], "name": o["name"], "state": o.get("state", "")}
        for kind in ("containers", "networks", "volumes")
        for o in found[kind]
    ]
    if rows:
        _print_table(rows, ["kind", "ref", "name", "state"])
    else:
        print("no orphans")
    return 0


def cmd_orphans_clean(client: Client, args) -> int:
    query = {"volumes": "true"} if args.volumes else {}
    if args.ref:
        query["ref"] = args.ref
    path = "/v1/orphans" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    result, _ = client.call("DELETE", path)
    if args.json:
        _print_json(result)
    else:
        for kind in ("containers", "networks", "volumes"):
            for name in result["removed"][kind]:
                print(f"removed {kind.rstrip('s')} {name}")
        for name in result["kept_volumes"]:
            print(f"kept volume {name} (it may hold data; --volumes removes it)")
        if not any(result["removed"].values()) and not result["kept_volumes"]:
            print("no orphans")
    for error in result["errors"]:
        print(f"supamanager: {error}", file=sys.stderr)
    return EXIT_FAILED if result["errors"] else 0


def cmd_tokens_list(client: Client, args) -> int:
    rows, _ = client.call("GET", "/v1/tokens")
    if args.json:
        _print_json(rows)
    else:
        _print_table(
            [{**r, "revoked_at": r.get("revoked_at") or "-"} for r in rows], ["id", "name", "created_at", "revoked_at"]
        )
    return 0


def cmd_tokens_create(client: Client, args) -> int:
    row, _ = client.call("POST", "/v1/tokens", {"name": args.name})
    if args.json:
        _print_json(row)
    else:
        _progress(f"token {row['name']} ({row['id']}): shown once, keep it now")
        print(row["token"])
    return 0


def cmd_tokens_revoke(client: Client, args) -> int:
    row, _ = client.call("DELETE", f"/v1/tokens/{urllib.parse.quote(args.token_id, safe='')}")
    if args.json:
        _print_json(row)
    else:
        print(f"revoked token {row['name']} ({row['id']}) at {row['revoked_at']}")
    return 0


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


# The public suffix list of Debian's `publicsuffix` package (bindep.txt): what the official CLI's
# check of a pooler's domain is computed from too (tldts, the list's ICANN section).
PUBLIC_SUFFIX_LIST = "/usr/share/publicsuffix/public_suffix_list.dat"


def registrable_domain(host: str, psl_path: str = PUBLIC_SUFFIX_LIST) -> str | None:
    """The host's eTLD+1 (`pooler.example.co.uk` -> `example.co.uk`), by the public suffix list's
    ICANN rules; without the list, by its default rule (the last label is the public suffix).
    None when the host is itself a public suffix."""
    rules: set[str] = set()
    wildcards: set[str] = set()
    exceptions: set[str] = set()
    try:
        with open(psl_path, encoding="utf-8") as handle:
            for line in handle:
                rule = line.strip().lower()
                if rule.startswith("// ===begin private domains==="):
                    break
                if not rule or rule.startswith("//"):
                    continue
                if rule.startswith("!"):
                    exceptions.add(rule[1:])
                elif rule.startswith("*."):
                    wildcards.add(rule[2:])
                else:
                    rules.add(rule)
    except FileNotFoundError:
        pass
    labels = host.lower().rstrip(".").split(".")
    suffix_len = 1  # the default rule, "*"
    for i in range(len(labels)):
        candidate = labels[i:]
        name = ".".join(candidate)
        if name in exceptions:
            suffix_len = len(candidate) - 1
            break
        if name in rules or (len(candidate) > 1 and ".".join(candidate[1:]) in wildcards):
            suffix_len = len(candidate)
            break
    if len(labels) <= suffix_len:
        return None
    return ".".join(labels[-(suffix_len + 1) :])


def profile_yaml(name: str, url: str, project_host: str, pooler_host: str | None = None) -> str:
    """A profile file for the official Supabase CLI (`supabase --profile <file> ...`), pointing at us.

    pooler_host is the host name of the edge's Postgres front; the profile carries its registrable
    domain, which the official CLI requires of every pooler address it is given (as the hosted
    profile says supabase.com for aws-0-<region>.pooler.supabase.com)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise CliError("--name must be 1-63 lowercase letters, digits or '-'", EXIT_USAGE)
    if not _HOSTNAME.fullmatch(project_host):
        raise CliError(f"--project-host must be a host name, not {project_host!r}", EXIT_USAGE)
    entries = [("name", name), ("api_url", url), ("dashboard_url", url), ("project_host", project_host)]
    if pooler_host:
        domain = registrable_domain(pooler_host) if _HOSTNAME.fullmatch(pooler_host) else None
        if domain is None:
            raise CliError(f"--pooler-host must be a host name below a public suffix, not {pooler_host!r}", EXIT_USAGE)
        entries.append(("pooler_host", domain))
    # JSON strings are YAML scalars: nothing in a URL can break the file.
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in entries)


def edge_hosts(edge_root: str) -> tuple[str, str]:
    """(base domain, pooler host) from an edge's settings.json (roles/edge writes it; no secret)."""
    path = os.path.join(edge_root, "settings.json")
    try:
        with open(path, encoding="utf-8") as handle:
            settings = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CliError(f"--edge-root: cannot read {path}: {exc}", EXIT_USAGE) from exc
    if not isinstance(settings, dict):
        raise CliError(f"--edge-root: {path} is not the edge's settings", EXIT_USAGE)
    pooler = settings.get("pooler") or {}
    return str(settings.get("base_domain") or ""), str(pooler.get("host") or "") if isinstance(pooler, dict) else ""


def cmd_profile(args) -> int:
    edge_domain, edge_pooler = edge_hosts(args.edge_root) if args.edge_root else ("", "")
    project_host = args.project_host or edge_domain or os.environ.get("SUPAMANAGER_PUBLIC_HOST") or "localhost"
    pooler_host = args.pooler_host or edge_pooler or os.environ.get("SUPAMANAGER_POOLER_HOST") or None
    sys.stdout.write(profile_yaml(args.name, args.url_value, project_host, pooler_host))
    return 0


# -- the parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=f"daemon URL (SUPAMANAGER_URL, default {DEFAULT_URL})")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (better: SUPAMANAGER_API_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true", help="follow the operation, showing each step, until it ends")
    waiting.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits (default 1800)")

    parser = argparse.ArgumentParser(
        prog="supamanager",
        parents=[common],
        description="Manage SupaManager projects through supamanagerd's HTTP API.",
        epilog="Exit status: 0 done, 1 the request or operation failed, 2 bad usage, 3 daemon unreachable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="{projects,backups,tokens,profile,operations,fleet,orphans}"
    )

    projects = groups.add_parser("projects", help="list, create and change projects", parents=[common])
    sub = projects.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="all projects", parents=[common]).set_defaults(func=cmd_list)
    p = sub.add_parser("create", help="create a project", parents=[common, waiting])
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--organization-slug")
    p.add_argument("--region")
    p.add_argument(
        "--db-pass-from-env",
        dest="db_pass_env",
        action="store_true",
        help="take the postgres password from SUPAMANAGER_DB_PASS (never from the command line)",
    )
    p.set_defaults(func=cmd_create)
    for name, helptext, func in (
        ("get", "one project", cmd_get),
        ("pause", "pause a project", _lifecycle("/pause", "pausing")),
        ("resume", "resume (restore) a paused project", _lifecycle("/restore", "resuming")),
        ("restart", "restart a project's services", _lifecycle("/restart", "restarting")),
        ("delete", "delete a project and (by default) its data", cmd_delete),
        ("keys", "the project's anon and service_role keys", cmd_keys),
        ("health", "health of the project's services", cmd_health),
    ):
        parents = [common, waiting] if name in ("pause", "resume", "restart", "delete") else [common]
        p = sub.add_parser(name, help=helptext, parents=parents)
        p.add_argument("ref", help="project ref")
        p.set_defaults(func=func)
        if name == "delete":
            p.add_argument("--keep-volumes", dest="delete_volumes", action="store_false", help="keep the data volumes")
            p.add_argument(
                "--no-backup", dest="backup", action="store_false", help="skip the final backup (taken by default)"
            )
        if name == "health":
            p.add_argument("--service", dest="services", action="append", choices=HEALTH_SERVICES)

    p = sub.add_parser("move", help="move a project to another host of the inventory", parents=[common, waiting])
    p.add_argument("ref", help="project ref")
    p.add_argument("--to", required=True, help="the host it goes to (GET /platform/fleet lists them)")
    p.set_defaults(func=cmd_move)
    p = sub.add_parser("usage", help="what the project uses: CPU, memory, disk, database size", parents=[common])
    p.add_argument("ref", help="project ref")
    p.add_argument("--hours", type=int, default=24, help="hours of history (default 24): --json, api_requests")
    p.set_defaults(func=cmd_usage)
    p = sub.add_parser("healing", help="whether the daemon heals the project, and what it tried", parents=[common])
    p.add_argument("ref", help="project ref")
    switch = p.add_mutually_exclusive_group()
    switch.add_argument("--on", action="store_true", help="let the daemon restart failing services (the default)")
    switch.add_argument("--off", action="store_true", help="mark the project 'do not heal'")
    p.set_defaults(func=cmd_healing)
    toks = groups.add_parser("tokens", help="API tokens (sbp_...): create, list, revoke", parents=[common])
    sub = toks.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the named tokens", parents=[common]).set_defaults(func=cmd_tokens_list)
    p = sub.add_parser("create", help="make a token; prints it once", parents=[common])
    p.add_argument("name", help="a name to know it by (unique)")
    p.set_defaults(func=cmd_tokens_create)
    p = sub.add_parser("revoke", help="revoke a token (refused at once)", parents=[common])
    # Not `token`: that is the --token option's name.
    p.add_argument("token_id", metavar="token", help="the token's id or name")
    p.set_defaults(func=cmd_tokens_revoke)

    p = groups.add_parser(
        "profile",
        help="print a profile file for the official Supabase CLI",
        parents=[common],
        description="supamanager profile > p.yaml; SUPABASE_ACCESS_TOKEN=<token> supabase --profile p.yaml orgs list",
    )
    p.add_argument("--name", default="supamanager", help="the profile's name (default supamanager)")
    p.add_argument(
        "--project-host",
        help="host of the projects, https://<ref>.<project host> (default: the edge's base domain with --edge-root, "
        "else $SUPAMANAGER_PUBLIC_HOST or localhost)",
    )
    p.add_argument(
        "--pooler-host",
        help="host name of the edge's Postgres front; the profile gets its registrable domain (default: the edge's "
        "with --edge-root, else $SUPAMANAGER_POOLER_HOST, else none)",
    )
    p.add_argument(
        "--edge-root",
        help="read the base domain and the pooler host from this edge's settings (e.g. /var/lib/supamanager/edge)",
    )
    p.set_defaults(func=cmd_profile, offline=True)

    backups = groups.add_parser("backups", help="a project's backups", parents=[common])
    sub = backups.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="the backups and the point-in-time window", parents=[common])
    p.add_argument("ref", help="project ref")
    p.set_defaults(func=cmd_backups_list)
    p = sub.add_parser("create", help="take a backup now (a healthy project)", parents=[common, waiting])
    p.add_argument("ref", help="project ref")
    p.set_defaults(func=cmd_backups_create)
    p = sub.add_parser("restore", help="restore a backup, or a point in time, in place", parents=[common, waiting])
    p.add_argument("ref", help="project ref")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--id", type=int, help="the backup's id (backups list)")
    target.add_argument("-t", "--time", type=int, help="the point in time, unix seconds")
    p.set_defaults(func=cmd_backups_restore)
    p = sub.add_parser("schedule", help="the time of day (UTC) of the daily backup; --set changes it", parents=[common])
    p.add_argument("ref", help="project ref")
    p.add_argument("--set", metavar="HH:MM:SS", help="the new time of day, UTC")
    p.set_defaults(func=cmd_backups_schedule)
    p = sub.add_parser(
        "restore-point", help="make a named restore point (a backup), or --show one", parents=[common, waiting]
    )
    p.add_argument("ref", help="project ref")
    p.add_argument("name", nargs="?", help="its name (1-20 of A-Z a-z 0-9 . _ -); omitted: show the newest")
    p.add_argument("--show", action="store_true", help="show the restore point instead of making it")
    p.set_defaults(func=cmd_backups_restore_point)

    ops = groups.add_parser("operations", help="follow operations", parents=[common])
    sub = ops.add_subparsers(dest="command", required=True)
    p = sub.add_parser("get", help="an operation's state", parents=[common])
    p.add_argument("op_id")
    p.set_defaults(func=cmd_operation_get)
    p = sub.add_parser("wait", help="follow an operation until it ends", parents=[common])
    p.add_argument("op_id")
    p.add_argument("--timeout", type=float, default=1800)
    p.set_defaults(func=cmd_operation_wait)

    fleet = groups.add_parser("fleet", help="the hosts of the inventory: drain one", parents=[common])
    sub = fleet.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "drain", help="move every project off a host, one at a time; it takes no new project", parents=[common]
    )
    p.add_argument("host", help="the inventory host")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--show", action="store_true", help="only show how the drain goes")
    which.add_argument("--undo", action="store_true", help="the host takes projects again (the drain stops)")
    p.set_defaults(func=cmd_drain)

    orphans = groups.add_parser(
        "orphans", help="Docker objects labelled for projects the daemon does not know", parents=[common]
    )
    sub = orphans.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list them", parents=[common]).set_defaults(func=cmd_orphans_list)
    p = sub.add_parser("clean", help="remove orphaned containers and networks", parents=[common])
    p.add_argument("--volumes", action="store_true", help="also remove orphaned volumes (they may hold data)")
    p.add_argument("--ref", help="only the orphans of this ref")
    p.set_defaults(func=cmd_orphans_clean)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    url = getattr(args, "url", None) or os.environ.get("SUPAMANAGER_URL") or DEFAULT_URL
    token = getattr(args, "token", None) or os.environ.get("SUPAMANAGER_API_TOKEN")
    if not url.startswith(("http://", "https://")):
        print(f"supamanager: the URL must start with http:// or https://, not {url!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if getattr(args, "offline", False):
            args.url_value = url
            return args.func(args)
        return args.func(Client(url, token), args)
    except CliError as exc:  # its message may quote the daemon's
        _print(f"supamanager: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("supamanager: interrupted (the operation goes on in the daemon)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
