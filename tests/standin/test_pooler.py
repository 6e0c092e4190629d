"""supavisor stand-in: upstream's command, then PostgreSQL clients reach the db through both ports."""

import psycopg
import pytest

from tests.standin import kit

# Runs containers on the engine of DOCKER_HOST: `-m "not docker"` leaves it out.
pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def pooler(stack, db):
    container = kit.start_service(stack, "supavisor")
    container.wait_ok(*kit.HEALTHCHECKS["supavisor"])
    return container


def connect(pooler, port, user="postgres.tenant-one", password=kit.PASSWORD):
    return psycopg.connect(
        host=pooler.ip, port=port, user=user, password=password, dbname="postgres", connect_timeout=5
    )


@pytest.mark.parametrize("port", [5432, 6543], ids=["session", "transaction"])
def test_client_reaches_the_database_as_the_tenant_user(pooler, port):
    with connect(pooler, port) as conn:
        assert conn.execute("select 1, current_user").fetchone() == (1, "postgres")


def test_other_roles_log_in_through_the_pooler(pooler):
    with connect(pooler, 6543, user="authenticator.tenant-one") as conn:
        assert conn.execute("select current_user").fetchone()[0] == "authenticator"


def test_unknown_tenant_is_refused(pooler):
    with pytest.raises(psycopg.OperationalError, match="Tenant or user not found"):
        connect(pooler, 5432, user="postgres.other-tenant")


def test_wrong_password_is_refused_by_the_database(pooler):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pooler, 5432, password="wrong")


def test_server_is_pid_1_behind_upstreams_shell_command(pooler):
    assert "supavisor-server" in pooler.exec("cat", "/proc/1/cmdline").stdout


def test_migrate_fails_without_a_working_database_url(stack, db):
    container = kit.start_service(stack, "supavisor", name="supavisor-wrongpw", password="wrong-password")
    assert container.wait_exit() != 0
    assert "password authentication failed" in container.logs()


def test_eval_refuses_what_is_not_the_pooler_script(stack, db):
    # `$$(cat ...)` left unescaped in a command hands eval "<pid>(cat ...)"; upstream fails on it too.
    env = kit.service_env("supavisor")
    command = ["/bin/sh", "-c", '/app/bin/migrate && /app/bin/supavisor eval "$$(cat /etc/pooler/pooler.exs)"']
    container = stack.run(
        "supavisor",
        *command,
        name="supavisor-badeval",
        env=env,
        volumes=[f"{kit.SAMPLE}/pooler.exs:/etc/pooler/pooler.exs:ro"],
    )
    assert container.wait_exit() != 0
    assert "not Supavisor's pooler script" in container.logs()
