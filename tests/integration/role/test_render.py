"""The rendered project directory: docker-compose.yml and .env that Docker Compose accepts on their own.

Runs the role's render steps (definition, .env, templates) through ansible-playbook with fixed
ports and keys, so no Docker object is made; the lifecycle tests cover the rest.
"""

import json
import stat
import textwrap

import pytest
import yaml

from tests.conftest import REPO, VENV_BIN, run
from tests.integration.role.conftest import one_line

DEFAULTS = REPO / "roles" / "project" / "defaults" / "main.yml"

SECRETS = {
    "jwt_secret": "test-jwt-secret-0123456789-abcdefghijklmnopq",
    "anon_key": "anon.key.value-0123456789",
    "service_role_key": "service.key.value-0123456789",
}
PORTS = {
    "kong_http": 61001,
    "kong_https": 61002,
    "postgres": 61003,
    "pooler_transaction": 61004,
    "vector_fluent": 61005,
}


def render(tmp_path, venv_env, ref, **extra):
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        textwrap.dedent(
            """\
            - name: Render a project directory only
              hosts: localhost
              gather_facts: false
              tasks:
                - name: Validate
                  ansible.builtin.include_role:
                    name: supamanager.supabase.project
                    tasks_from: validate.yml
                - name: Fixed keys, ports and secrets
                  ansible.builtin.set_fact:
                    _supabase_jwt: "{{ test_jwt }}"
                    _supabase_ports: "{{ test_ports }}"
                    _supabase_secrets: "{{ test_secrets }}"
                - name: Render
                  ansible.builtin.include_role:
                    name: supamanager.supabase.project
                    tasks_from: "{{ item }}"
                  loop: [settings.yml, env.yml, instance_size.yml, definition.yml, render.yml]
                # The role writes them in the module run that starts the services (project_services,
                # with the same module_utils); here, without Docker, project_files writes them.
                - name: Write what the role rendered
                  supamanager.supabase.project_files:
                    path: "{{ _supabase_project_dir }}"
                    directories: "{{ _supabase_directories }}"
                    files: "{{ _supabase_files }}"
                  no_log: true
            """
        )
    )
    variables = {
        "project_ref": ref,
        "supamanager_root": str(tmp_path / "root"),
        "supabase_image_registry": "standin.local",
        "test_jwt": SECRETS,
        "test_ports": PORTS,
        "test_secrets": {
            "POSTGRES_PASSWORD": "pgpass-0123456789abcdef",
            "DASHBOARD_PASSWORD": "dash-0123456789",
            "DASHBOARD_USERNAME": "dashuser-0123456",
            "DB_ENC_KEY": "enckey0123456789",
        }
        | {
            name: f"{name.lower()}-0123456789"
            for name in [
                "SECRET_KEY_BASE",
                "VAULT_ENC_KEY",
                "PG_META_CRYPTO_KEY",
                "LOGFLARE_PUBLIC_ACCESS_TOKEN",
                "LOGFLARE_PRIVATE_ACCESS_TOKEN",
                "S3_PROTOCOL_ACCESS_KEY_ID",
                "S3_PROTOCOL_ACCESS_KEY_SECRET",
            ]
        },
        **extra,
    }
    proc = run(["ansible-playbook", str(playbook), "-e", json.dumps(variables)], env=venv_env)
    return tmp_path / "root" / "projects" / ref, proc


def compose_config(project_dir, venv_env):
    proc = run(
        [
            str(VENV_BIN / "docker-compose"),
            "--env-file",
            ".env",
            "-f",
            "docker-compose.yml",
            "config",
            "--format",
            "json",
        ],
        env=venv_env,
        cwd=project_dir,
    )
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, venv_env):
    tmp_path = tmp_path_factory.mktemp("render")
    # The upstream services only: the backup agent (on by default) has its own test below.
    project_dir, proc = render(tmp_path, venv_env, "render-test", supabase_backup_wal_enabled=False)
    return project_dir, proc


