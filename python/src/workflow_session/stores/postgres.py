"""Sessions in PostgreSQL (psycopg 3, async), for several app servers sharing one database.

The same tables (see :mod:`.rows`), lock and change channel as the TypeScript store, so Python
and Node servers can share one database. A write is one transaction that takes the per-session
advisory lock, merges, writes the head and the changed variables, and NOTIFYs ``{"id",
"version"}`` on ``workflow_session_changes``. A session's runs are rows of ``{table}_runs``,
written under the same lock (a run's end and its merge in one transaction); every run write
NOTIFYs the session's id and version too, so that feeds on other servers check its runs.
``watch()`` LISTENs on a connection of its own, re-established with backoff when it is lost.
A delta since a version is one statement: the head, and the variable rows newer than the version
when they cover it (see :mod:`.rows`), else the session's live rows.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from ..deltas import SessionBase
from ..errors import SessionProtocolError
from ..migrations import Migrations
from ..models import Record, RunRecord, SessionHead
from ..rules import compact_json
from .base import Backend, Changes, ChangeListener, Decision, ErrorListener, Keep, Listed, Put, Remove, RunsDecision, SessionStore, T, listed_of
from .rows import (
    COMPACTION_COLUMNS,
    HEAD_COLUMNS,
    HEAD_WIDTH,
    RUN_COLUMNS,
    Compaction,
    HeadRow,
    changes_of,
    compaction_of,
    head_of,
    head_row,
    next_compaction,
    record_of,
    rows_cover,
    run_of,
    run_row,
    tombstones_in,
    variable_rows,
)

if TYPE_CHECKING:  # psycopg is the optional ``postgres`` extra: imported when the store opens
    from psycopg import AsyncConnection
    from psycopg.rows import TupleRow
    from psycopg_pool import AsyncConnectionPool

HEAD_COLUMNS_OF_H = ", ".join(f"h.{column.strip()}" for column in HEAD_COLUMNS.split(","))
COMPACTION_COLUMNS_OF_H = ", ".join(f"h.{column.strip()}" for column in COMPACTION_COLUMNS.split(","))

#: The NOTIFY channel that carries ``{"id", "version"}`` of each applied change to every server.
CHANGE_CHANNEL = "workflow_session_changes"
#: The ``application_name`` of the connection that LISTENs (to tell it apart in ``pg_stat_activity``).
LISTENER_NAME = "workflow-session listen"
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_IDS_BATCH = 500
log = logging.getLogger("workflow_session")


def retry_delay(attempt: int) -> float:
    """Seconds before the next attempt to listen again: 0.1 doubling to 2."""
    return min(2.0, 0.1 * 2.0**attempt)


def describe_target(url: str) -> str:
    """``host:port, database "name"`` of a connection URL, without its password."""
    try:
        parts = urlsplit(url)
        database = parts.path.lstrip("/") or parts.username or "postgres"
        return f'{parts.hostname or "localhost"}:{parts.port or 5432}, database "{database}"'
    except ValueError:
        return "the configured PostgreSQL server"


def _unavailable() -> SessionProtocolError:
    return SessionProtocolError("unavailable", "The session database cannot be reached right now; try again")


class PostgresBackend(Backend):
    """A psycopg async connection pool, opened on first use (or by ``open()``) in the running event loop."""

    def __init__(self, url: str, *, table: str = "workflow_sessions", pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as error:
            raise ImportError(f"postgres_store needs psycopg 3: pip install 'workflow-session[postgres]' ({error})") from error
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f'postgres_store: "{table}" is not a plain table name')
        self.url = url
        self.table = table
        self.variables = f"{table}_variables"
        self.runs = f"{table}_runs"
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[AsyncConnection[TupleRow]] | None = None
        self._opening: asyncio.Lock | None = None
        self._watchers: dict[int, tuple[ChangeListener, Callable[[], None] | None]] = {}
        self._watcher_keys = itertools.count()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        #: Set while the LISTEN connection is up (tests wait for it).
        self.listening = asyncio.Event()

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self._closed:
            raise SessionProtocolError("unavailable", "The session store is closed")
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._pool is not None:
                return
            import psycopg
            from psycopg_pool import AsyncConnectionPool

            connect_timeout = max(1, round(self._connect_timeout))
            settings: dict[str, str | int | bool] = {"autocommit": True, "application_name": "workflow-session", "connect_timeout": connect_timeout}
            try:
                # A connection of its own first: when the database cannot be reached, its error says why.
                connecting = psycopg.AsyncConnection.connect(self.url, autocommit=True, application_name="workflow-session", connect_timeout=connect_timeout)
                async with await connecting as db:
                    await self._create_tables(db)
            except psycopg.Error as error:
                reason = " ".join(str(error).split())  # one line
                raise SessionProtocolError(
                    "unavailable", f"postgres_store: cannot open the session table at {describe_target(self.url)}: {reason}"
                ) from error
            pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                open=False,
                timeout=self._connect_timeout,
                kwargs=settings,
                check=AsyncConnectionPool.check_connection,
            )
            await pool.open(wait=False)
            self._pool = pool

    async def _create_tables(self, db: AsyncConnection[TupleRow]) -> None:
        """The TypeScript store's tables (see :mod:`.rows`), under its schema lock, so either may create them.

        Tables made before tombstones were compacted get the head's compaction columns and each
        session's count of its tombstones, once, as the TypeScript store does; tables made before
        schema versions were recorded get the ``schema_version`` column (0 in every row).
        """
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"workflow-session schema {self.table}",))
            cursor = await db.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'record'",
                (self.table,),
            )
            if await cursor.fetchone():
                raise RuntimeError(f"the table {self.table} holds sessions in the layout of 0.1: open it once with the TypeScript postgresStore, which moves them")
            await db.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.table} (
                      id          text PRIMARY KEY,
                      user_id     text,
                      workflow_id text,
                      version     bigint NOT NULL,
                      created_at  text NOT NULL,
                      updated_at  text NOT NULL,
                      bytes       bigint NOT NULL,
                      clients     text NOT NULL,
                      compacted_through bigint NOT NULL DEFAULT 0,
                      tombstones  bigint NOT NULL DEFAULT 0,
                      schema_version integer NOT NULL DEFAULT 0
                    );
                    CREATE INDEX IF NOT EXISTS {self.table}_user_newest ON {self.table} (user_id, updated_at DESC);
                    CREATE INDEX IF NOT EXISTS {self.table}_newest ON {self.table} (updated_at DESC);
                    CREATE TABLE IF NOT EXISTS {self.variables} (
                      session_id text NOT NULL,
                      name       text NOT NULL,
                      value      text,
                      version    bigint NOT NULL,
                      PRIMARY KEY (session_id, name)
                    );
                    CREATE INDEX IF NOT EXISTS {self.variables}_by_version ON {self.variables} (session_id, version);
                    CREATE INDEX IF NOT EXISTS {self.variables}_tombstones ON {self.variables} (session_id) WHERE value IS NULL;
                    CREATE TABLE IF NOT EXISTS {self.runs} (
                      session_id   text NOT NULL,
                      run_id       text NOT NULL,
                      step         text NOT NULL,
                      status       text NOT NULL,
                      started_at   text NOT NULL,
                      heartbeat_at bigint NOT NULL,
                      record       text NOT NULL,
                      PRIMARY KEY (session_id, run_id)
                    );
                    CREATE INDEX IF NOT EXISTS {self.runs}_by_session_newest ON {self.runs} (session_id, started_at DESC);"""
            )
            cursor = await db.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'compacted_through'",
                (self.table,),
            )
            if not await cursor.fetchone():
                await db.execute(
                    f"""ALTER TABLE {self.table} ADD COLUMN IF NOT EXISTS compacted_through bigint NOT NULL DEFAULT 0,
                          ADD COLUMN IF NOT EXISTS tombstones bigint NOT NULL DEFAULT 0;
                        UPDATE {self.table} SET tombstones = c.n
                          FROM (SELECT session_id, count(*) AS n FROM {self.variables} WHERE value IS NULL GROUP BY session_id) c
                          WHERE {self.table}.id = c.session_id"""
                )
            cursor = await db.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'schema_version'",
                (self.table,),
            )
            if not await cursor.fetchone():
                # Tables made before schema versions were recorded: every session in them reads as version 0 (that is, 1).
                await db.execute(f"ALTER TABLE {self.table} ADD COLUMN IF NOT EXISTS schema_version integer NOT NULL DEFAULT 0")

    async def _connection(self) -> AbstractAsyncContextManager[AsyncConnection[TupleRow]]:
        if self._pool is None:
            try:
                await self.open()
            except SessionProtocolError as error:
                # Opened by a request: its answer says no more than "try again" (open() says why).
                log.warning("workflow-session: %s", error.message)
                raise _unavailable() from error
        if self._pool is None:  # closed while it opened
            raise SessionProtocolError("unavailable", "The session store is closed")
        return self._pool.connection()

    async def read(self, session_id: str) -> Record | None:
        async with _as_unavailable():
            async with await self._connection() as db:
                return (await self._read(db, session_id))[0]

    async def _read(self, db: AsyncConnection[TupleRow], session_id: str) -> tuple[Record | None, Compaction | None]:
        """The session and its head's compaction columns, in one statement (None and None: no session)."""
        cursor = await db.execute(
            f"""SELECT {HEAD_COLUMNS_OF_H}, {COMPACTION_COLUMNS_OF_H}, v.name, v.value FROM {self.table} h
                LEFT JOIN {self.variables} v ON v.session_id = h.id AND v.value IS NOT NULL WHERE h.id = %s""",
            (session_id,),
        )
        rows = await cursor.fetchall()
        if not rows:
            return None, None
        name, value = HEAD_WIDTH + 2, HEAD_WIDTH + 3  # after the head's columns and its compaction columns
        record = record_of(rows[0][:HEAD_WIDTH], [(row[name], row[value]) for row in rows if row[name] is not None])
        return record, compaction_of(rows[0][HEAD_WIDTH], rows[0][HEAD_WIDTH + 1])

    async def read_since(self, session_id: str, base: SessionBase) -> Record | Changes | None:
        """The head and the variable rows newer than ``base`` when they cover it (:func:`.rows.rows_cover`), else the whole session, in one statement."""
        # One statement, so one snapshot. The join reads the rows newer than the base when they
        # cover it (rows_cover, written in SQL: the lineage, a version from 1 up to the head's,
        # nothing compacted past it; through the index by version), else every row of the session.
        async with _as_unavailable():
            async with await self._connection() as db:
                cursor = await db.execute(
                    f"""SELECT {HEAD_COLUMNS_OF_H}, h.compacted_through, d.covered, v.name, v.value FROM {self.table} h
                        CROSS JOIN LATERAL (SELECT h.created_at = %(created)s AND %(since)s::bigint BETWEEN 1 AND h.version
                          AND h.compacted_through <= %(since)s::bigint AS covered) d
                        LEFT JOIN {self.variables} v ON v.session_id = h.id
                          AND v.version > (CASE WHEN d.covered THEN %(since)s::bigint ELSE -1 END)
                        WHERE h.id = %(id)s""",
                    {"id": session_id, "created": base.created_at, "since": base.version},
                )
                rows = await cursor.fetchall()
        if not rows:
            return None
        # The head's columns, then compacted_through, covered, and a variable row's name and value.
        compacted_through, covered, name, value = HEAD_WIDTH, HEAD_WIDTH + 1, HEAD_WIDTH + 2, HEAD_WIDTH + 3
        head: HeadRow = rows[0][:HEAD_WIDTH]
        variables = [(row[name], row[value]) for row in rows if row[name] is not None]
        if not rows[0][covered]:  # every row of the session: the live ones are the record
            return record_of(head, [(row_name, row_value) for row_name, row_value in variables if row_value is not None])
        if rows_cover(base, head_of(head), int(rows[0][compacted_through])):  # the rule in Python agrees
            return changes_of(head_of(head), variables)
        return await self.read(session_id)

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        async with _as_unavailable():
            async with await self._connection() as db, db.transaction():
                # One writer per session at a time, across every server sharing the database
                # (the same lock key as the TypeScript store).
                await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (session_id,))
                current, compaction = await self._read(db, session_id)
                decision = decide(current)
                match decision.write:
                    case Put(record):
                        await self._write(db, session_id, current, compaction, record)
                    case Remove():
                        await db.execute(f"DELETE FROM {self.variables} WHERE session_id = %s", (session_id,))
                        await db.execute(f"DELETE FROM {self.runs} WHERE session_id = %s", (session_id,))
                        await db.execute(f"DELETE FROM {self.table} WHERE id = %s", (session_id,))
                    case Keep():
                        pass
                return decision.result

    async def _write(self, db: AsyncConnection[TupleRow], session_id: str, current: Record | None, compaction: Compaction | None, record: Record) -> None:
        """Writes the head and the variable rows the write changed (compacting tombstones by the rule of :mod:`.rows`), and tells every server of the new version."""
        if current is None:  # a new session: nothing of an older one with this id stays
            await db.execute(f"DELETE FROM {self.variables} WHERE session_id = %s", (session_id,))
            await db.execute(f"DELETE FROM {self.runs} WHERE session_id = %s", (session_id,))
        version = record["head"]["version"]
        rows = variable_rows(current, record)
        after = next_compaction(compaction, version, tombstones_in(rows))
        await db.execute(
            f"""INSERT INTO {self.table} ({HEAD_COLUMNS}, {COMPACTION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, workflow_id = excluded.workflow_id,
                version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at,
                bytes = excluded.bytes, clients = excluded.clients, schema_version = excluded.schema_version,
                compacted_through = excluded.compacted_through, tombstones = excluded.tombstones""",
            (*head_row(record["head"]), after.compacted_through, after.tombstones),
        )
        if rows:
            await db.execute(
                f"""INSERT INTO {self.variables} (session_id, name, value, version)
                    SELECT %s, name, value, %s FROM unnest(%s::text[], %s::text[]) AS t(name, value)
                    ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value, version = excluded.version""",
                (session_id, version, [name for name, _ in rows], [value for _, value in rows]),
            )
        if after.compact:  # through the partial index {variables}_tombstones: O(tombstones)
            await db.execute(f"DELETE FROM {self.variables} WHERE session_id = %s AND value IS NULL", (session_id,))
        await _notify(db, session_id, version)

    async def read_runs(self, session_id: str, run_id: str | None = None) -> tuple[SessionHead | None, builtins.list[RunRecord]]:
        # One statement, so one snapshot: the head and its runs as of one moment.
        one = "AND r.run_id = %s" if run_id is not None else ""
        params = (run_id, session_id) if run_id is not None else (session_id,)
        async with _as_unavailable():
            async with await self._connection() as db:
                cursor = await db.execute(
                    f"""SELECT {HEAD_COLUMNS_OF_H}, r.record FROM {self.table} h
                        LEFT JOIN {self.runs} r ON r.session_id = h.id {one} WHERE h.id = %s
                        ORDER BY r.started_at DESC, r.run_id""",
                    params,
                )
                rows = await cursor.fetchall()
        if not rows:
            return None, []
        head: HeadRow = rows[0][:HEAD_WIDTH]
        return head_of(head), [run_of(row[HEAD_WIDTH]) for row in rows if row[HEAD_WIDTH] is not None]

    async def _runs(self, db: AsyncConnection[TupleRow], session_id: str, run_id: str | None) -> builtins.list[RunRecord]:
        if run_id is None:
            cursor = await db.execute(f"SELECT record FROM {self.runs} WHERE session_id = %s ORDER BY started_at DESC, run_id", (session_id,))
        else:
            cursor = await db.execute(f"SELECT record FROM {self.runs} WHERE session_id = %s AND run_id = %s", (session_id, run_id))
        return [run_of(row[0]) for row in await cursor.fetchall()]

    async def _put_runs(self, db: AsyncConnection[TupleRow], session_id: str, runs: tuple[RunRecord, ...]) -> None:
        for run in runs:
            await db.execute(
                f"""INSERT INTO {self.runs} ({RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (session_id, run_id) DO UPDATE SET step = excluded.step, status = excluded.status,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, record = excluded.record""",
                run_row(session_id, run),
            )

    async def update_runs(
        self, session_id: str, decide: Callable[[Record | None, builtins.list[RunRecord]], RunsDecision[T]], run_id: str | None = None
    ) -> T:
        async with _as_unavailable():
            async with await self._connection() as db, db.transaction():
                # The session's lock (as update takes it): its runs change with it, never beside it.
                await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (session_id,))
                current, compaction = await self._read(db, session_id)
                decision = decide(current, await self._runs(db, session_id, run_id) if current is not None else [])
                if isinstance(decision.write, Put):
                    await self._write(db, session_id, current, compaction, decision.write.record)  # NOTIFYs the new version
                await self._put_runs(db, session_id, decision.runs)
                if decision.drop:
                    await db.execute(f"DELETE FROM {self.runs} WHERE session_id = %s AND run_id = ANY(%s)", (session_id, builtins.list(decision.drop)))
                if (decision.runs or decision.drop) and not isinstance(decision.write, Put) and current is not None:
                    await _notify(db, session_id, current["head"]["version"])
                return decision.result

    async def update_run(self, session_id: str, run_id: str, decide: Callable[[SessionHead | None, RunRecord | None], tuple[RunRecord | None, T]]) -> T:
        async with _as_unavailable():
            async with await self._connection() as db, db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (session_id,))
                cursor = await db.execute(f"SELECT {HEAD_COLUMNS} FROM {self.table} WHERE id = %s", (session_id,))
                row = await cursor.fetchone()
                head = head_of(row) if row is not None else None
                found = await self._runs(db, session_id, run_id) if head is not None else []
                write, result = decide(head, found[0] if found else None)
                if write is not None and head is not None:
                    await self._put_runs(db, session_id, (write,))
                    await _notify(db, session_id, head["version"])
                return result

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Listed]:
        async with _as_unavailable():
            async with await self._connection() as db:
                cursor = await db.execute(
                    f"""SELECT {HEAD_COLUMNS} FROM {self.table} WHERE (%s::text IS NULL OR user_id = %s)
                        ORDER BY updated_at DESC, id LIMIT %s OFFSET %s""",
                    (user_id, user_id, limit, offset),
                )
                return [listed_of(head_of(row)) for row in await cursor.fetchall()]

    async def ids(self) -> AsyncIterator[str]:
        # In batches by id (keyset), so a long walk neither holds a transaction nor loads every id at once.
        after = ""
        while True:
            async with _as_unavailable():
                async with await self._connection() as db:
                    cursor = await db.execute(f"SELECT id FROM {self.table} WHERE id > %s ORDER BY id LIMIT %s", (after, _IDS_BATCH))
                    batch = [row[0] for row in await cursor.fetchall()]
            for session_id in batch:
                yield session_id
            if len(batch) < _IDS_BATCH:
                return
            after = batch[-1]

    def watch(self, on_change: ChangeListener, on_reconnect: Callable[[], None] | None = None) -> Callable[[], None]:
        key = next(self._watcher_keys)
        self._watchers[key] = (on_change, on_reconnect)
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="workflow-session listen")

        def unwatch() -> None:
            self._watchers.pop(key, None)

        return unwatch

    async def _listen(self) -> None:
        """LISTENs on a connection of its own; connects again with backoff whenever it is lost."""
        import psycopg

        attempt = 0
        while not self._closed:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=LISTENER_NAME, connect_timeout=max(1, round(self._connect_timeout))
                )
            except Exception:
                await asyncio.sleep(retry_delay(attempt))
                attempt += 1
                continue
            try:
                async with connection:
                    await connection.execute(f"LISTEN {CHANGE_CHANNEL}")
                    attempt = 0
                    self.listening.set()
                    # Changes made before this connection listened were not heard (after a lost
                    # connection, or while the first one connected): open streams check again.
                    for _, on_reconnect in list(self._watchers.values()):
                        if on_reconnect is not None:
                            on_reconnect()
                    async for notice in connection.notifies():
                        self._deliver(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("workflow-session: the LISTEN connection was lost (%s); listening again", error)
            finally:
                self.listening.clear()
            if not self._closed:
                await asyncio.sleep(retry_delay(attempt))
                attempt += 1

    def _deliver(self, payload: str) -> None:
        try:
            change = json.loads(payload)
        except ValueError:
            return  # Not ours.
        if not isinstance(change, dict):
            return
        session_id, version = change.get("id"), change.get("version")
        if not isinstance(session_id, str) or isinstance(version, bool) or not isinstance(version, (int, float)):
            return
        for on_change, _ in list(self._watchers.values()):
            on_change(session_id, int(version))

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _notify(db: AsyncConnection[TupleRow], session_id: str, version: int) -> None:
    """Tells every server sharing the database that the session (or one of its runs) changed: ``{"id", "version"}`` on the change channel."""
    await db.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, compact_json({"id": session_id, "version": version})))


class _as_unavailable:
    """A database that cannot be reached (restart, failover, network) is ``unavailable`` (503, retried)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> Literal[False]:
        import psycopg

        if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
            raise _unavailable() from error
        return False


def postgres_store(
    url: str,
    *,
    table: str = "workflow_sessions",
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    migrations: Migrations | None = None,
    on_error: ErrorListener | None = None,
) -> SessionStore:
    """Sessions in PostgreSQL (``open_store("postgres://…")``); needs ``pip install 'workflow-session[postgres]'``.

    Connects on first use in the running event loop, or at ``await store.open()`` (the app's
    startup does it when it runs standalone). Use one store per event loop. ``migrations``: the
    app's schema; ``on_error``: told of the values a migration set aside (see
    :class:`~workflow_session.stores.base.SessionStore`).
    """
    backend = PostgresBackend(url, table=table, pool_size=pool_size, connect_timeout=connect_timeout)
    return SessionStore(backend, migrations=migrations, on_error=on_error)
