"""The store layer every backend shares: ids checked, changes checked once, copies in and out, the owner rule, the one merge.

A backend only keeps a :class:`~workflow_session.models.Record` (a session's head and its
variables) atomically (``read``, ``update`` with a decision made inside its atomic step,
``list``, ``ids``, ``close``), and the session's runs beside it (``read_runs``, ``update_runs``
for a decision on the session and its runs together, ``update_run`` for one run);
:class:`SessionStore` builds the whole store API on it. A backend that can tell which variables
changed since a version (``read_since``: the memory store's change log, the SQL stores' rows
newer than it) lets the store answer deltas (docs/protocol.md, "Deltas"); any other answers
snapshots.

A store with migrations (``SessionStore(backend, migrations=define_migrations(…))``) reads and
writes sessions at their schema version N (docs/protocol.md, "Schema versions"): a session stored
at an older one is migrated in the same atomic step as whatever first reads or writes it, once,
with one version bump; one stored at a newer one is answered as it is and never changed. Values
the app's check refuses once migrated are set aside (``define_migrations(…, validate=…)``), and
the store tells its ``on_error`` of them (:class:`SetAsideError`), once per migration it wrote.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, Union, cast

from ..deltas import SessionBase, delta_of, is_current, may_delta, shown_schema_version
from ..errors import SessionProtocolError, schema_mismatch
from ..merge import ValidChange, iso_time, merge_session, utc_now, valid_change
from ..migrations import SET_ASIDE_KEY, MigrationError, Migrations, SetAside
from ..models import Delta, JsonInput, JsonValue, Patch, Record, RunError, RunRecord, RunStatus, SessionHead, Snapshot, Summary
from ..rules import is_session_id, json_bytes
from ..runs import (
    CANCELLED_MESSAGE,
    DEFAULT_RUN_LOST_AFTER_MS,
    KEEP_FINISHED_RUNS,
    LOST_MESSAGE,
    UNCHANGED,
    Unchanged,
    ended,
    is_run_id,
    is_stale,
    ms_of_datetime,
    new_run,
    now_ms,
    progressed,
    renewed,
    run_error,
)
from ..workflow import Draft, ReadOnlyAccess, Workflow

T = TypeVar("T")
log = logging.getLogger("workflow_session")

#: Told of every applied change, from any server sharing the store: ``(session_id, version)``.
ChangeListener = Callable[[str, int], None]
#: Told of what goes wrong away from any request's answer: ``(error, session_id)``, e.g. a :class:`SetAsideError`.
ErrorListener = Callable[[Exception, str], None]

#: How often ``update_workflow`` re-runs its edit when other writes keep landing first.
MAX_EDIT_ATTEMPTS = 20
#: Errors of a step's own changes: the step's failure (``step_failed``), not the request's.
STEP_RESULT_PROBLEMS = frozenset({"invalid_key", "invalid_patch", "too_large"})
#: How long ``close()`` waits for the last writes handed to ``finish_before_close``.
CLOSE_WAIT_SECONDS = 10.0


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
class RunsDecision(Generic[T]):
    """What a backend's atomic step on a session and its runs decided.

    ``write``: the session (:class:`Put` or :class:`Keep`, never :class:`Remove`); ``runs``: run
    records to write (inserted or replaced by their ``runId``); ``drop``: run ids to delete;
    ``result``: what ``update_runs`` returns.
    """

    result: T
    write: Union[Put, Keep] = Keep()
    runs: tuple[RunRecord, ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunStart:
    """What ``start_run`` did: ``started`` (the record was written now, the step is to run on ``variables``), or not.

    Not started: ``run`` is the run with that id (a retry), or the running run of the same step
    (joined; ``conflict`` when the start asked to refuse rather than join).
    """

    run: RunRecord
    started: bool
    #: The session's variables as stored when the run was written (started only).
    variables: dict[str, JsonValue]
    conflict: bool = False
    #: Whether the store was written (the run, a new session, a stale run ended ``lost``).
    wrote: bool = False


@dataclass(frozen=True)
class RunEnd:
    """What ``finish_run`` did: whether it ``ended`` the run (it was ``running``), and the record as it is now."""

    #: The run as stored after the call; None when there is no such run (any more).
    run: RunRecord | None
    ended: bool
    #: A ``succeeded`` run's session after its changes were merged (or as it was, when they changed nothing).
    snapshot: Snapshot | None = None
    #: Whether the merge changed the session (one version bump).
    applied: bool = False
    #: The rule the step's changes broke (the run then ended ``failed``, ``step_failed``).
    problem: SessionProtocolError | None = None


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
    #: Given a ``base`` (``apply(..., base=…)``): the delta from it to ``snapshot``'s version (or a
    #: newer one, when the client was behind and the store read what changed after the write); None
    #: when no delta can be made (answer ``snapshot``).
    delta: Delta | None = None
    #: True when the session was stored at an older schema version and was migrated in the same write.
    migrated: bool = False


@dataclass(frozen=True)
class Changes:
    """What a backend's ``read_since`` tells: the session's head now, and what changed in it since the base.

    ``variables``: the current value of every variable set since the base; ``deleted``: every
    name deleted since (a name may be in either, never in both).
    """

    head: SessionHead
    variables: dict[str, JsonValue]
    deleted: list[str]


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


class Listed(Summary, total=False):
    """A session as a backend's ``list`` tells the store of it: its summary, and the schema version it is stored at.

    ``schemaVersion`` is for the store only (it migrates the stale sessions of a page): the
    listing the store answers leaves it out, as the protocol's summary has none. Absent: 1.
    """

    schemaVersion: int


class SetAsideError(Exception):
    """Values of a session that the app's check refused once the session was migrated: set aside under ``ws:setAside``, not dropped.

    The store tells its ``on_error`` of it, once, when it writes the migration; the request that
    read or wrote the session is answered as usual.
    """

    def __init__(self, session_id: str, schema_version: int, set_aside: list[SetAside]) -> None:
        shown = ", ".join(f'"{entry["name"]}" ({entry["problem"]})' for entry in set_aside)
        super().__init__(
            f'Session "{session_id}": migrating it to schema version {schema_version} set aside what the app\'s schema refuses, under "{SET_ASIDE_KEY}": {shown}'
        )
        self.session_id = session_id
        #: The schema version the session was migrated to.
        self.schema_version = schema_version
        #: The variables set aside, with the check's message for each, in the variables' order.
        self.set_aside = set_aside

    def __reduce__(self) -> tuple[type[SetAsideError], tuple[str, int, list[SetAside]]]:
        """Made again from its fields when unpickled (an error tracker or a process pool may pickle it)."""
        return (SetAsideError, (self.session_id, self.schema_version, self.set_aside))


def may_reach(session: Snapshot | SessionHead, caller: Caller | None) -> bool:
    """Whether ``caller`` may reach ``session`` (a snapshot, or a stored head): the one owner rule of the server.

    Trusted server code (no caller) reaches every session; a request's caller its own and
    those without an owner.
    """
    owner = session.get("userId")
    return caller is None or owner is None or owner == caller.user_id


#: What a head holds for the store only, never shown: the variables' size and the clients' ``seq``
#: (and its ``sessionId``, which a view puts first itself, and its ``schemaVersion``, which a
#: snapshot puts last, and only from 2 up, and a summary never shows).
_NOT_SHOWN = frozenset({"sessionId", "bytes", "clients", "schemaVersion"})


def summary_of(head: SessionHead) -> Summary:
    """What ``list`` shows of a session: its head without the store's bookkeeping, the head's keys in their order (no ``schemaVersion``)."""
    summary: dict[str, object] = {"sessionId": head["sessionId"]}
    summary.update((key, value) for key, value in head.items() if key not in _NOT_SHOWN)
    return cast(Summary, summary)


def listed_of(head: SessionHead) -> Listed:
    """What a backend's ``list`` tells the store of a session: its summary, then the schema version it is stored at."""
    listed = cast(Listed, summary_of(head))
    if "schemaVersion" in head:
        listed["schemaVersion"] = head["schemaVersion"]
    return listed


