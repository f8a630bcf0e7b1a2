"""Sessions in this process's memory: for tests and prototypes."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable

from ..models import Record, RunRecord, SessionHead, Summary
from ..rules import compact_json
from .base import Backend, Decision, Keep, Put, Remove, RunsDecision, SessionStore, T, summary_of


def page_of(summaries: list[Summary], user_id: str | None, limit: int, offset: int) -> list[Summary]:
    """Filters, sorts (newest ``updatedAt`` first, ties by ``sessionId``) and pages summaries."""
    mine = [summary for summary in summaries if user_id is None or summary.get("userId") == user_id]
    mine.sort(key=lambda summary: summary["sessionId"])
    mine.sort(key=lambda summary: summary["updatedAt"], reverse=True)
    return mine[offset : offset + limit]


class MemoryBackend(Backend):
    """Records (a session's head and variables, and its runs) kept as JSON text, so nothing a caller does to a value given or returned reaches the store."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
        #: Each session's runs: run id -> the record as JSON text.
        self._runs: dict[str, dict[str, str]] = {}
        # A lock rather than the event loop's ordering, so a store shared by threads stays atomic.
        self._lock = threading.Lock()

    async def read(self, session_id: str) -> Record | None:
        text = self._records.get(session_id)
        return json.loads(text) if text is not None else None

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        with self._lock:
            text = self._records.get(session_id)
            decision = decide(json.loads(text) if text is not None else None)
            match decision.write:
                case Put(record):
                    if text is None:  # a new session: nothing of an older one with this id stays
                        self._runs.pop(session_id, None)
                    self._records[session_id] = compact_json(record)
                case Remove():
                    self._records.pop(session_id, None)
                    self._runs.pop(session_id, None)
                case Keep():
                    pass
        return decision.result

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
                if current is None:
                    self._runs.pop(session_id, None)
                self._records[session_id] = compact_json(decision.write.record)
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

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Summary]:
        records = [json.loads(text) for text in list(self._records.values())]
        return page_of([summary_of(record["head"]) for record in records], user_id, limit, offset)

    async def ids(self) -> AsyncIterator[str]:
        for session_id in list(self._records):
            if session_id in self._records:
                yield session_id


def memory_store() -> SessionStore:
    """Sessions in this process's memory (``open_store("memory:")``): for tests and prototypes."""
    return SessionStore(MemoryBackend())