def test_compose_accepts_the_rendered_files(rendered, venv_env):
    project_dir, _ = rendered
    config = compose_config(project_dir, venv_env)
    assert config["name"] == "supamanager-render-test"
    assert len(config["services"]) == 13
    kong = config["services"]["kong"]
    assert kong["container_name"] == "supamanager-render-test-kong"
    assert kong["image"] == "standin.local/kong:2.8.1"
    # the status listener (the prometheus plugin's /metrics) stays on the project network: not published
    assert {p["published"] for p in kong["ports"]} == {"61001", "61002"}
    assert kong["environment"]["SUPABASE_ANON_KEY"] == SECRETS["anon_key"]
    assert kong["environment"]["KONG_STATUS_LISTEN"] == "0.0.0.0:8100"
    assert "prometheus" in kong["environment"]["KONG_PLUGINS"].split(",")
    pooler = config["services"]["supavisor"]
    assert {p["published"] for p in pooler["ports"]} == {"61003", "61004"}
    assert config["services"]["realtime"]["networks"]["default"]["aliases"] == [
        "realtime",
        "realtime-dev.supabase-realtime",
    ]
    assert config["networks"]["default"]["name"] == "supamanager-render-test"
    assert config["volumes"]["db-data"]["name"] == "supamanager-render-test-db-data"
    for name, service in config["services"].items():
        assert service["labels"] == {"supamanager.project": "render-test", "supamanager.service": name}
        assert service["restart"] == "unless-stopped"
        # rest has none (upstream has none; the gateway check covers it): every other service has one.
        assert ("healthcheck" in service) == (name != "rest"), name
    # Compose resolved the in-network database port to 5432, the host side to the allocated port.
    assert "@db:5432/postgres" in config["services"]["rest"]["environment"]["PGRST_DB_URI"]


