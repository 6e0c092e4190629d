"""SQL in a project's own database, answered by the daemon directly (ARCHITECTURE decision 13).

A small psycopg pool per project, to its pooler on 127.0.0.1 (or wherever the project's Target
says), so a `select 1` costs one round trip. Every connection is in autocommit, has a server-side
statement_timeout, and is reset with DISCARD ALL when it goes back to the pool: nothing a query
sets, creates as temporary or leaves open is seen by the next one.

SQL is never logged: not here, not by psycopg; error messages are Postgres's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncRawCursor
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..errors import DomainError, InvalidRequest, Unavailable
from .rows import jsonable, parameter_text

log = logging.getLogger(__name__)

# SQLSTATE 57014 query_canceled: what statement_timeout raises.
_QUERY_CANCELED = "57014"
# Postgres refuses several statements in one extended-protocol query with this code and message.
_SYNTAX_ERROR = "42601"
_MULTIPLE_COMMANDS = "cannot insert multiple commands into a prepared statement"
# SQLSTATE 25001 active_sql_transaction: "VACUUM cannot run inside a transaction block".
_ACTIVE_SQL_TRANSACTION = "25001"


class ProjectDbError(DomainError):
    """A query could not be answered; the message is safe to show the client (never the SQL)."""


class SqlError(ProjectDbError, InvalidRequest):
    """Postgres refused the query: its own message, and its SQLSTATE, position, detail and hint."""

    code = "sql_error"

    def __init__(self, exc: psycopg.Error) -> None:
        diag = exc.diag
        message = diag.message_primary or _first_line(exc)
        self.sqlstate = exc.sqlstate
        self.position = int(diag.statement_position) if diag.statement_position else None
        found = {"sqlstate": exc.sqlstate, "position": self.position, "detail": diag.message_detail}
        found["hint"] = diag.message_hint
        super().__init__(message, **{k: v for k, v in found.items() if v is not None})


class QueryTimeout(ProjectDbError, InvalidRequest):
    code = "query_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the query ran longer than the statement timeout of {seconds:g} s and was cancelled", seconds=seconds
        )


class ResultTooLarge(ProjectDbError, InvalidRequest):
    code = "result_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the result is larger than {limit} bytes as JSON; select fewer rows or columns (add a LIMIT)",
            limit_bytes=limit,
        )


class DatabaseUnavailable(ProjectDbError, Unavailable):
    """The project's database does not answer (stopped, starting, or its pooler is down)."""

    code = "database_unavailable"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a project's database answers and who logs in."""

    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    dbname: str = "postgres"


