"""Sessions in one SQLite file (the standard library's sqlite3, WAL): the embedded default.

Each write is one ``BEGIN IMMEDIATE`` transaction (read, merge, write, client ``seq``), so several
processes may share the file; a writer that finds it locked waits up to the busy timeout, then
the request answers 503 ``unavailable``. The same tables as the TypeScript store (see
:mod:`.rows`): Python and Node processes may share the file. A session's runs are rows of
``ws_runs``, written in the same transactions as the session (a run's end and its merge in one).
A delta since a version reads the head and only the variable rows newer than it (see :mod:`.rows`).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from typing_extensions import ParamSpec

from ..deltas import SessionBase
from ..errors import SessionProtocolError
from ..migrations import Migrations
from ..models import Record, RunRecord, SessionHead
from .base import Backend, Changes, Decision, ErrorListener, Keep, Listed, Put, Remove, RunsDecision, SessionStore, T, listed_of
from .rows import (
    COMPACTION_COLUMNS,
    HEAD_COLUMNS,
    HEAD_WIDTH,
    RUN_COLUMNS,
    Compaction,
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

SCHEMA = """
  CREATE TABLE IF NOT EXISTS ws_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT,
    workflow_id TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    clients     TEXT NOT NULL,
    compacted_through INTEGER NOT NULL DEFAULT 0,
    tombstones  INTEGER NOT NULL DEFAULT 0,
    schema_version INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS ws_sessions_by_user_newest ON ws_sessions (user_id, updated_at DESC);
  CREATE INDEX IF NOT EXISTS ws_sessions_by_newest ON ws_sessions (updated_at DESC);
  CREATE TABLE IF NOT EXISTS ws_variables (
    session_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT,
    version    INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS ws_variables_tombstones ON ws_variables (session_id) WHERE value IS NULL;
  CREATE TABLE IF NOT EXISTS ws_runs (
    session_id   TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    record       TEXT NOT NULL,
    PRIMARY KEY (session_id, run_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS ws_runs_by_session_newest ON ws_runs (session_id, started_at DESC);
"""
#: Tables made before tombstones were compacted: the head's compaction columns, and each session's count of its tombstones.
ADD_COMPACTION_COLUMNS = """
  ALTER TABLE ws_sessions ADD COLUMN compacted_through INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE ws_sessions ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
  UPDATE ws_sessions SET tombstones = (SELECT count(*) FROM ws_variables WHERE session_id = ws_sessions.id AND value IS NULL)
    WHERE id IN (SELECT session_id FROM ws_variables WHERE value IS NULL);
"""
#: Tables made before schema versions were recorded: every session in them reads as version 0 (that is, 1).
ADD_SCHEMA_VERSION_COLUMN = "ALTER TABLE ws_sessions ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0"
UPSERT_HEAD = f"""
  INSERT INTO ws_sessions ({HEAD_COLUMNS}, {COMPACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, workflow_id = excluded.workflow_id, version = excluded.version,
    updated_at = excluded.updated_at, bytes = excluded.bytes, clients = excluded.clients, schema_version = excluded.schema_version,
    compacted_through = excluded.compacted_through, tombstones = excluded.tombstones
"""
UPSERT_RUN = f"""
  INSERT INTO ws_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (session_id, run_id) DO UPDATE SET step = excluded.step, status = excluded.status, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, record = excluded.record
"""
SELECT_RUNS = "SELECT record FROM ws_runs WHERE session_id = ? ORDER BY started_at DESC, run_id"
SELECT_RUN = "SELECT record FROM ws_runs WHERE session_id = ? AND run_id = ?"
UPSERT_VARIABLE = """
  INSERT INTO ws_variables (session_id, name, value, version) VALUES (?, ?, ?, ?)
  ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value, version = excluded.version
"""
_IDS_BATCH = 500
P = ParamSpec("P")


class SqliteBackend(Backend):
    """One connection per worker thread; every call runs in those threads, never on the event loop."""

    def __init__(self, path: str, *, synchronous: Literal["full", "normal"] = "full", busy_timeout: float = 5.0, threads: int = 4) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError('synchronous must be "full" or "normal"')
        self.path = path
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        in_memory = path == ":memory:" or path.startswith("file::memory:")
        if not in_memory:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # A private in-memory database exists per connection: one thread, one connection.
        self._executor = ThreadPoolExecutor(max_workers=1 if in_memory else threads, thread_name_prefix="workflow-session-sqlite")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        # The first connection (and the tables) now: a bad path fails here rather than on the first request.
        self._executor.submit(_busy_as_unavailable, self._connection).result()

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            # Turning a new file to WAL takes a lock that SQLite does not wait for: processes
            # opening one file at once retry it within the busy timeout.
            _retry_while_locked(lambda: db.execute("PRAGMA journal_mode = WAL"), self._busy_timeout)
            db.execute(f"PRAGMA synchronous = {self._synchronous}")
            _retry_while_locked(lambda: db.executescript(SCHEMA), self._busy_timeout)
            _retry_while_locked(lambda: _add_column_once(db, "compacted_through", ADD_COMPACTION_COLUMNS), self._busy_timeout)
            _retry_while_locked(lambda: _add_column_once(db, "schema_version", ADD_SCHEMA_VERSION_COLUMN), self._busy_timeout)
            if db.execute("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'record'").fetchone():
                raise RuntimeError(f"{self.path} holds sessions in the layout of 0.1: open it once with the TypeScript sqliteStore, which moves them")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    async def _run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise SessionProtocolError("unavailable", "The session store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(_busy_as_unavailable, work, *args, **kwargs))

    def _read(self, session_id: str) -> Record | None:
        return self._read_compaction(session_id)[0]

    def _read_compaction(self, session_id: str) -> tuple[Record | None, Compaction | None]:
        """The session and its head's compaction columns (None and None: no session)."""
        db = self._connection()
        head = db.execute(f"SELECT {HEAD_COLUMNS}, {COMPACTION_COLUMNS} FROM ws_sessions WHERE id = ?", (session_id,)).fetchone()
        if head is None:
            return None, None
        rows = db.execute("SELECT name, value FROM ws_variables WHERE session_id = ? AND value IS NOT NULL", (session_id,)).fetchall()
        return record_of(head[:HEAD_WIDTH], rows), compaction_of(head[HEAD_WIDTH], head[HEAD_WIDTH + 1])

    def _read_since(self, session_id: str, base: SessionBase) -> Record | Changes | None:
        """The rows newer than ``base`` when they cover it (see :func:`.rows.rows_cover`), else the whole session; one read transaction."""
        db = self._connection()
        db.execute("BEGIN")  # one snapshot: the head and the rows as of one moment
        try:
            head = db.execute(f"SELECT {HEAD_COLUMNS}, {COMPACTION_COLUMNS} FROM ws_sessions WHERE id = ?", (session_id,)).fetchone()
            if head is None:
                return None
            if rows_cover(base, head_of(head[:HEAD_WIDTH]), int(head[HEAD_WIDTH])):
                rows = db.execute("SELECT name, value FROM ws_variables WHERE session_id = ? AND version > ?", (session_id, base.version)).fetchall()
                return changes_of(head_of(head[:HEAD_WIDTH]), rows)
            rows = db.execute("SELECT name, value FROM ws_variables WHERE session_id = ? AND value IS NOT NULL", (session_id,)).fetchall()
            return record_of(head[:HEAD_WIDTH], rows)
        finally:
            db.execute("COMMIT")

    def _update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            current, compaction = self._read_compaction(session_id)
            decision = decide(current)
            match decision.write:
                case Put(record):
                    self._put(db, session_id, current, compaction, record)
                case Remove():
                    db.execute("DELETE FROM ws_variables WHERE session_id = ?", (session_id,))
                    db.execute("DELETE FROM ws_runs WHERE session_id = ?", (session_id,))
                    db.execute("DELETE FROM ws_sessions WHERE id = ?", (session_id,))
                case Keep():
                    pass
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return decision.result

    def _put(self, db: sqlite3.Connection, session_id: str, current: Record | None, compaction: Compaction | None, record: Record) -> None:
        """Writes the head and the variable rows the write changed (compacting tombstones by the rule of :mod:`.rows`)."""
        if current is None:  # a new session: nothing of an older one with this id stays
            db.execute("DELETE FROM ws_variables WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM ws_runs WHERE session_id = ?", (session_id,))
        version = record["head"]["version"]
        rows = variable_rows(current, record)
        after = next_compaction(compaction, version, tombstones_in(rows))
        db.execute(UPSERT_HEAD, (*head_row(record["head"]), after.compacted_through, after.tombstones))
        db.executemany(UPSERT_VARIABLE, [(session_id, name, value, version) for name, value in rows])
        if after.compact:  # through the partial index ws_variables_tombstones: O(tombstones)
            db.execute("DELETE FROM ws_variables WHERE session_id = ? AND value IS NULL", (session_id,))

    def _runs(self, db: sqlite3.Connection, session_id: str, run_id: str | None) -> list[RunRecord]:
        if run_id is None:
            return [run_of(row[0]) for row in db.execute(SELECT_RUNS, (session_id,))]
        return [run_of(row[0]) for row in db.execute(SELECT_RUN, (session_id, run_id))]

    def _head(self, db: sqlite3.Connection, session_id: str) -> SessionHead | None:
        row = db.execute(f"SELECT {HEAD_COLUMNS} FROM ws_sessions WHERE id = ?", (session_id,)).fetchone()
        return head_of(row) if row is not None else None

    def _read_runs(self, session_id: str, run_id: str | None) -> tuple[SessionHead | None, list[RunRecord]]:
        db = self._connection()
        db.execute("BEGIN")  # one snapshot: the head and its runs as of one moment
        try:
            head = self._head(db, session_id)
            return head, self._runs(db, session_id, run_id) if head is not None else []
        finally:
            db.execute("COMMIT")

    def _update_runs(self, session_id: str, decide: Callable[[Record | None, list[RunRecord]], RunsDecision[T]], run_id: str | None) -> T:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            current, compaction = self._read_compaction(session_id)
            decision = decide(current, self._runs(db, session_id, run_id) if current is not None else [])
            if isinstance(decision.write, Put):
                self._put(db, session_id, current, compaction, decision.write.record)
            db.executemany(UPSERT_RUN, [run_row(session_id, run) for run in decision.runs])
            db.executemany("DELETE FROM ws_runs WHERE session_id = ? AND run_id = ?", [(session_id, dropped) for dropped in decision.drop])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return decision.result

    def _update_run(self, session_id: str, run_id: str, decide: Callable[[SessionHead | None, RunRecord | None], tuple[RunRecord | None, T]]) -> T:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            head = self._head(db, session_id)
            found = self._runs(db, session_id, run_id) if head is not None else []
            write, result = decide(head, found[0] if found else None)
            if write is not None:
                db.execute(UPSERT_RUN, run_row(session_id, write))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _list(self, user_id: str | None, limit: int, offset: int) -> list[Listed]:
        params: tuple[str | int, ...]
        if user_id is None:
            sql, params = f"SELECT {HEAD_COLUMNS} FROM ws_sessions ORDER BY updated_at DESC, id LIMIT ? OFFSET ?", (limit, offset)
        else:
            sql = f"SELECT {HEAD_COLUMNS} FROM ws_sessions WHERE user_id = ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?"
            params = (user_id, limit, offset)
        return [listed_of(head_of(row)) for row in self._connection().execute(sql, params)]

    def _ids_after(self, after: str) -> list[str]:
        rows = self._connection().execute("SELECT id FROM ws_sessions WHERE id > ? ORDER BY id LIMIT ?", (after, _IDS_BATCH))
        return [row[0] for row in rows]

    async def read(self, session_id: str) -> Record | None:
        return await self._run(self._read, session_id)

    async def read_since(self, session_id: str, base: SessionBase) -> Record | Changes | None:
        """The head and the variable rows newer than ``base`` when they cover it, else the whole session (see :meth:`_read_since`)."""
        return await self._run(self._read_since, session_id, base)

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        return await self._run(self._update, session_id, decide)

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Listed]:
        return await self._run(self._list, user_id, limit, offset)

    async def read_runs(self, session_id: str, run_id: str | None = None) -> tuple[SessionHead | None, builtins.list[RunRecord]]:
        return await self._run(self._read_runs, session_id, run_id)

    async def update_runs(
        self, session_id: str, decide: Callable[[Record | None, builtins.list[RunRecord]], RunsDecision[T]], run_id: str | None = None
    ) -> T:
        return await self._run(self._update_runs, session_id, decide, run_id)

    async def update_run(self, session_id: str, run_id: str, decide: Callable[[SessionHead | None, RunRecord | None], tuple[RunRecord | None, T]]) -> T:
        return await self._run(self._update_run, session_id, run_id, decide)

    async def ids(self) -> AsyncIterator[str]:
        # In batches by id, so a long walk neither holds a read transaction nor loads every id at once.
        after = ""
        while True:
            batch = await self._run(self._ids_after, after)
            for session_id in batch:
                yield session_id
            if len(batch) < _IDS_BATCH:
                return
            after = batch[-1]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()


def _add_column_once(db: sqlite3.Connection, column: str, statements: str) -> None:
    """Runs ``statements`` (adding ``column`` to ``ws_sessions``, and what goes with it) on a table made before the column, once, in one transaction (as the TypeScript store does)."""
    added = f"SELECT 1 FROM pragma_table_info('ws_sessions') WHERE name = '{column}'"
    if db.execute(added).fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if not db.execute(added).fetchone():
            for statement in statements.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _retry_while_locked(work: Callable[[], object], seconds: float) -> None:
    """Runs ``work``, again every 20 ms while the file is locked, for at most ``seconds``."""
    until = time.monotonic() + seconds
    while True:
        try:
            work()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or time.monotonic() > until:
                raise
            time.sleep(0.02)


def _busy_as_unavailable(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A database still locked by another process after the busy timeout is ``unavailable`` (503, retried)."""
    try:
        return work(*args, **kwargs)
    except sqlite3.OperationalError as error:
        name = getattr(error, "sqlite_errorname", "")
        if name.startswith("SQLITE_BUSY") or "database is locked" in str(error):
            raise SessionProtocolError("unavailable", "The session database is busy with another process; try again") from error
        raise


def sqlite_store(
    path: str,
    *,
    synchronous: Literal["full", "normal"] = "full",
    busy_timeout: float = 5.0,
    migrations: Migrations | None = None,
    on_error: ErrorListener | None = None,
) -> SessionStore:
    """Sessions in one SQLite file (``open_store("sqlite:PATH")``).

    ``synchronous="full"`` (default): a confirmed patch survives a power cut; ``"normal"`` is
    faster and survives a crash of the process. ``busy_timeout``: seconds a write waits for
    another process's write to the same file before it answers ``unavailable``. ``migrations``:
    the app's schema; ``on_error``: told of the values a migration set aside (see
    :class:`~workflow_session.stores.base.SessionStore`).
    """
    backend = SqliteBackend(path, synchronous=synchronous, busy_timeout=busy_timeout)
    return SessionStore(backend, migrations=migrations, on_error=on_error)
