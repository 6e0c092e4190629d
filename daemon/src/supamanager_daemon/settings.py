"""Settings: a TOML file, overridden by SUPAMANAGER_* environment variables."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import pathlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from . import models, tokens

log = logging.getLogger(__name__)

# The checkout (collection root) this package sits in: daemon/src/supamanager_daemon/settings.py.
CHECKOUT = pathlib.Path(__file__).resolve().parents[3]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8085
    data_dir: pathlib.Path = pathlib.Path("/var/lib/supamanagerd")
    api_token: str | None = None
    image_registry: str = ""
    root: pathlib.Path = pathlib.Path("/var/lib/supamanager")
    poll_interval: float = 15.0
    max_jobs: int = 4
    # Where playbooks/ and ansible.cfg are: the collection checkout by default.
    collection_dir: pathlib.Path = CHECKOUT
    # The engine's unix socket: DOCKER_HOST's when it names one, as the docker CLI and the playbooks use.
    docker_socket: str = dataclasses.field(default_factory=lambda: _default_docker_socket())
    # SIGTERM: running jobs get this long to stop before they are killed.
    shutdown_timeout: float = 20.0
    job_timeout: float = 1800.0
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    # Host name clients use to reach the projects' ports (reported as database.host).
    public_host: str = "localhost"
    # The host's TLS Postgres front (roles/edge, supamanager_edge_pooler_host) and its transaction
    # port: when set, a project's pooler config (GET .../config/database/pooler) points at it, as
    # postgres.<ref>@<pooler_host>:<pooler_port>, not at the project's own pooler port.
    pooler_host: str = ""
    pooler_port: int = 6543
    # The extra var that carries a client's database password (create's db_pass, PATCH
    # .../database/password) to the role. Empty: db_pass is accepted and ignored (a collection whose
    # role has no such input).
    db_pass_var: str = "supabase_postgres_password"  # noqa: S105 - a variable name
    # Healing (healing.py): a service unhealthy or exited for heal_delay seconds is restarted; after
    # a failed restart the next waits heal_backoff seconds, doubling up to heal_backoff_max; after
    # heal_attempts restarts healing gives up (0: never heal). heal_timeout: how long a restart
    # waits for the service's health.
    heal_delay: float = 60.0
    heal_backoff: float = 30.0
    heal_backoff_max: float = 900.0
    heal_attempts: int = 5
    heal_timeout: float = 120.0
    # The backup schedule (operations/backup_schedule.py): the time of day (UTC, HH:MM:SS) of the
    # daily backup of a project that has no schedule of its own (PATCH .../database/backups/schedule
    # gives it one). "": only the projects with their own schedule are backed up (the default).
    backup_schedule_for: str = ""
    # Usage per project (fleet/usage.py): a point every usage_interval seconds, kept this many days.
    usage_interval: float = 300.0
    usage_retention_days: float = 7.0
    # Webhook deliveries (notifications.py): seconds one attempt may take, attempts, and the first
    # wait between two (doubling, at most notify_backoff_max).
    notify_timeout: float = 10.0
    notify_attempts: int = 5
    notify_backoff: float = 5.0
    notify_backoff_max: float = 300.0
    # Caps for a shared host: open event streams, projects, and failed authentications per client
    # address and minute (then 429); finished operations older than this many days are pruned.
    max_event_streams: int = 64
    max_projects: int = 1000
    auth_failures_per_minute: int = 20
    # The reverse proxies in front of the daemon, comma-separated IP addresses (the host's edge,
    # roles/edge, dials from 127.0.0.1). For a request from one of them the client address (the
    # failed-auth limit's key) is the last X-Forwarded-For hop that is not one of them; from any
    # other address X-Forwarded-For is ignored. Empty (the default): no proxy is trusted.
    trusted_proxies: str = ""
    operation_retention_days: float = 30.0
    # Custom hostnames (api/domains.py): the DNS server that answers the ownership check, host:port
    # (empty: the first nameserver of /etc/resolv.conf), and this host's public addresses,
    # comma-separated: a name whose A/AAAA records hold one of them is owned (a TXT record is the
    # other way). The edge's base domain comes from playbook_vars (supamanager_edge_base_domain).
    dns_resolver: str = ""
    edge_addresses: str = ""
    # SQL the daemon runs in a project's database (database/query, migrations): a statement longer
    # than this is cancelled; a result larger than this (as JSON) is refused. Both are a 400.
    sql_statement_timeout: float = 30.0
    sql_max_result_bytes: int = 10 * 1024 * 1024
    # An edge function deploy: the files of one upload together (upstream's limit is 20 MB).
    function_max_bytes: int = 20 * 1024 * 1024
    # The fleet (fleet/hosts.py): an Ansible inventory whose group supabase_hosts lists the Docker
    # hosts; "": this machine alone (the host `localhost` on docker_socket). region: a host's region
    # when the inventory gives none (and the single host's). host_max_jobs: playbook runs at once on
    # one host, unless its supamanager_max_jobs says otherwise (max_jobs caps them all together).
    inventory: str = ""
    region: str = "local"
    host_max_jobs: int = 4
    # Placement: the memory a project takes besides its database's size (a project without a size
    # counts as nano), against a host's supamanager_memory_mb.
    project_memory_mb: int = 1024
    # Admission on hosts of this machine (ansible_connection=local): a create starts only while the
    # 1-minute load per CPU is below admit_load and at least admit_memory_mb are available, and at
    # most one create starts every admit_spacing seconds (the load average lags by a minute).
    admit_load: float = 3.0
    admit_memory_mb: int = 1024
    admit_spacing: float = 10.0
    # Extra vars for every playbook (e.g. a port range); set in the config file only.
    playbook_vars: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def playbooks_dir(self) -> pathlib.Path:
        return self.collection_dir / "playbooks"

    @property
    def edge_base_domain(self) -> str:
        """The edge's base domain the playbooks get (empty: no edge, no custom hostnames)."""
        return str(self.playbook_vars.get("supamanager_edge_base_domain", "") or "")

    @property
    def edge_address_set(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.edge_addresses.split(",") if a.strip())

    @property
    def ansible_config(self) -> pathlib.Path | None:
        cfg = self.collection_dir / "ansible.cfg"
        return cfg if cfg.is_file() else None

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        return frozenset(str(ipaddress.ip_address(a.strip())) for a in self.trusted_proxies.split(",") if a.strip())

    @property
    def db_path(self) -> pathlib.Path:
        return self.data_dir / "supamanager.sqlite3"

    @property
    def jobs_dir(self) -> pathlib.Path:
        return self.data_dir / "jobs"

    @property
    def token_file(self) -> pathlib.Path:
        return self.data_dir / "api-token"


