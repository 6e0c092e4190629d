"""projectdb: SQL in a project's database, on the real db stand-in (PostgreSQL 15) behind the real
supavisor stand-in, as the daemon reaches a project: user postgres.<tenant> through the pooler.

The daemon's routes on top of this are tested end to end in test_database_api.py.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import psycopg
import pytest
from supamanager_daemon.projectdb import (
    DatabaseUnavailable,
    ProjectDatabases,
    QueryTimeout,
    ResultTooLarge,
    SqlError,
    Target,
    migrations,
    roles,
)
from supamanager_daemon.projectdb.rows import jsonable, parameter_text

from tests.standin import kit

pytestmark = pytest.mark.docker

REF = "tenant-one"  # the sample pooler script's tenant


@pytest.fixture(scope="module")
def pooler():
    proc = subprocess.run([str(kit.HERE / "build"), "db", "supavisor"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"tests/standin/build failed:\n{proc.stderr[-4000:]}"
    kit.pin_images()
    stack = kit.Stack()
    try:
        kit.start_db(stack)
        # Cancels reach the database half a second late: a cancel psycopg sends when a streamed
        # query fails must not hit the connection's next statement.
        container = kit.start_service(stack, "supavisor", env={"STANDIN_CANCEL_DELAY": "0.5"})
        container.wait_ok(*kit.HEALTHCHECKS["supavisor"])
        yield container
    finally:
        stack.close()


@pytest.fixture(scope="module")
def target(pooler):
    return Target(host=pooler.ip, port=5432, user=f"postgres.{REF}", password=kit.PASSWORD, dbname="postgres")


@pytest.fixture
async def dbs():
    # Generous: the first statements on a fresh database can take seconds on a loaded host.
    dbs = ProjectDatabases(statement_timeout=30, max_result_bytes=20_000, connect_timeout=10)
    yield dbs
    await dbs.close()


def admin(target, sql, params=None):
    """A check from outside the code under test: a plain psycopg connection through the pooler."""
    with psycopg.connect(
        host=target.host, port=target.port, user=target.user, password=target.password, dbname="postgres"
    ) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


# -- rows and parameters -----------------------------------------------------------------------
def test_jsonable_keeps_integers_numbers_and_makes_the_rest_json():
    import datetime
    import decimal
    import uuid

    assert jsonable(2**62) == 2**62
    assert jsonable(decimal.Decimal("1.10")) == "1.10"
    assert jsonable(float("nan")) == "nan"
    assert jsonable(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert jsonable(b"\x01\xff") == "\\x01ff"
    assert jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert jsonable({"a": [1, decimal.Decimal(2)]}) == {"a": [1, "2"]}
    assert jsonable(range(2)) == "range(0, 2)"


def test_parameters_go_as_text_like_node_postgres_sends_them():
    assert [parameter_text(v) for v in (None, True, False, 3, 1.5, "x", {"a": 1}, [1])] == [
        None,
        "true",
        "false",
        "3",
        "1.5",
        "x",
        '{"a":1}',
        "[1]",
    ]


# -- queries -----------------------------------------------------------------------------------
async def test_rows_as_json_with_typed_values(dbs, target):
    rows = await dbs.query(
        REF,
        target,
        "select 1 as one, 9007199254740993::int8 as big, '{\"k\": [1, null]}'::jsonb as j,"
        " '[1]'::json as arr, 2.50::numeric as n, true as b, null::text as nothing,"
        " '2026-01-02 03:04:05+00'::timestamptz as ts, array[1,2] as ints",
    )
    assert rows == [
        {
            "one": 1,
            "big": 9007199254740993,
            "j": {"k": [1, None]},
            "arr": [1],
            "n": "2.50",
            "b": True,
            "nothing": None,
            "ts": "2026-01-02T03:04:05+00:00",
            "ints": [1, 2],
        }
    ]


async def test_parameters_are_bound_not_spliced(dbs, target):
    rows = await dbs.query(REF, target, "select $1::int + 1 as n, $2 as s", [41, "'; drop table x; --"])
    assert rows == [{"n": 42, "s": "'; drop table x; --"}]


async def test_several_statements_answer_the_last_result(dbs, target):
    rows = await dbs.query(
        REF,
        target,
        "create table if not exists public.multi (id int); insert into public.multi values (1), (2);"
        " select count(*)::int as c from public.multi",
    )
    assert rows == [{"c": 2}]
    assert await dbs.query(REF, target, "drop table public.multi") == []


async def test_ddl_answers_an_empty_list_and_is_committed(dbs, target):
    assert await dbs.query(REF, target, "create table public.committed (id int)") == []
    assert admin(target, "select to_regclass('public.committed') is not null") == [(True,)]
    await dbs.query(REF, target, "drop table public.committed")


async def test_a_postgres_error_carries_postgres_message_and_position(dbs, target):
    with pytest.raises(SqlError) as info:
        await dbs.query(REF, target, "selec 1")
    assert str(info.value) == 'syntax error at or near "selec"'
    assert info.value.sqlstate == "42601"
    assert info.value.position == 1


async def test_a_failing_script_leaves_nothing_behind(dbs, target):
    with pytest.raises(SqlError, match="division by zero"):
        await dbs.query(REF, target, "create table public.half (id int); select 1/0")
    assert admin(target, "select to_regclass('public.half')") == [(None,)]


@pytest.mark.parametrize(
    "failing",
    ["selec 1", "select 1/0", "vacuum public.nothing_here", "select repeat('x', 1000) from generate_series(1, 100000)"],
)
async def test_the_cancel_sent_for_a_failed_query_does_not_stop_the_next_one(dbs, target, failing):
    # psycopg cancels a streamed query that fails; the pooler delivers it 0.5 s late (see pooler).
    dbs.pool_size = 1
    with pytest.raises((SqlError, ResultTooLarge)):
        await dbs.query(REF, target, failing)
    assert await dbs.query(REF, target, "select pg_sleep(1.5)::text as slept") == [{"slept": ""}]


async def test_a_script_is_not_stopped_by_the_cancel_of_its_first_try(dbs, target):
    # The first try (one extended-protocol statement) is refused and cancelled; the script runs on.
    dbs.pool_size = 1
    assert await dbs.query(REF, target, "select 1; select pg_sleep(1.5)::text as slept") == [{"slept": ""}]


async def test_session_state_does_not_leak_to_the_next_query(dbs, target):
    dbs.pool_size = 1  # one connection: the next query reuses it
    await dbs.query(REF, target, "set search_path = nowhere")
    await dbs.query(REF, target, "create temp table scratch (id int)")
    rows = await dbs.query(
        REF, target, "select current_setting('search_path') as path, to_regclass('scratch') is null as gone"
    )
    assert rows[0]["path"] != "nowhere" and rows[0]["gone"] is True


async def test_a_script_that_rolls_back_itself_changes_nothing(dbs, target):
    await dbs.query(REF, target, "create table public.never (id int); rollback")
    assert admin(target, "select to_regclass('public.never')") == [(None,)]


async def test_sequential_queries_reuse_one_pooled_connection(dbs, target):
    dbs.pool_size = 1
    first = await dbs.query(REF, target, "select pg_backend_pid() as pid")
    for _ in range(5):
        assert await dbs.query(REF, target, "select pg_backend_pid() as pid") == first


# -- read-only ---------------------------------------------------------------------------------
async def test_read_only_refuses_writes(dbs, target):
    with pytest.raises(SqlError, match="read-only transaction"):
        await dbs.query(REF, target, "create table public.ro (id int)", read_only=True)
    assert admin(target, "select to_regclass('public.ro')") == [(None,)]


async def test_read_only_cannot_commit_its_way_out(dbs, target):
    with pytest.raises(SqlError, match="multiple commands"):
        await dbs.query(REF, target, "commit; create table public.escaped (id int)", read_only=True)
    assert admin(target, "select to_regclass('public.escaped')") == [(None,)]


async def test_read_only_reads(dbs, target):
    assert await dbs.query(REF, target, "select $1::int as n", [7], read_only=True) == [{"n": 7}]


ACTIVE_SLEEPS = "select count(*) from pg_stat_activity where state = 'active' and query like '%pg_sleep(30)'"


# -- limits ------------------------------------------------------------------------------------
async def test_statement_timeout_cancels_the_query(dbs, target):
    dbs.statement_timeout = 1.5  # before the pool's first connection, which sets it
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"1\.5 s"):
        await dbs.query(REF, target, "select pg_sleep(30)")
    assert time.monotonic() - started < 10
    assert admin(target, ACTIVE_SLEEPS) == [(0,)]


async def test_a_query_that_turns_the_timeout_off_is_still_stopped(dbs, target):
    dbs.statement_timeout = 1.5
    with pytest.raises(QueryTimeout):
        await dbs.query(REF, target, "set statement_timeout = 0; select pg_sleep(30)")
    deadline = time.monotonic() + 10
    while admin(target, ACTIVE_SLEEPS) != [(0,)]:
        assert time.monotonic() < deadline, "the cancelled query still runs"
        await asyncio.sleep(0.2)


async def test_a_statement_that_cannot_run_in_a_transaction_runs_on_its_own(dbs, target):
    await dbs.query(REF, target, "create table public.vac (id int)")
    try:
        assert await dbs.query(REF, target, "vacuum public.vac") == []
    finally:
        await dbs.query(REF, target, "drop table public.vac")


async def test_a_result_past_the_limit_is_refused_before_it_is_all_read(dbs, target):
    with pytest.raises(ResultTooLarge, match="20000 bytes"):
        await dbs.query(REF, target, "select repeat('x', 1000) as pad from generate_series(1, 100000)")
    with pytest.raises(ResultTooLarge):
        await dbs.query(REF, target, "select 1; select repeat('x', 1000) from generate_series(1, 100)")
    assert await dbs.query(REF, target, "select 1 as still_fine") == [{"still_fine": 1}]


async def test_a_write_past_the_limit_is_not_applied(dbs, target):
    await dbs.query(REF, target, "create table public.big (pad text)")
    try:
        with pytest.raises(ResultTooLarge):
            await dbs.query(
                REF, target, "insert into public.big select repeat('x', 1000) from generate_series(1, 100) returning *"
            )
        assert admin(target, "select count(*) from public.big") == [(0,)]
    finally:
        await dbs.query(REF, target, "drop table public.big")


async def test_a_database_that_does_not_answer(dbs, pooler):
    gone = Target(host=pooler.ip, port=1, user="postgres.tenant-one", password="x")
    dbs.connect_timeout = 1
    with pytest.raises(DatabaseUnavailable, match="does not answer"):
        await dbs.query("gone", gone, "select 1")


async def test_a_new_password_gets_a_new_pool(dbs, target):
    import dataclasses

    await dbs.query(REF, target, "select 1")
    wrong = dataclasses.replace(target, password="wrong-password")
    dbs.connect_timeout = 2
    with pytest.raises(DatabaseUnavailable):
        await dbs.query(REF, wrong, "select 1")
    assert await dbs.query(REF, target, "select 1 as ok") == [{"ok": 1}]


class Relay:
    """A TCP relay on 127.0.0.1 to the pooler that can be taken down and put back, as a project's
    database is by a pause, a restore or a restart, at the same address."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _relay(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Stop listening and cut the open connections, as a stopped database does."""
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


