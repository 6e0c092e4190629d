#!/usr/bin/python3
"""Stand-in for the upstream Supabase images: one program, one mode per service.

Runs inside the stand-in images (Debian bookworm: python3, psycopg2, yaml, jwt). Every mode honours
its upstream's container contract: ports, required environment, health endpoints, a real database
connection with the role it is given, HS256 JWT checks, and a fast exit on SIGTERM as PID 1.
See README.md next to this file for what each mode checks and what it does not.

Usage: standin.py <mode> [args...]   (the images call it through small wrappers in /usr/local/bin)
"""

import base64
import contextlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = "standin"


def log(msg):
    print(f"standin {MODE}: {msg}", file=sys.stderr, flush=True)


def die(msg, code=1):
    log(msg)
    sys.exit(code)


def require(*names):
    """Refuse to start, with one clear line, when a variable the upstream needs is unset or empty."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        die("missing required environment variable(s): " + ", ".join(missing))


def env(name, default=None):
    value = os.environ.get(name)
    return value if value else default


def exit_on_signals(cleanup=None):
    """PID 1 ignores signals it has no handler for: handle the stop signals and leave at once."""

    def handler(signum, _frame):
        if cleanup:
            with contextlib.suppress(Exception):
                cleanup(signum)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, handler)


def is_true(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------------------
# Database helpers


def pg_dsn(url):
    """psycopg2 takes postgres:// and postgresql:// URLs; Elixir services spell it ecto://."""
    if url.startswith("ecto://"):
        url = "postgresql://" + url[len("ecto://") :]
    return url


def pg_connect(dsn, **kwargs):
    import psycopg2

    if isinstance(dsn, dict):
        return psycopg2.connect(connect_timeout=3, **dsn, **kwargs)
    return psycopg2.connect(dsn, connect_timeout=3, **kwargs)


class DbProbe:
    """Connects with the service's own role and password; the health endpoint reports the result."""

    def __init__(self, dsn, after_connect=None, check_sql=None, check_params=(), ttl=1.0):
        self.dsn, self.after_connect, self.check_sql, self.ttl = dsn, after_connect, check_sql, ttl
        self.check_params = check_params
        self.lock = threading.Lock()
        self.checked_at = 0.0
        self.error = "not checked yet"
        self.last_logged = None

    def check(self):
        with self.lock:
            if time.monotonic() - self.checked_at < self.ttl:
                return self.error
            error = None
            try:
                conn = pg_connect(self.dsn)
                try:
                    with conn.cursor() as cur:
                        if self.after_connect:
                            cur.execute(self.after_connect)
                        cur.execute(self.check_sql or "select 1", self.check_params)
                        row = cur.fetchone()
                        if self.check_sql and not (row and row[0]):
                            error = f"check failed: {self.check_sql}"
                finally:
                    conn.close()
            except Exception as exc:
                error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.error, self.checked_at = error, time.monotonic()
            if error != self.last_logged:
                log("database reachable" if error is None else f"database unreachable: {error}")
                self.last_logged = error
            return error


# ---------------------------------------------------------------------------------------------
# JWT (HS256 only, as the self-hosted stack signs its keys)


class JwtError(Exception):
    pass


def verify_jwt(token, secret):
    import jwt

    if not token:
        raise JwtError("missing token")
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise JwtError(str(exc)) from exc


