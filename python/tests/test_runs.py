"""Durable runs in the stores (docs/protocol.md, "Runs"): one end per run, kept runs, the tables, on real SQLite files and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import new_id

from workflow_session import Caller, SessionProtocolError, SessionStore, open_store
from workflow_session.runs import ms_of
from workflow_session.stores.postgres import CHANGE_CHANNEL

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A real store to open: a SQLite file, or a table of its own in the test database."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/runs.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_runs_{uuid.uuid4().hex[:10]}"}


def open_url(store_url: tuple[str, dict[str, Any]]) -> SessionStore:
    url, options = store_url
    return open_store(url, **options)


async def test_the_store_writes_one_end_over_a_running_run_only(store_url: Any) -> None:
    store = open_url(store_url)
    try:
        sid = new_id()
        await store.start_run(sid, "run-0001", "step")
        cancelled = await store.cancel_run(sid, "run-0001")
        assert cancelled is not None and cancelled["status"] == "cancelled" and cancelled["rev"] == 2
        late = await store.finish_run(sid, "run-0001", "succeeded", output=1, changes={"variables": {"n": 1}})
        assert not late.ended and late.run == cancelled and late.snapshot is None
        assert (await store.get(sid))["version"] == 1  # type: ignore[index]
        await store.start_run(sid, "run-0002", "step")
        end = await store.finish_run(sid, "run-0002", "succeeded", output=1, changes={"variables": {"n": 1}})
        assert end.ended and end.applied and end.run is not None and end.run["version"] == 2 and end.snapshot is not None
        assert await store.cancel_run(sid, "run-0002") == end.run  # finished: as it is
        # Changes that break a rule: failed, nothing merged.
        await store.start_run(sid, "run-0003", "step")
        broken = await store.finish_run(sid, "run-0003", "succeeded", changes={"variables": {"__proto__": 1}})
        assert broken.ended and broken.run is not None and broken.run["status"] == "failed" and broken.problem is not None
        assert broken.run["error"] is not None and broken.run["error"]["code"] == "step_failed"
        too_big = await store.start_run(sid, "run-0004", "step")
        assert too_big.started and too_big.run["readVersion"] == 2
        big = await store.finish_run(sid, "run-0004", "succeeded", changes={"variables": {"big": "x" * 2000}}, max_bytes=1000)
        assert big.run is not None and big.run["status"] == "failed" and (await store.get(sid))["version"] == 2  # type: ignore[index]
        # Nothing changed: succeeded at the current version, no bump.
        await store.start_run(sid, "run-0005", "step")
        same = await store.finish_run(sid, "run-0005", "succeeded", output=None, changes={})
        assert same.run is not None and same.run["version"] == 2 and not same.applied
    finally:
        await store.close()


async def test_a_session_keeps_its_fifty_newest_finished_runs(store_url: Any) -> None:
    store = open_url(store_url)
    try:
        sid = new_id()
        await store.start_run(sid, "run-running", "long")
        for n in range(55):
            await asyncio.sleep(0.002)  # distinct startedAt
            await store.start_run(sid, f"run-{n:05d}", "step")
            await store.finish_run(sid, f"run-{n:05d}", "succeeded")
        await asyncio.sleep(0.002)
        await store.start_run(sid, "run-last1", "step")
        runs = await store.list_runs(sid)
        assert runs is not None
        finished_ids = [run["runId"] for run in runs if run["status"] != "running"]
        assert finished_ids == [f"run-{n:05d}" for n in range(54, 4, -1)]  # the 50 newest, newest first
        assert {run["runId"] for run in runs if run["status"] == "running"} == {"run-running", "run-last1"}
    finally:
        await store.close()


async def test_the_sqlite_table_is_the_typescript_stores(tmp_path: Path) -> None:
    path = tmp_path / "tables.db"
    store = open_store(f"sqlite:{path}")
    sid = new_id()
    await store.start_run(sid, "run-0001", "step", {"a": 1})
    await store.progress_run(sid, "run-0001", {"done": 1})
    await store.close()
    with sqlite3.connect(path) as db:
        columns = [(row[1], row[2], row[3], row[5]) for row in db.execute("PRAGMA table_info(ws_runs)")]
        assert columns == [
            ("session_id", "TEXT", 1, 1),
            ("run_id", "TEXT", 1, 2),
            ("step", "TEXT", 1, 0),
            ("status", "TEXT", 1, 0),
            ("started_at", "TEXT", 1, 0),
            ("heartbeat_at", "INTEGER", 1, 0),
            ("record", "TEXT", 1, 0),
        ]
        assert "WITHOUT ROWID" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'ws_runs'").fetchone()[0]
        index = [(row[2], row[3]) for row in db.execute("PRAGMA index_xinfo(ws_runs_by_session_newest)") if row[1] >= 0]
        assert index[:2] == [("session_id", 0), ("started_at", 1)]
        [(session_id, run_id, step, status, started_at, heartbeat_at, record)] = db.execute("SELECT * FROM ws_runs").fetchall()
    run = json.loads(record)
    assert (session_id, run_id, step, status, started_at) == (sid, run["runId"], run["step"], run["status"], run["startedAt"])
    assert heartbeat_at == ms_of(run["heartbeatAt"]) and isinstance(heartbeat_at, int)
    assert run["progress"] == {"done": 1} and run["rev"] == 2 and run["input"] == {"a": 1}


async def test_the_postgres_table_and_every_run_write_notifies(postgres_url: str) -> None:
    table = f"ws_notify_{uuid.uuid4().hex[:10]}"
    store = open_store(postgres_url, table=table)
    listener = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
    try:
        sid = new_id()
        await store.open()
        await listener.execute(f"LISTEN {CHANGE_CHANNEL}")
        notices = listener.notifies()

        async def next_notice() -> Any:
            return json.loads((await asyncio.wait_for(anext(notices), 5)).payload)

        await store.start_run(sid, "run-0001", "step")
        assert await next_notice() == {"id": sid, "version": 1}  # the session created with the run
        for write in [store.progress_run(sid, "run-0001", 1), store.renew_run(sid, "run-0001"), store.cancel_run(sid, "run-0001")]:
            await write
            assert await next_notice() == {"id": sid, "version": 1}
        await notices.aclose()  # the generator holds its connection: the checks below use another
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", (f"{table}_runs",)
            )
            assert await cursor.fetchall() == [
                ("session_id", "text"),
                ("run_id", "text"),
                ("step", "text"),
                ("status", "text"),
                ("started_at", "text"),
                ("heartbeat_at", "bigint"),
                ("record", "text"),
            ]
            cursor = await admin.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"{table}_runs_by_session_newest",))
            [(definition,)] = await cursor.fetchall()
            assert "(session_id, started_at DESC)" in definition
            cursor = await admin.execute(f"SELECT status, heartbeat_at, record FROM {table}_runs WHERE session_id = %s", (sid,))
            [(status, heartbeat_at, record)] = await cursor.fetchall()
            assert status == "cancelled" == json.loads(record)["status"] and heartbeat_at == ms_of(json.loads(record)["heartbeatAt"])
            assert await store.delete(sid)
            cursor = await admin.execute(f"SELECT count(*) FROM {table}_runs WHERE session_id = %s", (sid,))
            assert await cursor.fetchone() == (0,)
    finally:
        await listener.close()
        await store.close()


async def test_the_store_api_checks_run_ids() -> None:
    store = open_store("memory:")
    with pytest.raises(SessionProtocolError) as raised:
        await store.start_run(new_id(), "short", "step")
    assert raised.value.code == "invalid_run"
    with pytest.raises(SessionProtocolError) as raised:
        await store.get_run("nope", "run-0001")
    assert raised.value.code == "invalid_session_id"
    assert await store.get_run(new_id(), "short") is None
    assert await store.cancel_run(new_id(), "run-0001", caller=Caller("ada")) is None
    assert await store.list_runs(new_id()) is None
