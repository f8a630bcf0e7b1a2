"""Workflow steps: plain Python functions, sync or async, that the app runs on the stored variables."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, cast

from typing_extensions import TypeAliasType, TypedDict, TypeVar

from .errors import SessionProtocolError
from .models import JsonInput, JsonValue
from .rules import json_value_problem
from .workflow import Draft, Workflow

#: The variables a step reads: by default any names, each a JSON value; an app that declares
#: its variables as a ``TypedDict`` (``total=False``: a session may lack any of them) passes it,
#: ``StepContext[SignupVars]``, and a type checker then knows each name and its type.
Vars = TypeVar("Vars", bound=Mapping[str, object], default=Mapping[str, JsonValue], covariant=True)
#: The variables a step sets: by default any names, each any JSON; with an app's ``TypedDict``,
#: ``StepResult[SignupVars]``, only its names, each of its type.
SetVars = TypeVar("SetVars", bound=Mapping[str, object], default=Mapping[str, JsonInput])
_StepVars = TypeVar("_StepVars", bound=Mapping[str, object], default=Mapping[str, JsonValue])


class StepError(Exception):
    """Raise it from a step to show its message to the caller (500 ``step_failed``).

    Any other exception is reported to ``on_error`` and answered with a generic message, so no
    internals leak.

    Example::

        def pay(ctx: StepContext) -> StepResult:
            if "card" not in ctx.variables:
                raise StepError("Add a card first")
            return StepResult(output={"paid": True})
    """


@dataclass
class StepResult(Generic[SetVars]):
    """What a step may return (a dict with the same keys works too).

    ``StepResult[SignupVars]`` checks ``variables`` against an app's ``TypedDict``.
    """

    #: Any JSON, for the caller (None: ``null``).
    output: JsonInput = None
    #: Variables to set, merged atomically with the run.
    variables: SetVars | None = None
    #: Variables to delete.
    deleted: list[str] | None = None


class StepContext(Generic[Vars]):
    """What a step is given.

    ``StepContext`` reads any variable as a JSON value; ``StepContext[SignupVars]`` reads them as
    an app's ``TypedDict`` declares them, so that a misspelled name is a type checker's error.

    In a durable run (``POST {base}/{id}/runs``) a step also has ``run_id``, reports progress with
    ``progress(value)`` and learns of a cancel, a time limit or a shutdown: an ``async def`` step
    by its task being cancelled (``asyncio.CancelledError`` at its next ``await``), a ``def``
    step, which runs in a thread of its own, by ``cancelled`` (a ``threading.Event``: check
    ``ctx.cancelled.is_set()``, or wait on it). A step that does not stop runs on, but nothing it
    returns is merged. In ``POST {base}/{id}/run/{step}``, ``run_id`` is None, ``progress`` does
    nothing and ``cancelled`` is never set.
    """

    def __init__(
        self,
        session_id: str,
        variables: Mapping[str, JsonValue],
        input: JsonValue,
        user_id: str | None,
        draft: Draft,
        *,
        run_id: str | None = None,
        progress: Callable[[JsonValue], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        #: The session the step runs on.
        self.session_id: str = session_id
        self._variables = MappingProxyType(copy.deepcopy(dict(variables)))
        #: The run's input (any JSON), or None.
        self.input: JsonValue = input
        #: The caller, when the app has ``authorize``.
        self.user_id: str | None = user_id
        #: The durable run's id, or None in ``POST {base}/{id}/run/{step}``.
        self.run_id: str | None = run_id
        #: Set when the run was cancelled, timed out or its server is stopping: a ``def`` step should stop.
        self.cancelled: threading.Event = cancelled if cancelled is not None else threading.Event()
        self._progress = progress
        self._draft = draft

    def progress(self, value: JsonInput) -> None:
        """Reports progress (any JSON within a variable's limits; ValueError otherwise), from a ``def`` or an ``async def`` step.

        The run's ``progress`` becomes ``value``. Call it as often as you like: the server writes
        at most 4 updates a second (the latest value wins, the last one is kept at the end).
        Outside a durable run it does nothing.
        """
        if self._progress is not None:
            self._progress(cast(JsonValue, value))

    @property
    def variables(self) -> Vars:
        """The stored variables when the run began: a read-only mapping over a copy (writing to it raises TypeError)."""
        # Which names and types the session holds is the app's declaration (the type parameter);
        # the store checks only that they are JSON.
        return cast(Vars, self._variables)

    def workflow(self, workflow_id: str) -> Workflow:
        """One workflow's view, as the client's ``useWorkflow``: what the step changes through it is merged too."""
        return Workflow(self._draft, workflow_id)


class StepResultDict(TypedDict, total=False):
    """A step's result as a dict: the keys of :class:`StepResult`."""

    output: JsonInput
    variables: Mapping[str, JsonInput]
    deleted: list[str]


#: A step: ``def step(ctx: StepContext) -> StepResult`` or ``async def``, returning a
#: :class:`StepResult`, a dict with its keys or None; ``Step[SignupVars]`` for steps that read an
#: app's ``TypedDict``. What a step returns is checked when it runs (500 ``step_failed`` when
#: unusable), so any return type is taken here: ``{"register": register, "quote": quote}``, a
#: ``def`` and an ``async def`` in one dict, needs no annotation; nor does a :func:`timed_step`.
Step = TypeAliasType("Step", Callable[[StepContext[_StepVars]], object], type_params=(_StepVars,))


#: Where :func:`timed_step` keeps a step's own time limit (on the function it returns).
_TIMEOUT_ATTRIBUTE = "__workflow_session_timeout_ms__"


def timed_step(step: Step[_StepVars], *, timeout_ms: int) -> Step[_StepVars]:
    """``step`` with a time limit of its own for durable runs: ``steps={"summarize": timed_step(summarize, timeout_ms=120_000)}``.

    Past ``timeout_ms`` (from the start of the run), the run ends ``timed_out``, the step is
    cancelled (see :class:`StepContext`) and nothing it returns is merged. Steps registered as
    plain functions have the app's limit (``run_timeout_ms``, 15 minutes unless configured).

    It returns a step like any other (``async def`` when ``step`` is one), so it sits in one dict
    with plain functions without an annotation, and ``POST {base}/{id}/run/{step}`` runs it as it
    is (no limit there).
    """
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
        raise ValueError(f"timed_step: timeout_ms must be a positive whole number of milliseconds, got {timeout_ms!r}")
    timed: Step[_StepVars]
    if _is_async(step):

        @functools.wraps(step)
        async def timed_async(ctx: StepContext[_StepVars]) -> object:
            return await cast("Awaitable[object]", step(ctx))

        timed = timed_async
    else:

        @functools.wraps(step)
        def timed_sync(ctx: StepContext[_StepVars]) -> object:
            return step(ctx)

        timed = timed_sync
    setattr(timed, _TIMEOUT_ATTRIBUTE, timeout_ms)
    return timed


def step_timeout_ms(step: object) -> int | None:
    """A step's own time limit (from :func:`timed_step`), or None for the app's."""
    limit = getattr(step, _TIMEOUT_ATTRIBUTE, None)
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


class StepOutcome(TypedDict):
    """What a run stores and answers: the step's result merged with its changes through ``workflow(id)``."""

    output: JsonValue
    variables: dict[str, JsonValue]
    deleted: list[str]


async def run_step(
    step: Step[Any],
    *,
    session_id: str,
    variables: Mapping[str, JsonValue],
    input: JsonValue,
    user_id: str | None,
    report: Callable[[BaseException], None],
    run_id: str | None = None,
    progress: Callable[[JsonValue], None] | None = None,
    cancelled: threading.Event | None = None,
) -> StepOutcome:
    """Runs ``step`` and returns ``{"output", "variables", "deleted"}`` with what it changed through ``workflow(id)``.

    A sync step runs in a worker thread (as Starlette runs sync endpoints), so it may block; in a
    durable run (``run_id``), in a thread of its own, which a step that ignores ``cancelled`` may
    keep as long as it likes without holding up the loop's default executor or its shutdown.
    Raises ``step_failed`` when the step raises or returns something unusable.
    """
    draft = Draft(variables)
    context: StepContext[Any] = StepContext(
        session_id, variables, input, user_id, draft, run_id=run_id, progress=progress, cancelled=cancelled
    )
    try:
        result: object
        if _is_async(step):
            result = await cast("Awaitable[object]", step(context))
        else:
            result = await (_in_own_thread(step, context) if run_id is not None else asyncio.to_thread(step, context))
            if inspect.isawaitable(result):
                result = await result
    except Exception as error:
        report(error)
        raise SessionProtocolError("step_failed", str(error) if isinstance(error, StepError) else "The step failed") from error
    outcome, problem = _result_of(result)
    if problem:
        report(ValueError(f"Step returned an unusable result: {problem}"))
        raise SessionProtocolError("step_failed", f"The step returned an unusable result: {problem}")
    return _with_draft_changes(outcome, draft)


def _is_async(step: object) -> bool:
    return inspect.iscoroutinefunction(step) or inspect.iscoroutinefunction(getattr(step, "__call__", None))


def _in_own_thread(step: Step[Any], context: StepContext[Any]) -> asyncio.Future[object]:
    """Calls ``step(context)`` in a new daemon thread; its result or error settles the returned future (unless it was cancelled)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()
    copied = contextvars.copy_context()

    def settle(result: object, error: BaseException | None) -> None:
        if future.done():  # cancelled: nobody waits for it
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def main() -> None:
        result: object = None
        error: BaseException | None = None
        try:
            result = copied.run(step, context)
        except Exception as raised:  # handed to the loop, where the run reports it
            error = raised
        except BaseException as raised:  # SystemExit, KeyboardInterrupt: a failure of the step, not of the loop
            error = RuntimeError(f"The step raised {type(raised).__name__}")
            error.__cause__ = raised
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the run ended long ago
            pass

    threading.Thread(target=main, name=f"workflow-session run {context.run_id}", daemon=True).start()
    return future


def _result_of(result: object) -> tuple[StepOutcome | None, str | None]:
    if result is None:
        return None, None
    if isinstance(result, StepResult):
        result = {"output": result.output, "variables": result.variables, "deleted": result.deleted}
    if not isinstance(result, Mapping):
        return None, f"a {type(result).__name__}, not a StepResult or a dict"
    fields = cast("Mapping[str, object]", result)
    output, variables, deleted = fields.get("output"), fields.get("variables"), fields.get("deleted")
    problem = json_value_problem(output)
    if problem:
        return None, f"output: {problem}"
    if variables is not None and not isinstance(variables, dict):
        return None, '"variables" is not a dict'
    if deleted is not None and not (isinstance(deleted, list) and all(isinstance(name, str) for name in cast("list[object]", deleted))):
        return None, '"deleted" is not a list of strings'
    # The output is JSON (checked above); the variables' names and values are checked by the
    # store when the run's changes are applied, which refuses the whole run when one is not.
    return {
        "output": cast(JsonValue, output),
        "variables": cast("dict[str, JsonValue]", variables or {}),
        "deleted": cast("list[str]", deleted or []),
    }, None


def _with_draft_changes(result: StepOutcome | None, draft: Draft) -> StepOutcome:
    """The step's own result wins over what it did through ``workflow(id)``."""
    if not result:
        result = {"output": None, "variables": {}, "deleted": []}
    if len(draft) == 0:
        return result
    changes = draft.changes()
    own = result["variables"]
    return {
        "output": result["output"],
        "variables": {**changes["variables"], **own},
        "deleted": [*(name for name in changes["deleted"] if name not in own), *result["deleted"]],
    }


#: The longest ``{"sleepMs": n}`` the conformance step sleeps, in milliseconds.
_CONFORMANCE_MAX_SLEEP_MS = 60_000
#: How often the sleeping conformance step reports progress, in seconds.
_CONFORMANCE_PROGRESS_SECONDS = 0.1


async def _conformance_echo(ctx: StepContext[Mapping[str, object]]) -> StepResult:
    # Reads the variables as any mapping, so that it sits in one dict with any app's steps.
    if isinstance(ctx.input, dict):
        fail = ctx.input.get("fail")
        if isinstance(fail, str):
            raise StepError(fail)
        sleep_ms = ctx.input.get("sleepMs")
        if isinstance(sleep_ms, (int, float)) and not isinstance(sleep_ms, bool):
            # As a run: progress {"slept": ms} about every 100 ms, until the time is up or the run
            # is cancelled (its task is cancelled at the sleep below; ``cancelled`` is checked
            # too). In ``POST {base}/{id}/run/{step}`` progress does nothing: it only sleeps.
            loop = asyncio.get_running_loop()
            started = loop.time()
            until = min(float(sleep_ms), _CONFORMANCE_MAX_SLEEP_MS) / 1000
            while (slept := loop.time() - started) < until and not ctx.cancelled.is_set():
                ctx.progress({"slept": round(slept * 1000)})
                await asyncio.sleep(min(_CONFORMANCE_PROGRESS_SECONDS, until - slept))
            if ctx.cancelled.is_set():
                return StepResult()  # the run ended: nothing it returns is merged anyway
    seen = cast("dict[str, JsonValue]", dict(ctx.variables))  # stored variables are JSON
    return StepResult(output={"input": ctx.input, "seen": seen}, variables={"conformance_echo": ctx.input})


#: The protocol's conformance step (docs/protocol.md, "The conformance step"), for
#: ``workflow-session conformance`` to check the step path and runs: ``{"fail": message}`` fails,
#: ``{"sleepMs": n}`` (at most 60000) first sleeps n ms reporting progress ``{"slept": ms}`` about
#: every 100 ms (stopping at once when its run is cancelled), and it returns ``{"input", "seen"}``
#: and sets ``conformance_echo``. Register it only while testing: it echoes the variables it is
#: given. ``create_session_app(steps={**steps, **conformance_steps})``.
conformance_steps: dict[str, Step[Mapping[str, object]]] = {"conformance_echo": _conformance_echo}
