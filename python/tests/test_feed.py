"""The change feed over a real server (uvicorn): Server-Sent Events of a session's snapshots."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import asgi_call, http_scope, new_id

from workflow_session import create_session_app, memory_store, open_store

pytestmark = pytest.mark.anyio


def user_header(request: Any) -> str | None:
    return request.headers.get("x-user")


def data_of(block: list[str]) -> dict[str, Any]:
    assert block[1] == "event: snapshot", block
    return json.loads(block[2].removeprefix("data: "))


async def test_a_stream_sends_connected_then_each_newer_snapshot(serve: Any, events: Any) -> None:
    server = serve(lambda: create_session_app(store=memory_store(), base="/api/session"))
    base = f"{server.url}/api/session"
    sid = new_id()
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/{sid}", json={"variables": {"n": 1}})
        stream = await events(f"{base}/{sid}/events")
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response.headers["cache-control"] == "no-store"
        assert await stream.next_block() == [": connected"]
        caught_up = await stream.next_block()
        assert caught_up[0] == "id: 1" and data_of(caught_up)["variables"] == {"n": 1}
        await client.post(f"{base}/{sid}", json={"variables": {"n": 2}})
        changed = await stream.next_block()
        assert changed[0] == "id: 2" and data_of(changed) == (await client.get(f"{base}/{sid}")).json()
        await client.post(f"{base}/{sid}", json={})  # applies nothing: no event
        await client.post(f"{base}/{sid}", json={"variables": {"n": 3}})
        assert (await stream.next_block())[0] == "id: 3"


async def test_last_event_id_and_since_skip_what_the_client_has(serve: Any, events: Any) -> None:
    server = serve(lambda: create_session_app(store=memory_store(), base="/api/session", heartbeat_seconds=0.3))
    base = f"{server.url}/api/session"
    sid = new_id()
    async with httpx.AsyncClient() as client:
        for n in range(3):
            await client.post(f"{base}/{sid}", json={"variables": {"n": n}})
        for version, (query, headers) in enumerate([("", {"last-event-id": "3"}), ("?since=4", {})], start=3):
            stream = await events(f"{base}/{sid}/events{query}", **headers)
            assert await stream.next_block() == [": connected"]
            assert await stream.next_block() == [": keep-alive"]  # nothing newer than what it has
            await client.post(f"{base}/{sid}", json={"variables": {"n": version}})
            assert (await stream.next_block())[0] == f"id: {version + 1}"
        older = await events(f"{base}/{sid}/events?since=2")
        await older.next_block()
        assert (await older.next_block())[0] == "id: 5"


async def test_another_users_stream_is_exactly_an_unused_ids_stream(serve: Any, events: Any) -> None:
    server = serve(lambda: create_session_app(store=memory_store(), authorize=user_header, require_user=True, heartbeat_seconds=0.3))
    sid, unused = new_id(), new_id()
    async with httpx.AsyncClient() as client:
        await client.post(f"{server.url}/{sid}", json={"variables": {"secret": 1}}, headers={"x-user": "ada"})
        theirs = await events(f"{server.url}/{sid}/events", **{"x-user": "mallory"})
        nobodys = await events(f"{server.url}/{unused}/events", **{"x-user": "mallory"})
        assert theirs.response.headers.items() == nobodys.response.headers.items()
        await client.post(f"{server.url}/{sid}", json={"variables": {"secret": 2}}, headers={"x-user": "ada"})
        for stream in (theirs, nobodys):
            assert [await stream.next_block() for _ in range(3)] == [[": connected"], [": keep-alive"], [": keep-alive"]]
        no_user = await client.get(f"{server.url}/{sid}/events")
        assert no_user.status_code == 401 and no_user.json()["error"]["code"] == "unauthenticated"
        owner = await events(f"{server.url}/{sid}/events", **{"x-user": "ada"})
        await owner.next_block()
        assert data_of(await owner.next_block())["variables"] == {"secret": 2}


async def test_a_step_announces_its_change_and_closing_ends_streams(serve: Any, events: Any) -> None:
    steps = {"bump": lambda ctx: {"variables": {"n": (ctx.variables.get("n") or 0) + 1}}}
    server = serve(lambda: create_session_app(store=memory_store(), steps=steps))
    sid = new_id()
    async with httpx.AsyncClient() as client:
        stream = await events(f"{server.url}/{sid}/events")
        assert await stream.next_block() == [": connected"]
        await client.post(f"{server.url}/{sid}/run/bump")
        assert data_of(await stream.next_block())["variables"] == {"n": 1}
        server.loop.call_soon_threadsafe(server.app.close)
        assert await stream.next_block(timeout=3) == []  # the response ended


async def test_the_feed_on_a_sqlite_store_and_the_lifespan_opens_and_closes_it(serve: Any, events: Any, tmp_path: Any) -> None:
    server = serve(lambda: create_session_app(store=open_store(f"sqlite:{tmp_path}/feed.db")))
    sid = new_id()
    async with httpx.AsyncClient() as client:
        stream = await events(f"{server.url}/{sid}/events")
        await stream.next_block()
        await client.post(f"{server.url}/{sid}", json={"variables": {"a": 1}})
        assert data_of(await stream.next_block())["version"] == 1
    server.stop()
    assert server.app.store.backend._closed


async def test_a_stream_cancelled_by_a_shutting_down_server_ends_quietly() -> None:
    """Uvicorn cancels the streams its graceful timeout cut: the stream ends, no error escapes."""
    import asyncio

    call, sent = asgi_call(create_session_app(store=memory_store()), http_scope("GET", f"/{new_id()}/events"))
    task = asyncio.get_running_loop().create_task(call)
    while len(sent) < 2:  # the head and ": connected"
        await asyncio.sleep(0.01)
    task.cancel()
    await task  # returns: nothing raised
    assert sent[0]["status"] == 200 and sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
