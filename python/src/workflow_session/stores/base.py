"""The store layer every backend shares: ids checked, changes checked once, copies in and out, the owner rule, the one merge.

A backend only keeps a :class:`~workflow_session.models.Record` (a session's head and its
variables) atomically (``read``, ``update`` with a decision made inside its atomic step,
``list``, ``ids``, ``close``); :class:`SessionStore` builds the whole store API on it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar, Union, cast

from ..errors import SessionProtocolError
from ..merge import ValidChange, iso_time, merge_session, utc_now, valid_change
from ..models import JsonInput, JsonValue, Patch, Record, SessionHead, Snapshot, Summary
from ..rules import is_session_id
from ..workflow import Draft, ReadOnlyAccess, Workflow

T = TypeVar("T")

#: Told of every applied change, from any server sharing the store: ``(session_id, version)``.
ChangeListener = Callable[[str, int], None]

#: How often ``update_workflow`` re-runs its edit when other writes keep landing first.
MAX_EDIT_ATTEMPTS = 20


@dataclass(frozen=True)
class Put:
    """A decision that writes ``record``: the session's new head and variables."""

    record: Record


@dataclass(frozen=True)
class Remove:
    """A decision that deletes the session: its head and every variable row."""


@dataclass(frozen=True)
class Keep:
    """A decision that leaves the stored session as it is."""


#: What a decision does to the stored session.
Write = Union[Put, Remove, Keep]


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What a backend's atomic step decided: its :data:`Write`, and the ``result`` ``update`` returns."""

    write: Write
    result: T


@dataclass(frozen=True)
class Caller:
    """Who asks, when a request asks: ``Caller("ada")`` for a signed-in user, ``Caller(None)`` for an anonymous one.

    A caller reaches sessions without an owner and its own, and nothing else ("no such
    session"). Server code that passes no caller is trusted: it reaches every session.
    """

    user_id: str | None


@dataclass(frozen=True)
class ApplyResult:
    snapshot: Snapshot
    #: False when the change was empty or its ``seq`` was already applied.
    applied: bool


@dataclass(frozen=True)
class Conflict:
    """A merge onto an expected version that was not the stored one: nothing was written."""


@dataclass(frozen=True)
class WorkflowState:
    """What ``get_workflow`` reads: the same fields a workflow view shows."""

    data: dict[str, JsonValue]
    step: str | None
    flow: str
    stack: list[dict[str, JsonValue]]
    params: JsonValue
    last_modified: str | None


def may_reach(session: Snapshot | SessionHead, caller: Caller | None) -> bool:
    """Whether ``caller`` may reach ``session`` (a snapshot, or a stored head): the one owner rule of the server.

    Trusted server code (no caller) reaches every session; a request's caller its own and
    those without an owner.
    """
    owner = session.get("userId")
    return caller is None or owner is None or owner == caller.user_id


#: What a head holds for the store only, never shown: the variables' size and the clients' ``seq``
#: (and its ``sessionId``, which a view puts first itself).
_NOT_SHOWN = frozenset({"sessionId", "bytes", "clients"})


def summary_of(head: SessionHead) -> Summary:
    """What ``list`` shows of a session: its head without the store's bookkeeping, the head's keys in their order."""
    summary: dict[str, object] = {"sessionId": head["sessionId"]}
    summary.update((key, value) for key, value in head.items() if key not in _NOT_SHOWN)
    return cast(Summary, summary)


def snapshot_of(record: Record) -> Snapshot:
    """The session as the protocol answers it: its summary with the variables second, in name order.

    The same answer from every store and every read, whichever store or merge made the record.
    """
    snapshot: dict[str, object] = {"sessionId": record["head"]["sessionId"], "variables": dict(sorted(record["variables"].items()))}
    snapshot.update((key, value) for key, value in record["head"].items() if key not in _NOT_SHOWN)
    return cast(Snapshot, snapshot)


def no_such_session() -> SessionProtocolError:
    return SessionProtocolError("not_found", "No such session")


class Backend:
    """Where records live. Subclasses store a record atomically; :class:`SessionStore` does the rest."""

    async def open(self) -> None:
        """Connects, when the backend connects to something (also done on first use)."""

    async def read(self, session_id: str) -> Record | None:
        raise NotImplementedError

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        """Atomically for this session, against every writer in every process sharing the backend.

        Reads the record, calls ``decide`` with it (synchronously; if it raises, nothing is
        written), and writes what it decided.
        """
        raise NotImplementedError

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Summary]:
        """Summaries, newest ``updatedAt`` first (ties by ``sessionId``), filtered and paged."""
        raise NotImplementedError

    def ids(self) -> AsyncIterator[str]:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def watch(self, on_change: ChangeListener, on_reconnect: Callable[[], None] | None = None) -> Callable[[], None] | None:
        """Backends shared by several servers tell of every change made through any of them; others return None."""
        return None


