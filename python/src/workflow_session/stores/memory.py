"""Sessions in this process's memory: for tests and prototypes.

Each session keeps a bounded :class:`ChangeLog` beside its record (the names each recent
version changed), so that a delta since one of those versions can be made (docs/protocol.md,
"Deltas"), as the TypeScript stores keep one per session in their in-memory copy.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

from ..deltas import SessionBase, may_delta
from ..migrations import Migrations
from ..models import JsonValue, Record, RunRecord, SessionHead
from ..rules import compact_json
from .base import Backend, Changes, Decision, ErrorListener, Keep, Listed, Put, Remove, RunsDecision, SessionStore, T, changed_names, listed_of

#: The most variable names a session's change log holds, in all its versions (the TypeScript
#: stores' bound): past it, the oldest versions are dropped, and a base older than what is left
#: is answered a snapshot.
MAX_LOGGED_NAMES = 1024


def page_of(summaries: list[Listed], user_id: str | None, limit: int, offset: int) -> list[Listed]:
    """Filters, sorts (newest ``updatedAt`` first, ties by ``sessionId``) and pages summaries."""
    mine = [summary for summary in summaries if user_id is None or summary.get("userId") == user_id]
    mine.sort(key=lambda summary: summary["sessionId"])
    mine.sort(key=lambda summary: summary["updatedAt"], reverse=True)
    return mine[offset : offset + limit]


class ChangeLog:
    """The names each recent version of one session changed (set or deleted), so that a delta since one of them can be made.

    Complete from ``since`` on: the names changed after any version at or above it are all here.
    Bounded: at most :data:`MAX_LOGGED_NAMES` names in all; adding past that drops the oldest
    versions, and ``since`` moves up to the newest one dropped.
    """

    def __init__(self, since: int) -> None:
        #: The oldest version a delta can be made from.
        self.since = since
        self._versions: deque[tuple[int, tuple[str, ...]]] = deque()
        self._names = 0

    def add(self, version: int, names: Iterable[str]) -> None:
        """Records that ``version`` changed ``names`` (versions come in ascending order)."""
        changed = tuple(names)
        if not changed:
            return  # a version that changed no variable (an adoption) adds nothing to any delta
        self._versions.append((version, changed))
        self._names += len(changed)
        while self._names > MAX_LOGGED_NAMES:
            dropped, names_dropped = self._versions.popleft()
            self._names -= len(names_dropped)
            self.since = dropped

    def names_since(self, version: int) -> set[str] | None:
        """Every name changed after ``version``; None when the log no longer goes back that far."""
        if version < self.since:
            return None
        return {name for at, names in self._versions if at > version for name in names}


class MemoryBackend(Backend):
    """Records (a session's head and variables, and its runs) kept as JSON text, so nothing a caller does to a value given or returned reaches the store."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
        #: Each session's runs: run id -> the record as JSON text.
        self._runs: dict[str, dict[str, str]] = {}
        #: Each session's change log (deltas): what each recent version changed.
        self._logs: dict[str, ChangeLog] = {}
        # A lock rather than the event loop's ordering, so a store shared by threads stays atomic.
        self._lock = threading.Lock()

    async def read(self, session_id: str) -> Record | None:
        text = self._records.get(session_id)
        return json.loads(text) if text is not None else None

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        with self._lock:
            text = self._records.get(session_id)
            current: Record | None = json.loads(text) if text is not None else None
            decision = decide(current)
            match decision.write:
                case Put(record):
                    self._put(session_id, current, record)
                case Remove():
                    self._records.pop(session_id, None)
                    self._runs.pop(session_id, None)
                    self._logs.pop(session_id, None)
                case Keep():
                    pass
        return decision.result

    def _put(self, session_id: str, current: Record | None, record: Record) -> None:
        """Writes ``record`` over ``current`` (the record its decision was given) and logs the names it changed (under the lock)."""
        if current is None:  # a new session: nothing of an older one with this id stays
            self._runs.pop(session_id, None)
        self._records[session_id] = compact_json(record)
        log = self._logs.get(session_id)
        head, before = record["head"], current["head"] if current is not None else None
        if log is None or before is None or before["createdAt"] != head["createdAt"] or head["version"] <= before["version"]:
            # A new session (or one whose versions did not go on): deltas from its version on.
            self._logs[session_id] = ChangeLog(head["version"])
        else:
            log.add(head["version"], changed_names(current, record))

    async def read_since(self, session_id: str, base: SessionBase) -> Record | Changes | None:
        """What changed since ``base`` by the session's :class:`ChangeLog`, when it goes back that far (and ``base`` is of its lineage), else the record."""
        with self._lock:
            text = self._records.get(session_id)
            log = self._logs.get(session_id)
            if text is None:
                return None
            record: Record = json.loads(text)
            names = log.names_since(base.version) if log is not None and may_delta(base, record["head"]) else None
        if names is None:
            return record
        variables: dict[str, JsonValue] = record["variables"]
        set_since = {name: variables[name] for name in names if name in variables}
        return Changes(record["head"], set_since, [name for name in names if name not in variables])

    def _runs_of(self, session_id: str, run_id: str | None) -> list[RunRecord]:
        """The session's runs, newest ``startedAt`` first (ties by run id), parsed (copies)."""
        stored = self._runs.get(session_id, {})
        if run_id is None:
            texts = list(stored.values())
        else:
            texts = [stored[run_id]] if run_id in stored else []
        runs: list[RunRecord] = [json.loads(text) for text in texts]
        runs.sort(key=lambda run: run["runId"])
        runs.sort(key=lambda run: run["startedAt"], reverse=True)
        return runs

    async def read_runs(self, session_id: str, run_id: str | None = None) -> tuple[SessionHead | None, list[RunRecord]]:
        with self._lock:
            text = self._records.get(session_id)
            if text is None:
                return None, []
            record: Record = json.loads(text)
            return record["head"], self._runs_of(session_id, run_id)

    async def update_runs(
        self, session_id: str, decide: Callable[[Record | None, list[RunRecord]], RunsDecision[T]], run_id: str | None = None
    ) -> T:
        with self._lock:
            text = self._records.get(session_id)
            current: Record | None = json.loads(text) if text is not None else None
            decision = decide(current, self._runs_of(session_id, run_id) if current is not None else [])
            if isinstance(decision.write, Put):
                self._put(session_id, current, decision.write.record)
            if decision.runs or decision.drop:
                runs = self._runs.setdefault(session_id, {})
                for run in decision.runs:
                    runs[run["runId"]] = compact_json(run)
                for dropped in decision.drop:
                    runs.pop(dropped, None)
        return decision.result

    async def update_run(self, session_id: str, run_id: str, decide: Callable[[SessionHead | None, RunRecord | None], tuple[RunRecord | None, T]]) -> T:
        with self._lock:
            text = self._records.get(session_id)
            head: SessionHead | None = json.loads(text)["head"] if text is not None else None
            found = self._runs_of(session_id, run_id) if head is not None else []
            write, result = decide(head, found[0] if found else None)
            if write is not None:
                self._runs.setdefault(session_id, {})[write["runId"]] = compact_json(write)
        return result

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Listed]:
        records = [json.loads(text) for text in list(self._records.values())]
        return page_of([listed_of(record["head"]) for record in records], user_id, limit, offset)

    async def ids(self) -> AsyncIterator[str]:
        for session_id in list(self._records):
            if session_id in self._records:
                yield session_id


def memory_store(*, migrations: Migrations | None = None, on_error: ErrorListener | None = None) -> SessionStore:
    """Sessions in this process's memory (``open_store("memory:")``): for tests and prototypes.

    ``migrations``: the app's schema; ``on_error``: told of the values a migration set aside (see :class:`~.base.SessionStore`).
    """
    return SessionStore(MemoryBackend(), migrations=migrations, on_error=on_error)
