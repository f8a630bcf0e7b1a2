"""Workflow steps: plain Python functions, sync or async, that the app runs on the stored variables."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union

from .errors import SessionProtocolError
from .rules import json_value_problem
from .workflow import Draft, Workflow


class StepError(Exception):
    """Raise it from a step to show its message to the caller (500 ``step_failed``).

    Any other exception is reported to ``on_error`` and answered with a generic message, so no
    internals leak.

    Example::

        def pay(ctx):
            if "card" not in ctx.variables:
                raise StepError("Add a card first")
    """


@dataclass
class StepResult:
    """What a step may return (a dict with the same keys works too)."""

    #: Any JSON, for the caller (None: ``null``).
    output: Any = None
    #: Variables to set, merged atomically with the run.
    variables: dict[str, Any] | None = None
    #: Variables to delete.
    deleted: list[str] | None = None


class StepContext:
    """What a step is given."""

    def __init__(self, session_id: str, variables: Mapping[str, Any], input: Any, user_id: str | None, draft: Draft) -> None:
        self.session_id = session_id
        #: The stored variables when the run began: a read-only mapping over a copy.
        self.variables: Mapping[str, Any] = MappingProxyType(copy.deepcopy(dict(variables)))
        #: The run's input (any JSON), or None.
        self.input = input
        #: The caller, when the app has ``authorize``.
        self.user_id = user_id
        self._draft = draft

    def workflow(self, workflow_id: str) -> Workflow:
        """One workflow's view, as the client's ``useWorkflow``: what the step changes through it is merged too."""
        return Workflow(self._draft, workflow_id)


StepReturn = Union[StepResult, Mapping[str, Any], None]
#: A step: ``def step(ctx: StepContext) -> StepResult | dict | None`` (or ``async def``).
Step = Callable[[StepContext], Union[StepReturn, Awaitable[StepReturn]]]


async def run_step(
    step: Step,
    *,
    session_id: str,
    variables: Mapping[str, Any],
    input: Any,
    user_id: str | None,
    report: Callable[[BaseException], None],
) -> dict[str, Any]:
    """Runs ``step`` and returns ``{"output", "variables", "deleted"}`` with what it changed through ``workflow(id)``.

    A sync step runs in a worker thread (as Starlette runs sync endpoints), so it may block.
    Raises ``step_failed`` when the step raises or returns something unusable.
    """
    draft = Draft(variables)
    context = StepContext(session_id, variables, input, user_id, draft)
    try:
        if _is_async(step):
            result: Any = await step(context)  # type: ignore[misc]
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


def _result_of(result: object) -> tuple[dict[str, Any], str | None]:
    if result is None:
        return {}, None
    if isinstance(result, StepResult):
        result = {"output": result.output, "variables": result.variables, "deleted": result.deleted}
    if not isinstance(result, Mapping):
        return {}, f"a {type(result).__name__}, not a StepResult or a dict"
    output, variables, deleted = result.get("output"), result.get("variables"), result.get("deleted")
    problem = json_value_problem(output)
    if problem:
        return {}, f"output: {problem}"
    if variables is not None and not isinstance(variables, dict):
        return {}, '"variables" is not a dict'
    if deleted is not None and not (isinstance(deleted, list) and all(isinstance(name, str) for name in deleted)):
        return {}, '"deleted" is not a list of strings'
    return {"output": output, "variables": variables or {}, "deleted": deleted or []}, None


def _with_draft_changes(result: dict[str, Any], draft: Draft) -> dict[str, Any]:
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


def _conformance_echo(ctx: StepContext) -> StepResult:
    if isinstance(ctx.input, dict) and isinstance(ctx.input.get("fail"), str):
        raise StepError(ctx.input["fail"])
    return StepResult(output={"input": ctx.input, "seen": dict(ctx.variables)}, variables={"conformance_echo": ctx.input})


#: The protocol's conformance step (docs/protocol.md, "The conformance step"), for
#: ``workflow-session conformance`` to check the step path. Register it only while testing: it
#: echoes the variables it is given. ``create_session_app(steps={**steps, **conformance_steps})``.
conformance_steps: dict[str, Step] = {"conformance_echo": _conformance_echo}
