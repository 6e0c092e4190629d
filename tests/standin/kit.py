"""Helpers for the stand-in contract tests: Docker objects with a random prefix, HTTP, JWTs."""

import json
import pathlib
import secrets
import subprocess
import time
import urllib.error
import urllib.request

import jwt
import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
SAMPLE = HERE / "sample-init"
LABEL = "supamanager.test"
IMAGES = {
    service: f"standin.local/{ref}"
    for service, ref in yaml.safe_load((REPO / "roles/project/defaults/main.yml").read_text())[
        "supabase_images"
    ].items()
}
BASE_IMAGE = "standin.local/base:bookworm"
TAGS = dict(IMAGES)
PINNED = {}


def pin_images():
    for service, ref in [*TAGS.items(), ("base", BASE_IMAGE)]:
        PINNED[service] = docker("image", "inspect", "--format", "{{ .Id }}", ref).stdout.strip()


def image_of(service):
    return PINNED.get(service) or TAGS.get(service) or BASE_IMAGE


PASSWORD = "pw-" + secrets.token_hex(12)
JWT_SECRET = secrets.token_urlsafe(32)


def make_jwt(role, secret=JWT_SECRET, **claims):
    now = int(time.time())
    return jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 3600, **claims}, secret, "HS256")


ANON_KEY = make_jwt("anon")
SERVICE_KEY = make_jwt("service_role")
BAD_KEY = make_jwt("service_role", secret="not-the-secret-" + secrets.token_hex(16))


def docker(*args, check=True, timeout=120):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