def bearer_token(headers):
    value = headers.get("Authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


# ---------------------------------------------------------------------------------------------
# A small HTTP server: handlers return (status, headers, body); body may be bytes, str or JSON data.


class Request:
    def __init__(self, handler):
        self.method = handler.command
        parsed = urllib.parse.urlsplit(handler.path)
        self.raw_path = handler.path
        self.path = parsed.path
        self.query_string = parsed.query
        self.query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""
        self.client = handler.client_address[0]

    def json(self):
        return json.loads(self.body or b"null")


def respond(status, body=None, headers=None):
    return status, headers or {}, body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    app = None
    server_name = "standin"

    def log_message(self, fmt, *args):  # quiet: health checks poll every few seconds
        pass

    def _handle(self):
        try:
            req = Request(self)
            status, headers, body = self.app(req)
        except Exception as exc:
            log(f"error handling {self.command} {self.path}: {exc!r}")
            status, headers, body = 500, {}, {"message": "stand-in internal error"}
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Server", self.server_name)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class DualStackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(host, port, app, ssl_context=None):
    handler = type("Handler", (_Handler,), {"app": staticmethod(app), "server_name": f"standin-{MODE}"})
    host = host or ""
    # Listen on IPv6 and IPv4 at once when the host asks for all addresses, as the upstream servers do.
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104
        try:

            class V6(DualStackServer):
                address_family = socket.AF_INET6

                def server_bind(self):
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    super().server_bind()

            server = V6(("::", port), handler)
        except OSError:
            server = DualStackServer(("0.0.0.0", port), handler)  # noqa: S104
    else:
        server = DualStackServer((host.strip("[]"), port), handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    return server


def serve(host, port, app, extra=()):
    """Serve app on host:port (plus extra (server) objects in threads) until a stop signal."""
    exit_on_signals()
    server = make_server(host, port, app)
    for other in extra:
        threading.Thread(target=other.serve_forever, daemon=True).start()
    log(f"listening on port {port}")
    server.serve_forever()


def parse_bind(value, default_port):
    """':5001', '0.0.0.0:9001', '[::]:80', '4000' -> (host, port)."""
    value = (value or "").strip()
    if not value:
        return "", default_port
    if value.isdigit():
        return "", int(value)
    host, _, port = value.rpartition(":")
    return host, int(port or default_port)


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (URLs come from the image's own config)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def health_from(probe, ok_body, name="database"):
    error = probe.check()
    if error is None:
        return respond(200, ok_body)
    return respond(503, {"message": f"{name} unreachable", "error": error})


# ---------------------------------------------------------------------------------------------
# db: PostgreSQL 15 with the upstream entrypoint's first-boot behaviour


def mode_db_entrypoint(args):
    """docker-entrypoint.sh: initialise an empty data directory like upstream, then run postgres."""
    import grp
    import pwd

    if not args or args[0] != "postgres":
        if args and args[0].startswith("-"):
            args = ["postgres", *args]
        else:
            os.execvp(args[0], args)  # noqa: S606 (upstream's entrypoint runs any other command as given)
    pgdata = env("PGDATA", "/var/lib/postgresql/data")
    port = env("PGPORT") or env("POSTGRES_PORT") or "5432"
    superuser = env("POSTGRES_USER", "supabase_admin")
    pw = pwd.getpwnam("postgres")
    initialised = os.path.exists(os.path.join(pgdata, "PG_VERSION"))
    if not initialised and not env("POSTGRES_PASSWORD"):
        die(
            "missing required environment variable(s): POSTGRES_PASSWORD "
            "(the database is uninitialised and the superuser password is not specified)"
        )

    if os.getuid() == 0:
        for path in (pgdata, "/var/run/postgresql", "/etc/postgresql-custom"):
            os.makedirs(path, exist_ok=True)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(pgdata, 0o700)
        os.setgroups([g.gr_gid for g in grp.getgrall() if "postgres" in g.gr_mem])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        os.environ["HOME"] = pw.pw_dir
    os.environ.setdefault("PGPASSWORD", env("POSTGRES_PASSWORD", ""))

    child = {"proc": None}

    def stop(_signum):
        proc = child["proc"]
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: roll back and disconnect clients
            try:
                proc.wait(0.8)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGQUIT)  # immediate shutdown; crash recovery on next start
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.15)

    exit_on_signals(stop)

    if not initialised:
        log(f"initialising an empty data directory {pgdata}")
        pwfile = "/tmp/standin-pwfile"
        with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(env("POSTGRES_PASSWORD"))
        subprocess.run(
            [
                "initdb",
                "-D",
                pgdata,
                "-U",
                superuser,
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        os.unlink(pwfile)
        # A server on the socket only, as upstream's temporary init server.
        temp = subprocess.Popen([*args, "-c", "listen_addresses=", "-p", port])
        child["proc"] = temp
        socket_dir = "/var/run/postgresql"
        for _ in range(300):
            ready = subprocess.run(
                ["pg_isready", "-q", "-h", socket_dir, "-p", port, "-U", superuser], check=False
            ).returncode
            if ready == 0:
                break
            if temp.poll() is not None:
                die("the temporary server exited during initialisation")
            time.sleep(0.1)
        init_env = dict(os.environ, PGHOST=socket_dir, PGPORT=port, PGUSER=superuser)
        init_env.setdefault("PGDATABASE", env("POSTGRES_DB", "postgres"))
        db_name = env("POSTGRES_DB", "postgres")
        psql = ["psql", "-v", "ON_ERROR_STOP=1", "--no-password", "--no-psqlrc", "-U", superuser, "-d", "postgres"]
        if db_name != "postgres":
            subprocess.run([*psql, "-c", f'create database "{db_name}"'], check=True, env=init_env)
        initdb_dir = "/docker-entrypoint-initdb.d"
        for name in sorted(os.listdir(initdb_dir)) if os.path.isdir(initdb_dir) else []:
            path = os.path.join(initdb_dir, name)
            if name.endswith(".sh"):
                log(f"running {path}")
                cmd = [path] if os.access(path, os.X_OK) else ["bash", path]
                result = subprocess.run(cmd, env=init_env, check=False)
            elif name.endswith(".sql"):
                log(f"running {path}")
                result = subprocess.run([*psql[:-2], "-d", db_name, "-f", path], env=init_env, check=False)
            else:
                continue
            if result.returncode != 0:
                temp.send_signal(signal.SIGQUIT)
                temp.wait()
                die(f"{path} failed (exit {result.returncode}); the data directory is left half-initialised")
        temp.send_signal(signal.SIGINT)
        temp.wait()
        child["proc"] = None
        log("initialisation complete; starting postgres")

    proc = subprocess.Popen(args)
    child["proc"] = proc
    code = proc.wait()
    sys.exit(code)


# ---------------------------------------------------------------------------------------------
# auth (GoTrue)


# The providers GoTrue's /settings lists under `external` (besides email, on unless switched off).
AUTH_PROVIDERS = (
    "anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook", "figma", "fly", "github", "gitlab",
    "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "phone", "slack", "slack_oidc", "spotify",
    "twitch", "twitter", "workos", "zoom",
)  # fmt: skip


AUTH_REFUSED_MARKER = "standin-refuses-this"


def mode_auth(_args):
    require("GOTRUE_JWT_SECRET", "GOTRUE_DB_DRIVER", "API_EXTERNAL_URL", "GOTRUE_SITE_URL")
    # Ours, for the tests: a site URL holding this marker makes auth refuse to start, as GoTrue does
    # on a setting it cannot take; daemon/tests/test_settings_api.py shows a settings change rolled back.
    if AUTH_REFUSED_MARKER in env("GOTRUE_SITE_URL"):
        die(f"GOTRUE_SITE_URL holds {AUTH_REFUSED_MARKER}: refusing to start (the stand-in's test marker)")
    db_url = env("GOTRUE_DB_DATABASE_URL") or env("DATABASE_URL")
    if not db_url:
        die("missing required environment variable(s): GOTRUE_DB_DATABASE_URL")
    secret = env("GOTRUE_JWT_SECRET")
    admin_roles = [r.strip() for r in env("GOTRUE_JWT_ADMIN_ROLES", "service_role").split(",")]
    # GoTrue migrates its tables into GOTRUE_DB_NAMESPACE (auth) as the role of its URL.
    namespace = env("GOTRUE_DB_NAMESPACE", "auth")
    probe = DbProbe(pg_dsn(db_url), check_sql="select has_schema_privilege(%s, 'CREATE')", check_params=(namespace,))

    def app(req):
        path = req.path.rstrip("/") or "/"
        if path == "/health":
            return health_from(
                probe, {"version": "standin", "name": "GoTrue", "description": "stand-in for supabase/gotrue"}
            )
        if path == "/settings":
            # As GoTrue answers it: each provider's switch from GOTRUE_EXTERNAL_<PROVIDER>_ENABLED.
            external = {p: is_true(env(f"GOTRUE_EXTERNAL_{p.upper()}_ENABLED", "false")) for p in AUTH_PROVIDERS}
            external["email"] = is_true(env("GOTRUE_EXTERNAL_EMAIL_ENABLED", "true"))
            return respond(
                200,
                {
                    "external": external,
                    "disable_signup": is_true(env("GOTRUE_DISABLE_SIGNUP", "false")),
                    "mailer_autoconfirm": is_true(env("GOTRUE_MAILER_AUTOCONFIRM", "false")),
                    "phone_autoconfirm": is_true(env("GOTRUE_SMS_AUTOCONFIRM", "false")),
                    "sms_provider": env("GOTRUE_SMS_PROVIDER", "twilio"),
                    "saml_enabled": is_true(env("GOTRUE_SAML_ENABLED", "false")),
                },
            )
        if path in ("/verify", "/callback", "/authorize", "/.well-known/jwks.json"):
            return respond(200, {"keys": []} if path.endswith("jwks.json") else {"standin": path})
        try:
            claims = verify_jwt(bearer_token(req.headers), secret)
        except JwtError as exc:
            return respond(401, {"code": 401, "error_code": "bad_jwt", "msg": f"invalid JWT: {exc}"})
        if path.startswith("/admin"):
            if claims.get("role") not in admin_roles:
                return respond(403, {"code": 403, "error_code": "not_admin", "msg": "User not allowed"})
            return respond(200, {"users": [], "aud": env("GOTRUE_JWT_AUD", "authenticated")})
        if path == "/user":
            return respond(200, {"id": claims.get("sub"), "role": claims.get("role"), "aud": claims.get("aud")})
        return respond(404, {"code": 404, "error_code": "not_found", "msg": "not found"})

    serve(env("GOTRUE_API_HOST", ""), int(env("GOTRUE_API_PORT") or env("PORT") or 9999), app)


# ---------------------------------------------------------------------------------------------
# rest (PostgREST): GET / and simple table reads and inserts, with the role of the JWT


FILTER_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "like", "ilike": "ilike"}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def mode_rest(_args):
    from psycopg2 import errors, sql

    require("PGRST_DB_URI", "PGRST_DB_SCHEMAS", "PGRST_JWT_SECRET")
    dsn = pg_dsn(env("PGRST_DB_URI"))
    schemas = [s.strip() for s in env("PGRST_DB_SCHEMAS").split(",") if s.strip()]
    anon_role = env("PGRST_DB_ANON_ROLE")
    secret = env("PGRST_JWT_SECRET")
    max_rows = int(env("PGRST_DB_MAX_ROWS", "0") or 0)
    extra_path = [s.strip() for s in env("PGRST_DB_EXTRA_SEARCH_PATH", "public").split(",") if s.strip()]
    probe = DbProbe(dsn)

    def error(status, code, message, details=None):
        return respond(status, {"code": code, "message": message, "details": details, "hint": None})

    def authenticate(req):
        token = bearer_token(req.headers)
        if token is None:
            if not anon_role:
                return None, error(401, "PGRST302", "Anonymous access is disabled")
            return {"role": anon_role}, None
        try:
            claims = verify_jwt(token, secret)
        except JwtError as exc:
            code = "PGRST303" if "expired" in str(exc).lower() else "PGRST301"
            return None, error(401, code, f"JWT invalid: {exc}")
        claims.setdefault("role", anon_role)
        if not claims.get("role"):
            return None, error(401, "PGRST302", "Anonymous access is disabled")
        return claims, None

    def run_as(claims, schema, build):
        """Run build(cur) in one transaction as the request's role, like PostgREST does."""
        conn = pg_connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("set local role {}").format(sql.Identifier(claims["role"])))
                cur.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                path = sql.SQL(", ").join(sql.Identifier(s) for s in [schema, *extra_path])
                cur.execute(sql.SQL("set local search_path to {}").format(path))
                result = build(cur)
            conn.commit()
            return result
        finally:
            conn.close()

    def where_clause(req):
        parts, params = [], []
        reserved = {"select", "order", "limit", "offset", "columns", "on_conflict"}
        for key, value in req.query:
            if key in reserved:
                continue
            if not IDENT.match(key):
                raise ValueError(f"bad column {key!r}")
            op, _, operand = value.partition(".")
            negate = False
            if op == "not":
                negate = True
                op, _, operand = operand.partition(".")
            col = sql.Identifier(key)
            if op in FILTER_OPS:
                if op in ("like", "ilike"):
                    operand = operand.replace("*", "%")
                cond = sql.SQL("{} " + FILTER_OPS[op] + " %s").format(col)
                params.append(operand)
            elif op == "is" and operand.lower() in ("null", "true", "false"):
                cond = sql.SQL("{} is " + operand.lower()).format(col)
            elif op == "in" and operand.startswith("(") and operand.endswith(")"):
                items = [i.strip().strip('"') for i in operand[1:-1].split(",")] if operand[1:-1] else []
                cond = sql.SQL("{} = any(%s)").format(col)
                params.append(items)
            else:
                raise ValueError(f"unsupported filter {key}={value}")
            parts.append(sql.SQL("not ({})").format(cond) if negate else cond)
        if not parts:
            return sql.SQL(""), params
        return sql.SQL(" where ") + sql.SQL(" and ").join(parts), params

    def table_request(req, claims, table):
        query = dict(req.query)
        profile_header = "Content-Profile" if req.method in ("POST", "PATCH", "DELETE") else "Accept-Profile"
        schema = req.headers.get(profile_header) or schemas[0]
        if schema not in schemas:
            return error(406, "PGRST106", f"The schema must be one of the following: {', '.join(schemas)}")
        target = sql.Identifier(schema, table)
        select = query.get("select", "*")
        if select.strip() == "*":
            cols = sql.SQL("*")
        else:
            names = [c.strip() for c in select.split(",")]
            if not all(IDENT.match(n) for n in names):
                return error(400, "PGRST100", f"unsupported select {select!r}")
            cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        try:
            where, params = where_clause(req)
        except ValueError as exc:
            return error(400, "PGRST100", str(exc))

        def build(cur):
            if req.method in ("GET", "HEAD"):
                stmt = sql.SQL("select {} from {}").format(cols, target) + where
                order = query.get("order")
                if order:
                    terms = []
                    for term in order.split(","):
                        name, _, direction = term.partition(".")
                        if not IDENT.match(name) or direction not in ("", "asc", "desc"):
                            raise ValueError(f"bad order {order!r}")
                        terms.append(sql.SQL("{} " + (direction or "asc")).format(sql.Identifier(name)))
                    stmt += sql.SQL(" order by ") + sql.SQL(", ").join(terms)
                limit = int(query["limit"]) if "limit" in query else None
                if max_rows:
                    limit = min(limit, max_rows) if limit is not None else max_rows
                if limit is not None:
                    stmt += sql.SQL(" limit {}").format(sql.Literal(limit))
                if "offset" in query:
                    stmt += sql.SQL(" offset {}").format(sql.Literal(int(query["offset"])))
                cur.execute(sql.SQL("select coalesce(json_agg(t), '[]') from ({}) t").format(stmt), params)
                return 200, cur.fetchone()[0]
            if req.method == "POST":
                rows = req.json()
                rows = rows if isinstance(rows, list) else [rows]
                if not rows:
                    return 201, []
                keys = sorted({k for row in rows for k in row})
                if not all(IDENT.match(k) for k in keys):
                    raise ValueError("bad column name in body")
                stmt = sql.SQL(
                    "with ins as (insert into {} ({}) select {} from json_populate_recordset(null::{}, %s) "
                    "returning *) select coalesce(json_agg(ins), '[]') from ins"
                ).format(
                    target,
                    sql.SQL(", ").join(sql.Identifier(k) for k in keys),
                    sql.SQL(", ").join(sql.Identifier(k) for k in keys),
                    target,
                )
                cur.execute(stmt, [json.dumps(rows)])
                return 201, cur.fetchone()[0]
            if req.method == "DELETE":
                stmt = sql.SQL(
                    "with del as (delete from {}{} returning *) select coalesce(json_agg(del), '[]') from del"
                )
                cur.execute(stmt.format(target, where), params)
                return 200, cur.fetchone()[0]
            if req.method == "PATCH":
                changes = req.json()
                if not isinstance(changes, dict) or not changes or not all(IDENT.match(k) for k in changes):
                    raise ValueError("PATCH wants a JSON object of columns")
                assignments = sql.SQL(", ").join(
                    sql.SQL("{} = (json_populate_record(null::{}, %s)).{}").format(
                        sql.Identifier(k), target, sql.Identifier(k)
                    )
                    for k in sorted(changes)
                )
                stmt = sql.SQL(
                    "with upd as (update {} set {}{} returning *) select coalesce(json_agg(upd), '[]') from upd"
                ).format(target, assignments, where)
                cur.execute(stmt, [json.dumps(changes)] * len(changes) + params)
                return 200, cur.fetchone()[0]
            return 405, None

        try:
            status, data = run_as(claims, schema, build)
        except ValueError as exc:
            return error(400, "PGRST100", str(exc))
        except errors.InsufficientPrivilege as exc:
            anonymous = claims.get("role") == anon_role and bearer_token(req.headers) is None
            return error(401 if anonymous else 403, "42501", str(exc).strip())
        except errors.UndefinedTable:
            return error(404, "PGRST205", f"Could not find the table '{schema}.{table}' in the schema cache")
        except errors.InvalidParameterValue as exc:
            return error(401, "PGRST301", str(exc).strip())
        except errors.Error as exc:
            return error(400, getattr(exc, "pgcode", None) or "PGRST000", str(exc).strip())
        except Exception as exc:
            return error(503, "PGRST000", f"Database client error: {exc}")
        if status == 405:
            return error(405, "PGRST117", f"Unsupported HTTP method: {req.method}")
        prefer = req.headers.get("Prefer", "")
        if req.method != "GET" and "return=representation" not in prefer:
            return respond(status, None)
        return respond(status, data)

    def rpc_request(req, claims, name):
        """POST /rpc/<fn> with named JSON arguments (GET: query parameters), as the request's role."""
        profile_header = "Content-Profile" if req.method == "POST" else "Accept-Profile"
        schema = req.headers.get(profile_header) or schemas[0]
        if schema not in schemas:
            return error(406, "PGRST106", f"The schema must be one of the following: {', '.join(schemas)}")
        args = (req.json() or {}) if req.method == "POST" else dict(req.query)
        if not isinstance(args, dict) or not all(IDENT.match(k) for k in args):
            return error(400, "PGRST100", "arguments must be a JSON object")
        call = sql.SQL("select to_json({}({}))").format(
            sql.Identifier(schema, name),
            sql.SQL(", ").join(sql.SQL("{} => %s").format(sql.Identifier(k)) for k in args),
        )
        try:
            result = run_as(claims, schema, lambda cur: cur.execute(call, list(args.values())) or cur.fetchone()[0])
        except errors.UndefinedFunction:
            return error(404, "PGRST202", f"Could not find the function {schema}.{name} in the schema cache")
        except errors.InsufficientPrivilege as exc:
            anonymous = bearer_token(req.headers) is None
            return error(401 if anonymous else 403, "42501", str(exc).strip())
        except errors.Error as exc:
            return error(400, getattr(exc, "pgcode", None) or "PGRST000", str(exc).strip())
        return respond(200, result)

    def app(req):
        claims, failure = authenticate(req)
        if failure:
            return failure
        path = req.path.strip("/")
        if not path:
            if probe.check() is not None:
                return error(503, "PGRST001", f"Database client error: {probe.error}")
            try:
                tables = run_as(
                    claims,
                    schemas[0],
                    lambda cur: (
                        cur.execute(
                            "select table_name from information_schema.tables where table_schema = %s order by 1",
                            (schemas[0],),
                        )
                        or [r[0] for r in cur.fetchall()]
                    ),
                )
            except Exception as exc:
                return error(503, "PGRST000", f"Database client error: {exc}")
            spec = {
                "swagger": "2.0",
                "info": {"title": "standin PostgREST", "version": "standin"},
                "paths": {"/": {}, **{f"/{t}": {} for t in tables}},
            }
            return respond(200, spec, {"Content-Type": "application/openapi+json; charset=utf-8"})
        if path.startswith("rpc/") and IDENT.match(path[4:]):
            return rpc_request(req, claims, path[4:])
        if not IDENT.match(path):
            return error(404, "PGRST125", f"Invalid path specified in request URL: /{path}")
        return table_request(req, claims, path)

    serve(env("PGRST_SERVER_HOST", ""), int(env("PGRST_SERVER_PORT", "3000")), app)


# ---------------------------------------------------------------------------------------------
# realtime


def mode_realtime(_args):
    require(
        "DB_HOST",
        "DB_PORT",
        "DB_USER",
        "DB_PASSWORD",
        "DB_NAME",
        "API_JWT_SECRET",
        "SECRET_KEY_BASE",
        "DB_ENC_KEY",
    )
    dsn = {
        "host": env("DB_HOST"),
        "port": env("DB_PORT"),
        "user": env("DB_USER"),
        "password": env("DB_PASSWORD"),
        "dbname": env("DB_NAME"),
    }
    # Realtime migrates into the schema its after-connect query selects (_realtime): it must exist.
    after = env("DB_AFTER_CONNECT_QUERY")
    probe = DbProbe(dsn, after_connect=after, check_sql="select current_schema() is not null" if after else None)
    secret = env("API_JWT_SECRET")
    tenants = {"realtime-dev"} if is_true(env("SEED_SELF_HOST", "false")) else set()

    def app(req):
        match = re.fullmatch(r"/api/tenants/([^/]+)/health", req.path.rstrip("/"))
        if match:
            try:
                verify_jwt(bearer_token(req.headers), secret)
            except JwtError as exc:
                return respond(401, {"message": f"invalid JWT: {exc}"})
            if match.group(1) not in tenants:
                return respond(404, {"message": "tenant not found"})
            error = probe.check()
            body = {"data": {"healthy": error is None, "db_connected": error is None, "connected_cluster": 1}}
            if error is not None:
                body["error"] = error
            return respond(200 if error is None else 503, body)
        if req.path in ("/healthcheck", "/api/health"):
            return health_from(probe, "ok")
        if req.path.startswith("/socket"):
            return respond(426, {"message": "the stand-in does not speak websocket"})
        return respond(404, {"message": "not found"})

    serve("", int(env("PORT", "4000")), app)


# ---------------------------------------------------------------------------------------------
# storage


def mode_storage(_args):
    require(
        "DATABASE_URL",
        "PGRST_JWT_SECRET",
        "ANON_KEY",
        "SERVICE_KEY",
        "POSTGREST_URL",
        "STORAGE_BACKEND",
        "FILE_STORAGE_BACKEND_PATH",
        "GLOBAL_S3_BUCKET",
    )
    # storage-api migrates its tables into schema storage as the role of its URL.
    probe = DbProbe(pg_dsn(env("DATABASE_URL")), check_sql="select has_schema_privilege('storage', 'CREATE')")
    secret = env("AUTH_JWT_SECRET") or env("PGRST_JWT_SECRET")
    root = os.path.join(env("FILE_STORAGE_BACKEND_PATH"), env("GLOBAL_S3_BUCKET"))
    # storage-api's global upload limit (bytes): a larger object is refused as upstream refuses it
    file_size_limit = int(env("FILE_SIZE_LIMIT", "52428800") or 52428800)

    def object_path(bucket, name):
        full = os.path.normpath(os.path.join(root, bucket, name))
        if not full.startswith(root + os.sep):
            raise ValueError("bad object path")
        return full

    def app(req):
        if req.path.rstrip("/") == "/status":
            return health_from(probe, None)
        try:
            claims = verify_jwt(bearer_token(req.headers), secret)
        except JwtError as exc:
            return respond(401, {"statusCode": "401", "error": "Unauthorized", "message": f"invalid JWT: {exc}"})
        parts = req.path.strip("/").split("/", 2)
        if parts == ["bucket"] and req.method == "GET":
            names = sorted(os.listdir(root)) if os.path.isdir(root) else []
            return respond(200, [{"id": n, "name": n, "public": False} for n in names])
        if len(parts) == 3 and parts[0] == "object":
            try:
                path = object_path(parts[1], parts[2])
            except ValueError as exc:
                return respond(400, {"statusCode": "400", "error": "Bad Request", "message": str(exc)})
            if req.method in ("POST", "PUT"):
                if claims.get("role") != "service_role":
                    return respond(403, {"statusCode": "403", "error": "Forbidden", "message": "service_role only"})
                if len(req.body) > file_size_limit:
                    too_large = "The object exceeded the maximum allowed size"
                    return respond(413, {"statusCode": "413", "error": "Payload too large", "message": too_large})
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(req.body)
                return respond(200, {"Key": f"{parts[1]}/{parts[2]}"})
            if req.method in ("GET", "HEAD"):
                if not os.path.isfile(path):
                    return respond(404, {"statusCode": "404", "error": "not_found", "message": "Object not found"})
                with open(path, "rb") as fh:
                    return respond(200, fh.read(), {"Content-Type": "application/octet-stream"})
        return respond(404, {"statusCode": "404", "error": "Not Found", "message": "not found"})

    serve(env("SERVER_HOST", ""), int(env("SERVER_PORT") or env("PORT") or 5000), app)


# ---------------------------------------------------------------------------------------------
# imgproxy


def mode_imgproxy(args):
    host, port = parse_bind(env("IMGPROXY_BIND"), 8080)
    if args and args[0] == "health":
        check_host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host.strip("[]")  # noqa: S104
        try:
            status, _ = http_get(f"http://{check_host}:{port}/health", timeout=3)
        except OSError as exc:
            print(f"imgproxy health: {exc}", file=sys.stderr)
            sys.exit(1)
        sys.exit(0 if status == 200 else 1)

    def app(req):
        if req.path == "/health":
            return respond(200, "imgproxy is running")
        return respond(404, "not found: the stand-in does not process images")

    serve(host, port, app)


# ---------------------------------------------------------------------------------------------
# functions (edge-runtime)


def mode_functions(args):
    if not args or args[0] != "start":
        die(f"unsupported arguments {args!r}; expected: start --main-service <dir> [--port N]")
    main_service, port = None, 9000
    rest = args[1:]
    while rest:
        flag = rest.pop(0)
        if flag in ("--main-service", "-m") and rest:
            main_service = rest.pop(0)
        elif flag in ("--port", "-p") and rest:
            port = int(rest.pop(0))
        elif flag.startswith("--main-service="):
            main_service = flag.split("=", 1)[1]
    if not main_service:
        die("missing --main-service")
    require("JWT_SECRET", "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL")
    if not os.path.isdir(main_service) or not any(
        os.path.exists(os.path.join(main_service, f)) for f in ("index.ts", "index.js", "index.tsx", "index.mjs")
    ):
        die(f"could not find an appropriate entrypoint in the main service {main_service}")
    # The runtime is a real Deno (copied into the image at build, build.py): runtime.js runs the main
    # service with upstream's EdgeRuntime.userWorkers, each function in a Deno process of its own.
    deno = shutil.which("deno") or die("deno is not installed in this image")
    runtime = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files", "functions", "runtime.js")
    os.execv(deno, [deno, "run", "--allow-all", "--no-prompt", "--quiet", runtime, main_service, str(port)])  # noqa: S606


# ---------------------------------------------------------------------------------------------
# analytics (Logflare)


def mode_analytics(_args):
    require(
        "DB_HOSTNAME",
        "DB_PORT",
        "DB_USERNAME",
        "DB_PASSWORD",
        "DB_DATABASE",
        "DB_SCHEMA",
        "LOGFLARE_PUBLIC_ACCESS_TOKEN",
        "LOGFLARE_PRIVATE_ACCESS_TOKEN",
    )
    dsn = {
        "host": env("DB_HOSTNAME"),
        "port": env("DB_PORT"),
        "user": env("DB_USERNAME"),
        "password": env("DB_PASSWORD"),
        "dbname": env("DB_DATABASE"),
    }
    # Logflare keeps its tables in DB_SCHEMA, which the project's logs.sql creates.
    probe = DbProbe(
        dsn, check_sql="select count(*) from pg_namespace where nspname = %s", check_params=(env("DB_SCHEMA"),)
    )
    tokens = [env("LOGFLARE_PUBLIC_ACCESS_TOKEN"), env("LOGFLARE_PRIVATE_ACCESS_TOKEN")]
    received = {"count": 0}

    def app(req):
        if req.path.rstrip("/") == "/health":
            return health_from(probe, {"status": "ok", "received": received["count"]})
        if req.path.startswith("/api/"):
            query = dict(req.query)
            key = req.headers.get("x-api-key") or query.get("api_key") or bearer_token(req.headers) or ""
            if not any(hmac.compare_digest(key.encode(), t.encode()) for t in tokens):
                return respond(401, {"error": "Unauthorized"})
            if req.path.startswith("/api/logs") and req.method == "POST":
                received["count"] += 1
                return respond(200, {"message": "Logged!"})
            return respond(200, {"result": []})
        return respond(404, {"error": "not found"})

    # Logflare migrates its schema before its endpoint opens: no answer at all (so upstream's plain
    # `curl http://localhost:4000/health` fails) until the database is reachable.
    exit_on_signals()
    while probe.check() is not None:
        time.sleep(1)
    serve("", int(env("PORT", "4000")), app)


# ---------------------------------------------------------------------------------------------
# vector


def mode_vector(args):
    import yaml

    config_path = "/etc/vector/vector.yaml"
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag in ("--config", "-c", "--config-yaml") and rest:
            config_path = rest.pop(0)
        elif flag.startswith("--config="):
            config_path = flag.split("=", 1)[1]
    try:
        with open(config_path) as fh:
            text = fh.read()
    except OSError as exc:
        die(f"cannot read config {config_path}: {exc}")

    # Vector interpolates ${VAR}, ${VAR:-default}, ${VAR?message} from the environment.
    def substitute(match):
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        value = os.environ.get(name)
        if op in ("?", ":?") and (value is None or (op == ":?" and value == "")):
            die(f"config {config_path}: environment variable {name} is required: {arg}")
        if op in ("-", ":-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value or ""

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}", substitute, text)
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        die(f"config {config_path} is not valid YAML: {exc}")
    if not isinstance(config, dict) or not config.get("sources") or not config.get("sinks"):
        die(f"config {config_path} must define sources and sinks")
    # Like vector, refuse inputs that name no component (a route transform's outputs are `name.route`).
    transforms = config.get("transforms") or {}
    known = set(config["sources"]) | set(transforms)
    for name, t in transforms.items():
        if isinstance(t, dict) and t.get("type") == "route":
            known |= {f"{name}.{r}" for r in t.get("route") or {}} | {f"{name}._unmatched"}
    for kind in ("transforms", "sinks"):
        for name, component in (config.get(kind) or {}).items():
            for wanted in (component or {}).get("inputs") or []:
                if wanted not in known:
                    die(
                        f'config {config_path}: input "{wanted}" for {kind[:-1]} "{name}" doesn\'t match any components'
                    )
    # fluent sources: Docker's fluentd log driver sends each container's lines here.
    records, records_lock = {}, threading.Lock()
    listeners = []
    for name, source in config["sources"].items():
        if isinstance(source, dict) and source.get("type") == "fluent":
            fluent_host, fluent_port = parse_bind(source.get("address", "0.0.0.0:24224"), 24224)
            listeners.append(fluent_server(fluent_host, fluent_port, records, records_lock))
            log(f"source {name}: fluent forward protocol on port {fluent_port}")
    api = config.get("api") or {}
    if not is_true(api.get("enabled", False)):
        log("api disabled: no health endpoint; idling")
        exit_on_signals()
        for listener in listeners:
            threading.Thread(target=listener.serve_forever, daemon=True).start()
        while True:
            time.sleep(3600)
    host, port = parse_bind(api.get("address", "127.0.0.1:8686"), 8686)

    def app(req):
        if req.path.rstrip("/") == "/health":
            return respond(200, {"ok": True})
        # Stand-in only: how many records each fluent tag sent (tests read it to see logs arrive).
        if req.path.rstrip("/") == "/standin/records":
            with records_lock:
                return respond(200, dict(records))
        return respond(404, {"message": "not found"})

    serve(host, port, app, extra=listeners)


class _NeedMore(Exception):
    """The buffer ends inside a msgpack object."""


def msgpack_decode(buf, pos=0):
    """One msgpack object from buf at pos -> (object, next pos); the subset fluent clients send."""

    def take(n):
        if pos + n > len(buf):
            raise _NeedMore
        return buf[pos : pos + n]

    if pos >= len(buf):
        raise _NeedMore
    b = buf[pos]
    pos += 1

    def sized(count_bytes):
        nonlocal pos
        n = int.from_bytes(take(count_bytes), "big")
        pos += count_bytes
        return n

    def raw(n):
        nonlocal pos
        data = take(n)
        pos += n
        return data

    def items(n):
        nonlocal pos
        out = []
        for _ in range(n):
            value, pos = msgpack_decode(buf, pos)
            out.append(value)
        return out

    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        return raw(b & 0x1F).decode("utf-8", "replace"), pos
    if 0x90 <= b <= 0x9F:
        return items(b & 0x0F), pos
    if 0x80 <= b <= 0x8F:
        flat = items(2 * (b & 0x0F))
        return dict(zip(flat[::2], flat[1::2], strict=True)), pos
    simple = {0xC0: None, 0xC2: False, 0xC3: True}
    if b in simple:
        return simple[b], pos
    if b in (0xC4, 0xC5, 0xC6):
        return raw(sized({0xC4: 1, 0xC5: 2, 0xC6: 4}[b])), pos
    if b in (0xD9, 0xDA, 0xDB):
        return raw(sized({0xD9: 1, 0xDA: 2, 0xDB: 4}[b])).decode("utf-8", "replace"), pos
    if b in (0xCC, 0xCD, 0xCE, 0xCF):
        return sized({0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]), pos
    if b in (0xD0, 0xD1, 0xD2, 0xD3):
        n = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b]
        return int.from_bytes(raw(n), "big", signed=True), pos
    if b in (0xCA, 0xCB):
        return struct.unpack(">f" if b == 0xCA else ">d", raw(4 if b == 0xCA else 8))[0], pos
    if b in (0xDC, 0xDD):
        return items(sized(2 if b == 0xDC else 4)), pos
    if b in (0xDE, 0xDF):
        flat = items(2 * sized(2 if b == 0xDE else 4))
        return dict(zip(flat[::2], flat[1::2], strict=True)), pos
    if 0xD4 <= b <= 0xD8:  # fixext: fluent's EventTime is ext type 0 with 8 bytes
        raw(1)
        return ("ext", raw(1 << (b - 0xD4))), pos
    if b in (0xC7, 0xC8, 0xC9):
        n = sized({0xC7: 1, 0xC8: 2, 0xC9: 4}[b])
        raw(1)
        return ("ext", raw(n)), pos
    raise ValueError(f"msgpack type byte 0x{b:02x} not understood")