def test_bind_mounts_carry_selinux_labels(rendered, venv_env):
    """Every project file a container mounts has z or Z; a path several services mount is shared (z)."""
    project_dir, _ = rendered
    config = compose_config(project_dir, venv_env)
    labels = {}
    for name, service in config["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind" and mount["source"].startswith(str(project_dir)):
                labels.setdefault(mount["source"], []).append((name, mount.get("bind", {}).get("selinux")))
    assert len(labels) >= 10
    for source, users in labels.items():
        assert all(label in {"z", "Z"} for _, label in users), (source, users)
        if len(users) > 1:
            assert {label for _, label in users} == {"z"}, (source, users)
    assert labels[str(project_dir / "volumes" / "functions")] == [("functions", "z"), ("studio", "z")]
    assert labels[str(project_dir / "volumes" / "db" / "roles.sql")] == [("db", "Z")]


def test_env_file_is_private_and_uses_upstream_names(rendered):
    project_dir, _ = rendered
    env_file = project_dir / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    names = {line.split("=", 1)[0] for line in env_file.read_text().splitlines() if line and not line.startswith("#")}
    for name in [
        "POSTGRES_PASSWORD",
        "JWT_SECRET",
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "KONG_HTTP_PORT",
        "KONG_HTTPS_PORT",
        "POSTGRES_PORT",
        "POOLER_PROXY_PORT_TRANSACTION",
        "POOLER_TENANT_ID",
        "DASHBOARD_USERNAME",
        "DASHBOARD_PASSWORD",
    ]:
        assert name in names


def test_config_files_are_rendered_without_secrets(rendered):
    project_dir, proc = rendered
    for relative in ["volumes/api/kong.yml", "volumes/logs/vector.yml", "docker-compose.yml", "project.json"]:
        text = (project_dir / relative).read_text()
        for secret in SECRETS.values():
            assert secret not in text, relative
        if relative.endswith((".yml", ".json")):
            yaml.safe_load(text)
    # request counts per service for the usage collector: the prometheus plugin on every route
    assert yaml.safe_load((project_dir / "volumes/api/kong.yml").read_text())["plugins"] == [{"name": "prometheus"}]
    vector = yaml.safe_load((project_dir / "volumes/logs/vector.yml").read_text())
    assert vector["sources"] == {"project_containers": {"type": "fluent", "address": "0.0.0.0:24224"}}
    assert vector["transforms"]["router"]["route"]["db"] == '.appname == "supamanager-render-test-db"'
    for secret in SECRETS.values():
        assert secret not in proc.stdout


def test_healthcheck_timing_follows_the_engine(rendered, tmp_path, venv_env):
    """Docker 20.10 (this host) has no start_interval and compose refuses it there: only the interval,
    20 s (not upstream's 5: 20 projects' checks share the host's cores). On Docker 25 and later Docker
    checks every start_interval while a container starts, and every 60 s once it is healthy."""
    project_dir, _ = rendered
    old_engine = yaml.safe_load((project_dir / "docker-compose.yml").read_text())["services"]
    newer, _ = render(tmp_path, venv_env, "render-docker25", _supabase_engine_start_interval=True)
    new_engine = yaml.safe_load((newer / "docker-compose.yml").read_text())["services"]
    defaults = yaml.safe_load(DEFAULTS.read_text())
    for name, service in old_engine.items():
        if name == "rest":
            continue
        check = service["healthcheck"]
        assert check["interval"] == "20s", name
        assert "start_interval" not in check, name
        assert new_engine[name]["healthcheck"]["interval"] == "60s", name
        assert new_engine[name]["healthcheck"]["start_interval"] == defaults["supabase_healthcheck_start_interval"]
        assert new_engine[name]["healthcheck"]["start_period"] == defaults["supabase_healthcheck_start_interval_period"]
        assert new_engine[name]["healthcheck"]["test"] == check["test"], name
    # The old engine keeps each service's own start period (meta's, for the real postgres-meta).
    assert old_engine["meta"]["healthcheck"]["start_period"] == "120s"
    compose_config(newer, venv_env)


def test_logs_can_be_turned_off_and_a_loaded_host_gets_one_start_period(tmp_path, venv_env):
    """Without the logging pair; supabase_healthcheck_start_period (a very loaded host's patience)
    becomes every healthcheck's start period, meta's own too (one render for both)."""
    project_dir, _ = render(
        tmp_path,
        venv_env,
        "render-nologs",
        supabase_logs_enabled=False,
        supabase_backup_wal_enabled=False,
        supabase_healthcheck_start_period="600s",
    )
    rendered_file = yaml.safe_load((project_dir / "docker-compose.yml").read_text())["services"]
    checks = [service["healthcheck"] for service in rendered_file.values() if "healthcheck" in service]
    assert len(checks) == 10 and all(check["start_period"] == "600s" for check in checks)
    config = compose_config(project_dir, venv_env)
    assert len(config["services"]) == 11
    assert "analytics" not in config["services"] and "vector" not in config["services"]
    for service in config["services"].values():
        assert not set(service.get("depends_on", {})) & {"analytics", "vector"}


@pytest.fixture(scope="module")
def rendered_nano(tmp_path_factory, venv_env):
    """Every service (the backup agent runs by default) at the smallest instance size."""
    tmp_path = tmp_path_factory.mktemp("render-nano")
    return tmp_path, render(tmp_path, venv_env, "render-test", supabase_instance_size="nano")[0]


def test_the_backup_agent_streams_wal_from_the_database_image_into_the_repository(rendered, rendered_nano, venv_env):
    config = compose_config(rendered_nano[1], venv_env)
    assert len(config["services"]) == 14
    agent, db = config["services"]["backup"], config["services"]["db"]
    assert agent["image"] == db["image"] == "standin.local/supabase/postgres:15.8.1.085"
    assert agent["depends_on"]["db"]["condition"] == "service_healthy"
    (wal,) = agent["volumes"]
    assert wal["target"] == "/wal" and wal["source"].endswith("/backups/render-test/wal")
    assert "pg_receivewal --slot=supamanager_backup --directory=/wal/current --synchronous" in agent["command"][-1]
    assert agent["environment"]["PGPASSWORD"] == "pgpass-0123456789abcdef"
    # the database lets the agent (same network, superuser) open replication connections
    assert "host replication supabase_admin samenet scram-sha-256" in db["command"][-1]
    # PID 1 is Docker's init, so a stop takes a moment, not the 10 s a PID 1 ignoring SIGTERM costs
    assert agent["init"] is True
    # off: no agent
    assert "backup" not in compose_config(rendered[0], venv_env)["services"]


def test_an_instance_size_limits_every_service_and_a_run_without_one_keeps_it(rendered, rendered_nano, venv_env):
    """nano: the database gets the size's memory (no swap) and CPUs, every other service its fixed
    ceiling; project.json keeps the size and a later run without supabase_instance_size keeps it;
    a project never given one has no limits."""
    tmp_path, project_dir = rendered_nano
    config = compose_config(project_dir, venv_env)
    db = config["services"]["db"]
    assert (db["mem_limit"], db["memswap_limit"], db["cpus"]) == (str(512 * 2**20), str(512 * 2**20), 0.5)
    for name, service in config["services"].items():
        if name != "db":
            assert int(service["mem_limit"]) == int(service["memswap_limit"]) <= 2**30, name
            assert 0 < service["cpus"] <= 1, name
    assert json.loads((project_dir / "project.json").read_text())["instance_size"] == "nano"
    again, _ = render(tmp_path, venv_env, "render-test")
    assert compose_config(again, venv_env)["services"]["db"]["mem_limit"] == str(512 * 2**20)
    for service in compose_config(rendered[0], venv_env)["services"].values():
        assert "mem_limit" not in service and "cpus" not in service
    assert json.loads((rendered[0] / "project.json").read_text())["instance_size"] == ""


def test_an_unknown_instance_size_is_refused_before_anything_is_written(tmp_path, venv_env):
    variables = {"project_ref": "render-x", "supamanager_root": str(tmp_path / "root")}
    variables["supabase_instance_size"] = "huge"
    proc = run(
        ["ansible-playbook", str(_write_validate_playbook(tmp_path)), "-e", json.dumps(variables)],
        env=venv_env,
        check=False,
    )
    assert proc.returncode != 0
    refused = "supabase_instance_size must be empty (the project's own) or one of nano, micro, small"
    assert refused in one_line(proc.stdout)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("ref", ["ab", "Bad_Ref", "trail-", "x" * 41, "default\n"])
def test_bad_ref_is_refused_before_anything_is_written(tmp_path, venv_env, ref):
    proc = run(
        [
            "ansible-playbook",
            str(_write_validate_playbook(tmp_path)),
            "-e",
            json.dumps({"project_ref": ref, "supamanager_root": str(tmp_path / "root")}),
        ],
        env=venv_env,
        check=False,
    )
    assert proc.returncode != 0
    assert "lowercase DNS-safe slug" in " ".join(proc.stdout.split())
    assert not (tmp_path / "root").exists()


def test_a_service_name_with_a_trailing_newline_is_refused(tmp_path, venv_env):
    variables = {"project_ref": "render-x", "supamanager_root": str(tmp_path / "root")}
    variables |= {"supabase_project_state": "restarted", "supabase_restart_services": ["kong\n"]}
    proc = run(
        ["ansible-playbook", str(_write_validate_playbook(tmp_path)), "-e", json.dumps(variables)],
        env=venv_env,
        check=False,
    )
    assert proc.returncode != 0
    assert "supabase_restart_services must be a list of service names" in one_line(proc.stdout)


def test_no_container_gets_the_docker_socket_and_shipped_logs_go_through_the_log_driver(rendered, venv_env):
    project_dir, _ = rendered
    config = compose_config(project_dir, venv_env)
    shipped = {"kong", "auth", "rest", "realtime", "storage", "functions", "db"}
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            assert "docker.sock" not in volume["source"], name
        assert "label=disable" not in service.get("security_opt", []), name
        logging = service.get("logging")
        if name in shipped:
            assert logging == {
                "driver": "fluentd",
                "options": {
                    "fluentd-address": "127.0.0.1:61005",
                    "fluentd-async": "true",
                    "tag": f"supamanager-render-test-{name}",
                },
            }, name
        else:
            assert logging is None, name
    # Only the engine (on the host) connects to the fluent port: loopback.
    assert [(p["host_ip"], p["published"], p["target"]) for p in config["services"]["vector"]["ports"]] == [
        ("127.0.0.1", "61005", 24224)
    ]
    assert "DOCKER_SOCKET_LOCATION" not in (project_dir / ".env").read_text()


def test_ports_are_published_on_loopback_by_default(rendered, venv_env):
    project_dir, _ = rendered
    config = compose_config(project_dir, venv_env)
    published = [(name, p["host_ip"]) for name, s in config["services"].items() for p in s.get("ports", [])]
    assert len(published) == 5
    assert {ip for _name, ip in published} == {"127.0.0.1"}


def test_every_address_is_an_explicit_choice_with_a_warning(tmp_path, venv_env, rendered):
    every_address = "0.0.0.0"  # noqa: S104 - the choice under test, rendered only
    project_dir, proc = render(tmp_path, venv_env, "render-public", supabase_bind_address=every_address)
    config = compose_config(project_dir, venv_env)
    assert {p["host_ip"] for p in config["services"]["kong"]["ports"]} == {every_address}
    assert "WARNING: supabase_bind_address=0.0.0.0 publishes the gateway" in one_line(proc.stdout)
    assert "WARNING" not in rendered[1].stdout


def test_risky_upstream_defaults_are_changed(rendered, venv_env):
    project_dir, _ = rendered
    config = compose_config(project_dir, venv_env)
    auth = config["services"]["auth"]["environment"]
    assert auth["GOTRUE_SMS_AUTOCONFIRM"] == "false"
    # From the project's generated secrets, not upstream's constants.
    assert config["services"]["realtime"]["environment"]["DB_ENC_KEY"] == "enckey0123456789"
    assert config["services"]["kong"]["environment"]["DASHBOARD_USERNAME"] == "dashuser-0123456"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # A quote ends the quoted value, the newline starts a line of the attacker's choosing.
        ({"SMTP_PASS": "x'\nDOCKER_SOCKET_LOCATION=/"}, 'the value of "SMTP_PASS" holds a quote'),
        ({"SMTP_PASS": "a\nb"}, 'the value of "SMTP_PASS" holds a quote'),
        ({"SMTP_PASS": "pa$HOME"}, 'the value of "SMTP_PASS" holds a quote'),
        ({"JWT_SECRET": "mine"}, '"JWT_SECRET" is set by the role itself'),
        ({"KONG_HTTP_PORT": "80"}, '"KONG_HTTP_PORT" is set by the role itself'),
        ({"lower=x": "1"}, '"lower=x" is not a variable name'),
    ],
)
def test_an_unsafe_env_override_is_refused_before_anything_is_written(tmp_path, venv_env, overrides, message):
    proc = run(
        [
            "ansible-playbook",
            str(_write_validate_playbook(tmp_path)),
            "-e",
            json.dumps(
                {
                    "project_ref": "render-x",
                    "supamanager_root": str(tmp_path / "root"),
                    "supabase_env_overrides": overrides,
                }
            ),
        ],
        env=venv_env,
        check=False,
    )
    assert proc.returncode != 0
    assert message in one_line(proc.stdout)
    assert "DOCKER_SOCKET_LOCATION=/" not in proc.stdout
    assert not (tmp_path / "root").exists()


