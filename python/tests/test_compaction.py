"""Deleted variables are compacted by the TypeScript stores' rule, on SQLite and PostgreSQL.

A deleted variable stays as a value-less row (a tombstone) so that a server holding the session in
memory catches up; the write that takes a session's count of them past ``MAX_TOMBSTONES`` removes
them all and sets the head's ``compacted_through`` to its version (a copy older than that is
loaded again whole). Tables of the previous version get the two columns when a store opens.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import new_id

from workflow_session import SessionStore, open_store
from workflow_session.stores.rows import MAX_TOMBSTONES

pytestmark = pytest.mark.anyio


@dataclass
class Place:
    """A database, a way to open a store on it, and what its rows are."""

    open: Callable[[], SessionStore]
    #: (live rows, tombstone rows) of a session.
    rows: Callable[[str], Awaitable[tuple[int, int]]]
    #: (compacted_through, tombstones) of a session's head.
    head: Callable[[str], Awaitable[tuple[int, int]]]
    #: Runs SQL on the database (tables of the previous version): statement, then rows of parameters.
    run: Callable[[str, list[tuple[object, ...]]], Awaitable[None]]
    sessions: str
    variables: str


@pytest.fixture(params=["sqlite", "postgres"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    if request.param == "sqlite":
        path = tmp_path / "sessions.db"

        def query(sql: str, params: tuple[object, ...]) -> tuple[int, int]:
            with sqlite3.connect(path) as db:
                row = db.execute(sql, params).fetchone()
            db.close()
            return (int(row[0]), int(row[1]))

        async def rows(sid: str) -> tuple[int, int]:
            return query("SELECT count(value), count(*) - count(value) FROM ws_variables WHERE session_id = ?", (sid,))

        async def head(sid: str) -> tuple[int, int]:
            return query("SELECT compacted_through, tombstones FROM ws_sessions WHERE id = ?", (sid,))

        async def run(sql: str, params: list[tuple[object, ...]]) -> None:
            with sqlite3.connect(path) as db:
                if params:
                    db.executemany(sql.replace("%s", "?"), params)
                else:
                    db.executescript(sql)
            db.close()

        yield Place(lambda: open_store(f"sqlite:{path}"), rows, head, run, "ws_sessions", "ws_variables")
        return

    import psycopg

    url = request.getfixturevalue("postgres_url")
    table = f"ws_compact_{uuid.uuid4().hex[:10]}"
    admin = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def pg_query(sql: str, params: tuple[object, ...]) -> tuple[int, int]:
        row = await (await admin.execute(sql, params)).fetchone()
        assert row is not None
        return (int(row[0]), int(row[1]))

    async def pg_rows(sid: str) -> tuple[int, int]:
        return await pg_query(f"SELECT count(value), count(*) - count(value) FROM {table}_variables WHERE session_id = %s", (sid,))

    async def pg_head(sid: str) -> tuple[int, int]:
        return await pg_query(f"SELECT compacted_through, tombstones FROM {table} WHERE id = %s", (sid,))

    async def pg_run(sql: str, params: list[tuple[object, ...]]) -> None:
        async with admin.cursor() as cursor:
            if params:
                await cursor.executemany(sql, params)
            else:
                await cursor.execute(sql)

    try:
        yield Place(lambda: open_store(url, table=table), pg_rows, pg_head, pg_run, table, f"{table}_variables")
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}, {table}_variables")
        await admin.close()


def names(start: int, end: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, end)]


async def test_10000_names_written_and_deleted_leave_at_most_max_tombstones(place: Place, capsys: pytest.CaptureFixture[str]) -> None:
    store = place.open()
    try:
        sid = new_id()
        await store.apply(sid, {"variables": {"keep": 1}})
        most = 0
        # 100 rounds: 100 new names set, then deleted (versions 2 and 3, 4 and 5, …).
        for round in range(100):
            batch = names(round * 100, round * 100 + 100, "n")
            await store.apply(sid, {"variables": {name: round for name in batch}})
            await store.apply(sid, {"deleted": batch})
            most = max(most, (await place.rows(sid))[1])
        live, tombstones = await place.rows(sid)
        with capsys.disabled():
            print(f"\n{place.sessions}: {live + tombstones} variable rows left after 10,000 names written and deleted ({tombstones} tombstones; most at once {most})")
        assert most <= MAX_TOMBSTONES
        # Compacted by the 11th, 22nd, … 99th delete (version 199): the last 100 deletions stay as tombstones.
        assert (live, tombstones) == (1, 100)
        assert await place.head(sid) == (199, 100)
        snapshot = await store.get(sid)
        assert snapshot is not None and snapshot["version"] == 201 and snapshot["variables"] == {"keep": 1}
    finally:
        await store.close()


async def test_a_session_deleted_and_made_again_starts_its_compaction_afresh(place: Place) -> None:
    store = place.open()
    try:
        sid = new_id()
        await store.apply(sid, {"variables": {name: 1 for name in names(0, 1100, "y")}})
        await store.apply(sid, {"deleted": names(0, 1100, "y")})
        assert await place.head(sid) == (2, 0) and await place.rows(sid) == (0, 0)
        assert await store.delete(sid)
        await store.apply(sid, {"variables": {"a": 1}})
        # Version 1 of the new session: no copy of an earlier version is of this session.
        assert await place.head(sid) == (1, 0)
        await store.apply(sid, {"deleted": ["a"]})
        assert await place.head(sid) == (1, 1) and await place.rows(sid) == (0, 1)
    finally:
        await store.close()


PREVIOUS_SCHEMA = """
  CREATE TABLE {sessions} (id TEXT PRIMARY KEY, user_id TEXT, workflow_id TEXT, version BIGINT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, bytes BIGINT NOT NULL, clients TEXT NOT NULL);
  CREATE TABLE {variables} (session_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT, version BIGINT NOT NULL, PRIMARY KEY (session_id, name));
"""
TIME = "2026-01-02T03:04:05.678Z"


async def test_tables_of_the_previous_version_get_the_columns_and_each_sessions_count(place: Place) -> None:
    """A session of version 3 as the previous version left it: ``kept`` (version 1) and 1,500 tombstones (version 2)."""
    await place.run(PREVIOUS_SCHEMA.format(sessions=place.sessions, variables=place.variables), [])
    await place.run(f"INSERT INTO {place.sessions} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [("previous-session-1", None, None, 3, TIME, TIME, 10, "[]")])
    rows: list[tuple[object, ...]] = [("previous-session-1", "kept", "1", 1)] + [("previous-session-1", name, None, 2) for name in names(0, 1500, "gone")]
    await place.run(f"INSERT INTO {place.variables} VALUES (%s, %s, %s, %s)", rows)
    store, again = place.open(), place.open()
    try:
        snapshot = await store.get("previous-session-1")
        assert snapshot is not None and snapshot["version"] == 3 and snapshot["variables"] == {"kept": 1}
        assert await place.head("previous-session-1") == (0, 1500)
        # The next deletion takes the count past the bound: every tombstone goes.
        await again.apply("previous-session-1", {"deleted": ["kept"]})
        assert await place.head("previous-session-1") == (4, 0) and await place.rows("previous-session-1") == (0, 0)
    finally:
        await store.close()
        await again.close()