class Container:
    def __init__(self, name, network):
        self.name, self.network = name, network

    @property
    def ip(self):
        fmt = '{{ (index .NetworkSettings.Networks "' + self.network + '").IPAddress }}'
        return docker("inspect", "-f", fmt, self.name).stdout.strip()

    def url(self, port, path="/"):
        return f"http://{self.ip}:{port}{path}"

    def exec(self, *cmd, env=None):
        args = ["exec"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return docker(*args, self.name, *cmd, check=False)

    def logs(self):
        proc = docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def state(self):
        return json.loads(docker("inspect", "-f", "{{ json .State }}", self.name).stdout)

    def wait_exit(self, timeout=90):
        """Exit code of a container that is expected to stop on its own."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state["Status"] in ("exited", "dead"):
                return state["ExitCode"]
            time.sleep(0.2)
        raise AssertionError(f"{self.name} still running after {timeout}s; logs:\n{self.logs()}")

    def wait_ok(self, *cmd, timeout=120):
        """Run cmd in the container until it succeeds (a healthcheck, typically)."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.exec(*cmd)
            if proc.returncode == 0:
                return proc
            if time.monotonic() > deadline:
                raise AssertionError(f"{cmd} never succeeded in {self.name}: {proc.stderr}\nlogs:\n{self.logs()}")
            if self.state()["Status"] != "running":
                raise AssertionError(f"{self.name} stopped; logs:\n{self.logs()}")
            time.sleep(0.3)

    def stop_within_a_second(self):
        """docker stop with a 1 s grace period: exit code 0 means PID 1 left on SIGTERM in time,
        137 that Docker had to kill it. (Wall-clock time would measure the engine's load too.)"""
        docker("stop", "-t", "1", self.name)
        return self.state()["ExitCode"] == 0


class Stack:
    """A throwaway network and the containers a test module starts on it; close() removes them."""

    def __init__(self):
        self.id = secrets.token_hex(4)
        self.network = f"standin-test-{self.id}"
        docker("network", "create", "--label", f"{LABEL}={self.id}", self.network)
        self.containers = []

    def run(
        self,
        service,
        *args,
        env=None,
        name=None,
        aliases=(),
        volumes=(),
        entrypoint=None,
        image=None,
        extra=(),
    ):
        name = f"standin-test-{self.id}-{name or service}"
        cmd = ["run", "-d", "--name", name, "--label", f"{LABEL}={self.id}", "--network", self.network]
        for alias in aliases:
            cmd += ["--network-alias", alias]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for volume in volumes:
            cmd += ["-v", volume]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        cmd += [*extra, image or image_of(service), *args]
        self.containers.append(name)
        docker(*cmd)
        return Container(name, self.network)

    def close(self):
        if self.containers:
            docker("rm", "-f", "-v", *self.containers, check=False)
        docker("network", "rm", self.network, check=False)


def http(method, url, headers=None, body=None, timeout=10):
    """(status, headers, parsed JSON or text) without proxies from the environment."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 (http only)
    if isinstance(body, dict | list):
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode(errors="replace")


def wait_http(url, status=200, timeout=90, headers=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = http("GET", url, headers=headers, timeout=3)
            if last[0] == status:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"GET {url} never answered {status}; last: {last}")


DB_ENV = {
    "POSTGRES_HOST": "/var/run/postgresql",
    "PGPORT": "5432",
    "POSTGRES_PORT": "5432",
    "PGPASSWORD": PASSWORD,
    "POSTGRES_PASSWORD": PASSWORD,
    "PGDATABASE": "postgres",
    "POSTGRES_DB": "postgres",
    "JWT_SECRET": JWT_SECRET,
    "JWT_EXP": "3600",
}
DB_MOUNTS = [
    f"{SAMPLE}/realtime.sql:/docker-entrypoint-initdb.d/migrations/99-realtime.sql:ro",
    f"{SAMPLE}/webhooks.sql:/docker-entrypoint-initdb.d/init-scripts/98-webhooks.sql:ro",
    f"{SAMPLE}/roles.sql:/docker-entrypoint-initdb.d/init-scripts/99-roles.sql:ro",
    f"{SAMPLE}/jwt.sql:/docker-entrypoint-initdb.d/init-scripts/99-jwt.sql:ro",
    f"{SAMPLE}/_supabase.sql:/docker-entrypoint-initdb.d/migrations/97-_supabase.sql:ro",
    f"{SAMPLE}/logs.sql:/docker-entrypoint-initdb.d/migrations/99-logs.sql:ro",
    f"{SAMPLE}/pooler.sql:/docker-entrypoint-initdb.d/migrations/99-pooler.sql:ro",
]
DB_COMMAND = ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf", "-c", "log_min_messages=fatal"]
PG_ISREADY = ("pg_isready", "-U", "postgres", "-h", "localhost")


def start_db(stack, name="db", volumes=(), env=None):
    """The db stand-in as upstream's compose file runs it, with the sample init scripts."""
    db = stack.run(
        "db", *DB_COMMAND, name=name, aliases=["db"], env={**DB_ENV, **(env or {})}, volumes=[*DB_MOUNTS, *volumes]
    )
    db.wait_ok(*PG_ISREADY, timeout=240)
    return db


def service_env(service, password=PASSWORD):
    """Each service's environment as upstream's compose file sets it (db host `db`)."""
    db = f"{password}@db:5432"
    envs = {
        "auth": {
            "GOTRUE_API_HOST": "0.0.0.0",  # noqa: S104 (inside the container, as upstream)
            "GOTRUE_API_PORT": "9999",
            "API_EXTERNAL_URL": "http://localhost:8000",
            "GOTRUE_DB_DRIVER": "postgres",
            "GOTRUE_DB_DATABASE_URL": f"postgres://supabase_auth_admin:{db}/postgres",
            "GOTRUE_SITE_URL": "http://localhost:3000",
            "GOTRUE_JWT_ADMIN_ROLES": "service_role",
            "GOTRUE_JWT_AUD": "authenticated",
            "GOTRUE_JWT_SECRET": JWT_SECRET,
        },
        "rest": {
            "PGRST_DB_URI": f"postgres://authenticator:{db}/postgres",
            "PGRST_DB_SCHEMAS": "public,storage,graphql_public",
            "PGRST_DB_MAX_ROWS": "1000",
            "PGRST_DB_EXTRA_SEARCH_PATH": "public",
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_JWT_SECRET": JWT_SECRET,
            "PGRST_DB_USE_LEGACY_GUCS": "false",
        },
        "realtime": {
            "PORT": "4000",
            "DB_HOST": "db",
            "DB_PORT": "5432",
            "DB_USER": "supabase_admin",
            "DB_PASSWORD": password,
            "DB_NAME": "postgres",
            "DB_AFTER_CONNECT_QUERY": "SET search_path TO _realtime",
            "DB_ENC_KEY": "supabaserealtime",
            "API_JWT_SECRET": JWT_SECRET,
            "SECRET_KEY_BASE": secrets.token_hex(32),
            "METRICS_JWT_SECRET": JWT_SECRET,
            "APP_NAME": "realtime",
            "SEED_SELF_HOST": "true",
        },
        "storage": {
            "ANON_KEY": ANON_KEY,
            "SERVICE_KEY": SERVICE_KEY,
            "POSTGREST_URL": "http://rest:3000",
            "PGRST_JWT_SECRET": JWT_SECRET,
            "DATABASE_URL": f"postgres://supabase_storage_admin:{db}/postgres",
            "STORAGE_BACKEND": "file",
            "GLOBAL_S3_BUCKET": "stub",
            "FILE_STORAGE_BACKEND_PATH": "/var/lib/storage",
            "FILE_SIZE_LIMIT": "1024",
            "TENANT_ID": "stub",
            "REGION": "stub",
        },
        "meta": {
            "PG_META_PORT": "8080",
            "PG_META_DB_HOST": "db",
            "PG_META_DB_PORT": "5432",
            "PG_META_DB_NAME": "postgres",
            "PG_META_DB_USER": "supabase_admin",
            "PG_META_DB_PASSWORD": password,
            "CRYPTO_KEY": secrets.token_hex(16),
        },
        "analytics": {
            "LOGFLARE_NODE_HOST": "127.0.0.1",
            "DB_USERNAME": "supabase_admin",
            "DB_DATABASE": "_supabase",
            "DB_HOSTNAME": "db",
            "DB_PORT": "5432",
            "DB_PASSWORD": password,
            "DB_SCHEMA": "_analytics",
            "LOGFLARE_PUBLIC_ACCESS_TOKEN": "public-token",
            "LOGFLARE_PRIVATE_ACCESS_TOKEN": "private-token",
            "LOGFLARE_SINGLE_TENANT": "true",
            "POSTGRES_BACKEND_URL": f"postgresql://supabase_admin:{db}/_supabase",
            "POSTGRES_BACKEND_SCHEMA": "_analytics",
        },
        "supavisor": {
            "PORT": "4000",
            "POSTGRES_PORT": "5432",
            "POSTGRES_DB": "postgres",
            "POSTGRES_PASSWORD": password,
            "DATABASE_URL": f"ecto://supabase_admin:{db}/_supabase",
            "CLUSTER_POSTGRES": "true",
            "SECRET_KEY_BASE": secrets.token_hex(32),
            "VAULT_ENC_KEY": secrets.token_hex(16),
            "API_JWT_SECRET": JWT_SECRET,
            "METRICS_JWT_SECRET": JWT_SECRET,
            "REGION": "local",
            "POOLER_TENANT_ID": "tenant-one",
            "POOLER_POOL_MODE": "transaction",
        },
        "functions": {
            "JWT_SECRET": JWT_SECRET,
            "SUPABASE_URL": "http://kong:8000",
            "SUPABASE_PUBLIC_URL": "http://localhost:8000",
            "SUPABASE_ANON_KEY": ANON_KEY,
            "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY,
            "SUPABASE_DB_URL": f"postgresql://postgres:{db}/postgres",
            "VERIFY_JWT": "true",
        },
        "studio": {
            "HOSTNAME": "::",
            "STUDIO_PG_META_URL": "http://meta:8080",
            "POSTGRES_PASSWORD": password,
            "SUPABASE_URL": "http://kong:8000",
            "SUPABASE_PUBLIC_URL": "http://localhost:8000",
            "SUPABASE_ANON_KEY": ANON_KEY,
            "SUPABASE_SERVICE_KEY": SERVICE_KEY,
            "AUTH_JWT_SECRET": JWT_SECRET,
        },
        "imgproxy": {"IMGPROXY_BIND": ":5001", "IMGPROXY_LOCAL_FILESYSTEM_ROOT": "/", "IMGPROXY_USE_ETAG": "true"},
        "vector": {"LOGFLARE_PUBLIC_ACCESS_TOKEN": "public-token"},
        "kong": {
            "KONG_DATABASE": "off",
            "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml",
            "KONG_DNS_ORDER": "LAST,A,CNAME",
            "KONG_PLUGINS": "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction",
            "SUPABASE_ANON_KEY": ANON_KEY,
            "SUPABASE_SERVICE_KEY": SERVICE_KEY,
            "DASHBOARD_USERNAME": "supabase",
            "DASHBOARD_PASSWORD": "dashboard-" + secrets.token_hex(8),
        },
    }
    return dict(envs[service])


# Upstream's commands and healthchecks from docker-compose.yml, unchanged.
SUPAVISOR_COMMAND = [
    "/bin/sh",
    "-c",
    '/app/bin/migrate && /app/bin/supavisor eval "$(cat /etc/pooler/pooler.exs)" && /app/bin/server',
]
KONG_ENTRYPOINT = (
    "bash",
    ["-c", 'eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml && /docker-entrypoint.sh kong docker-start'],
)
FUNCTIONS_COMMAND = ["start", "--main-service", "/home/deno/functions/main"]
VECTOR_COMMAND = ["--config", "/etc/vector/vector.yml"]
HEALTHCHECKS = {
    "auth": ["wget", "--no-verbose", "--tries=1", "--spider", "http://localhost:9999/health"],
    "realtime": [
        "sh",
        "-c",
        f'curl -sSfL --head -o /dev/null -H "Authorization: Bearer {ANON_KEY}" '
        "http://localhost:4000/api/tenants/realtime-dev/health",
    ],
    "storage": ["wget", "--no-verbose", "--tries=1", "--spider", "http://storage:5000/status"],
    "imgproxy": ["imgproxy", "health"],
    "analytics": ["curl", "http://localhost:4000/health"],
    "vector": ["wget", "--no-verbose", "--tries=1", "--spider", "http://vector:9001/health"],
    "studio": [
        "node",
        "-e",
        "fetch('http://studio:3000/api/platform/profile')"
        ".then((r) => {if (r.status !== 200) throw new Error(r.status)})",
    ],
    "supavisor": ["curl", "-sSfL", "--head", "-o", "/dev/null", "http://127.0.0.1:4000/api/health"],
    "kong": ["kong", "health"],
    "db": list(PG_ISREADY),
    # No upstream healthcheck: probe the port the way the role does.
    "rest": ["curl", "-sf", "-o", "/dev/null", "http://localhost:3000/"],
    "meta": ["curl", "-sf", "-o", "/dev/null", "http://localhost:8080/tables"],
    "functions": ["curl", "-s", "-o", "/dev/null", "http://localhost:9000/"],
}
# The network alias each service has upstream (its healthcheck may use it).
ALIASES = {"realtime": "realtime-dev.supabase-realtime", "supavisor": "supavisor"}


def start_service(stack, service, env=None, drop=(), name=None, password=PASSWORD, extra_aliases=()):
    """Start a service as upstream's compose file does: its command, entrypoint, mounts and alias."""
    environment = {**service_env(service, password), **(env or {})}
    for key in drop:
        environment.pop(key, None)
    args, volumes, entrypoint = [], [], None
    if service == "supavisor":
        args, volumes = SUPAVISOR_COMMAND, [f"{SAMPLE}/pooler.exs:/etc/pooler/pooler.exs:ro"]
    elif service == "functions":
        args, volumes = FUNCTIONS_COMMAND, [f"{SAMPLE}/functions:/home/deno/functions:ro"]
    elif service == "vector":
        args, volumes = VECTOR_COMMAND, [f"{SAMPLE}/vector.yml:/etc/vector/vector.yml:ro"]
    elif service == "kong":
        entrypoint, args = KONG_ENTRYPOINT
        volumes = [f"{SAMPLE}/kong.yml:/home/kong/temp.yml:ro"]
    elif service == "rest":
        args = ["postgrest"]
    return stack.run(
        service,
        *args,
        env=environment,
        name=name,
        aliases=[ALIASES.get(service, service), *extra_aliases],
        volumes=volumes,
        entrypoint=entrypoint,
    )
