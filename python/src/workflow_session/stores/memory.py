"""Sessions in this process's memory: for tests and prototypes."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable

from ..models import Record, Summary
from ..rules import compact_json
from .base import Backend, Decision, Keep, Put, Remove, SessionStore, T, summary_of


def page_of(summaries: list[Summary], user_id: str | None, limit: int, offset: int) -> list[Summary]:
    """Filters, sorts (newest ``updatedAt`` first, ties by ``sessionId``) and pages summaries."""
    mine = [summary for summary in summaries if user_id is None or summary.get("userId") == user_id]
    mine.sort(key=lambda summary: summary["sessionId"])
    mine.sort(key=lambda summary: summary["updatedAt"], reverse=True)
    return mine[offset : offset + limit]


class MemoryBackend(Backend):
    """Records (a session's head and variables) kept as JSON text, so nothing a caller does to a value given or returned reaches the store."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
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
                    self._records[session_id] = compact_json(record)
                case Remove():
                    self._records.pop(session_id, None)
                case Keep():
                    pass
        return decision.result

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