def _summary_of_listed(listed: Listed) -> Summary:
    """The summary the store answers for a backend's listed session: without ``schemaVersion``, the other keys in their order."""
    return cast(Summary, {key: value for key, value in listed.items() if key != "schemaVersion"})


def snapshot_of(record: Record) -> Snapshot:
    """The session as the protocol answers it: its summary with the variables second, in name order.

    The same answer from every store and every read, whichever store or merge made the record.
    """
    snapshot: dict[str, object] = {"sessionId": record["head"]["sessionId"], "variables": dict(sorted(record["variables"].items()))}
    snapshot.update((key, value) for key, value in record["head"].items() if key not in _NOT_SHOWN)
    _show_schema_version(snapshot, record["head"])
    return cast(Snapshot, snapshot)


def _show_schema_version(view: dict[str, object], head: SessionHead) -> None:
    """Adds ``schemaVersion`` to a snapshot, after the head's other fields, when it is 2 or more (1 and 0 are left out)."""
    schema_version = shown_schema_version(head)
    if schema_version is not None:
        view["schemaVersion"] = schema_version


def schema_version_of(session: Snapshot | SessionHead | Listed) -> int:
    """The schema version a session's variables are in: the one recorded (0, from before it was recorded, and none read as 1)."""
    return max(session.get("schemaVersion", 0), 1)


def no_such_session() -> SessionProtocolError:
    return SessionProtocolError("not_found", "No such session")


