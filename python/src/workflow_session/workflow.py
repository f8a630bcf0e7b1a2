"""One workflow's part of a session: its data fields, current step and subflow stack.

The same members as the TypeScript client's ``useWorkflow`` view, in Python style; each field
is its own session variable (see :mod:`workflow_session.workflow_keys`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, TypedDict, cast

from .models import JsonInput, JsonValue
from .workflow_keys import WorkflowSlot, parse_workflow_key, workflow_data_key, workflow_prefix, workflow_slot_key


class VariableAccess(Protocol):
    """Read and write session variables by name: what a workflow view needs."""

    def get(self, name: str) -> JsonValue: ...
    def has(self, name: str) -> bool: ...
    def set(self, name: str, value: JsonInput) -> None: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> Iterable[str]: ...


class Changes(TypedDict):
    """What was changed through a :class:`Draft`, as a patch."""

    variables: dict[str, JsonValue]
    deleted: list[str]


class _Missing:
    """What a :class:`Draft` records for a deleted variable."""


_MISSING = _Missing()


class Draft:
    """A working copy of a session's variables that records what was changed through it.

    What a step's ``workflow(id)`` and the store's ``update_workflow`` write to, before one merge.
    """

    def __init__(self, variables: Mapping[str, JsonValue]) -> None:
        self._current: dict[str, JsonValue] = copy.deepcopy(dict(variables))
        self._changed: dict[str, JsonValue | _Missing] = {}

    def get(self, name: str) -> JsonValue:
        return self._current.get(name)

    def has(self, name: str) -> bool:
        return name in self._current

    def set(self, name: str, value: JsonInput) -> None:
        # Kept as given: the store checks that it is JSON when the changes are applied, and refuses them if not.
        stored = cast(JsonValue, value)
        self._current[name] = stored
        self._changed[name] = stored

    def delete(self, name: str) -> None:
        self._current.pop(name, None)
        self._changed[name] = _MISSING

    def names(self) -> Iterator[str]:
        return iter(list(self._current))

    def __len__(self) -> int:
        """How many variables were changed."""
        return len(self._changed)

    def changes(self) -> Changes:
        """The changes as a patch: ``variables`` set, ``deleted`` removed."""
        sets = {name: value for name, value in self._changed.items() if not isinstance(value, _Missing)}
        deletes = [name for name, value in self._changed.items() if isinstance(value, _Missing)]
        return {"variables": sets, "deleted": deletes}


class Workflow:
    """A workflow scope over a session's variables.

    Example::

        checkout = ctx.workflow("checkout")
        checkout.set("address", {"city": "Paris"})
        checkout.set_step("payment")
        checkout.enter_subflow("3ds", "challenge", {"amount": 42})
        checkout.exit_subflow("confirm")  # back in checkout, at step "confirm"
    """

    def __init__(self, access: VariableAccess, workflow_id: str) -> None:
        self._access = access
        self.id = workflow_id

    def _slot(self, name: WorkflowSlot) -> str:
        return workflow_slot_key(self.id, name)

    def get(self, key: str, default: JsonValue = None) -> JsonValue:
        """A data field, or ``default`` when it is not set."""
        value = self._access.get(workflow_data_key(self.id, key))
        return default if value is None and not self.has(key) else value

    def set(self, key: str, value: JsonInput) -> None:
        self._access.set(workflow_data_key(self.id, key), value)

    def has(self, key: str) -> bool:
        return self._access.has(workflow_data_key(self.id, key))

    def delete(self, key: str) -> None:
        self._access.delete(workflow_data_key(self.id, key))

    def clear(self) -> None:
        """Removes every field, the step and the subflow stack of this workflow; other workflows stay."""
        prefix, at = workflow_prefix(self.id), self._slot("at")
        for name in list(self._access.names()):
            if name.startswith(prefix) and name != at:
                self._access.delete(name)

    def get_all(self) -> dict[str, JsonValue]:
        """This workflow's data fields."""
        fields: dict[str, JsonValue] = {}
        for name in list(self._access.names()):
            parsed = parse_workflow_key(name)
            if parsed and parsed.field is not None and parsed.workflow_id == self.id:
                fields[parsed.field] = self._access.get(name)
        return fields

    @property
    def step(self) -> str | None:
        """The current step of the current flow, or None."""
        value = self._access.get(self._slot("step"))
        return value if isinstance(value, str) else None

    def set_step(self, step: str) -> None:
        self._access.set(self._slot("step"), step)

    @property
    def flow(self) -> str:
        """The flow the workflow is in now: its own id, or the subflow it entered."""
        value = self._access.get(self._slot("flow"))
        return value if isinstance(value, str) else self.id

    @property
    def stack(self) -> list[dict[str, JsonValue]]:
        """The parent flows, outermost first: ``{"flow", "step", "params"}`` each (a copy)."""
        value = self._access.get(self._slot("stack"))
        # Written by enter_subflow only: a list of such dicts.
        return cast("list[dict[str, JsonValue]]", copy.deepcopy(value)) if isinstance(value, list) else []

    @property
    def params(self) -> JsonValue:
        """The params the current subflow was entered with (None at the top level)."""
        return self._access.get(self._slot("params"))

    def enter_subflow(self, flow: str, step: str, params: JsonInput = None) -> None:
        """Saves where this flow is, then moves into ``flow`` at ``step``."""
        frame: dict[str, JsonValue] = {"flow": self.flow, "step": self.step, "params": self.params}
        self._access.set(self._slot("stack"), [*self.stack, frame])
        self._access.set(self._slot("flow"), flow)
        self._access.set(self._slot("step"), step)
        self._access.set(self._slot("params"), params)

    def exit_subflow(self, return_step: str) -> None:
        """Leaves the current subflow: back in the parent flow, at ``return_step``. Raises at the top level."""
        frames = self.stack
        if not frames:
            raise ValueError(f'Workflow "{self.id}" is not in a subflow: nothing to exit')
        parent = frames.pop()
        if frames:
            self._access.set(self._slot("stack"), frames)
        else:
            self._access.delete(self._slot("stack"))
        if parent.get("flow") == self.id:
            self._access.delete(self._slot("flow"))
        else:
            self._access.set(self._slot("flow"), parent.get("flow"))
        self._access.set(self._slot("step"), return_step)
        if parent.get("params") is None:
            self._access.delete(self._slot("params"))
        else:
            self._access.set(self._slot("params"), parent.get("params"))

    @property
    def last_modified(self) -> str | None:
        """When the server last recorded a change of this workflow (ISO time), or None."""
        value = self._access.get(self._slot("at"))
        return value if isinstance(value, str) else None


class ReadOnlyAccess:
    """Variable access over a snapshot's variables that refuses writes (``get_workflow``)."""

    def __init__(self, variables: Mapping[str, JsonValue]) -> None:
        self._variables = variables

    def get(self, name: str) -> JsonValue:
        return self._variables.get(name)

    def has(self, name: str) -> bool:
        return name in self._variables

    def set(self, name: str, value: JsonInput) -> None:
        raise TypeError("get_workflow reads only: change a workflow with update_workflow()")

    def delete(self, name: str) -> None:
        raise TypeError("get_workflow reads only: change a workflow with update_workflow()")

    def names(self) -> Iterable[str]:
        return list(self._variables)
