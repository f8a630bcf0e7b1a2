"""What happens to a change, in one place (docs/protocol.md, "Patch").

:func:`valid_change` checks a change once — its shape, then (on the HTTP path) how many
variables it changes, then its names and values — and copies it into a :class:`ValidChange`.
Each layer that takes a change from someone it cannot trust checks it there, once: the app a
request's patch, at the edge, in the protocol's order; the store a change from server code (a
step's result, ``apply``, ``update_workflow``). A ``ValidChange`` is not checked again.

:func:`merge_session` is the one merge every store runs inside its own atomic step, on a session
as the stores keep it (a :class:`~workflow_session.models.Record`: its head and its variables):
per top-level key; ``seq`` applied once per (session, clientId), remembered for the 256 most
recent clients; one version bump per applied change; ``wf:{id}:at`` stamped for every workflow a
change touches; the size limit checked on the result.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import cast

from .errors import SessionProtocolError
from .models import JsonValue, Patch, Record, SessionHead
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
class ValidChange:
    """A change that passed every rule, copied: what :func:`valid_change` returns, and what the merge takes.

    Nothing of the caller's is in it, and it is not checked again: made only by
    :func:`valid_change`. A store handed one takes it as it is, without a copy (its values may
    come back in the snapshot ``apply`` returns): it is given away.
    """

    variables: dict[str, JsonValue] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    #: With ``seq``: applied once per (session, clientId, seq).
    client_id: str | None = None
    seq: int | None = None
    #: Recorded on the session as ``workflowId``.
    workflow_id: str | None = None


def valid_change(change: object, *, max_keys: int | None = None) -> ValidChange:
    """``change`` checked in the protocol's order, then copied: its shape (:func:`to_session_change`),
    at most ``max_keys`` variables changed (``too_large``; the app's ``max_keys_per_patch``), its
    names and values (:func:`assert_valid_change`).
    """
    shaped = to_session_change(change)
    if max_keys is not None and len(shaped.get("variables") or {}) + len(shaped.get("deleted") or []) > max_keys:
        raise SessionProtocolError("too_large", f"A patch may change at most {max_keys} variables")
    assert_valid_change(shaped)
    return ValidChange(
        variables=copy.deepcopy(shaped.get("variables") or {}),
        deleted=list(shaped.get("deleted") or []),
        client_id=shaped.get("clientId"),
        seq=shaped.get("seq"),
        workflow_id=shaped.get("workflowId"),
    )


@dataclass(frozen=True)
class MergeResult:
    record: Record
    #: False when nothing changed: an empty change, or a ``seq`` already applied.
    applied: bool


def merge_session(
    current: Record | None,
    session_id: str,
    change: Patch | ValidChange,
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
    value (a change that is not a :class:`ValidChange` yet), ``too_large`` when the result is
    over ``max_bytes``.
    """
    # The stores hand a ValidChange, checked before their atomic step; anyone else who merges has
    # no edge before this function, so a plain patch is checked here, once.
    checked = change if isinstance(change, ValidChange) else valid_change(change)
    sets, deletes = checked.variables, checked.deleted
    client_id, seq = checked.client_id, checked.seq

    last_seq = current["head"]["clients"].get(client_id) if current is not None and client_id is not None else None
    replayed = seq is not None and last_seq is not None and seq <= last_seq
    if replayed or (not sets and not deletes):
        return MergeResult(current if current is not None else _empty_record(session_id, checked, now, owner), False)

    at = iso_time(now)
    variables = dict(current["variables"]) if current is not None else {}
    for key in deletes:
        variables.pop(key, None)
    for key, value in sets.items():
        variables[key] = value
    _stamp_workflows(variables, [*deletes, *sets], at)
    size = json_bytes(variables)
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if size > limit:
        raise SessionProtocolError("too_large", f"The session would be larger than {limit} bytes")

    base = current["head"] if current is not None else _empty_record(session_id, checked, now, owner)["head"]
    head: SessionHead = {
        **base,
        "version": base["version"] + 1,
        "updatedAt": at,
        "bytes": size,
        "clients": _remember_seq(base["clients"], client_id, seq),
    }
    if checked.workflow_id is not None:
        head["workflowId"] = checked.workflow_id
    return MergeResult({"head": head, "variables": variables}, True)


def _empty_record(session_id: str, change: ValidChange, now: datetime, owner: str | None) -> Record:
    at = iso_time(now)
    head: SessionHead = {"sessionId": session_id, "version": 0, "createdAt": at, "updatedAt": at, "bytes": json_bytes({}), "clients": {}}
    if owner is not None:
        head["userId"] = owner
    if change.workflow_id is not None:
        head["workflowId"] = change.workflow_id
    return {"head": head, "variables": {}}


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