class Backend:
    """Where records live. Subclasses store a record atomically; :class:`SessionStore` does the rest."""

    async def open(self) -> None:
        """Connects, when the backend connects to something (also done on first use)."""

    async def read(self, session_id: str) -> Record | None:
        raise NotImplementedError

    async def read_since(self, session_id: str, base: SessionBase) -> Record | Changes | None:
        """The session's :class:`Changes` since ``base`` when the backend can tell them, else its whole record (None: no session), as one read.

        :class:`Changes` only when :func:`~workflow_session.deltas.may_delta` holds for ``base``
        and the session's head (its lineage, a version from 1 up to the session's), and the
        backend still knows every name set or deleted after ``base.version``. This default keeps
        no changes: it reads the record, and the store answers a snapshot.
        """
        return await self.read(session_id)

    async def update(self, session_id: str, decide: Callable[[Record | None], Decision[T]]) -> T:
        """Atomically for this session, against every writer in every process sharing the backend.

        Reads the record, calls ``decide`` with it (synchronously; if it raises, nothing is
        written), and writes what it decided.
        """
        raise NotImplementedError

    async def list(self, user_id: str | None, limit: int, offset: int) -> list[Listed]:
        """Summaries with the schema version each session is stored at (:func:`listed_of`), newest ``updatedAt`` first (ties by ``sessionId``), filtered and paged.

        One without ``schemaVersion`` reads as version 1: a store with migrations then migrates
        it to be sure (an atomic step that finds it current changes nothing).
        """
        raise NotImplementedError

    def ids(self) -> AsyncIterator[str]:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def watch(self, on_change: ChangeListener, on_reconnect: Callable[[], None] | None = None) -> Callable[[], None] | None:
        """Backends shared by several servers tell of every change made through any of them; others return None."""
        return None

    async def read_runs(self, session_id: str, run_id: str | None = None) -> tuple[SessionHead | None, builtins.list[RunRecord]]:
        """The session's head and its runs, newest ``startedAt`` first (only ``run_id``'s, when given), as one read.

        No head: no session, and no runs (rows a session left behind are not its runs).
        """
        raise NotImplementedError

    async def update_runs(
        self, session_id: str, decide: Callable[[Record | None, builtins.list[RunRecord]], RunsDecision[T]], run_id: str | None = None
    ) -> T:
        """Atomically for this session (the same lock as ``update``): reads the record and its runs (only ``run_id``'s,
        when given; newest first), calls ``decide`` and writes what it decided, the session and the runs together.

        Shared stores tell every server of a write (PostgreSQL: the change channel, with the session's version).
        """
        raise NotImplementedError

    async def update_run(self, session_id: str, run_id: str, decide: Callable[[SessionHead | None, RunRecord | None], tuple[RunRecord | None, T]]) -> T:
        """Atomically for this session: reads its head and one run, calls ``decide``, and writes the record it returns first (None: nothing)."""
        raise NotImplementedError


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

    ``migrations`` (``define_migrations(…)``) is the app's schema: the store's schema version N
    is its version (1 without it). New sessions are written at N. A session stored at an older
    version (0, written before versions were recorded, reads as 1) is migrated before anything
    reads or writes it, in the same atomic step: its variables made current, one version bump,
    ``schemaVersion`` N. A session stored at a newer version (written by newer code) is answered
    as it is; a write that would change it is ``schema_mismatch`` (409).

    ``on_error(error, session_id)`` is told of what goes wrong away from any request's answer:
    a :class:`SetAsideError` when a migration this store wrote set values aside (the app's
    ``validate`` refused them), once per migration. Default: logged at ERROR on the
    ``workflow_session`` logger. What it raises is logged, never the request's failure.

    Example::

        store = open_store("sqlite:.data/sessions.db")
        await store.apply("session-1", {"variables": {"email": "a@b.c"}})
        await store.get_state("session-1", "email")  # "a@b.c"
    """

    def __init__(self, backend: Backend, migrations: Migrations | None = None, on_error: ErrorListener | None = None) -> None:
        if migrations is not None and not isinstance(migrations, Migrations):
            raise TypeError("migrations must be what define_migrations(…) returns")
        if on_error is not None and not callable(on_error):
            raise TypeError("on_error must be a function: on_error(error, session_id)")
        self.backend = backend
        #: The app's schema, or None (schema version 1).
        self.migrations = migrations
        #: Told of what goes wrong away from any request's answer (a :class:`SetAsideError`).
        self.on_error: ErrorListener = on_error or _log_error
        self._finishing: set[asyncio.Future[Any]] = set()

    @property
    def schema_version(self) -> int:
        """The schema version N this store reads and writes sessions at: its migrations' version, or 1 without them."""
        return self.migrations.version if self.migrations is not None else 1

    async def open(self) -> None:
        """Connects now (a store also connects on first use); raises ``unavailable`` when it cannot."""
        await self.backend.open()

    async def get(self, session_id: str, *, caller: Caller | None = None) -> Snapshot | None:
        """The session, or None when there is none (or ``caller`` may not see it); migrated first when it is stale."""
        _check_session_id(session_id)
        _check_caller(caller)
        record = await self._read_current(session_id, caller)
        return snapshot_of(record) if record is not None and may_reach(record["head"], caller) else None

    async def get_since(self, session_id: str, base: SessionBase | None, *, caller: Caller | None = None) -> Snapshot | Delta | None:
        """The session for a client that holds ``base``: the :class:`~workflow_session.models.Delta` from it when the store can tell what changed since, else the snapshot.

        None as for ``get`` (no session, or one ``caller`` may not see). Without a base, or with
        one of no known lineage (``Session-Base: 0``), the snapshot. A delta whose ``base`` is
        its ``version`` says that nothing changed. One read of the backend: the head and the
        variables changed since ``base`` (the SQL stores read only the rows newer than it).
        """
        if base is None or not base.created_at:
            return await self.get(session_id, caller=caller)
        _check_session_id(session_id)
        _check_caller(caller)
        found = await self.backend.read_since(session_id, base)
        head = found.head if isinstance(found, Changes) else found["head"] if found is not None else None
        if head is not None and self._needs_migration(head) and may_reach(head, caller):
            # Migrated first; then read again, so that the migration's changes are in the delta.
            await self._migrate_stored(session_id, caller)
            found = await self.backend.read_since(session_id, base)
        if found is None:
            return None
        if isinstance(found, Changes):
            if not may_reach(found.head, caller):
                return None
            if may_delta(base, found.head):  # the backend's word, checked again: never a delta of another lineage
                return delta_of(found.head, base.version, found.variables, [*found.variables, *found.deleted])
            return await self.get(session_id, caller=caller)
        return snapshot_of(found) if may_reach(found["head"], caller) else None

    async def apply(
        self,
        session_id: str,
        change: Patch | ValidChange,
        *,
        caller: Caller | None = None,
        max_bytes: int | None = None,
        base: SessionBase | None = None,
        schema_version: int | None = None,
    ) -> ApplyResult:
        """Merges ``change`` (a patch: ``variables``, ``deleted``, ``clientId`` + ``seq``, ``workflowId``) atomically.

        Creates the session when missing (owned by ``caller``, when one is given). A session
        ``caller`` may not reach is ``not_found``. With ``base`` (the version the client holds),
        the result's ``delta`` is the answer to it when one can be made: made in the atomic step
        from the merge's own changes when ``base`` is the version merged onto (the common case,
        O(change)), else read after the write (``get_since``) when the client was behind.

        ``schema_version``: the schema version ``change`` was written at (a client's patch);
        None, the store's own (server code). An older one is moved by the migrations first; a
        newer one, one a ``function`` step lies after, or a session stored at a newer version is
        ``schema_mismatch`` (after the owner rule). A stale session is migrated in the same write,
        with the one version bump of the merge.
        """
        _check_session_id(session_id)
        _check_caller(caller)
        checked = _checked(change)
        moved, refused = self._moved_change(checked, schema_version)
        outcome = await self._merge(session_id, moved, caller, max_bytes, base=base, refused=refused)
        if isinstance(outcome, Conflict):  # only a merge onto an expected version meets one
            raise RuntimeError("A merge without an expected version met a conflict")
        if base is not None and outcome.delta is None and may_delta(base, outcome.snapshot):
            # The client was behind the version merged onto: what changed since its base, read now
            # (the merge's version or a newer one; a snapshot when the store cannot tell).
            since = await self.get_since(session_id, base, caller=caller)
            if since is not None and "base" in since and since["version"] >= outcome.snapshot["version"]:
                return ApplyResult(outcome.snapshot, outcome.applied, cast(Delta, since))
        return outcome

    async def _merge(
        self,
        session_id: str,
        change: ValidChange,
        caller: Caller | None,
        max_bytes: int | None,
        expect_version: int | None = None,
        base: SessionBase | None = None,
        refused: SessionProtocolError | None = None,
    ) -> ApplyResult | Conflict:
        """The one merge of ``apply`` and ``update_workflow``; ``refused``: the ``schema_mismatch`` to raise once the owner rule passed."""
        owner = caller.user_id if caller is not None else None
        set_aside: list[SetAside] = []

        def decide(current: Record | None) -> Decision[ApplyResult | Conflict]:
            if current is not None and not may_reach(current["head"], caller):
                raise no_such_session()
            self._refuse_newer(current)
            if refused is not None:
                raise refused
            if expect_version is not None and (current["head"]["version"] if current else 0) != expect_version:
                return Decision(Keep(), Conflict())
            now = utc_now()
            migrated = self._migrated(current, set_aside)
            # Onto the migrated variables at the stored version: the merge's bump is the migration's too.
            merged = merge_session(migrated or current, session_id, change, now, max_bytes=max_bytes, owner=owner)
            written = self._stamped(merged.record) if merged.applied else _migration_written(migrated) if migrated else None
            after = written if written is not None else self._stamped(merged.record)
            delta: Delta | None = None
            if base is not None and current is not None and is_current(base, current["head"]):
                # The client holds the version merged onto: the delta is this write's own changes.
                delta = delta_of(after["head"], base.version, after["variables"], changed_names(current, after) if written is not None else ())
            result = ApplyResult(snapshot_of(after), merged.applied, delta, migrated=migrated is not None)
            return Decision(Put(written) if written is not None else Keep(), result)

        # Backends hand decide records they parsed, so the snapshot shares nothing with storage.
        outcome = await self.backend.update(session_id, decide)
        self._report_set_aside(session_id, set_aside)
        return outcome

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
            record = self._stamped(_created(session_id, change, max_bytes, user_id, utc_now()))
            return Decision(Put(record), snapshot_of(record))

        return await self.backend.update(session_id, decide)

    async def adopt(self, session_id: str, user_id: str) -> Snapshot:
        """Makes ``user_id`` the owner of a session that has none (made before its user signed in).

        A session the user owns already is returned as it is; a missing one, or another user's, is
        ``not_found``. The version grows by one. The app's ``POST {base}/{id}/adopt`` calls it for
        the signed-in caller. A stale session is migrated in the same write (one version bump);
        one stored at a newer schema version is ``schema_mismatch``.
        """
        _check_session_id(session_id)
        if not isinstance(user_id, str) or not user_id:
            raise TypeError("adopt: user_id must be a non-empty string")
        set_aside: list[SetAside] = []

        def decide(stored: Record | None) -> Decision[Snapshot]:
            if stored is None or not may_reach(stored["head"], Caller(user_id)):
                raise no_such_session()
            now = utc_now()
            migrated = self._migrated(stored, set_aside)
            if stored["head"].get("userId") == user_id:
                if migrated is None:
                    return Decision(Keep(), snapshot_of(stored))  # nothing to change, at any schema version
                written = _migration_written(migrated)
                return Decision(Put(written), snapshot_of(written))
            self._refuse_newer(stored)
            current = migrated or stored
            head: SessionHead = {**current["head"], "userId": user_id, "version": current["head"]["version"] + 1, "updatedAt": iso_time(now)}
            record = self._stamped({**current, "head": head})
            return Decision(Put(record), snapshot_of(record))

        adopted = await self.backend.update(session_id, decide)
        self._report_set_aside(session_id, set_aside)
        return adopted

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
        page = await self.backend.list(user_id, limit, offset)
        # The page's stale sessions are migrated now, each in its own atomic step, and shown as they are then.
        shown: list[Summary] = []
        for listed in page:
            if not self._needs_migration(listed):
                shown.append(_summary_of_listed(listed))
                continue
            record, _ = await self._migrate_stored(listed["sessionId"], None)
            if record is not None:
                shown.append(summary_of(record["head"]))
        return shown

    def ids(self) -> AsyncIterator[str]:
        """Every session id, unpaged, in no particular order (for jobs: export, migration, audit)."""
        return self.backend.ids()

    async def migrate(self, session_id: str) -> bool:
        """Migrates the session to the store's schema version now, if it is stale (trusted); True when this call migrated it.

        What a read would do anyway, for a job that moves every session ahead of its readers
        (:func:`migrate_sessions`): one atomic write, one version bump; a session another server
        migrated first is left as it is (False).
        """
        _check_session_id(session_id)
        record = await self.backend.read(session_id)
        if record is None or not self._needs_migration(record["head"]):
            return False
        _, migrated = await self._migrate_stored(session_id, None)
        return migrated

    async def get_for_step(self, session_id: str, *, caller: Caller | None = None, schema_version: int | None = None) -> Snapshot | None:
        """The session a step call runs on, at the store's schema version; None when there is none (the step then runs on no variables).

        Checked as a write is: ``not_found`` for a session ``caller`` may not reach; then
        ``schema_mismatch`` for a session stored at a newer schema version, or for a
        ``schema_version`` (the caller's; None: the store's own) that is not the store's. A stale
        session is migrated first.
        """
        _check_session_id(session_id)
        _check_caller(caller)
        refused = self._refusal_of(schema_version, "A step call")
        record = await self.backend.read(session_id)
        if record is not None and not may_reach(record["head"], caller):
            raise no_such_session()
        self._refuse_newer(record)
        if refused is not None:
            raise refused
        if record is not None and self._needs_migration(record["head"]):
            record, _ = await self._migrate_stored(session_id, caller)
            if record is not None and not may_reach(record["head"], caller):  # adopted by another user meanwhile
                raise no_such_session()
        return snapshot_of(record) if record is not None else None

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
            if before is not None:
                self._refuse_newer_schema(schema_version_of(before))  # the edit reads and writes this server's shape
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

    # --- Runs (docs/protocol.md, "Runs"): each change of a record decided in the backend's atomic step ---

    async def start_run(
        self,
        session_id: str,
        run_id: str,
        step: str,
        input: JsonValue = None,
        *,
        caller: Caller | None = None,
        concurrent: Literal["join", "refuse"] = "join",
        lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS,
        alive: Container[str] = (),
        keep: int = KEEP_FINISHED_RUNS,
        schema_version: int | None = None,
    ) -> RunStart:
        """Writes a new ``running`` run in the session's atomic step, and returns what the step is to read.

        In that one step: the owner rule (``not_found``); ``schema_mismatch`` for a session
        stored at a newer schema version, or for a ``schema_version`` (the caller's; None: the
        store's own) that is not the store's; a stale session is migrated (one version bump); a
        stale ``running`` run ends ``lost`` first (but not those in ``alive``, the runs this
        server drives); a run with ``run_id`` answers as it is (not started: the step never runs
        twice for one id); a ``running`` run of the same step is joined (returned, not started)
        or, with ``concurrent="refuse"``, returned with ``conflict``; else a missing session is
        created (empty, version 1, owned by ``caller``), the run is written with the session's
        version as ``readVersion``, and the finished runs past the ``keep`` newest are dropped.
        The step itself is the caller's to run.
        """
        _check_session_id(session_id)
        _check_caller(caller)
        if not is_run_id(run_id):
            raise SessionProtocolError("invalid_run", "A run id is 8 to 128 characters of A-Z a-z 0-9 _ -")
        if concurrent not in ("join", "refuse"):
            raise ValueError('concurrent must be "join" or "refuse"')
        owner = caller.user_id if caller is not None else None
        refused = self._refusal_of(schema_version, "A run")
        set_aside: list[SetAside] = []

        def decide(stored: Record | None, runs: list[RunRecord]) -> RunsDecision[RunStart]:
            if stored is not None and not may_reach(stored["head"], caller):
                raise no_such_session()
            self._refuse_newer(stored)
            if refused is not None:
                raise refused
            now = utc_now()
            at = ms_of_datetime(now)  # the run starts when a session it creates is created
            migrated = self._migrated(stored, set_aside)
            current = _migration_written(migrated) if migrated is not None else stored
            write: Put | Keep = Put(current) if migrated is not None and current is not None else Keep()
            lost: list[RunRecord] = []
            settled: list[RunRecord] = []
            for run in runs:
                if is_stale(run, at, lost_after_ms) and run["runId"] not in alive:
                    run = ended(run, "lost", at, error=run_error("lost", LOST_MESSAGE))
                    lost.append(run)
                settled.append(run)
            wrote = bool(lost) or migrated is not None
            existing = next((run for run in settled if run["runId"] == run_id), None)
            if existing is not None:
                return RunsDecision(RunStart(existing, False, {}, wrote=wrote), write=write, runs=tuple(lost))
            running = next((run for run in settled if run["step"] == step and run["status"] == "running"), None)
            if running is not None:
                return RunsDecision(RunStart(running, False, {}, conflict=concurrent == "refuse", wrote=wrote), write=write, runs=tuple(lost))
            if current is None:
                current = self._stamped(_created(session_id, valid_change({}), None, owner, now))
                write = Put(current)
            run = new_run(run_id, step, input, current["head"]["version"], at)
            finished = [old for old in settled if old["status"] != "running"]  # newest first
            drop = tuple(old["runId"] for old in finished[keep:])
            return RunsDecision(RunStart(run, True, current["variables"], wrote=True), write=write, runs=(*lost, run), drop=drop)

        start = await self.backend.update_runs(session_id, decide)
        self._report_set_aside(session_id, set_aside)
        return start

    async def list_runs(
        self, session_id: str, *, caller: Caller | None = None, lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS, alive: Container[str] = ()
    ) -> builtins.list[RunRecord] | None:
        """The session's runs, newest ``startedAt`` first; None without the session (or when ``caller`` may not reach it).

        A stale ``running`` run (not in ``alive``) is ended ``lost`` in the store first, and answered so.
        """
        return await self._read_runs(session_id, None, caller, lost_after_ms, alive)

    async def get_run(
        self,
        session_id: str,
        run_id: str,
        *,
        caller: Caller | None = None,
        lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS,
        alive: Container[str] = (),
    ) -> RunRecord | None:
        """One run of the session, or None (no such run in this session, no session, or one ``caller`` may not reach).

        A stale ``running`` run (not in ``alive``) is ended ``lost`` in the store first, and answered so.
        """
        if not is_run_id(run_id):
            _check_session_id(session_id)
            return None
        runs = await self._read_runs(session_id, run_id, caller, lost_after_ms, alive)
        return runs[0] if runs else None

    async def _read_runs(
        self, session_id: str, run_id: str | None, caller: Caller | None, lost_after_ms: int, alive: Container[str]
    ) -> builtins.list[RunRecord] | None:
        _check_session_id(session_id)
        _check_caller(caller)
        head, runs = await self.backend.read_runs(session_id, run_id)
        if head is None or not may_reach(head, caller):
            return None
        at = now_ms()
        for index, run in enumerate(runs):
            if is_stale(run, at, lost_after_ms) and run["runId"] not in alive:
                runs[index] = await self.end_lost_run(session_id, run["runId"], lost_after_ms=lost_after_ms) or run
        return runs

    async def end_lost_run(self, session_id: str, run_id: str, *, lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS) -> RunRecord | None:
        """Ends a ``running`` run ``lost`` if its heartbeat is still older than ``lost_after_ms`` (decided in the atomic step); returns the run as it is."""

        def change(run: RunRecord) -> RunRecord | None:
            at = now_ms()
            return ended(run, "lost", at, error=run_error("lost", LOST_MESSAGE)) if is_stale(run, at, lost_after_ms) else None

        return await self._change_run(session_id, run_id, change)

    async def progress_run(self, session_id: str, run_id: str, progress: JsonValue) -> RunRecord | None:
        """Stores a running run's progress (one more ``rev``, its heartbeat renewed); returns the run as it is (None: no such run)."""
        return await self._change_run(session_id, run_id, lambda run: progressed(run, progress, now_ms()) if run["status"] == "running" else None)

    async def renew_run(self, session_id: str, run_id: str) -> RunRecord | None:
        """Renews a running run's heartbeat (no ``rev`` bump); returns the run as it is, so that its server sees a cancel or a loss."""
        return await self._change_run(session_id, run_id, lambda run: renewed(run, now_ms()) if run["status"] == "running" else None)

    async def cancel_run(self, session_id: str, run_id: str, *, caller: Caller | None = None, message: str | None = None) -> RunRecord | None:
        """Ends a ``running`` run ``cancelled``; a finished one is returned as it is. None: no such run (for ``caller``)."""
        if not is_run_id(run_id):
            _check_session_id(session_id)
            return None

        def change(run: RunRecord) -> RunRecord | None:
            if run["status"] != "running":
                return None
            return ended(run, "cancelled", now_ms(), error=run_error("cancelled", message or CANCELLED_MESSAGE))

        return await self._change_run(session_id, run_id, change, caller)

    async def _change_run(
        self, session_id: str, run_id: str, change: Callable[[RunRecord], RunRecord | None], caller: Caller | None = None
    ) -> RunRecord | None:
        _check_session_id(session_id)
        _check_caller(caller)

        def decide(head: SessionHead | None, run: RunRecord | None) -> tuple[RunRecord | None, RunRecord | None]:
            if head is None or run is None or not may_reach(head, caller):
                return None, None
            changed = change(run)
            return changed, changed or run

        return await self.backend.update_run(session_id, run_id, decide)

    async def finish_run(
        self,
        session_id: str,
        run_id: str,
        status: RunStatus,
        *,
        output: JsonValue = None,
        changes: Patch | ValidChange | None = None,
        error: RunError | None = None,
        progress: JsonValue | Unchanged = UNCHANGED,
        max_bytes: int | None = None,
    ) -> RunEnd:
        """Ends a ``running`` run with ``status``, in one atomic step, only if it is still ``running``.

        For ``succeeded``, the step's ``changes`` (``variables``, ``deleted``) are merged in that
        same step, as one change (one version bump when anything changed); changes that break a
        rule (a name, a value, the size) end it ``failed`` (``step_failed``) instead, and nothing
        is merged. A run that ended first (cancelled, timed out, lost) stays as it is and nothing
        is merged: ``ended`` is False.
        """
        _check_session_id(session_id)
        step_changes: ValidChange | None = None
        problem: SessionProtocolError | None = None
        if status == "succeeded":
            try:
                step_changes = _checked(changes or {})
            except SessionProtocolError as broken:
                if broken.code not in STEP_RESULT_PROBLEMS:
                    raise
                problem = broken
        set_aside: list[SetAside] = []

        def decide(stored: Record | None, runs: list[RunRecord]) -> RunsDecision[RunEnd]:
            run = runs[0] if runs else None
            if stored is None or run is None or run["status"] != "running":
                return RunsDecision(RunEnd(run, False))
            at, now = now_ms(), utc_now()
            broken = problem
            # A stale session is migrated in this write; the step's changes merge onto it with the one bump.
            migrated = self._migrated(stored, set_aside)
            alone: Put | Keep = Put(_migration_written(migrated)) if migrated is not None else Keep()
            if step_changes is not None:
                try:
                    self._refuse_newer(stored)  # this server's changes do not go into a newer shape
                    merged = merge_session(migrated or stored, session_id, step_changes, now, max_bytes=max_bytes)
                except SessionProtocolError as refused:
                    if refused.code not in STEP_RESULT_PROBLEMS and refused.code != "schema_mismatch":
                        raise
                    broken = refused
                else:
                    write = Put(self._stamped(merged.record)) if merged.applied else alone
                    after = write.record if isinstance(write, Put) else stored
                    done = ended(run, "succeeded", at, output=output, version=after["head"]["version"], progress=progress)
                    return RunsDecision(RunEnd(done, True, snapshot_of(after), merged.applied), write=write, runs=(done,))
            if broken is not None:
                message = f'Step "{run["step"]}" returned changes that cannot be stored: {broken.message}'
                failed = ended(run, "failed", at, error=run_error("step_failed", message), progress=progress)
                return RunsDecision(RunEnd(failed, True, problem=broken), write=alone, runs=(failed,))
            done = ended(run, status, at, error=error, output=output, progress=progress)
            return RunsDecision(RunEnd(done, True), write=alone, runs=(done,))

        end = await self.backend.update_runs(session_id, decide, run_id)
        self._report_set_aside(session_id, set_aside)
        return end

    def finish_before_close(self, work: asyncio.Future[Any]) -> None:
        """``close()`` waits (up to 10 s) for ``work`` first: a server's last writes, such as its runs ended at shutdown."""
        self._finishing.add(work)
        work.add_done_callback(self._finishing.discard)

    async def close(self) -> None:
        """Releases files and connections; waits for writes under way (and those handed to ``finish_before_close``)."""
        if self._finishing:
            await asyncio.wait(set(self._finishing), timeout=CLOSE_WAIT_SECONDS)
        await self.backend.close()

    async def __aenter__(self) -> SessionStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- Schema versions (docs/protocol.md, "Schema versions") ---

    def _needs_migration(self, session: Snapshot | SessionHead | Listed) -> bool:
        """Whether a session is stored at an older schema version than the store's (it is migrated before it is read or written)."""
        return schema_version_of(session) < self.schema_version

    def _migrated(self, record: Record | None, set_aside: builtins.list[SetAside]) -> Record | None:
        """``record`` with its variables made current, still at its version (a write bumps it once); None when it needs no migration.

        Called inside an atomic step, whose write then holds the migration: ``set_aside`` is
        filled with what the migration set aside, for :meth:`_report_set_aside` once the step
        wrote it.
        """
        if record is None or self.migrations is None or not self._needs_migration(record["head"]):
            return None
        migrated = self.migrations.migrate(record["variables"], record["head"].get("schemaVersion", 0))
        set_aside[:] = migrated.set_aside
        variables = migrated.variables
        head: SessionHead = {**record["head"], "bytes": json_bytes(variables), "schemaVersion": self.schema_version}
        return {"head": head, "variables": variables}

    def _migration(self, caller: Caller | None, set_aside: builtins.list[SetAside]) -> Callable[[Record | None], Decision[tuple[Record | None, bool]]]:
        """The atomic step that migrates a stale session ``caller`` may reach, alone: the record as it is after it, and whether it migrated.

        Inside the step the record is read again: a session another server migrated first is
        current, and left as it is (``set_aside`` stays empty).
        """

        def decide(stored: Record | None) -> Decision[tuple[Record | None, bool]]:
            migrated = self._migrated(stored, set_aside) if stored is not None and may_reach(stored["head"], caller) else None
            if migrated is None:
                return Decision(Keep(), (stored, False))
            written = _migration_written(migrated)
            return Decision(Put(written), (written, True))

        return decide

    async def _migrate_stored(self, session_id: str, caller: Caller | None) -> tuple[Record | None, bool]:
        """Migrates a stale session ``caller`` may reach, in an atomic step of its own, and reports what it set aside: the record after it, and whether this call migrated it."""
        set_aside: builtins.list[SetAside] = []
        record, migrated = await self.backend.update(session_id, self._migration(caller, set_aside))
        self._report_set_aside(session_id, set_aside)
        return record, migrated

    def _report_set_aside(self, session_id: str, set_aside: builtins.list[SetAside]) -> None:
        """Tells ``on_error`` of the values a migration this store wrote set aside (nothing is moved out of the way without a word).

        Called once the atomic step wrote the migration, so once per migration. What ``on_error``
        raises is logged: the request that read or wrote the session is answered as usual.
        """
        if not set_aside:
            return
        error = SetAsideError(session_id, self.schema_version, list(set_aside))
        try:
            self.on_error(error, session_id)
        except Exception:
            log.exception("workflow-session: on_error raised while it was told: %s", error)

    async def _read_current(self, session_id: str, caller: Caller | None) -> Record | None:
        """The stored session; migrated first (one atomic write) when it is stale and ``caller`` may reach it."""
        record = await self.backend.read(session_id)
        if record is None or not self._needs_migration(record["head"]) or not may_reach(record["head"], caller):
            return record
        migrated, _ = await self._migrate_stored(session_id, caller)
        return migrated

    def _stamped(self, record: Record) -> Record:
        """``record`` as the store writes it: its head at the store's schema version (or the newer one it is stored at)."""
        head = record["head"]
        schema_version = max(head.get("schemaVersion", 0), self.schema_version)
        if head.get("schemaVersion") == schema_version:
            return record
        return {**record, "head": {**head, "schemaVersion": schema_version}}

    def _refuse_newer(self, stored: Record | None) -> None:
        """``schema_mismatch`` for a session stored at a newer schema version than the store's: written by newer code, never changed here."""
        if stored is not None:
            self._refuse_newer_schema(schema_version_of(stored["head"]))

    def _refuse_newer_schema(self, stored_version: int) -> None:
        if stored_version > self.schema_version:
            raise schema_mismatch(
                f"The session is stored at schema version {stored_version}, newer than this server's ({self.schema_version}); it cannot be changed here",
                stored_version,
            )

    def _refusal_of(self, schema_version: int | None, what: str) -> SessionProtocolError | None:
        """The ``schema_mismatch`` for a run or a step call at ``schema_version`` (None: the store's own): a step reads and writes the store's shape only."""
        _check_schema_version(schema_version)
        if schema_version is None or schema_version == self.schema_version:
            return None
        return schema_mismatch(f"{what} of schema version {schema_version} cannot run on this server's ({self.schema_version}); update the page", self.schema_version)

    def _moved_change(self, change: ValidChange, schema_version: int | None) -> tuple[ValidChange, SessionProtocolError | None]:
        """``change``, written at ``schema_version`` (None: the store's own), moved to the store's; or the ``schema_mismatch`` to answer.

        The refusal is raised in the atomic step, after the owner rule, so that another caller's
        session is ``not_found`` first.
        """
        _check_schema_version(schema_version)
        if schema_version is None or schema_version == self.schema_version:
            return change, None
        if schema_version > self.schema_version or self.migrations is None:
            return change, schema_mismatch(
                f"The patch is of schema version {schema_version}, newer than this server's ({self.schema_version}); update the page",
                self.schema_version,
            )
        try:
            moved = self.migrations.migrate_patch({"variables": change.variables, "deleted": change.deleted}, schema_version)
        except MigrationError as error:
            return change, schema_mismatch(f"{error}; update the page", self.schema_version)
        return dataclasses.replace(change, variables=moved["variables"], deleted=moved["deleted"]), None


