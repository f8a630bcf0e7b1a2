"""Typed models of what goes over the wire (docs/protocol.md), and of a session as the stores keep it, as TypedDicts.

They are plain dicts at run time, so they cost nothing; a type checker reads them, and Pydantic
validates them as field types (``TypeAdapter(Snapshot)``, or ``session: Snapshot`` in a model).
They come from ``typing_extensions`` because Pydantic needs that TypedDict before Python 3.12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Union

from typing_extensions import NotRequired, TypeAlias, TypeAliasType, TypedDict

if TYPE_CHECKING:
    # What type checkers read: mypy and pyright agree on a recursive alias only in this form.
    JsonValue: TypeAlias = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]
    JsonInput: TypeAlias = Union[None, bool, int, float, str, Sequence["JsonInput"], Mapping[str, "JsonInput"]]
else:
    # At run time, alias objects that Pydantic resolves (``TypeAdapter(JsonValue)``).
    JsonValue = TypeAliasType("JsonValue", "Union[None, bool, int, float, str, list[JsonValue], dict[str, JsonValue]]")
    JsonInput = TypeAliasType("JsonInput", "Union[None, bool, int, float, str, Sequence[JsonInput], Mapping[str, JsonInput]]")

#: ``JsonValue``: a JSON value, as the package hands it out (a stored variable, a run's input).
#: ``JsonInput``: what may be given where JSON is stored or sent (a step's output, variables to
#: set): a JSON value whose lists and dicts a type checker takes as any ``Sequence`` and
#: ``Mapping``, so that an app's own ``list[str]`` or ``dict[str, int]`` fits. At run time only
#: ``list`` and ``dict`` are JSON (a tuple is refused, with a message that says so).
__all__ = [
    "Delta",
    "ErrorBody",
    "ErrorDetail",
    "JsonInput",
    "JsonValue",
    "Patch",
    "Record",
    "RunAnswer",
    "RunDelta",
    "RunError",
    "RunErrorCode",
    "RunRecord",
    "RunResponse",
    "RunStatus",
    "SessionHead",
    "Snapshot",
    "Summary",
]


class Snapshot(TypedDict):
    """A session as the server returns it (the stores keep it as a :class:`Record`)."""

    sessionId: str
    variables: dict[str, JsonValue]
    #: Counts applied changes: 1 after the first (or a ``create``), +1 per later applied patch, step, adoption or server-side write.
    version: int
    #: ISO 8601 in UTC with milliseconds: ``2026-11-21T04:05:12.345Z``.
    createdAt: str
    updatedAt: str
    workflowId: NotRequired[str]
    userId: NotRequired[str]
    #: The schema version the variables are in (docs/protocol.md, "Schema versions"), when it is 2 or more; absent: 1.
    schemaVersion: NotRequired[int]


class Delta(TypedDict):
    """What changed in a session since the version a client holds (docs/protocol.md, "Deltas").

    The answer instead of a snapshot to a request whose ``Session-Base`` names a version the
    server can tell apart. Applied onto the snapshot of version ``base`` (deletions first, then
    the values, then the head fields), it makes the snapshot of ``version``, exactly. A body with
    ``base`` is a delta, a body without it a snapshot.
    """

    sessionId: str
    #: The version it applies to (the client's); equal to ``version`` when nothing changed.
    base: int
    version: int
    #: The current value of every variable set since ``base`` (and maybe others, with their current values).
    variables: dict[str, JsonValue]
    #: Every variable deleted since ``base`` (and maybe some the client never had).
    deleted: list[str]
    createdAt: str
    updatedAt: str
    workflowId: NotRequired[str]
    userId: NotRequired[str]
    #: The schema version of ``version``'s variables, when it is 2 or more (as a snapshot's).
    schemaVersion: NotRequired[int]


class Summary(TypedDict):
    """One entry of ``GET {base}``: a snapshot without its variables (and without ``schemaVersion``: the protocol's listing has none)."""

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


#: Where a run is: ``running``, then exactly one of the others, for good.
RunStatus = Literal["running", "succeeded", "failed", "cancelled", "timed_out", "lost"]


#: Why a run did not succeed.
RunErrorCode = Literal["step_failed", "cancelled", "timed_out", "lost"]


class RunError(TypedDict):
    """Why a run did not succeed: ``step_failed`` (the step's safe message), ``cancelled``, ``timed_out`` or ``lost``."""

    code: RunErrorCode
    message: str


class RunRecord(TypedDict):
    """A durable run as the server keeps it and answers it (docs/protocol.md, "Runs").

    The same record from every endpoint, in the change feed (``event: run``) and in the
    ``record`` column of the runs table, which a TypeScript server on the same database shares.
    """

    #: The client's id for the run, 8 to 128 characters of ``A-Z a-z 0-9 _ -``, unique in its session.
    runId: str
    step: str
    status: RunStatus
    input: JsonValue
    #: The latest value the step reported with ``ctx.progress(value)``, or None.
    progress: JsonValue
    #: The step's output once ``succeeded``, else None.
    output: JsonValue
    error: RunError | None
    #: ISO 8601 in UTC with milliseconds, as ``createdAt``.
    startedAt: str
    finishedAt: str | None
    #: Renewed every 5 s while ``running`` by the server that runs the step; no ``rev`` bump.
    heartbeatAt: str
    #: The session's version when the step read its variables.
    readVersion: int
    #: For ``succeeded``: the session's version after its changes were merged; else None.
    version: int | None
    #: 1 at the start, one more with every progress write and with the end.
    rev: int


class RunDelta(TypedDict):
    """What changed in a run since the ``rev`` a client holds (docs/protocol.md, "Deltas", "Runs").

    A run's ``step``, ``input``, ``startedAt`` and ``readVersion`` never change, and its end's
    fields (``finishedAt``, ``output``, ``error``, ``version``) are None until it ends and never
    change after: a run delta leaves them out, and carries the end's fields once it has ended.
    The fields it carries replace those of the record the client holds (any ``rev`` from 1).
    """

    runId: str
    #: The ``rev`` the client holds.
    base: int
    rev: int
    status: RunStatus
    progress: JsonValue
    heartbeatAt: str
    finishedAt: NotRequired[str | None]
    output: NotRequired[JsonValue]
    error: NotRequired[RunError | None]
    version: NotRequired[int | None]


class RunAnswer(TypedDict):
    """Every answer about one run; ``session`` (the snapshot when answered) comes with a ``succeeded`` run."""

    run: RunRecord
    session: NotRequired[Snapshot]


class ErrorDetail(TypedDict):
    code: str
    message: str
    #: With ``schema_mismatch``: the schema version the server answers at (or a newer session's).
    schemaVersion: NotRequired[int]


class ErrorBody(TypedDict):
    """Every error response: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class SessionHead(TypedDict):
    """A session without its variables: the head row a store keeps (``ws_sessions`` in SQLite, the ``table`` in PostgreSQL).

    The same row as the TypeScript stores read and write, column for column (see
    :mod:`workflow_session.stores.rows`).
    """

    sessionId: str
    version: int
    createdAt: str
    updatedAt: str
    workflowId: NotRequired[str]
    userId: NotRequired[str]
    #: The variables' size as compact JSON, in UTF-8 bytes (the ``bytes`` column).
    bytes: int
    #: The last applied ``seq`` of the most recent clients (at most 256), oldest first: the
    #: ``clients`` column, ``[[clientId, seq], …]``, as a dict in that order.
    clients: dict[str, int]
    #: The schema version the variables are in (the ``schema_version`` column): 0 for a session
    #: written before schema versions were recorded, which reads as 1; absent reads as 0.
    schemaVersion: NotRequired[int]


class Record(TypedDict):
    """What a store keeps per session: its head (one row) and its variables (one row each).

    The layout the SQLite and PostgreSQL stores read and write, shared with the TypeScript
    stores (a variable deleted since stays as a row without a value, which is not read into a
    record); the memory store keeps the same record as JSON text. Sessions in the layout of 0.1
    (one JSON ``{snapshot, clientSeqs}`` row each) are moved to this one by the TypeScript stores
    when they open the database; the Python stores refuse to open such a database.
    """

    head: SessionHead
    variables: dict[str, JsonValue]
