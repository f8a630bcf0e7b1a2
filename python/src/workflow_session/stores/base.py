"""The store layer every backend shares: ids checked, copies in and out, the owner rule, the one merge.

A backend only stores a record atomically (``read``, ``update`` with a decision made inside its
atomic step, ``list``, ``ids``, ``close``); :class:`SessionStore` builds the whole store API on it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, Generic, Literal, TypeVar, Union, cast

from ..errors import SessionProtocolError
from ..merge import assert_valid_change, iso_time, merge_session, to_session_change, utc_now
from ..models import JsonInput, JsonValue, Patch, Record, Snapshot, Summary
from ..rules import is_session_id
from ..workflow import Draft, ReadOnlyAccess, Workflow

T = TypeVar("T")

#: Told of every applied change, from any server sharing the store: ``(session_id, version)``.
ChangeListener = Callable[[str, int], None]

#: How often ``update_workflow`` re-runs its edit when other writes keep landing first.
MAX_EDIT_ATTEMPTS = 20


class _Keep(Enum):
    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


#: A decision that leaves the stored record as it is.
KEEP: Final = _Keep.KEEP
#: What a decision writes: a record, None to delete it, :data:`KEEP` to leave it.
Write = Union[Record, None, Literal[_Keep.KEEP]]


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What a backend's atomic step decided: ``write`` a record, None to delete, :data:`KEEP` to leave it."""

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
class WorkflowState:
    """What ``get_workflow`` reads: the same fields a workflow view shows."""

    data: dict[str, JsonValue]
    step: str | None
    flow: str
    stack: list[dict[str, JsonValue]]
    params: JsonValue
    last_modified: str | None


def may_reach(snapshot: Snapshot, caller: Caller | None) -> bool:
    """Whether ``caller`` may reach ``snapshot``: the one owner rule of the server.

    Trusted server code (no caller) reaches every session; a request's caller its own and
    those without an owner.
    """
    owner = snapshot.get("userId")
    return caller is None or owner is None or owner == caller.user_id


def summarize(snapshot: Snapshot) -> Summary:
    # The snapshot's own keys in its own order, but its variables: a Summary.
    return cast(Summary, {key: value for key, value in snapshot.items() if key != "variables"})


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
    given and returns copies. ``apply`` is atomic per session: the merge, the version bump and
    the client's ``seq`` are written together or not at all. Pass ``caller=Caller(user_id)`` for
    a request's caller; leave it out in trusted server code.

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
        return _ordered(record["snapshot"]) if record is not None and may_reach(record["snapshot"], caller) else None

    async def apply(
        self, session_id: str, change: Patch, *, caller: Caller | None = None, max_bytes: int | None = None
    ) -> ApplyResult:
        """Merges ``change`` (a patch: ``variables``, ``deleted``, ``clientId`` + ``seq``, ``workflowId``) atomically.

        Creates the session when missing (owned by ``caller``, when one is given). A session
        ``caller`` may not reach is ``not_found``.
        """
        _check_session_id(session_id)
        _check_caller(caller)
        result = await self._merge(session_id, _prepare(change), caller, max_bytes)
        assert result is not None
        return result

    async def _merge(
        self, session_id: str, change: Patch, caller: Caller | None, max_bytes: int | None, expect_version: int | None = None
    ) -> ApplyResult | None:
        owner = caller.user_id if caller is not None else None

        def decide(current: Record | None) -> Decision[ApplyResult | None]:
            if current is not None and not may_reach(current["snapshot"], caller):
                raise no_such_session()
            if expect_version is not None and (current["snapshot"]["version"] if current else 0) != expect_version:
                return Decision(KEEP, None)
            merged = merge_session(current, session_id, change, utc_now(), max_bytes=max_bytes, owner=owner)
            return Decision(merged.record if merged.applied else KEEP, ApplyResult(_ordered(merged.record["snapshot"]), merged.applied))

        result = await self.backend.update(session_id, decide)
        # Backends hand back records they parsed or serialised: nothing here is shared with storage.
        return result

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
        change = _prepare(body)

        def decide(current: Record | None) -> Decision[Snapshot]:
            if current is not None:
                raise SessionProtocolError("exists", f'A session with id "{session_id}" exists already')
            merged = merge_session(None, session_id, change, utc_now(), max_bytes=max_bytes, owner=user_id)
            record = merged.record
            if not merged.applied:
                # Creating is a change of its own, even with no variables: the session is there, version 1.
                record = {**record, "snapshot": {**record["snapshot"], "version": 1}}
            return Decision(record, _ordered(record["snapshot"]))

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
            if current is None or not may_reach(current["snapshot"], Caller(user_id)):
                raise SessionProtocolError("not_found", "No such session")
            if current["snapshot"].get("userId") == user_id:
                return Decision(KEEP, _ordered(current["snapshot"]))
            snapshot: Snapshot = {**current["snapshot"], "userId": user_id, "version": current["snapshot"]["version"] + 1, "updatedAt": iso_time(utc_now())}
            record: Record = {**current, "snapshot": snapshot}
            return Decision(record, _ordered(snapshot))

        return await self.backend.update(session_id, decide)

    async def delete(self, session_id: str, *, caller: Caller | None = None) -> bool:
        """Removes the session; True when there was one (that ``caller`` may reach)."""
        _check_session_id(session_id)
        _check_caller(caller)

        def decide(current: Record | None) -> Decision[bool]:
            if current is not None and may_reach(current["snapshot"], caller):
                return Decision(None, True)
            return Decision(KEEP, False)

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
            merged = await self._merge(session_id, _prepare(draft.changes()), None, None, expect)
            if merged is not None:
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


def _ordered(snapshot: Snapshot) -> Snapshot:
    """The snapshot with its variables in name order, whichever store or merge made it: the same answer from every read."""
    return {**snapshot, "variables": dict(sorted(snapshot["variables"].items()))}


def _prepare(change: object) -> Patch:
    """The caller's change, checked and copied: nothing of the caller's is kept."""
    prepared = to_session_change(change)
    assert_valid_change(prepared)
    return copy.deepcopy(prepared)


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