def _log_error(error: Exception, session_id: str) -> None:
    """The default ``on_error``: the error, logged at ERROR on the ``workflow_session`` logger."""
    log.error("workflow-session: %s", error)


def changed_names(before: Record | None, after: Record) -> builtins.list[str]:
    """The names a write changes: those set to a new value, then those deleted.

    The merge builds the new variables from the old ones, so a value it did not touch is the
    same object: identity tells what changed without comparing (``1 == True`` in Python). A name
    set to a value equal to its old one may be named too (a delta may hold more than changed).
    """
    old = before["variables"] if before is not None else {}
    new = after["variables"]
    names = [name for name, value in new.items() if name not in old or old[name] is not value]
    names += [name for name in old if name not in new]
    return names


def _created(session_id: str, change: ValidChange, max_bytes: int | None, owner: str | None, now: datetime) -> Record:
    """A new session's record: ``change`` merged into nothing, at version 1 even when it is empty (creating is a change of its own)."""
    merged = merge_session(None, session_id, change, now, max_bytes=max_bytes, owner=owner)
    record = merged.record
    if not merged.applied:
        record = {**record, "head": {**record["head"], "version": 1}}
    return record


def _migration_written(migrated: Record) -> Record:
    """A migration written on its own (no other change in its write): one version more.

    It changes no one's work: the session keeps its ``updatedAt`` (its place in listings, its
    time to live), as in the TypeScript stores.
    """
    head: SessionHead = {**migrated["head"], "version": migrated["head"]["version"] + 1}
    return {**migrated, "head": head}


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


