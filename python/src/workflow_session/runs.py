"""Durable runs (docs/protocol.md, "Runs"): the record and each change it goes through.

A run is a :class:`~workflow_session.models.RunRecord` the store keeps beside its session (the
``ws_runs`` table in SQLite, ``{table}_runs`` in PostgreSQL, the same rows as the TypeScript
stores). Every function here is pure: it returns a new record, and the stores call them inside
their atomic step (:meth:`~workflow_session.stores.base.SessionStore.start_run` and the other
run methods), so that each change of a record is decided on the record as stored.

- ``rev`` is 1 at the start and grows by one with every progress write and with the end; a
  heartbeat renews ``heartbeatAt`` only.
- A finished run (any status but ``running``) never changes again.
- A ``running`` run whose ``heartbeatAt`` is older than the lost bound (30 s unless configured)
  has lost its server: whoever reads it ends it ``lost`` first.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Final

from .merge import iso_time
from .models import JsonValue, RunError, RunErrorCode, RunRecord, RunStatus

#: Run ids a client may choose.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
#: How many finished runs a session keeps (besides its running ones); older ones go when a run starts.
KEEP_FINISHED_RUNS = 50
#: A run's time limit unless its step or the app says otherwise: 15 minutes.
DEFAULT_RUN_TIMEOUT_MS = 15 * 60 * 1000
#: A ``running`` run whose heartbeat is older than this has lost its server.
DEFAULT_RUN_LOST_AFTER_MS = 30_000
#: How often the server running a step renews its heartbeat (at most).
HEARTBEAT_MS = 5_000
#: The statuses that end a run.
FINISHED: Final = frozenset({"succeeded", "failed", "cancelled", "timed_out", "lost"})

#: The error messages of the ends that are not the step's own.
CANCELLED_MESSAGE = "The run was cancelled"
LOST_MESSAGE = "The server running the step stopped answering"
SHUTDOWN_MESSAGE = "The server stopped while the step ran"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Unchanged:
    """``progress=UNCHANGED``: an end that keeps the progress the record has."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID_PATTERN.fullmatch(value) is not None


def now_ms() -> int:
    """Milliseconds since the epoch: how the ``heartbeat_at`` column holds a time."""
    return time.time_ns() // 1_000_000


def iso_of_ms(ms: int) -> str:
    """``2026-11-21T04:05:12.345Z`` for milliseconds since the epoch."""
    return iso_time(_EPOCH + timedelta(milliseconds=ms))


def ms_of(iso: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (0 for text that is not one: such a heartbeat is long past)."""
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return 0
    return ms_of_datetime(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))


def ms_of_datetime(at: datetime) -> int:
    """Milliseconds since the epoch of an aware ``datetime``."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def run_error(code: RunErrorCode, message: str) -> RunError:
    return {"code": code, "message": message}


def new_run(run_id: str, step: str, input: JsonValue, read_version: int, at_ms: int) -> RunRecord:
    """A run as it starts: ``running``, ``rev`` 1, its heartbeat now."""
    at = iso_of_ms(at_ms)
    return {
        "runId": run_id,
        "step": step,
        "status": "running",
        "input": input,
        "progress": None,
        "output": None,
        "error": None,
        "startedAt": at,
        "finishedAt": None,
        "heartbeatAt": at,
        "readVersion": read_version,
        "version": None,
        "rev": 1,
    }


def progressed(run: RunRecord, progress: JsonValue, at_ms: int) -> RunRecord:
    """A running run with a new progress value: one more ``rev``, and its heartbeat renewed (a write is a sign of life)."""
    return {**run, "progress": progress, "heartbeatAt": iso_of_ms(at_ms), "rev": run["rev"] + 1}


def renewed(run: RunRecord, at_ms: int) -> RunRecord:
    """A running run's heartbeat renewed: the same ``rev`` (watchers see nothing new)."""
    return {**run, "heartbeatAt": iso_of_ms(at_ms)}


def ended(
    run: RunRecord,
    status: RunStatus,
    at_ms: int,
    *,
    error: RunError | None = None,
    output: JsonValue = None,
    version: int | None = None,
    progress: JsonValue | Unchanged = UNCHANGED,
) -> RunRecord:
    """The run's end: its one final ``status``, one more ``rev``; ``output`` and ``version`` for ``succeeded`` only.

    ``heartbeatAt`` is the end's time too (the last sign of its server), as the TypeScript stores write it.
    """
    if status == "running":
        raise ValueError("a run ends with a final status, not running")
    succeeded = status == "succeeded"
    at = iso_of_ms(at_ms)
    return {
        **run,
        "status": status,
        "progress": run["progress"] if isinstance(progress, Unchanged) else progress,
        "output": output if succeeded else None,
        "error": None if succeeded else error,
        "finishedAt": at,
        "heartbeatAt": at,
        "version": version if succeeded else None,
        "rev": run["rev"] + 1,
    }


def is_stale(run: RunRecord, at_ms: int, lost_after_ms: int) -> bool:
    """Whether ``run`` is ``running`` with a heartbeat older than ``lost_after_ms``: its server is gone."""
    return run["status"] == "running" and at_ms - ms_of(run["heartbeatAt"]) > lost_after_ms
