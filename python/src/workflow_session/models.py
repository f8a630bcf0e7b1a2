"""Typed models of what goes over the wire (docs/protocol.md), as TypedDicts.

They are plain dicts at run time, so they cost nothing; a type checker reads them, and Pydantic
validates them as field types (``TypeAdapter(Snapshot)``, or ``session: Snapshot`` in a model).
They come from ``typing_extensions`` because Pydantic needs that TypedDict before Python 3.12.
"""

from __future__ import annotations

from typing import Union

from typing_extensions import NotRequired, TypeAliasType, TypedDict

#: A JSON value: what a session variable may hold.
JsonValue = TypeAliasType(  # type: ignore[misc]
    "JsonValue", "Union[None, bool, int, float, str, list[JsonValue], dict[str, JsonValue]]"
)
__all__ = ["ErrorBody", "ErrorDetail", "JsonValue", "Patch", "Record", "RunResponse", "Snapshot", "Summary"]
_ = Union  # used by the alias's string


class Snapshot(TypedDict):
    """A session as the server stores and returns it."""

    sessionId: str
    variables: dict[str, JsonValue]
    #: Counts applied changes: 1 after the first, +1 per later applied patch or step.
    version: int
    #: ISO 8601 in UTC with milliseconds: ``2026-11-21T04:05:12.345Z``.
    createdAt: str
    updatedAt: str
    workflowId: NotRequired[str]
    userId: NotRequired[str]


class Summary(TypedDict):
    """One entry of ``GET {base}``: a snapshot without its variables."""

    sessionId: str
    version: int
    createdAt: str
    updatedAt: str
    workflowId: NotRequired[str]
    userId: NotRequired[str]


class Patch(TypedDict, total=False):
    """The body of ``POST {base}/{id}``: only the changed keys."""

    variables: dict[str, JsonValue]
    deleted: list[str]
    #: With ``seq``: applied once per (session, clientId, seq).
    clientId: str
    seq: int
    #: Extension: recorded on the session as ``workflowId``.
    workflowId: str


class RunResponse(TypedDict):
    """The body of a successful ``POST {base}/{id}/run/{step}``."""

    output: JsonValue
    session: Snapshot


class ErrorDetail(TypedDict):
    code: str
    message: str


class ErrorBody(TypedDict):
    """Every error response: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class Record(TypedDict):
    """What a store keeps per session: the snapshot and the last applied ``seq`` of each client.

    Stored as this JSON, the same as the TypeScript stores write, so both can share a database.
    """

    snapshot: Snapshot
    #: In recency order: the oldest clients are forgotten first.
    clientSeqs: dict[str, int]