class SessionStore:
    """Where sessions live, as a safe API for server code.

    Every method checks the session id (``invalid_session_id``), takes copies of what it is
    given and returns copies; a change is checked (and copied) once, here, unless it is a
    ``ValidChange`` already (the app's patches), which it takes as it is. ``apply`` is atomic per session: the merge, the version bump and
    the client's ``seq`` are written together or not at all. Pass ``caller=Caller(user_id)`` for
    a request's caller; leave it out in trusted server code.

    Sessions do not expire: the Python stores have no TTL, and a session stays until it is
    deleted. A TypeScript server with ``ttlMs`` on the same database reads a session older than
    that as missing and removes its rows (when its read finds it, and by its periodic purge);
    until they are gone, these stores read it as live, and a write through them makes it live
    again for the TypeScript server too (its ``updatedAt`` is then now).

    Example::

        store = open_store("sqlite:.data/sessions.db")
        await store.apply("session-1", {"variables": {"email": "a@b.c"}})
        await store.get_state("session-1", "email")  # "a@b.c"
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def open(self) -> None:
        """Connects now (a store also connects on first use); raises ``unavailable`` when it cannot."""
        await self.backend.open()

    async def get(self, session_id: str, *, caller: Caller | None = None) -> Snapshot | None:
        """The session, or None when there is none (or ``caller`` may not see it)."""
        _check_session_id(session_id)
        _check_caller(caller)
        record = await self.backend.read(session_id)
        return snapshot_of(record) if record is not None and may_reach(record["head"], caller) else None

    async def apply(
        self, session_id: str, change: Patch | ValidChange, *, caller: Caller | None = None, max_bytes: int | None = None
    ) -> ApplyResult:
        """Merges ``change`` (a patch: ``variables``, ``deleted``, ``clientId`` + ``seq``, ``workflowId``) atomically.

        Creates the session when missing (owned by ``caller``, when one is given). A session
        ``caller`` may not reach is ``not_found``.
        """
        _check_session_id(session_id)
        _check_caller(caller)
        outcome = await self._merge(session_id, _checked(change), caller, max_bytes)
        if isinstance(outcome, Conflict):  # only a merge onto an expected version meets one
            raise RuntimeError("A merge without an expected version met a conflict")
        return outcome

    async def _merge(
        self, session_id: str, change: ValidChange, caller: Caller | None, max_bytes: int | None, expect_version: int | None = None
    ) -> ApplyResult | Conflict:
        owner = caller.user_id if caller is not None else None

        def decide(current: Record | None) -> Decision[ApplyResult | Conflict]:
            if current is not None and not may_reach(current["head"], caller):
                raise no_such_session()
            if expect_version is not None and (current["head"]["version"] if current else 0) != expect_version:
                return Decision(Keep(), Conflict())
            merged = merge_session(current, session_id, change, utc_now(), max_bytes=max_bytes, owner=owner)
            return Decision(Put(merged.record) if merged.applied else Keep(), ApplyResult(snapshot_of(merged.record), merged.applied))

        # Backends hand decide records they parsed, so the snapshot shares nothing with storage.
        return await self.backend.update(session_id, decide)

    async def create(
        self,
        session_id: str,
        *,
        variables: Mapping[str, JsonInput] | None = None,
        workflow_id: str | None = None,
        user_id: str | None = None,
        max_bytes: int | None = None,
    ) -> Snapshot:
        """Makes a new session at version 1, owned by ``user_id`` when given; raises ``exists`` (409) when the id is taken."""
        _check_session_id(session_id)
        if user_id is not None and (not isinstance(user_id, str) or user_id == ""):
            raise TypeError("create: user_id must be a non-empty string")
        body: dict[str, object] = {"variables": variables or {}}
        if workflow_id is not None:
            body["workflowId"] = workflow_id
        change = _checked(body)

        def decide(current: Record | None) -> Decision[Snapshot]:
            if current is not None:
                raise SessionProtocolError("exists", f'A session with id "{session_id}" exists already')
            merged = merge_session(None, session_id, change, utc_now(), max_bytes=max_bytes, owner=user_id)
            record = merged.record
            if not merged.applied:
                # Creating is a change of its own, even with no variables: the session is there, version 1.
                record = {**record, "head": {**record["head"], "version": 1}}
            return Decision(Put(record), snapshot_of(record))

        return await self.backend.update(session_id, decide)

    async def adopt(self, session_id: str, user_id: str) -> Snapshot:
        """Makes ``user_id`` the owner of a session that has none (made before its user signed in).

        A session the user owns already is returned as it is; a missing one, or another user's, is
        ``not_found``. The version grows by one. The app's ``POST {base}/{id}/adopt`` calls it for
        the signed-in caller.
        """
        _check_session_id(session_id)
        if not isinstance(user_id, str) or not user_id:
            raise TypeError("adopt: user_id must be a non-empty string")

        def decide(current: Record | None) -> Decision[Snapshot]:
            if current is None or not may_reach(current["head"], Caller(user_id)):
                raise no_such_session()
            if current["head"].get("userId") == user_id:
                return Decision(Keep(), snapshot_of(current))
            head: SessionHead = {**current["head"], "userId": user_id, "version": current["head"]["version"] + 1, "updatedAt": iso_time(utc_now())}
            record: Record = {**current, "head": head}
            return Decision(Put(record), snapshot_of(record))

        return await self.backend.update(session_id, decide)

    async def delete(self, session_id: str, *, caller: Caller | None = None) -> bool:
        """Removes the session; True when there was one (that ``caller`` may reach)."""
        _check_session_id(session_id)
        _check_caller(caller)

        def decide(current: Record | None) -> Decision[bool]:
            if current is not None and may_reach(current["head"], caller):
                return Decision(Remove(), True)
            return Decision(Keep(), False)

        return await self.backend.update(session_id, decide)

    async def list(self, *, user_id: str | None = None, limit: int = 50, offset: int = 0) -> list[Summary]:
        """Sessions (of ``user_id``, when given), newest ``updatedAt`` first, one page at a time."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"list: limit must be an integer from 1 to 1000, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"list: offset must be a whole number, got {offset!r}")
        if user_id is not None and not isinstance(user_id, str):
            raise TypeError("list: user_id must be a string")
        return await self.backend.list(user_id, limit, offset)

    def ids(self) -> AsyncIterator[str]:
        """Every session id, unpaged, in no particular order (for jobs: export, migration, audit)."""
        return self.backend.ids()

    async def get_state(self, session_id: str, key: str, default: JsonValue = None) -> JsonValue:
        """One variable of a session (trusted), or ``default``."""
        snapshot = await self.get(session_id)
        return snapshot["variables"].get(key, default) if snapshot is not None else default

    async def set_state(self, session_id: str, key: str, value: JsonInput) -> Snapshot:
        """Sets one variable (trusted: an atomic patch of one key); returns the new snapshot."""
        # apply() checks that the value is JSON (JsonInput lets a checker take any Sequence or Mapping).
        return (await self.apply(session_id, {"variables": {key: cast(JsonValue, value)}})).snapshot

    async def get_workflow(self, session_id: str, workflow_id: str) -> WorkflowState | None:
        """One workflow's part of a session (trusted), or None without the session."""
        snapshot = await self.get(session_id)
        if snapshot is None:
            return None
        view = Workflow(ReadOnlyAccess(snapshot["variables"]), workflow_id)
        return WorkflowState(view.get_all(), view.step, view.flow, view.stack, view.params, view.last_modified)

    async def update_workflow(
        self, session_id: str, workflow_id: str, edit: Callable[[Workflow], None | Awaitable[None]]
    ) -> Snapshot:
        """Changes one workflow's part of a session from server code, as a step would (trusted).

        ``edit`` (sync or async) gets the workflow's view; what it changes is merged as one patch
        with one version bump. If another write lands between the read and the merge, ``edit``
        runs again on the newer session. Creates the session when missing; returns the snapshot.
        """
        _check_session_id(session_id)
        for _ in range(MAX_EDIT_ATTEMPTS):
            before = await self.get(session_id)
            draft = Draft(before["variables"] if before else {})
            done = edit(Workflow(draft, workflow_id))
            if inspect.isawaitable(done):
                await done
            expect = before["version"] if before else 0
            merged = await self._merge(session_id, _checked(draft.changes()), None, None, expect)
            if isinstance(merged, ApplyResult):
                return merged.snapshot
        raise RuntimeError(
            f'update_workflow: session "{session_id}" changed under each of {MAX_EDIT_ATTEMPTS} attempts; nothing was written'
        )

    def watch(self, on_change: ChangeListener, on_reconnect: Callable[[], None] | None = None) -> Callable[[], None] | None:
        """Hears changes made through every server sharing the store (PostgreSQL); None for stores of one process."""
        return self.backend.watch(on_change, on_reconnect)

    async def close(self) -> None:
        """Releases files and connections; waits for writes under way."""
        await self.backend.close()

    async def __aenter__(self) -> SessionStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _checked(change: object) -> ValidChange:
    """The caller's change, checked and copied: nothing of the caller's is kept.

    The store is an API for server code too (a step's result, a job), which has no edge before
    it: a change is checked here, once, unless it is a ValidChange already (the app checked a
    request's patch at the edge, in the protocol's order, before its key count).
    """
    return change if isinstance(change, ValidChange) else valid_change(change)


def _check_session_id(session_id: object) -> None:
    if not is_session_id(session_id):
        shown = repr(session_id[:40]) if isinstance(session_id, str) else type(session_id).__name__
        raise SessionProtocolError(
            "invalid_session_id", f"{shown} is not a session id: 8 to 128 characters of A-Z a-z 0-9 _ -"
        )


def _check_caller(caller: object) -> None:
    if caller is None:
        return
    user_id = getattr(caller, "user_id", 0)
    if not isinstance(caller, Caller) or not (user_id is None or (isinstance(user_id, str) and user_id != "")):
        raise TypeError('caller must be Caller("user-id") for a signed-in user or Caller(None) for an anonymous one')
