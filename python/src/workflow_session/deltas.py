"""Deltas (docs/protocol.md, "Deltas"): how a version of a session is named (its tag), and how a delta or a run delta is made.

A client that says which version it holds (the ``Session-Base`` header: the version's tag, or
``0`` when it holds none) is answered only what changed since then, wherever an answer carries
the session. The store makes a delta only when it can tell what changed since the base: the
base's ``createdAt`` is the session's (a session deleted and made again under the same id is
another *lineage*, its versions counting from 1 again), its version is not above the session's,
and the store still knows the names changed since. Otherwise the answer is the whole snapshot,
as without the header: a wrong delta is never answered, a snapshot always may be.

This module holds the rules alone (pure functions): the stores find what changed
(:meth:`~workflow_session.stores.base.SessionStore.get_since`), the app and the change feed
answer it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from .errors import SessionProtocolError
from .models import Delta, JsonValue, RunDelta, RunRecord, SessionHead, Snapshot

#: The request header by which a client says which version of the session it holds.
SESSION_BASE_HEADER = "session-base"
#: ``{version}@{createdAt}``: a version of 1 to 15 digits, ``createdAt`` as the server writes it
#: (ISO 8601 in UTC with milliseconds). ASCII digits only (Python's ``\d`` takes any script's).
_TAG = re.compile(r"([0-9]{1,15})@([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)")


@dataclass(frozen=True)
class SessionBase:
    """What a client holds: a version of the session and its ``createdAt`` (its lineage).

    ``created_at`` is ``""`` for ``0`` (the client holds nothing, and reads deltas from here on):
    no delta is made from such a base, it is answered snapshots.
    """

    version: int
    created_at: str



#: ``Session-Base: 0``: the client holds no snapshot (it reads deltas from here on).
NOTHING: Final = SessionBase(0, "")


def parse_tag(text: str) -> SessionBase | None:
    """A tag read back (``7@2026-11-21T04:00:00.000Z``), or None when ``text`` is not one."""
    match = _TAG.fullmatch(text)
    return SessionBase(int(match[1]), match[2]) if match else None


def parse_session_base(header: str | None) -> SessionBase | None:
    """The ``Session-Base`` header: None without it, :data:`NOTHING` for ``0``, a tag's base; else 400 ``bad_request``."""
    if header is None:
        return None
    header = header.strip(" \t")  # as an HTTP server hands a value on (ASGI servers may not strip it)
    if header == "0":
        return NOTHING
    base = parse_tag(header)
    if base is None:
        raise SessionProtocolError("bad_request", 'Session-Base must be 0 or the tag of a version: "{version}@{createdAt}"')
    return base


def tag_of(session: Snapshot | Delta | SessionHead) -> str:
    """The tag of the version a snapshot, a delta or a head is: ``{version}@{createdAt}``."""
    return f"{session['version']}@{session['createdAt']}"


def base_of(session: Snapshot | Delta | SessionHead) -> SessionBase:
    """The base a client holds once it has ``session`` (a snapshot, or a delta applied)."""
    return SessionBase(session["version"], session["createdAt"])


def is_current(base: SessionBase, head: Snapshot | Delta | SessionHead) -> bool:
    """Whether ``base`` is the version ``head`` is, of its lineage: the client has nothing to learn."""
    return base.created_at == head["createdAt"] and base.version == head["version"]


def may_delta(base: SessionBase, head: Snapshot | SessionHead) -> bool:
    """Whether a delta from ``base`` to ``head`` may be made, as far as the head tells: the same lineage, a version from 1 up to the head's.

    The store must also still know the names changed since ``base`` (its log, or the rows newer
    than it not compacted away).
    """
    return base.created_at == head["createdAt"] and 1 <= base.version <= head["version"]


def delta_of(head: Snapshot | SessionHead, base: int, variables: Mapping[str, JsonValue], changed: Collection[str]) -> Delta:
    """The delta from version ``base`` to ``head``: each name in ``changed`` with its value in ``variables``, or deleted when it has none there.

    ``variables`` holds the session's current values (all of them, or those of ``changed``).
    Names come in order, so the same change reads the same from every store.
    """
    delta: Delta = {
        "sessionId": head["sessionId"],
        "base": base,
        "version": head["version"],
        "variables": {name: variables[name] for name in sorted(changed) if name in variables},
        "deleted": sorted(name for name in changed if name not in variables),
        "createdAt": head["createdAt"],
        "updatedAt": head["updatedAt"],
    }
    if "workflowId" in head:
        delta["workflowId"] = head["workflowId"]
    if "userId" in head:
        delta["userId"] = head["userId"]
    schema_version = shown_schema_version(head)
    if schema_version is not None:
        delta["schemaVersion"] = schema_version
    return delta


def shown_schema_version(head: Snapshot | SessionHead) -> int | None:
    """The ``schemaVersion`` a snapshot or a delta of ``head`` carries: the stored one when it is 2 or more, else None (left out: 1)."""
    schema_version = head.get("schemaVersion", 0)
    return schema_version if schema_version >= 2 else None


def is_delta(body: Snapshot | Delta) -> bool:
    """Whether a session answer is a delta (it has ``base``) rather than a snapshot."""
    return "base" in body


def run_delta_of(run: RunRecord, base: int) -> RunDelta:
    """The delta of ``run`` for a client that holds its rev ``base``: without the fields that never change, nor, while it runs, the end's."""
    delta: RunDelta = {
        "runId": run["runId"],
        "base": base,
        "rev": run["rev"],
        "status": run["status"],
        "progress": run["progress"],
        "heartbeatAt": run["heartbeatAt"],
    }
    if run["status"] != "running":
        delta["finishedAt"] = run["finishedAt"]
        delta["output"] = run["output"]
        delta["error"] = run["error"]
        delta["version"] = run["version"]
    return delta
