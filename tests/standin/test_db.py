"""db stand-in: a real PostgreSQL 15 with upstream's first-boot roles and init scripts."""

import psycopg
import pytest

from tests.standin import kit

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker

UPSTREAM_ROLES = {
    "supabase_admin",
    "postgres",
    "authenticator",
    "anon",
    "authenticated",
    "service_role",
    "pgbouncer",
    "supabase_auth_admin",
    "supabase_storage_admin",
    "supabase_functions_admin",
    "supabase_replication_admin",
    "supabase_read_only_user",
    "supabase_realtime_admin",
    "dashboard_user",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pgdata")


@pytest.fixture(scope="module")
def db(stack, data_dir):
    return kit.start_db(stack, volumes=[f"{data_dir}:/var/lib/postgresql/data"])


def connect(db, user="supabase_admin", password=kit.PASSWORD, dbname="postgres"):
    return psycopg.connect(host=db.ip, port=5432, user=user, password=password, dbname=dbname, connect_timeout=5)


def scalar(db, query, **kwargs):
    with connect(db, **kwargs) as conn:
        return conn.execute(query).fetchone()[0]


def test_first_boot_creates_upstream_roles(db):
    with connect(db) as conn:
        roles = {r[0]: r[1] for r in conn.execute("select rolname, rolsuper from pg_roles")}
    assert set(roles) >= UPSTREAM_ROLES
    assert roles["supabase_admin"] is True
    assert roles["postgres"] is False, "upstream demotes postgres after the init scripts"
    assert scalar(db, "show server_version_num").startswith("15")


def test_mounted_init_scripts_ran_with_their_psql_variables(db):
    setting = scalar(
        db,
        "select array_to_string(setconfig, ',') from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase"
        " where d.datname = 'postgres'",
    )
    assert "app.settings.jwt_exp=3600" in setting
    assert (
        scalar(db, "select nspowner::regrole::text from pg_namespace where nspname = '_realtime'") == "supabase_admin"
    )
    with connect(db, dbname="_supabase") as conn:
        owners = dict(conn.execute("select nspname, nspowner::regrole::text from pg_namespace"))
    assert owners["_analytics"] == "supabase_admin"
    assert owners["_supavisor"] == "supabase_admin"
    assert (
        scalar(db, "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_net'") == "extensions"
    )
    assert scalar(db, "select count(*) from pg_event_trigger where evtname = 'standin_sample'") == 1


@pytest.mark.parametrize("role", ["authenticator", "supabase_auth_admin", "supabase_storage_admin", "pgbouncer"])
def test_service_roles_log_in_with_the_project_password(db, role):
    assert scalar(db, "select current_user", user=role) == role


def test_wrong_password_is_refused_over_the_network(db):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(db, user="authenticator", password="wrong")


def test_postgres_can_create_tables_in_public(db):
    with connect(db, user="postgres") as conn:
        conn.execute("create table public.standin_probe (id int)")
        conn.execute("drop table public.standin_probe")


def test_data_persists_across_restart_without_running_init_again(db):
    with connect(db) as conn:
        conn.execute("create table public.kept (v text)")
        conn.execute("insert into public.kept values ('still here')")
    kit.docker("restart", "-t", "10", db.name)
    db.wait_ok(*kit.PG_ISREADY)
    assert scalar(db, "select v from public.kept") == "still here"
    assert db.logs().count("initialising an empty data directory") == 1


def test_pid_1_stops_within_a_second_on_sigterm(db):
    assert "standin.py" in db.exec("cat", "/proc/1/cmdline").stdout
    assert db.stop_within_a_second(), db.logs()


def test_missing_password_on_an_empty_data_dir_refuses_to_start(stack):
    env = {k: v for k, v in kit.DB_ENV.items() if k != "POSTGRES_PASSWORD"}
    db = stack.run("db", *kit.DB_COMMAND, name="db-nopw", env=env)
    assert db.wait_exit() == 1
    assert "missing required environment variable(s): POSTGRES_PASSWORD" in db.logs()


def test_a_failing_init_script_stops_the_container(stack, tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("select * from no_such_table;\n")
    db = stack.run(
        "db",
        *kit.DB_COMMAND,
        name="db-badinit",
        env=kit.DB_ENV,
        volumes=[f"{bad}:/docker-entrypoint-initdb.d/init-scripts/50-bad.sql:ro"],
    )
    assert db.wait_exit(timeout=240) != 0
    logs = db.logs()
    assert 'relation "no_such_table" does not exist' in logs
    assert "50-bad.sql" in logs