def _check_schema_version(schema_version: object) -> None:
    """A caller's schema version is None (the store's own) or a whole number from 1 (a bool is not one)."""
    if schema_version is not None and (isinstance(schema_version, bool) or not isinstance(schema_version, int) or schema_version < 1):
        raise TypeError(f"schema_version must be None or a whole number from 1, got {schema_version!r}")


def _check_caller(caller: object) -> None:
    if caller is None:
        return
    user_id = getattr(caller, "user_id", 0)
    if not isinstance(caller, Caller) or not (user_id is None or (isinstance(user_id, str) and user_id != "")):
        raise TypeError('caller must be Caller("user-id") for a signed-in user or Caller(None) for an anonymous one')


@dataclass(frozen=True)
class MigrationProgress:
    """How far :func:`migrate_sessions` got: sessions gone over, and how many of them it migrated."""

    done: int
    migrated: int


#: Told after each session :func:`migrate_sessions` went over: ``(done, migrated)`` so far (sync or async).
ProgressListener = Callable[[int, int], "None | Awaitable[None]"]


async def migrate_sessions(store: SessionStore, on_progress: ProgressListener | None = None) -> MigrationProgress:
    """A job that migrates every stale session of ``store`` to its schema version now, rather than when each is next read.

    Goes over ``store.ids()`` and migrates each one that needs it (:meth:`SessionStore.migrate`:
    one atomic write each, so it may run while servers answer requests, and beside another
    run of itself). ``on_progress(done, migrated)`` is called after each session. Returns the
    totals.

    Example::

        store = open_store(url, migrations=migrations)
        result = await migrate_sessions(store, lambda done, migrated: print(f"{done} read, {migrated} migrated"))
    """
    done = migrated = 0
    async for session_id in store.ids():
        if await store.migrate(session_id):
            migrated += 1
        done += 1
        if on_progress is not None:
            told = on_progress(done, migrated)
            if inspect.isawaitable(told):
                await told
    return MigrationProgress(done, migrated)