def fluent_entries(message):
    """Number of records in one forward-protocol message (Message, Forward or PackedForward mode)."""
    if not isinstance(message, list) or len(message) < 2 or not isinstance(message[0], str):
        raise ValueError("not a fluent forward message")
    body = message[1]
    if isinstance(body, list):  # Forward: [tag, [[time, record], ...], option]
        return len(body)
    if isinstance(body, bytes):  # PackedForward: a stream of [time, record]
        count, pos = 0, 0
        while pos < len(body):
            _entry, pos = msgpack_decode(body, pos)
            count += 1
        return count
    return 1  # Message: [tag, time, record, option]


def fluent_server(host, port, records, lock):
    """A TCP server for fluent's forward protocol that counts the records per tag."""
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            buf = b""
            while True:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while buf:
                    try:
                        message, used = msgpack_decode(buf)
                    except _NeedMore:
                        break
                    except ValueError as exc:
                        log(f"fluent: dropping the connection: {exc}")
                        return
                    buf = buf[used:]
                    try:
                        count = fluent_entries(message)
                    except ValueError as exc:
                        log(f"fluent: dropping the connection: {exc}")
                        return
                    with lock:
                        records[message[0]] = records.get(message[0], 0) + count

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    return Server((host.strip("[]") or "0.0.0.0", port), Handler)  # noqa: S104 - the container's own port


