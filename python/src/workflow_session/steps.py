"""Workflow steps: plain Python functions, sync or async, that the app runs on the stored variables."""

from __future__ import annotations

import asyncio
import copy
import inspect
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
    """

    def __init__(self, session_id: str, variables: Mapping[str, JsonValue], input: JsonValue, user_id: str | None, draft: Draft) -> None:
        #: The session the step runs on.
        self.session_id: str = session_id
        self._variables = MappingProxyType(copy.deepcopy(dict(variables)))
        #: The run's input (any JSON), or None.
        self.input: JsonValue = input
        #: The caller, when the app has ``authorize``.
        self.user_id: str | None = user_id
        self._draft = draft

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
#: ``def`` and an ``async def`` in one dict, needs no annotation.
Step = TypeAliasType("Step", Callable[[StepContext[_StepVars]], object], type_params=(_StepVars,))


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
) -> StepOutcome:
    """Runs ``step`` and returns ``{"output", "variables", "deleted"}`` with what it changed through ``workflow(id)``.

    A sync step runs in a worker thread (as Starlette runs sync endpoints), so it may block.
    Raises ``step_failed`` when the step raises or returns something unusable.
    """
    draft = Draft(variables)
    context: StepContext[Any] = StepContext(session_id, variables, input, user_id, draft)
    try:
        result: object
        if _is_async(step):
            result = await cast("Awaitable[object]", step(context))
        else:
            result = await asyncio.to_thread(step, context)
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


def _conformance_echo(ctx: StepContext[Mapping[str, object]]) -> StepResult:
    # Reads the variables as any mapping, so that it sits in one dict with any app's steps.
    if isinstance(ctx.input, dict):
        fail = ctx.input.get("fail")
        if isinstance(fail, str):
            raise StepError(fail)
    seen = cast("dict[str, JsonValue]", dict(ctx.variables))  # stored variables are JSON
    return StepResult(output={"input": ctx.input, "seen": seen}, variables={"conformance_echo": ctx.input})


#: The protocol's conformance step (docs/protocol.md, "The conformance step"), for
#: ``workflow-session conformance`` to check the step path. Register it only while testing: it
#: echoes the variables it is given. ``create_session_app(steps={**steps, **conformance_steps})``.
conformance_steps: dict[str, Step[Mapping[str, object]]] = {"conformance_echo": _conformance_echo}
