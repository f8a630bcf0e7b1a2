"""The one merge every store runs inside its own atomic step (docs/protocol.md, "Patch").

Per top-level key; ``seq`` applied once per (session, clientId), remembered for the 256 most
recent clients; one version bump per applied change; ``wf:{id}:at`` stamped for every workflow a
change touches; the size limit checked on the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import cast

from .errors import SessionProtocolError
from .models import JsonValue, Patch, Record, Snapshot
from .rules import (
    DEFAULT_MAX_BYTES,
    MAX_SEQ,
    is_name,
    json_bytes,
    json_value_problem,
    key_problem,
)
from .workflow_keys import parse_workflow_key, workflow_slot_key

#: How many clients' sequence numbers a session remembers (the most recent ones).
MAX_REMEMBERED_CLIENTS = 256


def iso_time(now: datetime) -> str:
    """``2026-11-21T04:05:12.345Z``: how the protocol writes a time (as JavaScript's ``toISOString``)."""
    now = now.astimezone(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _invalid_patch(message: str) -> SessionProtocolError:
    return SessionProtocolError("invalid_patch", message)


def to_session_change(body: object) -> Patch:
    """The change ``body`` describes, built from its named fields only.

    ``variables``, ``deleted``, ``clientId``, ``seq`` and ``workflowId``: anything else a body
    carries, such as a ``userId``, is left behind. Raises ``invalid_patch`` for a field of the
    wrong shape; names and values are checked by :func:`assert_valid_change`.
    """
    if not isinstance(body, dict):
        raise _invalid_patch("The patch must be a JSON object")
    body = cast("dict[str, object]", body)
    variables, deleted = body.get("variables"), body.get("deleted")
    client_id, seq, workflow_id = body.get("clientId"), body.get("seq"), body.get("workflowId")
    has = body.__contains__
    if has("variables") and not isinstance(variables, dict):
        raise _invalid_patch('"variables" must be an object')
    if has("deleted") and not (isinstance(deleted, list) and all(isinstance(name, str) for name in cast("list[object]", deleted))):
        raise _invalid_patch('"deleted" must be an array of strings')
    if has("clientId") and not is_name(client_id):
        raise _invalid_patch('"clientId" must be a string of 1 to 128 characters')
    if has("seq"):
        seq = _seq_of(seq)
    if has("clientId") != has("seq"):
        raise _invalid_patch('"clientId" and "seq" go together')
    if has("workflowId") and not is_name(workflow_id):
        raise _invalid_patch('"workflowId" must be a string of 1 to 128 characters')
    # Checked above: a dict (its names and values are checked by assert_valid_change), a list of
    # strings, names, a whole number.
    change: Patch = {}
    if has("variables"):
        change["variables"] = cast("dict[str, JsonValue]", variables)
    if has("deleted"):
        change["deleted"] = cast("list[str]", deleted)
    if has("clientId"):
        change["clientId"] = cast(str, client_id)
        change["seq"] = cast(int, seq)
    if has("workflowId"):
        change["workflowId"] = cast(str, workflow_id)
    return change


def _seq_of(seq: object) -> int:
    """An integer from 1 to 2^53 - 1: ``5`` and ``5.0`` are good; ``"5"``, ``1.5``, ``0``, ``True`` are not."""
    if isinstance(seq, bool) or not isinstance(seq, (int, float)):
        raise _invalid_patch('"seq" must be a positive integer')
    if isinstance(seq, float) and not seq.is_integer():
        raise _invalid_patch('"seq" must be a positive integer')
    if not 1 <= seq <= MAX_SEQ:
        raise _invalid_patch('"seq" must be a positive integer')
    return int(seq)


def assert_valid_change(change: Patch) -> None:
    """Raises ``invalid_key`` for a bad name, ``invalid_patch`` for a value that is not JSON (or too deep)."""
    for key, value in (change.get("variables") or {}).items():
        problem = key_problem(key)
        if problem:
            raise SessionProtocolError("invalid_key", problem)
        problem = json_value_problem(value)
        if problem:
            raise SessionProtocolError("invalid_patch", f'variable "{key}": {problem}')
    for key in change.get("deleted") or []:
        problem = key_problem(key)
        if problem:
            raise SessionProtocolError("invalid_key", problem)


@dataclass(frozen=True)
class MergeResult:
    record: Record
    #: False when nothing changed: an empty change, or a ``seq`` already applied.
    applied: bool


def merge_session(
    current: Record | None,
    session_id: str,
    change: Patch,
    now: datetime,
    *,
    max_bytes: int | None = None,
    owner: str | None = None,
) -> MergeResult:
    """Applies ``change`` to ``current`` (None: no such session yet) and returns the new record.

    Returns the current record (or a version-0 one) with ``applied=False`` when the change is
    empty or its ``seq`` was applied already. Pure: it neither reads nor changes ``current``'s
    storage, and who may change the session is not its concern (the store checks the caller).

    Raises :class:`SessionProtocolError`: ``invalid_key`` / ``invalid_patch`` for a bad name or
    value, ``too_large`` when the result is over ``max_bytes``.
    """
    assert_valid_change(change)
    sets: dict[str, JsonValue] = change.get("variables") or {}
    deletes: list[str] = change.get("deleted") or []
    client_id, seq = change.get("clientId"), change.get("seq")

    last_seq = current["clientSeqs"].get(client_id) if current is not None and client_id is not None else None
    replayed = seq is not None and last_seq is not None and seq <= last_seq
    if replayed or (not sets and not deletes):
        return MergeResult(current if current is not None else _empty_record(session_id, change, now, owner), False)

    at = iso_time(now)
    variables = dict(current["snapshot"]["variables"]) if current is not None else {}
    for key in deletes:
        variables.pop(key, None)
    for key, value in sets.items():
        variables[key] = value
    _stamp_workflows(variables, [*deletes, *sets], at)
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if json_bytes(variables) > limit:
        raise SessionProtocolError("too_large", f"The session would be larger than {limit} bytes")

    base = current if current is not None else _empty_record(session_id, change, now, owner)
    snapshot = cast(Snapshot, dict(base["snapshot"]))
    snapshot["variables"] = variables
    snapshot["version"] = base["snapshot"]["version"] + 1
    snapshot["updatedAt"] = at
    if change.get("workflowId") is not None:
        snapshot["workflowId"] = change["workflowId"]
    return MergeResult({"snapshot": snapshot, "clientSeqs": _remember_seq(base["clientSeqs"], client_id, seq)}, True)


def _empty_record(session_id: str, change: Patch, now: datetime, owner: str | None) -> Record:
    at = iso_time(now)
    snapshot: Snapshot = {"sessionId": session_id, "variables": {}, "version": 0, "createdAt": at, "updatedAt": at}
    if owner is not None:
        snapshot["userId"] = owner
    if change.get("workflowId") is not None:
        snapshot["workflowId"] = change["workflowId"]
    return {"snapshot": snapshot, "clientSeqs": {}}


def _remember_seq(client_seqs: dict[str, int], client_id: str | None, seq: int | None) -> dict[str, int]:
    if client_id is None or seq is None:
        return client_seqs
    remembered = dict(client_seqs)
    # Re-insert so that key order is recency order, then forget the oldest clients.
    remembered.pop(client_id, None)
    remembered[client_id] = seq
    for oldest in list(remembered)[: max(0, len(remembered) - MAX_REMEMBERED_CLIENTS)]:
        del remembered[oldest]
    return remembered


def _stamp_workflows(variables: dict[str, JsonValue], keys: list[str], at: str) -> None:
    """Records when each workflow a change touched was last changed (its ``last_modified``), in the same merge."""
    touched: dict[str, None] = {}
    for key in keys:
        parsed = parse_workflow_key(key)
        if parsed is not None and parsed.slot != "at":
            touched[parsed.workflow_id] = None
    for workflow_id in touched:
        variables[workflow_slot_key(workflow_id, "at")] = at