def test_a_safe_override_is_written_on_one_line(tmp_path, venv_env):
    project_dir, _ = render(
        tmp_path, venv_env, "render-smtp", supabase_env_overrides={"SMTP_PASS": "with space, and: #symbols!"}
    )
    lines = [line for line in (project_dir / ".env").read_text().splitlines() if line.startswith("SMTP_PASS=")]
    assert lines == ["SMTP_PASS='with space, and: #symbols!'"]
    config = compose_config(project_dir, venv_env)
    assert config["services"]["auth"]["environment"]["GOTRUE_SMTP_PASS"] == "with space, and: #symbols!"


def test_service_settings_reach_their_services_and_win_over_overrides(tmp_path, venv_env):
    github = {"external_github_enabled": True, "external_github_client_id": "gh-id", "external_github_secret": "gh-s"}
    project_dir, _ = render(
        tmp_path,
        venv_env,
        "render-auth",
        supabase_env_overrides={"DISABLE_SIGNUP": "false", "SMTP_HOST": "over.example.com"},
        supabase_auth_settings={"disable_signup": True, "jwt_exp": 7200, "site_url": "https://app.example.com"}
        | github,
        supabase_postgrest_settings={"max_rows": 999, "db_pool": 7, "db_schema": "public, api"},
        supabase_storage_settings={"file_size_limit": 1048576, "image_transformation_enabled": False},
        supabase_postgres_settings={"work_mem": "8MB", "max_connections": 150},
    )
    services = compose_config(project_dir, venv_env)["services"]
    rest = services["rest"]["environment"]
    assert (rest["PGRST_DB_MAX_ROWS"], rest["PGRST_DB_POOL"], rest["PGRST_DB_SCHEMAS"]) == ("999", "7", "public, api")
    assert not any(name.startswith("PGRST_DB") for name in services["studio"]["environment"])  # rest alone recreated
    storage = services["storage"]["environment"]
    assert (storage["FILE_SIZE_LIMIT"], storage["ENABLE_IMAGE_TRANSFORMATION"]) == ("1048576", "false")
    assert storage["S3_PROTOCOL_ENABLED"] == "true"  # the default of a setting not given
    assert services["db"]["command"][-1].endswith(" -c max_connections=150 -c work_mem=8MB")
    info = json.loads((project_dir / "project.json").read_text())
    assert (info["postgres_settings"]["work_mem"], info["storage_settings"]["file_size_limit"]) == (
        "PG_WORK_MEM",
        "FILE_SIZE_LIMIT",
    )
    auth = services["auth"]["environment"]
    assert (auth["GOTRUE_DISABLE_SIGNUP"], auth["GOTRUE_JWT_EXP"], auth["GOTRUE_SITE_URL"]) == (
        "true",
        "7200",
        "https://app.example.com",
    )
    assert auth["GOTRUE_SMTP_HOST"] == "over.example.com"  # an override the settings do not name stays
    assert (auth["GOTRUE_EXTERNAL_GITHUB_ENABLED"], auth["GOTRUE_EXTERNAL_GITHUB_CLIENT_ID"]) == ("true", "gh-id")
    assert auth["GOTRUE_EXTERNAL_GITHUB_SECRET"] == "gh-s"
    assert auth["GOTRUE_EXTERNAL_GITHUB_REDIRECT_URI"].endswith("/auth/v1/callback")
    assert not any(name.startswith("GOTRUE_EXTERNAL_GOOGLE") for name in auth)  # a provider no setting names
    assert services["rest"]["environment"]["PGRST_APP_SETTINGS_JWT_EXP"] == "7200"  # why jwt_exp recreates rest
    names = json.loads((project_dir / "project.json").read_text())["auth_settings"]
    assert (names["disable_signup"], names["external_github_secret"]) == ("DISABLE_SIGNUP", "EXTERNAL_GITHUB_SECRET")
    assert "gh-s" not in (project_dir / "project.json").read_text()