# ---------------------------------------------------------------------------------------------
# kong: declarative config, routes, key-auth, acl, basic-auth, request-transformer, proxying


KONG_BUNDLED = {
    "acl",
    "basic-auth",
    "cors",
    "ip-restriction",
    "key-auth",
    "post-function",
    "pre-function",
    "request-termination",
    "request-transformer",
    "response-transformer",
    "rate-limiting",
    "prometheus",
}


def kong_load(path, enabled):
    import yaml

    with open(path) as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict) or "_format_version" not in config:
        raise ValueError("declarative config needs a _format_version")
    consumers = {}
    for c in config.get("consumers") or []:
        consumers[c["username"]] = {"keys": [], "groups": [], "basic": []}
        for cred in c.get("keyauth_credentials") or []:
            if cred.get("key"):
                consumers[c["username"]]["keys"].append(str(cred["key"]))
    for acl in config.get("acls") or []:
        consumers[acl["consumer"]]["groups"].append(acl["group"])
    for cred in config.get("basicauth_credentials") or []:
        consumers[cred["consumer"]]["basic"].append((str(cred["username"]), str(cred["password"])))
    for plugin in config.get("plugins") or []:  # global plugins
        if plugin["name"] not in enabled:
            raise ValueError(f"plugin '{plugin['name']}' is not enabled (KONG_PLUGINS)")
    routes = []
    for svc in config.get("services") or []:
        url = urllib.parse.urlsplit(svc["url"])
        for plugin in svc.get("plugins") or []:
            if plugin["name"] not in enabled:
                raise ValueError(
                    f"plugin '{plugin['name']}' (service {svc['name']}) is not enabled; "
                    "add it to the 'plugins' configuration property (KONG_PLUGINS)"
                )
        for route in svc.get("routes") or []:
            for prefix in route.get("paths") or []:
                routes.append(
                    {
                        "prefix": prefix,
                        "strip": route.get("strip_path", True),
                        "host": url.hostname,
                        "port": url.port or (443 if url.scheme == "https" else 80),
                        "path": url.path or "/",
                        "plugins": {p["name"]: p.get("config") or {} for p in svc.get("plugins") or []},
                        "service": svc["name"],
                        "name": route.get("name") or "",
                    }
                )
    routes.sort(key=lambda r: len(r["prefix"]), reverse=True)
    prometheus = any(p["name"] == "prometheus" for p in config.get("plugins") or [])
    return consumers, routes, prometheus


