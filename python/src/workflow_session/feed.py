"""The change feed behind ``GET {base}/{id}/events``: Server-Sent Events of a session's snapshots and runs.

Changes are announced in process (every applied patch, step, adoption or run write of this app)
and, when the store is shared (PostgreSQL), by the store's ``watch()`` for changes made through
any server. A stream sends the snapshot whenever its version passes the last one sent, and each
run of the session whose ``rev`` passed the last one sent for it (``event: run``; on open, the
session's running runs), so duplicates and reordering collapse. While a run it sent is
``running``, the stream also reads the runs again every little while, so that a run whose server
stopped is seen ending ``lost``. Every event is read as the caller: another user's session sends
nothing, exactly like an id nobody uses.

A stream opened with a tag (or ``Session-Base: 0``) sends deltas instead (docs/protocol.md,
"Deltas"): each change is ``event: delta`` from the version sent before (on open, the client's
base), or ``event: snapshot`` when the store cannot make one, with tags as event ids; a run it
sent before is sent again as a run delta from the ``rev`` sent before. A session made again under
its id (another ``createdAt``) is news whole, its runs too.

The same wake-ups serve requests that wait for a run (:meth:`ChangeFeed.wait`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.types import Receive, Send

from .deltas import SessionBase, base_of, is_delta, run_delta_of, tag_of
from .models import Delta, RunDelta, RunRecord, Snapshot
from .rules import compact_json
from .stores.base import Caller, SessionStore

#: Reads a session's runs as a caller (ending stale ones ``lost`` first); None when the caller may not reach it.
RunsReader = Callable[[str, Caller], Awaitable["list[RunRecord] | None"]]

#: How often an idle stream sends a comment, so proxies keep it open.
HEARTBEAT_SECONDS = 15.0

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


class _Stream:
    """One open stream's (or waiting request's) wake-up: a change to check, or the end."""

    def __init__(self, catch_up: bool = True) -> None:
        self.signal = asyncio.Event()
        self.ended = False
        self.dirty = False
        if catch_up:
            self.wake()  # catch up from `since` first

    def wake(self) -> None:
        self.dirty = True
        self.signal.set()

    def end(self) -> None:
        self.ended = True
        self.signal.set()


class ChangeFeed:
    def __init__(
        self, store: SessionStore, heartbeat: float = HEARTBEAT_SECONDS, runs_of: RunsReader | None = None, recheck_seconds: float = 1.0
    ) -> None:
        self._store = store
        self._heartbeat = heartbeat
        self._runs_of = runs_of
        self._recheck = recheck_seconds
        self._listeners: dict[str, set[_Stream]] = {}
        self._streams: set[_Stream] = set()
        self._watching = False
        self._unwatch: Callable[[], None] | None = None
        self._closed = False

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

    def _listen(self, session_id: str, stream: _Stream) -> None:
        self._listeners.setdefault(session_id, set()).add(stream)
        self._streams.add(stream)
        self._watch()

    def _unlisten(self, session_id: str, stream: _Stream) -> None:
        listeners = self._listeners.get(session_id)
        if listeners is not None:
            listeners.discard(stream)
            if not listeners:
                del self._listeners[session_id]
        self._streams.discard(stream)

    async def wait(self, session_id: str, timeout: float) -> bool:
        """Waits until a change of ``session_id`` is announced (or heard from the store), or ``timeout`` seconds; False when the feed closed."""
        if self._closed:
            return False
        stream = _Stream(catch_up=False)
        self._listen(session_id, stream)
        try:
            await asyncio.wait_for(stream.signal.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._unlisten(session_id, stream)
        return not stream.ended and not self._closed

    async def stream(self, send: Send, receive: Receive, session_id: str, since: int, caller: Caller, *, base: SessionBase | None = None) -> None:
        """Streams ``session_id``'s snapshots newer than ``since``, and its runs as they change, until the client goes or the feed closes.

        With ``base`` (what the client holds: a tag's version, or none at all), the session's
        changes are deltas from it instead, and ``since`` is not read.
        """
        stream = _Stream()
        self._listen(session_id, stream)
        loop = asyncio.get_running_loop()

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            stream.end()

        disconnect = loop.create_task(until_disconnect())
        last_sent = since
        #: Deltas: what the client holds (the version sent last); None streams snapshots past ``last_sent``.
        held = base
        #: Deltas: the ``createdAt`` of the session last read (a session made again under its id is news whole).
        lineage: str | None = None
        #: Deltas: the runs sent whole on this stream (a later change of one is a run delta).
        sent_whole: set[str] = set()
        #: The last rev sent (or seen at the start) of each run; None until the runs were read once.
        run_revs: dict[str, int] | None = None
        #: Whether a run sent is running: its end (or loss) is looked for every little while.
        watching_runs = False
        last_write = loop.time()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await _write(send, ": connected\n\n")
            while not stream.ended:
                idle = loop.time() - last_write
                timeout = max(0.0, self._heartbeat - idle)
                if watching_runs:
                    timeout = min(timeout, self._recheck)
                try:
                    await asyncio.wait_for(stream.signal.wait(), timeout)
                except asyncio.TimeoutError:
                    if loop.time() - last_write >= self._heartbeat:
                        await _write(send, ": keep-alive\n\n")
                        last_write = loop.time()
                    if not watching_runs:
                        continue
                    stream.dirty = True
                stream.signal.clear()
                if stream.ended:
                    break
                if stream.dirty:
                    stream.dirty = False
                    try:
                        session = await self._store.get_since(session_id, held, caller=caller)
                    except Exception:
                        session = None  # the store is away: the next change or reconnect checks again
                    else:
                        if session is None and run_revs is None:
                            run_revs = {}  # no session (for this caller): no runs yet, so any run that comes is news
                    if session is not None and held is not None:
                        if lineage is not None and session["createdAt"] != lineage:
                            run_revs, sent_whole = {}, set()  # made again under its id: its runs are all news, whole
                        lineage = session["createdAt"]
                    runs = await self._read_runs(session_id, caller) if session is not None else None
                    if session is not None and held is not None:
                        event, held = _session_event(session, held)
                        if event is not None:
                            await _write(send, event)
                            last_write = loop.time()
                    elif session is not None and session["version"] > last_sent:
                        last_sent = session["version"]
                        await _write(send, f"id: {last_sent}\nevent: snapshot\ndata: {compact_json(session)}\n\n")
                        last_write = loop.time()
                    if runs is not None:
                        first = run_revs is None
                        run_revs = run_revs if run_revs is not None else {}
                        # Oldest first, so that a client sees them in the order they started.
                        for run in reversed(runs):
                            seen = run_revs.get(run["runId"])
                            if first and run["status"] != "running":
                                run_revs[run["runId"]] = run["rev"]  # finished before the stream opened: not news
                            elif seen is None or run["rev"] > seen:
                                run_revs[run["runId"]] = run["rev"]
                                await _write(send, _run_event(run, seen, sent_whole if held is not None else None))
                                last_write = loop.time()
                        watching_runs = any(run["status"] == "running" for run in runs)
        except OSError:
            pass  # the client went
        except asyncio.CancelledError:
            # The server is shutting down (its graceful timeout ended the stream): the stream ends
            # here, quietly, as when the feed closes; nothing was half-written.
            pass
        finally:
            self._unlisten(session_id, stream)
            disconnect.cancel()
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                pass

    async def _read_runs(self, session_id: str, caller: Caller) -> list[RunRecord] | None:
        """The session's runs as ``caller`` reads them, or None (no reader, or the store cannot say now: the next check reads again)."""
        if self._runs_of is None:
            return None
        try:
            return await self._runs_of(session_id, caller)
        except Exception:
            return None

    def close(self) -> None:
        """Ends every open stream (before a graceful shutdown) and stops watching the store."""
        self._closed = True
        for stream in list(self._streams):
            stream.end()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._watching = False


def _session_event(answer: Snapshot | Delta, held: SessionBase) -> tuple[str | None, SessionBase]:
    """A delta stream's event for what was read (None: nothing new), and what the client holds after it.

    A delta is sent when it makes a newer version. A snapshot (no delta could be made) is sent
    when it is news: a newer version, or another lineage than the one held (a client that holds
    nothing gets the session's first snapshot).
    """
    if is_delta(answer):
        if answer["version"] == answer.get("base"):
            return None, held
        return f"id: {tag_of(answer)}\nevent: delta\ndata: {compact_json(answer)}\n\n", base_of(answer)
    if answer["version"] <= held.version and (not held.created_at or held.created_at == answer["createdAt"]):
        return None, held
    return f"id: {tag_of(answer)}\nevent: snapshot\ndata: {compact_json(answer)}\n\n", base_of(answer)


def _run_event(run: RunRecord, seen: int | None, sent_whole: set[str] | None) -> str:
    """``event: run``: the run whole, or, on a delta stream (``sent_whole``: the runs it sent whole) that sent it before, the run delta from the rev ``seen`` then."""
    sent: RunRecord | RunDelta = run
    if sent_whole is not None and seen is not None and run["runId"] in sent_whole:
        sent = run_delta_of(run, seen)
    elif sent_whole is not None:
        sent_whole.add(run["runId"])
    return f"event: run\ndata: {compact_json(sent)}\n\n"


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode("utf-8"), "more_body": True})
