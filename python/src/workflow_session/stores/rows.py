"""The row layout the SQLite and PostgreSQL stores share with the TypeScript stores.

A session is a head row (id, user_id, workflow_id, version, created_at, updated_at, bytes,
clients) and one row per variable (session_id, name, value as JSON text, version). A deleted
variable stays as a row with a NULL value at the version that deleted it, so a server that keeps
a session in memory catches up by reading the rows newer than the version it has. Python and
Node servers can therefore share one database.
"""

from __future__ import annotations

import json
from typing import Optional

from ..models import Record, Snapshot, Summary
from ..rules import compact_json, json_bytes

#: The head's columns, in the order both stores write them.
HEAD_COLUMNS = "id, user_id, workflow_id, version, created_at, updated_at, bytes, clients"
#: A head row as both databases hand it back (``clients``: ``[[clientId, seq], …]`` as JSON text).
HeadRow = tuple[str, Optional[str], Optional[str], int, str, str, int, str]


def record_of(head: HeadRow, variables: list[tuple[str, str | None]]) -> Record:
    """A record from a head row (HEAD_COLUMNS order) and its live variable rows (name, value JSON)."""
    session_id, user_id, workflow_id, version, created_at, updated_at, _bytes, clients = head
    snapshot: Snapshot = {
        "sessionId": session_id,
        "variables": {name: json.loads(value) for name, value in sorted(variables) if value is not None},
        "version": int(version),
        "createdAt": created_at,
        "updatedAt": updated_at,
    }
    if workflow_id is not None:
        snapshot["workflowId"] = workflow_id
    if user_id is not None:
        snapshot["userId"] = user_id
    return {"snapshot": snapshot, "clientSeqs": {client: int(seq) for client, seq in json.loads(clients)}}


def summary_of(head: HeadRow) -> Summary:
    session_id, user_id, workflow_id, version, created_at, updated_at, _bytes, _clients = head
    summary: Summary = {"sessionId": session_id, "version": int(version), "createdAt": created_at, "updatedAt": updated_at}
    if workflow_id is not None:
        summary["workflowId"] = workflow_id
    if user_id is not None:
        summary["userId"] = user_id
    return summary


def head_row(record: Record) -> HeadRow:
    """The head row of ``record``, in HEAD_COLUMNS order."""
    snapshot = record["snapshot"]
    return (
        snapshot["sessionId"],
        snapshot.get("userId"),
        snapshot.get("workflowId"),
        snapshot["version"],
        snapshot["createdAt"],
        snapshot["updatedAt"],
        json_bytes(snapshot["variables"]),
        compact_json([[client, seq] for client, seq in record["clientSeqs"].items()]),
    )


def variable_rows(before: Record | None, after: Record) -> list[tuple[str, str | None]]:
    """The variable rows a write changes: (name, value JSON), or (name, None) for a deleted one.

    The merge builds the new variables from the old ones, so a value it did not touch is the
    same object: identity tells what changed without comparing (``1 == True`` in Python).
    """
    old = before["snapshot"]["variables"] if before is not None else {}
    new = after["snapshot"]["variables"]
    rows: list[tuple[str, str | None]] = [(name, compact_json(value)) for name, value in new.items() if name not in old or old[name] is not value]
    rows += [(name, None) for name in old if name not in new]
    return rows