def test_auth_settings_that_cannot_be_taken_are_refused_before_anything_is_written(tmp_path, venv_env):
    proc = run(
        [
            "ansible-playbook",
            str(_write_validate_playbook(tmp_path)),
            "-e",
            json.dumps(
                {
                    "project_ref": "render-x",
                    "supamanager_root": str(tmp_path / "root"),
                    "supabase_auth_settings": {"jwt_exp": "soon", "nope": 1, "smtp_pass": "x'\nA=1"},
                    "supabase_postgres_settings": {"work_mem": "8MB -c fsync=off"},
                }
            ),
        ],
        env=venv_env,
        check=False,
    )
    assert proc.returncode != 0
    assert (
        'supabase_auth_settings refused: "jwt_exp" must be an integer from 0 to 604800; "nope" is not a setting of'
        ' supabase_auth_settings; "smtp_pass" holds a quote, a backslash, $, a backtick or a control character.'
    ) in one_line(proc.stdout)
    assert 'supabase_postgres_settings refused: "work_mem" must match' in one_line(proc.stdout)
    assert "A=1" not in proc.stdout
    assert not (tmp_path / "root").exists()


def _write_validate_playbook(tmp_path):
    playbook = tmp_path / "validate.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: supamanager.supabase.project\n"
    )
    return playbook
