"""Shared fixtures: an HTTP client on the app without a socket, real uvicorn servers for streams, a PostgreSQL database of our own."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import Any

import httpx
import pytest

from workflow_session import SessionApp

DATABASE_URL = os.environ.get("DATABASE_URL") or "postgres://postgres:postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def new_id() -> str:
    return f"py-{uuid.uuid4().hex[:16]}"


def client_of(app: Any, **headers: str) -> httpx.AsyncClient:
    """An HTTP client that calls the ASGI app in process (no socket)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers)


def asgi_call(app: Any, scope: dict[str, Any], messages: Iterable[dict[str, Any]] = ()) -> tuple[Coroutine[Any, Any, None], list[dict[str, Any]]]:
    """A raw ASGI call, for what an HTTP client cannot do: ``receive`` hands out ``messages``, then
    waits as a client that never leaves; what the app sends collects in the list."""
    sent: list[dict[str, Any]] = []
    pending = iter(messages)
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        for message in pending:
            return message
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return app(scope, receive, send), sent


def http_scope(method: str, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """The ASGI scope of one HTTP request to the app."""
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": query, "headers": headers or []}


class Served:
    """An ASGI app on uvicorn on a loopback port, in a thread with its own event loop."""

    def __init__(self, make_app: Callable[[], Any]) -> None:
        import uvicorn

        self.loop = asyncio.new_event_loop()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._make_app = make_app
        self.app: Any = None
        self._ready = threading.Event()
        self._uvicorn = uvicorn
        self.server: Any = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("uvicorn did not start")

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            # The app (and its store) is made inside this loop: a PostgreSQL store belongs to one loop.
            self.app = self._make_app()
            self.server = self._uvicorn.Server(self._uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))
            task = asyncio.ensure_future(self.server.serve(sockets=[self._socket]))
            while not self.server.started and not task.done():
                await asyncio.sleep(0.01)
            self._ready.set()
            await task

        self.loop.run_until_complete(serve())

    def call(self, work: Any, timeout: float = 10) -> Any:
        """Runs a coroutine in the server's loop (its store lives there)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[], Any]], Served]]:
    """Starts apps on uvicorn for the test; stops them after it."""
    started: list[Served] = []

    def start(make_app: Callable[[], Any]) -> Served:
        served = Served(make_app)
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.stop()


class EventStream:
    """Reads a Server-Sent Events response line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next_block(self, timeout: float = 5.0) -> list[str]:
        """The next event or comment: its lines, up to the blank line."""
        block: list[str] = []

        async def read() -> None:
            async for line in self._lines:
                if line == "":
                    if block:
                        return
                    continue
                block.append(line)

        await asyncio.wait_for(read(), timeout)
        return block


@pytest.fixture
async def events() -> AsyncIterator[Callable[..., Any]]:
    """Opens event streams for the test; closes them after it."""
    clients: list[httpx.AsyncClient] = []
    responses: list[httpx.Response] = []

    async def open_stream(url: str, **headers: str) -> EventStream:
        client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=30))
        clients.append(client)
        response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
        responses.append(response)
        return EventStream(response)

    yield open_stream
    for response in responses:
        await response.aclose()
    for client in clients:
        await client.aclose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own on the local PostgreSQL server (scripts/test-env.sh starts it), dropped after."""
    import psycopg

    name = f"ws_pytest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL does not answer at {DATABASE_URL} (scripts/test-env.sh starts it): {error}")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = DATABASE_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def app_session(app: SessionApp) -> Any:
    return app.store