async def test_a_database_back_after_an_outage_answers_at_once_once_its_operation_ended(dbs, target):
    import dataclasses

    relay = Relay((target.host, target.port))
    through = dataclasses.replace(target, host="127.0.0.1", port=relay.port)
    dbs.connect_timeout = 1
    await relay.up()
    assert await dbs.query(REF, through, "select 1 as ok") == [{"ok": 1}]
    await relay.down()
    # Queries during the outage (the usage collector's, a user's) fail; the pool's reconnect
    # attempts back off: 1, 2, 4 s apart, the next one some 8 s after the last.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        with pytest.raises(DatabaseUnavailable):
            await dbs.query(REF, through, "select 1")
    await relay.up()
    try:
        # Without a new pool the database answers only at the next attempt, seconds away.
        with pytest.raises(DatabaseUnavailable):
            await dbs.query(REF, through, "select 1")
        dbs.reopen(REF)  # what the daemon does when an operation on the project ends
        assert await dbs.query(REF, through, "select 1 as ok") == [{"ok": 1}]
    finally:
        await relay.down()


# -- migrations --------------------------------------------------------------------------------
async def test_migrations_apply_list_and_a_failure_applies_nothing(dbs, target):
    assert await migrations.list_migrations(dbs, REF, target) == []
    first = await migrations.apply_migration(
        dbs,
        REF,
        target,
        "create table public.widgets (id bigint primary key); insert into public.widgets values (1)",
        name="create_widgets",
        rollback="drop table public.widgets",
    )
    assert migrations.VERSION_RE.fullmatch(first["version"])
    second = await migrations.apply_migration(dbs, REF, target, "alter table public.widgets add column name text")
    assert int(second["version"]) > int(first["version"])
    listed = await migrations.list_migrations(dbs, REF, target)
    assert listed == [{"version": first["version"], "name": "create_widgets"}, {"version": second["version"]}]

    with pytest.raises(SqlError, match="does_not_exist"):
        await migrations.apply_migration(
            dbs, REF, target, "create table public.gadgets (id int); insert into public.gadgets select does_not_exist"
        )
    assert admin(target, "select to_regclass('public.gadgets')") == [(None,)]
    assert await migrations.list_migrations(dbs, REF, target) == listed

    # The CLI's columns hold what `supabase migration fetch` reads back.
    assert admin(
        target,
        "select statements, rollback from supabase_migrations.schema_migrations where version = %s",
        [first["version"]],
    ) == [
        (
            ["create table public.widgets (id bigint primary key); insert into public.widgets values (1)"],
            ["drop table public.widgets"],
        )
    ]
    await dbs.query(REF, target, "drop table public.widgets; drop schema supabase_migrations cascade")


