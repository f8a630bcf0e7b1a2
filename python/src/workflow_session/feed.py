"""The change feed behind ``GET {base}/{id}/events``: Server-Sent Events of a session's snapshots.

Changes are announced in process (every applied patch, step or adoption of this app) and, when
the store is shared (PostgreSQL), by the store's ``watch()`` for changes made through any server.
A stream sends the snapshot whenever its version passes the last one sent, so duplicates and
reordering collapse. Every event is read as the caller: another user's session sends nothing, exactly like
an id nobody uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive, Send

from .rules import compact_json
from .stores.base import Caller, SessionStore

#: How often an idle stream sends a comment, so proxies keep it open.
HEARTBEAT_SECONDS = 15.0

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


class _Stream:
    """One open stream's wake-up: a change to check, or the end."""

    def __init__(self) -> None:
        self.signal = asyncio.Event()
        self.ended = False
        self.wake()  # catch up from `since` first

    def wake(self) -> None:
        self.dirty = True
        self.signal.set()

    def end(self) -> None:
        self.ended = True
        self.signal.set()


class ChangeFeed:
    def __init__(self, store: SessionStore, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self._store = store
        self._heartbeat = heartbeat
        self._listeners: dict[str, set[_Stream]] = {}
        self._streams: set[_Stream] = set()
        self._watching = False
        self._unwatch: Callable[[], None] | None = None

    def announce(self, session_id: str) -> None:
        """Tells the streams of ``session_id`` to check for a newer version."""
        for stream in list(self._listeners.get(session_id, ())):
            stream.wake()

    def _recheck_all(self) -> None:
        # After the store lost its change notices for a while (a database restart), any open
        # stream's session may have changed: each checks for a newer version.
        for session_id in list(self._listeners):
            self.announce(session_id)

    def _watch(self) -> None:
        # Started with the first stream, inside the running event loop (a store's LISTEN needs one).
        if not self._watching:
            self._watching = True
            self._unwatch = self._store.watch(lambda session_id, _version: self.announce(session_id), self._recheck_all)

    async def stream(self, send: Send, receive: Receive, session_id: str, since: int, caller: Caller) -> None:
        """Streams ``session_id``'s snapshots newer than ``since`` until the client goes or the feed closes."""
        stream = _Stream()
        self._listeners.setdefault(session_id, set()).add(stream)
        self._streams.add(stream)
        self._watch()

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            stream.end()

        disconnect = asyncio.get_running_loop().create_task(until_disconnect())
        last_sent = since
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await _write(send, ": connected\n\n")
            while not stream.ended:
                try:
                    await asyncio.wait_for(stream.signal.wait(), self._heartbeat)
                except asyncio.TimeoutError:
                    await _write(send, ": keep-alive\n\n")
                    continue
                stream.signal.clear()
                if stream.ended:
                    break
                if stream.dirty:
                    stream.dirty = False
                    try:
                        snapshot = await self._store.get(session_id, caller=caller)
                    except Exception:
                        snapshot = None  # the store is away: the next change or reconnect checks again
                    if snapshot is not None and snapshot["version"] > last_sent:
                        last_sent = snapshot["version"]
                        await _write(send, f"id: {last_sent}\nevent: snapshot\ndata: {compact_json(snapshot)}\n\n")
        except OSError:
            pass  # the client went
        except asyncio.CancelledError:
            # The server is shutting down (its graceful timeout ended the stream): the stream ends
            # here, quietly, as when the feed closes; nothing was half-written.
            pass
        finally:
            listeners = self._listeners.get(session_id)
            if listeners is not None:
                listeners.discard(stream)
                if not listeners:
                    del self._listeners[session_id]
            self._streams.discard(stream)
            disconnect.cancel()
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                pass

    def close(self) -> None:
        """Ends every open stream (before a graceful shutdown) and stops watching the store."""
        for stream in list(self._streams):
            stream.end()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._watching = False


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode("utf-8"), "more_body": True})
