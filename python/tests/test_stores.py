"""The store API on every store (memory, SQLite, PostgreSQL): atomic merge, owner rule, copies, paging."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import new_id

from workflow_session import Caller, SessionProtocolError, SessionStore, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        opened = open_store("memory:")
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:{tmp_path}/nested/sessions.db")
    else:
        url = request.getfixturevalue("postgres_url")
        opened = open_store(url, table=f"ws_store_{uuid.uuid4().hex[:10]}")
    try:
        yield opened
    finally:
        await opened.close()


async def test_apply_merges_atomically_once_per_seq(store: SessionStore) -> None:
    sid = new_id()
    first = await store.apply(sid, {"variables": {"n": 1}, "clientId": "tab", "seq": 1})
    assert first.applied and first.snapshot["version"] == 1
    replay = await store.apply(sid, {"variables": {"n": 5}, "clientId": "tab", "seq": 1})
    assert not replay.applied and replay.snapshot["variables"] == {"n": 1}
    # Many writers at once: every patch applied exactly once, one version each.
    await asyncio.gather(*(store.apply(sid, {"variables": {f"k{i}": i}, "clientId": f"c{i}", "seq": 1}) for i in range(30)))
    await asyncio.gather(*(store.apply(sid, {"variables": {f"k{i}": -1}, "clientId": f"c{i}", "seq": 1}) for i in range(30)))
    snapshot = await store.get(sid)
    assert snapshot is not None and snapshot["version"] == 31 and all(snapshot["variables"][f"k{i}"] == i for i in range(30))


async def test_deleted_variables_stay_deleted_and_a_deleted_session_starts_anew(store: SessionStore) -> None:
    sid = new_id()
    await store.apply(sid, {"variables": {"a": 1, "b": [1, {"c": None}], "flag": True}})
    after = await store.apply(sid, {"deleted": ["a", "never-there"], "variables": {"flag": 1}})
    assert after.snapshot["variables"] == {"b": [1, {"c": None}], "flag": 1} and after.snapshot["version"] == 2
    fetched = await store.get(sid)
    assert fetched == after.snapshot and fetched is not None and fetched["variables"]["flag"] is not True
    assert await store.delete(sid) and await store.get(sid) is None
    again = await store.apply(sid, {"variables": {"z": 0}})
    assert again.snapshot["version"] == 1 and (await store.get(sid))["variables"] == {"z": 0}  # type: ignore[index]


async def test_the_owner_rule_for_callers_and_trusted_code(store: SessionStore) -> None:
    sid = new_id()
    created = await store.apply(sid, {"variables": {"a": 1}, "userId": "mallory"}, caller=Caller("ada"))
    assert created.snapshot["userId"] == "ada"  # the owner from the caller, never the body
    assert await store.get(sid, caller=Caller("grace")) is None and await store.get(sid, caller=Caller(None)) is None
    assert (await store.get(sid, caller=Caller("ada"))) is not None and (await store.get(sid)) is not None
    with pytest.raises(SessionProtocolError) as raised:
        await store.apply(sid, {"variables": {"a": 2}}, caller=Caller("grace"))
    assert raised.value.code == "not_found"
    assert not await store.delete(sid, caller=Caller("grace"))
    assert (await store.apply(sid, {"variables": {"a": 3}})).snapshot["variables"] == {"a": 3}  # trusted
    assert await store.delete(sid, caller=Caller("ada")) and await store.get(sid) is None
    with pytest.raises(TypeError):
        await store.get(sid, caller={"userId": "ada"})  # type: ignore[arg-type]
    with pytest.raises(SessionProtocolError) as raised:
        await store.get("nope")
    assert raised.value.code == "invalid_session_id"


async def test_create_is_version_1_and_refuses_a_taken_id(store: SessionStore) -> None:
    sid = new_id()
    created = await store.create(sid, user_id="ada", workflow_id="signup")
    assert (created["version"], created["variables"], created["userId"], created["workflowId"]) == (1, {}, "ada", "signup")
    with pytest.raises(SessionProtocolError) as raised:
        await store.create(sid)
    assert (raised.value.code, raised.value.status) == ("exists", 409)


async def test_values_given_and_returned_are_copies(store: SessionStore) -> None:
    sid = new_id()
    cart = ["milk"]
    result = await store.apply(sid, {"variables": {"cart": cart}})
    cart.append("given")
    result.snapshot["variables"]["cart"].append("returned")
    fetched = await store.get(sid)
    assert fetched is not None and fetched["variables"]["cart"] == ["milk"]
    fetched["variables"]["cart"].append("read")
    assert await store.get_state(sid, "cart") == ["milk"]


async def test_list_pages_newest_first_and_ids_walks_all(store: SessionStore) -> None:
    mine = [new_id() for _ in range(4)]
    for sid in mine:
        await store.apply(sid, {"variables": {"a": 1}}, caller=Caller("lister"))
        await asyncio.sleep(0.002)
    await store.apply(new_id(), {"variables": {"a": 1}}, caller=Caller("someone-else"))
    listed = await store.list(user_id="lister")
    assert [s["sessionId"] for s in listed] == list(reversed(mine))
    assert all("variables" not in s for s in listed)
    assert [s["sessionId"] for s in await store.list(user_id="lister", limit=2, offset=1)] == list(reversed(mine))[1:3]
    ids = [sid async for sid in store.ids()]
    assert set(mine) <= set(ids)
    with pytest.raises(ValueError):
        await store.list(limit=0)


async def test_a_result_over_the_size_limit_stores_nothing(store: SessionStore) -> None:
    sid = new_id()
    await store.apply(sid, {"variables": {"a": 1}})
    with pytest.raises(SessionProtocolError) as raised:
        await store.apply(sid, {"variables": {"big": "x" * 500}}, max_bytes=100)
    assert raised.value.code == "too_large"
    assert (await store.get(sid))["version"] == 1  # type: ignore[index]


async def test_sqlite_writes_the_typescript_stores_tables(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = open_store(f"sqlite:{path}")
    sid = new_id()
    await store.apply(sid, {"variables": {"a": 1, "b": "é", "gone": True}, "clientId": "tab", "seq": 3}, caller=Caller("ada"))
    await store.apply(sid, {"variables": {"a": 2}, "deleted": ["gone"], "clientId": "other", "seq": 1})
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    head = db.execute("SELECT user_id, workflow_id, version, bytes, clients FROM ws_sessions WHERE id = ?", (sid,)).fetchone()
    assert head == ("ada", None, 2, len('{"a":2,"b":"é"}'.encode()), '[["tab",3],["other",1]]')
    rows = db.execute("SELECT name, value, version FROM ws_variables WHERE session_id = ? ORDER BY name", (sid,)).fetchall()
    # A deleted variable stays as a NULL row at the version that deleted it, so caches catch up.
    assert rows == [("a", "2", 2), ("b", '"é"', 1), ("gone", None, 2)]
    db.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from workflow_session import open_store

    async def main(path, name, sid, count):
        store = open_store("sqlite:" + path)
        for seq in range(1, count + 1):
            while True:
                try:
                    await store.apply(sid, {"variables": {name + "-" + str(seq): seq}, "clientId": name, "seq": seq})
                    # The same patch again, as a retry after a timeout would: applied once.
                    await store.apply(sid, {"variables": {name + "-" + str(seq): -1}, "clientId": name, "seq": seq})
                    break
                except Exception as error:
                    if getattr(error, "code", None) != "unavailable":
                        raise
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


def test_two_processes_share_one_sqlite_file_and_apply_every_patch_once(tmp_path: Path) -> None:
    path, sid, count = str(tmp_path / "shared.db"), new_id(), 40
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, path, name, sid, str(count)]) for name in ("one", "two")]
    try:
        assert [writer.wait(60) for writer in writers] == [0, 0]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    store = open_store(f"sqlite:{path}")
    snapshot = asyncio.run(store.get(sid))
    asyncio.run(store.close())
    assert snapshot is not None
    variables = snapshot["variables"]
    assert snapshot["version"] == 2 * count
    assert all(variables[f"{name}-{seq}"] == seq for name in ("one", "two") for seq in range(1, count + 1))


async def test_a_write_past_the_busy_timeout_is_unavailable_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:{path}", busy_timeout=0.2)
    sid = new_id()
    await store.apply(sid, {"variables": {"a": 1}})
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(SessionProtocolError) as raised:
            await store.apply(sid, {"variables": {"a": 2}})
        assert raised.value.code == "unavailable"
        assert (await store.get(sid))["variables"] == {"a": 1}  # type: ignore[index]  # reads go on (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await store.apply(sid, {"variables": {"a": 2}})).applied
    await store.close()


async def test_open_store_urls() -> None:
    assert type(open_store("memory:").backend).__name__ == "MemoryBackend"
    in_memory = open_store("sqlite::memory:")
    await in_memory.apply(new_id(), {"variables": {"a": 1}})
    await in_memory.close()
    for bad in ["sqlite:", "redis://x", "nothing"]:
        with pytest.raises(ValueError):
            open_store(bad)


async def test_postgres_unreachable_is_unavailable() -> None:
    store = open_store("postgres://postgres:postgres@127.0.0.1:1/none", connect_timeout=1)
    with pytest.raises(SessionProtocolError) as raised:
        await store.open()
    assert raised.value.code == "unavailable" and '127.0.0.1:1, database "none"' in raised.value.message
    with pytest.raises(SessionProtocolError):
        await store.get(new_id())
    await store.close()


async def test_adopt_makes_an_ownerless_session_the_users_once(store: SessionStore) -> None:
    sid = new_id()
    await store.apply(sid, {"variables": {"draft": 1}})
    adopted = await store.adopt(sid, "eve")
    assert adopted["userId"] == "eve" and adopted["version"] == 2 and adopted["variables"] == {"draft": 1}
    assert (await store.adopt(sid, "eve"))["version"] == 2
    with pytest.raises(SessionProtocolError) as refused:
        await store.adopt(sid, "ada")
    assert refused.value.code == "not_found"
    assert await store.get(sid, caller=Caller(None)) is None
    assert [summary["sessionId"] for summary in await store.list(user_id="eve")] == [sid]


async def test_sessions_do_not_expire_and_a_read_removes_nothing(tmp_path: Path) -> None:
    """No TTL: a session untouched for years (one a TypeScript store with ttlMs would purge) reads as live, and stays."""
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:{path}")
    sid = new_id()
    await store.apply(sid, {"variables": {"a": 1}})
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE ws_sessions SET updated_at = '2001-01-01T00:00:00.000Z' WHERE id = ?", (sid,))
    snapshot = await store.get(sid)
    assert snapshot is not None and snapshot["variables"] == {"a": 1} and snapshot["updatedAt"] == "2001-01-01T00:00:00.000Z"
    assert [summary["sessionId"] for summary in await store.list()] == [sid]
    assert db.execute("SELECT count(*) FROM ws_variables WHERE session_id = ?", (sid,)).fetchone() == (1,)
    db.close()
    await store.close()