async def test_a_migration_with_a_seen_idempotency_key_is_not_run_again(dbs, target):
    try:
        one = await migrations.apply_migration(
            dbs, REF, target, "create table public.once (id int)", idempotency_key="key-1"
        )
        again = await migrations.apply_migration(
            dbs, REF, target, "create table public.once (id int)", idempotency_key="key-1"
        )
        assert again["version"] == one["version"]
        assert len(await migrations.list_migrations(dbs, REF, target)) == 1
    finally:
        await dbs.query(REF, target, "drop table if exists public.once; drop schema supabase_migrations cascade")


# -- login roles -------------------------------------------------------------------------------
async def test_login_role_logs_in_through_the_pooler_then_is_dropped(dbs, target):
    made = await roles.create_login_role(dbs, REF, target, read_only=False)
    assert made["role"] == "cli_login_postgres" and made["ttl_seconds"] > 0
    with psycopg.connect(
        host=target.host, port=target.port, user=f"{made['role']}.{REF}", password=made["password"], dbname="postgres"
    ) as conn:
        conn.execute("set role postgres")
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    again = await roles.create_login_role(dbs, REF, target, read_only=False)
    assert again["password"] != made["password"]
    read_only = await roles.create_login_role(dbs, REF, target, read_only=True)
    assert read_only["role"] == "cli_login_supabase_read_only_user"
    dropped = await roles.delete_login_roles(dbs, REF, target)
    assert dropped == ["cli_login_postgres", "cli_login_supabase_read_only_user"]
    assert admin(target, "select count(*) from pg_roles where rolname like 'cli\\_login\\_%'") == [(0,)]