def _default_docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


# Environment variable -> field. Every field but playbook_vars can come from the environment.
ENV_VARS = {f"SUPAMANAGER_{f.name.upper()}": f.name for f in dataclasses.fields(Settings) if f.name != "playbook_vars"}


_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_RESOLVER = re.compile(r"\d{1,3}(\.\d{1,3}){3}:\d{1,5}")
_POOLER_HOST = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _coerce(name: str, value: Any) -> Any:
    field = {f.name: f for f in dataclasses.fields(Settings)}[name]
    kind = field.type
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        elif kind == "pathlib.Path":
            if not isinstance(value, str) or not value:
                raise ValueError
            value = pathlib.Path(value).expanduser().resolve()
        elif kind == "Mapping[str, Any]":
            if not isinstance(value, dict):
                raise ValueError
        elif not isinstance(value, str):
            raise ValueError
    except ValueError:
        raise SettingsError(f"setting {name!r} has an invalid value") from None
    if name in ("port",) and not 0 <= value <= 65535:
        raise SettingsError("setting 'port' must be 0..65535")
    at_least_one = (
        "max_jobs",
        "max_body_bytes",
        "max_event_streams",
        "max_projects",
        "auth_failures_per_minute",
        "sql_max_result_bytes",
        "function_max_bytes",
        "notify_attempts",
        "host_max_jobs",
        "project_memory_mb",
    )
    if name in at_least_one and value < 1:
        raise SettingsError(f"setting {name!r} must be at least 1")
    if name == "heal_attempts" and value < 0:
        raise SettingsError("setting 'heal_attempts' must be 0 or more")
    positive = (
        "poll_interval",
        "shutdown_timeout",
        "job_timeout",
        "heal_backoff",
        "heal_timeout",
        "sql_statement_timeout",
        "usage_interval",
        "usage_retention_days",
        "notify_timeout",
        "admit_load",
    )
    if name in (*positive, "operation_retention_days") and value <= 0:
        raise SettingsError(f"setting {name!r} must be positive")
    if name == "backup_schedule_for" and value and not models.is_time_of_day(value):
        raise SettingsError("setting 'backup_schedule_for' must be a time of day, HH:MM:SS (UTC), or empty")
    if name == "pooler_host" and value and not _POOLER_HOST.fullmatch(value):
        raise SettingsError("setting 'pooler_host' must be a lowercase DNS name, or empty")
    if name == "pooler_port" and not 0 < value <= 65535:
        raise SettingsError("setting 'pooler_port' must be 1..65535")
    if name == "trusted_proxies":
        for address in (a.strip() for a in value.split(",") if a.strip()):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise SettingsError(f"setting 'trusted_proxies': {address[:60]!r} is not an IP address") from None
    if name == "dns_resolver" and value and not _RESOLVER.fullmatch(value):
        raise SettingsError("setting 'dns_resolver' must be an IPv4 address and port (127.0.0.1:53), or empty")
    if name == "edge_addresses":
        for address in (a.strip() for a in value.split(",") if a.strip()):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise SettingsError(f"setting 'edge_addresses': {address[:60]!r} is not an IP address") from None
    if name == "region" and not _REGION.fullmatch(value):
        raise SettingsError("setting 'region' must be 1-64 lowercase letters, digits or '-'")
    if (
        name
        in (
            "heal_delay",
            "heal_backoff_max",
            "notify_backoff",
            "notify_backoff_max",
            "admit_memory_mb",
            "admit_spacing",
        )
        and value < 0
    ):
        raise SettingsError(f"setting {name!r} must not be negative")
    return value