class KongCounters:
    """What Kong 2.8's global prometheus plugin counts: each request that matched a route, by
    service, route and answered status, served as `kong_http_status` on the status listener's
    /metrics in the Prometheus text format."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def count(self, route, status):
        key = (route["service"], route["name"], str(status))
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def text(self):
        lines = [
            "# HELP kong_http_status HTTP status codes per service/route in Kong",
            "# TYPE kong_http_status counter",
        ]
        with self.lock:
            for (service, route, code), n in sorted(self.counts.items()):
                lines.append(f'kong_http_status{{service="{service}",route="{route}",code="{code}"}} {n}')
        lines += ["# HELP kong_nginx_metric_errors_total Number of nginx-lua-prometheus errors",
                  "# TYPE kong_nginx_metric_errors_total counter", "kong_nginx_metric_errors_total 0"]  # fmt: skip
        return "\n".join(lines) + "\n"


def kong_upstream_path(route, path):
    rest = path[len(route["prefix"]) :] if route["strip"] else path
    base = route["path"]
    if not rest:
        return base
    if base.endswith("/") or rest.startswith("/"):
        return base.rstrip("/") + "/" + rest.lstrip("/")
    return base + "/" + rest


def mode_kong(args):
    if args and args[0] == "health":
        try:
            socket.create_connection(("127.0.0.1", 8000), timeout=2).close()
        except OSError:
            print("Error: Kong is not running at /usr/local/kong", file=sys.stderr)
            sys.exit(1)
        print("nginx.......running\n\nKong is healthy at /usr/local/kong")
        sys.exit(0)
    if args and args[0] == "version":
        print("Kong 2.8.1 (stand-in)")
        sys.exit(0)
    if not args or args[0] not in ("docker-start", "start"):
        die(f"unsupported command {args!r}; the stand-in knows: docker-start, start, health, version")
    if env("KONG_DATABASE") != "off":
        die("KONG_DATABASE must be 'off': the stand-in only runs with a declarative config")
    require("KONG_DECLARATIVE_CONFIG")
    plugins = [p.strip() for p in env("KONG_PLUGINS", "bundled").split(",")]
    enabled = set(plugins) | (KONG_BUNDLED if "bundled" in plugins else set())
    try:
        consumers, routes, prometheus = kong_load(env("KONG_DECLARATIVE_CONFIG"), enabled)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        die(f"error parsing declarative config file {env('KONG_DECLARATIVE_CONFIG')}: {exc}")
    except Exception as exc:
        die(f"error parsing declarative config file {env('KONG_DECLARATIVE_CONFIG')}: {exc}")
    log(f"loaded {len(routes)} routes and {len(consumers)} consumers")

    def find_consumer_by_key(key):
        for name, c in consumers.items():
            if any(hmac.compare_digest(key.encode(), k.encode()) for k in c["keys"]):
                return name
        return None

    def kong_error(status, message, headers=None):
        return respond(status, {"message": message}, headers)

    counters = KongCounters()

    def app(req):
        route = next((r for r in routes if req.path.startswith(r["prefix"])), None)
        if route is None:
            return kong_error(404, "no Route matched with those values")
        answer = routed(req, route)
        if prometheus:  # the log phase: every answer of a matched route, the plugins' refusals too
            counters.count(route, answer[0])
        return answer

    def status_app(req):
        if req.path == "/metrics" and prometheus:
            return respond(200, counters.text(), {"Content-Type": "text/plain; charset=UTF-8"})
        if req.path == "/status":
            return respond(200, {"server": {"connections_active": 1}, "database": {"reachable": True}})
        return respond(404, {"message": "Not found"})

    def routed(req, route):
        plugins = route["plugins"]
        headers = {k: v for k, v in req.headers.items()}
        cors = {"Access-Control-Allow-Origin": "*"} if "cors" in plugins else {}
        if "cors" in plugins and req.method == "OPTIONS" and "Access-Control-Request-Method" in req.headers:
            return respond(
                200,
                None,
                {
                    **cors,
                    "Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT",
                    "Access-Control-Allow-Headers": req.headers.get("Access-Control-Request-Headers", ""),
                },
            )
        if "request-termination" in plugins:
            conf = plugins["request-termination"]
            return kong_error(int(conf.get("status_code", 503)), conf.get("message") or "Service unavailable", cors)
        consumer = None
        if "key-auth" in plugins:
            conf = plugins["key-auth"]
            key = None
            for name in conf.get("key_names") or ["apikey"]:
                key = req.headers.get(name) or dict(req.query).get(name)
                if key:
                    break
            if not key:
                return kong_error(401, "No API key found in request", {**cors, "WWW-Authenticate": 'Key realm="kong"'})
            consumer = find_consumer_by_key(key)
            if consumer is None:
                return kong_error(401, "Invalid authentication credentials", cors)
            if conf.get("hide_credentials"):
                names = {n.lower() for n in conf.get("key_names") or ["apikey"]}
                headers = {k: v for k, v in headers.items() if k.lower() not in names}
                query = [(k, v) for k, v in req.query if k.lower() not in names]
                req.query_string = urllib.parse.urlencode(query)
        if "basic-auth" in plugins:
            value = req.headers.get("Authorization", "")
            if not value.lower().startswith("basic "):
                return kong_error(401, "Unauthorized", {**cors, "WWW-Authenticate": 'Basic realm="kong"'})
            try:
                user, _, password = base64.b64decode(value[6:].strip()).decode().partition(":")
            except Exception:
                return kong_error(401, "Invalid authentication credentials", cors)
            consumer = next(
                (
                    name
                    for name, c in consumers.items()
                    for u, p in c["basic"]
                    if hmac.compare_digest(u.encode(), user.encode())
                    and hmac.compare_digest(p.encode(), password.encode())
                ),
                None,
            )
            if consumer is None:
                return kong_error(401, "Invalid authentication credentials", cors)
            if plugins["basic-auth"].get("hide_credentials"):
                headers.pop("Authorization", None)
        if "acl" in plugins:
            conf = plugins["acl"]
            groups = set(consumers.get(consumer, {}).get("groups", []))
            allow, deny = set(conf.get("allow") or []), set(conf.get("deny") or [])
            if consumer is None:
                return kong_error(401, "Unauthorized", cors)
            if (allow and not groups & allow) or (groups & deny):
                return kong_error(403, "You cannot consume this service", cors)
            if not conf.get("hide_groups_header"):
                headers["X-Consumer-Groups"] = ", ".join(sorted(groups))
        if consumer:
            headers["X-Consumer-Username"] = consumer
        if "request-transformer" in plugins:
            conf = plugins["request-transformer"]
            for name in (conf.get("remove") or {}).get("headers") or []:
                name = next(iter(name)) if isinstance(name, dict) else str(name)
                headers = {k: v for k, v in headers.items() if k.lower() != name.split(":")[0].strip().lower()}
            for action in ("replace", "add"):
                for item in (conf.get(action) or {}).get("headers") or []:
                    if isinstance(item, dict):  # `- Name: value` once the shell's eval dropped the quotes
                        item = "".join(f"{k}:{v if v is not None else ''}" for k, v in item.items())
                    name, _, value = str(item).partition(":")
                    name, value = name.strip(), value.strip()
                    present = any(k.lower() == name.lower() for k in headers)
                    # Lua templates ($(...)) cannot run here: an Authorization template means upstream's
                    # "the client's bearer, else the apikey as a bearer"; other templates are dropped.
                    if "$(" in value or value == "" or value.startswith("$"):
                        if name.lower() != "authorization":
                            continue
                        value = bearer_token(req.headers) and req.headers.get("Authorization")
                        if not value and req.headers.get("apikey"):
                            value = "Bearer " + req.headers["apikey"]
                        if not value:
                            continue
                    if (action == "replace" and present) or (action == "add" and not present):
                        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
                        headers[name] = value
        target = kong_upstream_path(route, req.path)
        if req.query_string:
            target += "?" + req.query_string
        return proxy(req, route, target, headers, cors)

    def proxy(req, route, target, headers, cors):
        import http.client

        for hop in ("Host", "Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Upgrade"):
            headers = {k: v for k, v in headers.items() if k.lower() != hop.lower()}
        headers["Host"] = f"{route['host']}:{route['port']}"
        headers["X-Forwarded-For"] = req.client
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-Host"] = req.headers.get("Host", "")
        headers["X-Forwarded-Prefix"] = route["prefix"]
        try:
            conn = http.client.HTTPConnection(route["host"], route["port"], timeout=60)
            conn.request(req.method, target, body=req.body or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in ("content-length", "connection", "server")}
            conn.close()
        except socket.gaierror:
            return kong_error(503, "name resolution failed", cors)
        except OSError:
            return kong_error(502, "An invalid response was received from the upstream server", cors)
        out.update(cors)
        out["Via"] = "kong/2.8.1 (stand-in)"
        return respond(resp.status, body, out)

    import ssl

    exit_on_signals()
    https = None
    cert, key = "/usr/local/kong/ssl/standin.crt", "/usr/local/kong/ssl/standin.key"
    if os.path.exists(cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        https = make_server("", 8443, app, ssl_context=ctx)
    extra = [https] if https else []
    if env("KONG_STATUS_LISTEN"):  # upstream: "0.0.0.0:8100" (plus flags such as ssl: not taken here)
        host, port = parse_bind(env("KONG_STATUS_LISTEN").split()[0], 8100)
        extra.append(make_server(host, port, status_app))
    serve("", 8000, app, extra=extra)


# ---------------------------------------------------------------------------------------------
# studio, and the `node` executable that Studio's healthcheck calls


def mode_studio(_args):
    require(
        "STUDIO_PG_META_URL",
        "SUPABASE_URL",
        "SUPABASE_PUBLIC_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_KEY",
        "POSTGRES_PASSWORD",
    )
    meta = env("STUDIO_PG_META_URL").rstrip("/")

    def app(req):
        path = req.path.rstrip("/") or "/"
        if path == "/api/platform/profile":
            return respond(200, {"id": 1, "primary_email": "johndoe@supabase.io", "username": "johndoe"})
        if path == "/":
            return respond(200, b"<html><body>Supabase Studio stand-in</body></html>", {"Content-Type": "text/html"})
        match = re.fullmatch(r"/api/platform/pg-meta/[^/]+/(tables|schemas)", path)
        if match:
            try:
                status, body = http_get(f"{meta}/{match.group(1)}", timeout=10)
            except OSError as exc:
                return respond(502, {"message": f"pg-meta unreachable: {exc}"})
            return respond(status, body, {"Content-Type": "application/json"})
        return respond(404, {"message": "not found"})

    import ipaddress

    # HOSTNAME is a bind address for Next.js (compose sets "::"); Docker sets it to the container id.
    host = env("HOSTNAME", "")
    try:
        host = "" if ipaddress.ip_address(host).is_unspecified else host
    except ValueError:
        host = ""
    serve(host, int(env("PORT", "3000")), app)


def mode_node(args):
    """`node -e "<js>"`: only the fetch-and-check form of Studio's healthcheck; `node <file>` runs Studio."""
    if args and args[0] in ("-e", "--eval") and len(args) > 1:
        code = args[1]
        match = re.search(r"fetch\(\s*['\"`]([^'\"`]+)['\"`]", code)
        if not match:
            die("the stand-in node only evaluates a fetch('<url>') health check")
        try:
            status, _ = http_get(match.group(1), timeout=8)
        except OSError as exc:
            print(f"TypeError: fetch failed ({exc})", file=sys.stderr)
            sys.exit(1)
        wanted = re.search(r"status\s*!==?\s*(\d+)", code)
        ok = status == int(wanted.group(1)) if wanted else 200 <= status < 300
        if not ok:
            print(f"Error: {status}", file=sys.stderr)
        sys.exit(0 if ok else 1)
    if args and args[0] in ("-v", "--version"):
        print("v20.0.0-standin")
        sys.exit(0)
    global MODE
    MODE = "studio"
    mode_studio(args[1:])


