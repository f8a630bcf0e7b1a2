"""The row layout the SQLite and PostgreSQL stores share with the TypeScript stores, and its :class:`Record`.

A session is a head row (id, user_id, workflow_id, version, created_at, updated_at, bytes,
clients) and one row per variable (session_id, name, value as JSON text, version). A deleted
variable stays as a row with a NULL value at the version that deleted it, so a server that keeps
a session in memory (the TypeScript stores do) catches up by reading the rows newer than the
version it has. The Python stores keep nothing between requests: they read the head and the live
variable rows into a :class:`~workflow_session.models.Record` inside each read or write, and
write back the head and the variable rows the write changed. Python and Node servers can
therefore share one database.
"""

from __future__ import annotations

import json
from typing import Optional

from ..models import Record, SessionHead
from ..rules import compact_json

#: The head's columns, in the order both stores write them.
HEAD_COLUMNS = "id, user_id, workflow_id, version, created_at, updated_at, bytes, clients"
#: A head row as both databases hand it back (``clients``: ``[[clientId, seq], …]`` as JSON text).
HeadRow = tuple[str, Optional[str], Optional[str], int, str, str, int, str]


def head_of(row: HeadRow) -> SessionHead:
    """The head a row (HEAD_COLUMNS order) holds."""
    session_id, user_id, workflow_id, version, created_at, updated_at, size, clients = row
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
    )


def variable_rows(before: Record | None, after: Record) -> list[tuple[str, str | None]]:
    """The variable rows a write changes: (name, value JSON), or (name, None) for a deleted one.

    The merge builds the new variables from the old ones, so a value it did not touch is the
    same object: identity tells what changed without comparing (``1 == True`` in Python).
    """
    old = before["variables"] if before is not None else {}
    new = after["variables"]
    rows: list[tuple[str, str | None]] = [(name, compact_json(value)) for name, value in new.items() if name not in old or old[name] is not value]
    rows += [(name, None) for name in old if name not in new]
    return rows