def load_settings(config_path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults <- the TOML file (config_path or SUPAMANAGER_CONFIG) <- SUPAMANAGER_* variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_path = config_path or environ.get("SUPAMANAGER_CONFIG")
    if config_path:
        try:
            with open(config_path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_path}: {exc}") from None
        known = {f.name for f in dataclasses.fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s) in {config_path}: {', '.join(unknown)}")
        values.update(data)
    if environ.get("SUPAMANAGER_BACKUP_INTERVAL"):
        # Gone (a daily time per project now): refused rather than ignored, so no schedule is lost unseen.
        raise SettingsError(
            "SUPAMANAGER_BACKUP_INTERVAL is replaced by SUPAMANAGER_BACKUP_SCHEDULE_FOR (HH:MM:SS, UTC)"
        )
    for var, name in ENV_VARS.items():
        if var in environ and environ[var] != "":
            values[name] = environ[var]
    values = {name: _coerce(name, value) for name, value in values.items()}
    return Settings(**values)


def check_api_token(token: str, source: str) -> str:
    """The token, or SettingsError (never naming the token) when it is short or a placeholder."""
    why = tokens.weakness(token)
    if why is not None:
        raise SettingsError(f"the API token ({source}) {why}; generate one, e.g. openssl rand -hex 32")
    return token


def ensure_api_token(settings: Settings) -> str:
    """The configured token, else the one in the data dir, else a new one written there (0600).

    A short or placeholder token is refused (SettingsError): the daemon does not start with it.
    """
    if settings.api_token:
        return check_api_token(settings.api_token, "SUPAMANAGER_API_TOKEN")
    path = settings.token_file
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return check_api_token(token, str(path))
    token = tokens.mint()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    log.warning("no SUPAMANAGER_API_TOKEN set: generated an API token in %s (mode 0600)", path)
    return token
