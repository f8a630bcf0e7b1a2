"""The row layout the SQLite and PostgreSQL stores share with the TypeScript stores, and its :class:`Record`.

A session is a head row (id, user_id, workflow_id, version, created_at, updated_at, bytes,
clients, schema_version, compacted_through, tombstones) and one row per variable (session_id, name, value as
JSON text, version). A deleted variable stays as a row with a NULL value at the version that
deleted it (a tombstone), so a server that keeps a session in memory (the TypeScript stores do)
catches up by reading the rows newer than the version it has. The Python stores keep nothing
between requests: they read the head and the live variable rows into a
:class:`~workflow_session.models.Record` inside each read or write, and write back the head and
the variable rows the write changed. Python and Node servers can therefore share one database.

Tombstones are compacted by the TypeScript stores' rule (:func:`next_compaction`): the head
counts the tombstones written since the last compaction, and the write that takes the count past
:data:`MAX_TOMBSTONES` removes every tombstone of the session and sets ``compacted_through`` to
its version; a server whose copy is older than ``compacted_through`` loads the session again
whole instead of catching up.

The same rows make deltas (docs/protocol.md, "Deltas"): what changed since version ``V`` of a
session is its rows with a version above ``V`` (a tombstone is a deletion), as long as ``V`` is
not below ``compacted_through`` (:func:`rows_cover`); the stores read only those rows then.

A session's runs are one row each (session_id, run_id, step, status, started_at, heartbeat_at in
milliseconds since the epoch, record as JSON text): the record is the protocol's
:class:`~workflow_session.models.RunRecord`, and the other columns always equal its fields, so
that a server reads a run from ``record`` alone and finds runs by the columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from ..deltas import SessionBase, may_delta
from ..models import JsonValue, Record, RunRecord, SessionHead
from ..rules import compact_json
from ..runs import ms_of
from .base import Changes, changed_names

#: The head's columns, in the order both stores write them. ``schema_version``: the schema version
#: of the variables (docs/protocol.md, "Schema versions"); 0 in rows written before it was recorded.
HEAD_COLUMNS = "id, user_id, workflow_id, version, created_at, updated_at, bytes, clients, schema_version"
#: How many columns a head row has: a row read with more columns after them starts those at this index.
HEAD_WIDTH = len(HEAD_COLUMNS.split(","))
#: A head row as both databases hand it back (``clients``: ``[[clientId, seq], …]`` as JSON text).
HeadRow = tuple[str, Optional[str], Optional[str], int, str, str, int, str, int]
#: The head's compaction columns, after HEAD_COLUMNS.
COMPACTION_COLUMNS = "compacted_through, tombstones"
#: Tombstones a session keeps at most: the write that takes its count past this removes them all
#: (``MAX_TOMBSTONES`` of the TypeScript stores, src/server/stores/session-cache.ts).
MAX_TOMBSTONES = 1000


@dataclass(frozen=True)
class Compaction:
    """A head's compaction columns."""

    #: A copy at a version below this may have missed a deletion (its tombstone is gone): it is loaded again whole.
    compacted_through: int
    #: Tombstones written since the last compaction: at least the number of the session's tombstone rows.
    tombstones: int
    #: Whether the write removes every tombstone of the session (after its own rows, in its transaction).
    compact: bool = False


def compaction_of(compacted_through: int, tombstones: int) -> Compaction:
    """The compaction columns of a head row, as the database hands them back."""
    return Compaction(int(compacted_through), int(tombstones))


def next_compaction(before: Compaction | None, version: int, written: int) -> Compaction:
    """The compaction columns after a write of ``version`` that writes ``written`` tombstones.

    ``before``: the session's columns, or None when the write makes the session anew (no copy of
    an earlier version is of this session). O(1): no row is read.
    """
    tombstones = (before.tombstones if before is not None else 0) + written
    if tombstones > MAX_TOMBSTONES:
        return Compaction(version, 0, compact=True)
    return Compaction(before.compacted_through if before is not None else version, tombstones)


def head_of(row: HeadRow) -> SessionHead:
    """The head a row (HEAD_COLUMNS order) holds."""
    session_id, user_id, workflow_id, version, created_at, updated_at, size, clients, schema_version = row
    head: SessionHead = {
        "sessionId": session_id,
        "version": int(version),
        "createdAt": created_at,
        "updatedAt": updated_at,
        "bytes": int(size),
        "clients": {client: int(seq) for client, seq in json.loads(clients)},
    }
    if workflow_id is not None:
        head["workflowId"] = workflow_id
    if user_id is not None:
        head["userId"] = user_id
    head["schemaVersion"] = int(schema_version)
    return head


def record_of(head: HeadRow, variables: list[tuple[str, str | None]]) -> Record:
    """A record from a head row (HEAD_COLUMNS order) and its variable rows (name, value JSON; a NULL value is a deleted one)."""
    return {"head": head_of(head), "variables": {name: json.loads(value) for name, value in sorted(variables) if value is not None}}


def head_row(head: SessionHead) -> HeadRow:
    """The row of ``head``, in HEAD_COLUMNS order."""
    return (
        head["sessionId"],
        head.get("userId"),
        head.get("workflowId"),
        head["version"],
        head["createdAt"],
        head["updatedAt"],
        head["bytes"],
        compact_json([[client, seq] for client, seq in head["clients"].items()]),
        head.get("schemaVersion", 0),
    )


def tombstones_in(rows: list[tuple[str, str | None]]) -> int:
    """How many of a write's variable rows are tombstones."""
    return sum(1 for _, value in rows if value is None)


def variable_rows(before: Record | None, after: Record) -> list[tuple[str, str | None]]:
    """The variable rows a write changes: (name, value JSON), or (name, None) for a deleted one (:func:`~.base.changed_names`)."""
    new = after["variables"]
    return [(name, compact_json(new[name]) if name in new else None) for name in changed_names(before, after)]


def rows_cover(base: SessionBase, head: SessionHead, compacted_through: int) -> bool:
    """Whether the rows newer than ``base.version`` are everything that changed since ``base``: its lineage, and no tombstone of a later deletion compacted away."""
    return may_delta(base, head) and base.version >= compacted_through


def changes_of(head: SessionHead, rows: list[tuple[str, str | None]]) -> Changes:
    """The :class:`~.base.Changes` the rows newer than a base hold (name, value JSON; a NULL value is a deletion)."""
    variables: dict[str, JsonValue] = {}
    deleted: list[str] = []
    for name, value in rows:
        if value is None:
            deleted.append(name)
        else:
            variables[name] = json.loads(value)
    return Changes(head, variables, deleted)


#: The runs table's columns, in the order both stores write them.
RUN_COLUMNS = "session_id, run_id, step, status, started_at, heartbeat_at, record"
#: A run row: (session_id, run_id, step, status, started_at, heartbeat_at ms, record JSON).
RunRow = tuple[str, str, str, str, str, int, str]


def run_row(session_id: str, run: RunRecord) -> RunRow:
    """The row of ``run`` (RUN_COLUMNS order): its columns taken from the record, so they always agree."""
    return (session_id, run["runId"], run["step"], run["status"], run["startedAt"], ms_of(run["heartbeatAt"]), compact_json(run))


def run_of(record: str) -> RunRecord:
    """The run a row's ``record`` column holds."""
    run: RunRecord = json.loads(record)
    return run