# ---------------------------------------------------------------------------------------------
# supavisor: /app/bin/migrate, /app/bin/supavisor eval, /app/bin/server (session and transaction ports)


TENANT_FILE = "/tmp/standin-supavisor-tenant.json"


def supavisor_common():
    require("DATABASE_URL", "SECRET_KEY_BASE", "VAULT_ENC_KEY", "API_JWT_SECRET", "METRICS_JWT_SECRET")
    # Supavisor keeps its tables in schema _supavisor of DATABASE_URL's database (pooler.sql makes it).
    return DbProbe(
        pg_dsn(env("DATABASE_URL")), check_sql="select count(*) from pg_namespace where nspname = '_supavisor'"
    )


def mode_supavisor_migrate(_args):
    probe = supavisor_common()
    error = probe.check()
    if error is not None:
        die(f"migrations failed: cannot connect to DATABASE_URL: {error}")
    log("migrations done")


def mode_supavisor_cli(args):
    supavisor_common()
    if not args or args[0] not in ("eval", "rpc"):
        die(f"unsupported command {args!r}; the stand-in knows: eval <script>")
    require("POOLER_TENANT_ID")
    # The script is not run, but what reaches eval must be the pooler script (a shell quoting slip,
    # such as a literal `$$(cat ...)`, hands Elixir something else, and upstream fails on it).
    code = args[1] if len(args) > 1 else ""
    if not re.search(r"Supavisor|:supavisor", code):
        die(f"eval: the expression is not Supavisor's pooler script (starts with {code[:40]!r})")
    tenant = {
        "external_id": env("POOLER_TENANT_ID"),
        "db_host": env("POSTGRES_HOST", "db"),
        "db_port": int(env("POSTGRES_PORT", "5432")),
        "db_database": env("POSTGRES_DB", "postgres"),
    }
    with open(TENANT_FILE, "w") as fh:
        json.dump(tenant, fh)
    print(f"Supavisor tenant created: {tenant['external_id']} -> {tenant['db_host']}:{tenant['db_port']}")


