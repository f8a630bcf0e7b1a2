"""PostgreSQL across servers: two app instances on one database hear each other (LISTEN/NOTIFY), as Node servers do."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from conftest import asgi_call, client_of, new_id

from workflow_session import create_session_app, open_store
from workflow_session.stores.postgres import CHANGE_CHANNEL, LISTENER_NAME

pytestmark = pytest.mark.anyio


def data_of(block: list[str]) -> dict[str, Any]:
    assert block[1] == "event: snapshot", block
    return json.loads(block[2].removeprefix("data: "))


@pytest.fixture
def two_servers(serve: Any, postgres_url: str) -> tuple[Any, Any, str]:
    table = f"ws_feed_{uuid.uuid4().hex[:10]}"

    def make() -> Any:
        return create_session_app(store=open_store(postgres_url, table=table), heartbeat_seconds=5)

    return serve(make), serve(make), table


async def wait_listening(server: Any) -> None:
    server.call(asyncio.wait_for(server.app.store.backend.listening.wait(), 10), timeout=15)


async def test_two_app_instances_on_one_database_hear_each_other(two_servers: Any, events: Any) -> None:
    first, second, _ = two_servers
    sid = new_id()
    async with httpx.AsyncClient() as client:
        on_second = await events(f"{second.url}/{sid}/events")
        on_first = await events(f"{first.url}/{sid}/events")
        assert await on_second.next_block() == [": connected"] and await on_first.next_block() == [": connected"]
        written = (await client.post(f"{first.url}/{sid}", json={"variables": {"from": "first"}})).json()
        assert data_of(await on_second.next_block()) == written  # heard through NOTIFY
        assert data_of(await on_first.next_block()) == written  # announced in process
        written = (await client.post(f"{second.url}/{sid}", json={"variables": {"from": "second"}, "clientId": "tab", "seq": 1})).json()
        assert data_of(await on_first.next_block())["variables"] == {"from": "second"}
        assert data_of(await on_second.next_block())["version"] == 2
        # Exactly once across servers: the same patch replayed through the other server applies nothing.
        replay = (await client.post(f"{first.url}/{sid}", json={"variables": {"from": "replay"}, "clientId": "tab", "seq": 1})).json()
        assert replay == written


async def test_a_stream_of_deltas_on_the_other_server_gets_each_change_and_catches_up_with_one_delta_or_one_snapshot(
    two_servers: Any, events: Any
) -> None:
    first, second, _ = two_servers
    sid = new_id()

    def tag(session: dict[str, Any]) -> str:
        return f"{session['version']}@{session['createdAt']}"

    async def event_of(stream: Any) -> tuple[str, dict[str, Any]]:
        while True:
            block = await stream.next_block()
            if block and not block[0].startswith(":"):
                fields = dict(line.split(": ", 1) for line in block)
                return fields["event"], json.loads(fields["data"])

    async with httpx.AsyncClient() as client:
        held = (await client.post(f"{first.url}/{sid}", json={"variables": {"a": 1, "b": 1, "c": 1}})).json()
        # Open on the second server, holding version 1: a change through the first comes as a delta from 1.
        stream = await events(f"{second.url}/{sid}/events", **{"session-base": tag(held)})
        assert await stream.next_block() == [": connected"]
        await wait_listening(second)
        await client.post(f"{first.url}/{sid}", json={"variables": {"a": 2}})
        name, data = await event_of(stream)
        assert name == "delta" and data["base"] == 1 and data["version"] == 2 and data["variables"] == {"a": 2}
        await stream.response.aclose()
        # Three versions later, a watcher that held version 2 gets them in one delta.
        await client.post(f"{first.url}/{sid}", json={"deleted": ["b"]})
        await client.post(f"{first.url}/{sid}", json={"variables": {"d": 4}})
        resumed = await events(f"{second.url}/{sid}/events", **{"session-base": f"2@{held['createdAt']}"})
        assert await resumed.next_block() == [": connected"]
        name, data = await event_of(resumed)
        assert name == "delta" and data["base"] == 2 and data["version"] == 4
        assert data["variables"] == {"d": 4} and data["deleted"] == ["b"]
        await resumed.response.aclose()
        # Deleted and made again: what the watcher held is of another lineage, so the session comes whole.
        server_now = (await client.get(f"{first.url}/{sid}")).json()
        await asyncio.sleep(0.005)
        assert (await client.delete(f"{first.url}/{sid}")).status_code == 204
        await client.post(f"{first.url}/{sid}", json={"variables": {"a": "new"}})
        other = await events(f"{second.url}/{sid}/events", **{"session-base": tag(server_now)})
        assert await other.next_block() == [": connected"]
        name, data = await event_of(other)
        assert name == "snapshot" and "base" not in data and data["variables"] == {"a": "new"} and data["version"] == 1


async def test_the_channel_and_payload_are_the_typescript_stores(two_servers: Any, postgres_url: str, events: Any) -> None:
    first, second, table = two_servers
    sid = new_id()
    listener = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
    try:
        await listener.execute(f"LISTEN {CHANGE_CHANNEL}")
        async with httpx.AsyncClient() as client:
            await client.post(f"{first.url}/{sid}", json={"variables": {"a": 1}})
        notice = await asyncio.wait_for(anext(aiter(listener.notifies())), 5)
        assert notice.channel == "workflow_session_changes" and notice.payload == json.dumps({"id": sid, "version": 1}, separators=(",", ":"))

        # What a Node server writes and announces (its rows and its NOTIFY) reaches a Python stream.
        stream = await events(f"{second.url}/{sid}/events?since=1")
        assert await stream.next_block() == [": connected"]
        await wait_listening(second)
        # In one transaction, as the Node store writes: a reader never sees the head without its rows.
        async with listener.transaction():
            await listener.execute(
                f"UPDATE {table} SET version = 2, updated_at = %s, bytes = 20 WHERE id = %s", ("2026-11-21T04:00:01.000Z", sid)
            )
            await listener.execute(f"INSERT INTO {table}_variables (session_id, name, value, version) VALUES (%s, 'node', 'true', 2)", (sid,))
            await listener.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, json.dumps({"id": sid, "version": 2})))
        snapshot = data_of(await stream.next_block())
        assert snapshot["variables"] == {"a": 1, "node": True} and snapshot["version"] == 2
    finally:
        await listener.close()


async def test_the_listener_connects_again_and_open_streams_check_again(two_servers: Any, postgres_url: str, events: Any) -> None:
    first, second, _ = two_servers
    sid = new_id()
    rechecks: list[int] = []
    async with httpx.AsyncClient() as client:
        stream = await events(f"{second.url}/{sid}/events")
        assert await stream.next_block() == [": connected"]
        await wait_listening(second)
        second.loop.call_soon_threadsafe(lambda: second.app.store.watch(lambda *_: None, lambda: rechecks.append(1)))
        await asyncio.sleep(0.1)
        admin = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
        try:
            cursor = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                (LISTENER_NAME,),
            )
            assert len(await cursor.fetchall()) == 1  # the second server's: the first has no stream open
        finally:
            await admin.close()
        written = (await client.post(f"{first.url}/{sid}", json={"variables": {"during": "the outage"}})).json()
        assert data_of(await stream.next_block(timeout=10)) == written
        for _ in range(100):
            if rechecks:
                break
            await asyncio.sleep(0.05)
        assert rechecks, "the store told its watchers nothing after listening again"


async def test_an_unreachable_database_answers_503_with_retry_after() -> None:
    store = open_store("postgres://postgres:postgres@127.0.0.1:1/none", connect_timeout=1)
    async with client_of(create_session_app(store=store)) as client:
        for response in [await client.post(f"/{new_id()}", json={"variables": {"a": 1}}), await client.get(f"/{new_id()}")]:
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "unavailable" and "127.0.0.1" not in response.text
    await store.close()


async def test_served_alone_an_unreachable_database_fails_the_startup_in_one_line() -> None:
    app = create_session_app(store=open_store("postgres://postgres:postgres@127.0.0.1:1/none", connect_timeout=1))
    call, sent = asgi_call(app, {"type": "lifespan"}, [{"type": "lifespan.startup"}])
    await call
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert '127.0.0.1:1, database "none"' in sent[0]["message"] and "\n" not in sent[0]["message"].strip()