class ProjectDatabases:
    """Per-project connection pools and the query, transaction and role operations on them."""

    def __init__(
        self,
        *,
        statement_timeout: float = 30.0,
        max_result_bytes: int = 10 * 1024 * 1024,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        idle_seconds: float = 120.0,
        reconnect_seconds: float = 10.0,
    ) -> None:
        self.statement_timeout = statement_timeout
        self.max_result_bytes = max_result_bytes
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self.reconnect_seconds = reconnect_seconds
        self._pools: dict[str, tuple[Target, AsyncConnectionPool]] = {}
        self._stale: set[str] = set()
        self._lock = asyncio.Lock()

    # -- pools ------------------------------------------------------------------------------------
    async def _configure(self, conn: AsyncConnection) -> None:
        await conn.execute(f"set statement_timeout = {int(self.statement_timeout * 1000)}")

    async def _reset(self, conn: AsyncConnection) -> None:
        await conn.execute("discard all")
        await self._configure(conn)

    async def _pool(self, ref: str, target: Target) -> AsyncConnectionPool:
        async with self._lock:
            known = self._pools.get(ref)
            if known and known[0] == target and ref not in self._stale:
                return known[1]
            self._stale.discard(ref)
            if known:  # the password or the port changed, or the database was stopped or replaced
                self._pools.pop(ref)
                await known[1].close()
            pool = AsyncConnectionPool(
                kwargs={
                    "host": target.host,
                    "port": target.port,
                    "user": target.user,
                    "password": target.password,
                    "dbname": target.dbname,
                    "connect_timeout": max(1, int(self.connect_timeout)),
                    "application_name": "supamanagerd",
                    "autocommit": True,
                    # A pooler may hand the next query another server connection: no named statements.
                    "prepare_threshold": None,
                },
                min_size=0,
                max_size=self.pool_size,
                open=False,
                timeout=self.connect_timeout,
                max_idle=self.idle_seconds,
                configure=self._configure,
                reset=self._reset,
                # A connection from before a pause or a restart is dead: test it as it is handed out.
                check=AsyncConnectionPool.check_connection,
                # A failed connect is retried with a doubling delay until this many seconds have
                # passed (psycopg's default: 300), and callers wait for that retry meanwhile: a
                # database back after a minute's outage would answer only minutes later.
                reconnect_timeout=self.reconnect_seconds,
                name=f"project-{ref}",
            )
            await pool.open()
            self._pools[ref] = (target, pool)
            return pool

    def reopen(self, ref: str) -> None:
        """The next connection to the project opens a fresh pool. Called when an operation on it has
        ended: its database may have been stopped or replaced meanwhile (pause, restore, restart),
        and the old pool's connections are dead or its reconnect attempts waiting out their delay."""
        if ref in self._pools:
            self._stale.add(ref)

    async def close(self) -> None:
        async with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for _target, pool in pools:
            await pool.close()

    @contextlib.asynccontextmanager
    async def connection(self, ref: str, target: Target) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; a broken or timed-out one is closed rather than given back."""
        pool = await self._pool(ref, target)
        try:
            conn = await pool.getconn()
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"the project's database does not answer at {target.host}:{target.port} "
                f"within {self.connect_timeout:g} s"
            ) from None
        try:
            async with asyncio.timeout(self.statement_timeout + 2):
                yield conn
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.rollback()  # a script's BEGIN without COMMIT ends as a psql session would
        except TimeoutError:
            # Past the server's own timeout (a query that turned it off): psycopg cancelled it.
            await conn.close()
            raise QueryTimeout(self.statement_timeout) from None
        except ResultTooLarge:
            await conn.close()  # rows may still be on their way: drop the connection
            raise
        except psycopg.Error as exc:
            # Not reused: psycopg sends a cancel when a streamed query fails, and through a pooler
            # (PgBouncer, Supavisor) it can reach the server after the next query has started.
            await conn.close()
            if exc.sqlstate == _QUERY_CANCELED:
                raise QueryTimeout(self.statement_timeout) from None
            if conn.broken or (exc.sqlstate is None and isinstance(exc, psycopg.OperationalError)):
                raise DatabaseUnavailable(f"the project's database connection failed: {_first_line(exc)}") from None
            raise SqlError(exc) from None
        finally:
            await pool.putconn(conn)

    # -- queries -----------------------------------------------------------------------------------
    async def query(
        self, ref: str, target: Target, sql: str, parameters: Sequence[Any] | None = None, *, read_only: bool = False
    ) -> list[dict[str, Any]]:
        """Run sql (with $1.. parameters) and return the last result's rows as JSON-ready dicts.

        In a transaction that commits only once the answer is complete and within the size limit,
        so a query that fails or is too large changes nothing. One statement runs through the
        extended protocol, streaming its rows so the limit holds before they are all in memory;
        several statements (no parameters, not read-only) run as one simple-protocol script, as
        psql and pg-meta run them. read_only: a READ ONLY transaction, always rolled back, and one
        statement only (a second one could COMMIT and then write). A statement that cannot run in
        a transaction block (VACUUM, CREATE INDEX CONCURRENTLY) runs on its own in autocommit.
        """
        params = None if parameters is None else [parameter_text(p) for p in parameters]
        try:
            async with self.connection(ref, target) as conn:
                return await self._in_transaction(conn, sql, params, read_only, as_script=False)
        except SqlError as exc:
            as_script = params is None and _several_statements(exc)
            if read_only or not (as_script or exc.sqlstate == _ACTIVE_SQL_TRANSACTION):
                raise
        # Refused before anything ran; again on a fresh connection (see connection()).
        async with self.connection(ref, target) as conn:
            if as_script:
                return await self._in_transaction(conn, sql, None, read_only=False, as_script=True)
            return await self._single(conn, sql, params)

    async def _in_transaction(
        self, conn: AsyncConnection, sql: str, params: list[str | None] | None, read_only: bool, *, as_script: bool
    ) -> list[dict[str, Any]]:
        await conn.execute("begin transaction read only" if read_only else "begin")
        try:
            rows = await (self._script(conn, sql) if as_script else self._single(conn, sql, params))
        except BaseException:
            if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
            raise
        # (A script may have ended the transaction itself with COMMIT or ROLLBACK.)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await (conn.rollback() if read_only else conn.commit())
        return rows

    async def _single(self, conn: AsyncConnection, sql: str, params: list[str | None] | None) -> list[dict[str, Any]]:
        cur = AsyncRawCursor(conn)
        rows: list[dict[str, Any]] = []
        size = 2
        try:
            async with contextlib.aclosing(cur.stream(sql, params)) as stream:
                async for row in stream:
                    item = self._row(cur, row)
                    size += len(json.dumps(item, separators=(",", ":"))) + 1
                    if size > self.max_result_bytes:
                        raise ResultTooLarge(self.max_result_bytes)
                    rows.append(item)
        except psycopg.ProgrammingError as exc:
            # psycopg's own complaint (no SQLSTATE) when the statement returns no rows (DDL, SET):
            # it ran; its answer is an empty list, as upstream's.
            if exc.sqlstate is not None:
                raise
        return rows

    async def _script(self, conn: AsyncConnection, sql: str) -> list[dict[str, Any]]:
        cur = AsyncRawCursor(conn)
        await cur.execute(sql)
        last: list[dict[str, Any]] = []
        while True:
            if cur.description is not None:
                rows = [self._row(cur, row) for row in await cur.fetchall()]
                if len(json.dumps(rows, separators=(",", ":"))) > self.max_result_bytes:
                    raise ResultTooLarge(self.max_result_bytes)
                last = rows
            if not cur.nextset():
                return last

    @staticmethod
    def _row(cur: AsyncRawCursor, row: Sequence[Any]) -> dict[str, Any]:
        return {col.name: jsonable(value) for col, value in zip(cur.description, row, strict=True)}

    @contextlib.asynccontextmanager
    async def transaction(self, ref: str, target: Target) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        async with self.connection(ref, target) as conn, conn.transaction():
            yield conn


def _several_statements(exc: SqlError) -> bool:
    return exc.sqlstate == _SYNTAX_ERROR and _MULTIPLE_COMMANDS in exc.message


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