def pg_error_packet(message, code="XX000"):
    fields = b"SFATAL\0VFATAL\0C" + code.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + (len(fields) + 4).to_bytes(4, "big") + fields


def mode_supavisor_server(_args):
    import asyncio

    probe = supavisor_common()
    if os.path.exists(TENANT_FILE):
        with open(TENANT_FILE) as fh:
            tenant = json.load(fh)
    else:
        require("POOLER_TENANT_ID")
        tenant = {
            "external_id": env("POOLER_TENANT_ID"),
            "db_host": env("POSTGRES_HOST", "db"),
            "db_port": int(env("POSTGRES_PORT", "5432")),
        }

    cancel_delay = float(env("STANDIN_CANCEL_DELAY", "0"))

    def app(req):
        if req.path.rstrip("/") == "/api/health":
            return health_from(probe, None)
        return respond(404, {"error": "not found"})

    async def read_packet(reader):
        head = await reader.readexactly(4)
        length = int.from_bytes(head, "big")
        if length < 8 or length > 10000:
            raise ValueError("bad startup packet length")
        return head + await reader.readexactly(length - 4)

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(reader, writer):
        try:
            while True:
                packet = await read_packet(reader)
                code = int.from_bytes(packet[4:8], "big")
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: plain text only
                    writer.write(b"N")
                    await writer.drain()
                    continue
                break
            if code == 80877102:  # CancelRequest goes straight to the database
                # Answered at once and forwarded after, as PgBouncer does: a cancel can reach the
                # server after the client has moved on. STANDIN_CANCEL_DELAY widens that window.
                writer.close()
                await asyncio.sleep(cancel_delay)
                _, up_writer = await asyncio.open_connection(tenant["db_host"], tenant["db_port"])
                up_writer.write(packet)
                await up_writer.drain()
                up_writer.close()
                return
            items = packet[8:].split(b"\0")
            params = dict(zip(items[0:-2:2], items[1:-1:2], strict=True))
            user = params.get(b"user", b"").decode()
            name, _, tenant_id = user.rpartition(".")
            if not name or tenant_id != tenant["external_id"]:
                writer.write(pg_error_packet(f"Tenant or user not found: {user}", "XX000"))
                await writer.drain()
                writer.close()
                return
            params[b"user"] = name.encode()
            body = packet[4:8] + b"".join(k + b"\0" + v + b"\0" for k, v in params.items()) + b"\0"
            up_reader, up_writer = await asyncio.open_connection(tenant["db_host"], tenant["db_port"])
            up_writer.write((len(body) + 4).to_bytes(4, "big") + body)
            await up_writer.drain()
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError) as exc:
            with contextlib.suppress(Exception):
                writer.write(pg_error_packet(f"pooler: {exc}"))
                writer.close()

    async def main():
        servers = []
        for port in (int(env("PROXY_PORT_SESSION", "5432")), int(env("PROXY_PORT_TRANSACTION", "6543"))):
            servers.append(await asyncio.start_server(handle, host=None, port=port))
        log(f"tenant {tenant['external_id']} -> {tenant['db_host']}:{tenant['db_port']}")
        await asyncio.gather(*(s.serve_forever() for s in servers))

    exit_on_signals()
    api = make_server("", int(env("PORT", "4000")), app)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    asyncio.run(main())


# ---------------------------------------------------------------------------------------------

MODES = {
    "db-entrypoint": mode_db_entrypoint,
    "auth": mode_auth,
    "rest": mode_rest,
    "realtime": mode_realtime,
    "storage": mode_storage,
    "imgproxy": mode_imgproxy,
    "functions": mode_functions,
    "analytics": mode_analytics,
    "vector": mode_vector,
    "kong": mode_kong,
    "studio": mode_studio,
    "node": mode_node,
    "supavisor-migrate": mode_supavisor_migrate,
    "supavisor": mode_supavisor_cli,
    "supavisor-server": mode_supavisor_server,
}


def main(argv):
    global MODE
    if len(argv) < 2 or argv[1] not in MODES:
        print(f"usage: {argv[0]} <{'|'.join(MODES)}> [args...]", file=sys.stderr)
        return 2
    MODE = argv[1]
    MODES[MODE](argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
