"""Schema versions and migrations of a session's variables (the same as the TypeScript package's ``defineMigrations``).

An app declares once how the shape of its variables changed, from version 1 up, as JSON: the
TypeScript client and this server read the same declaration, so both move old variables the same
way. Data steps are plain JSON; where data is not enough, a ``function`` step names a function
that each side registers under that name.

Example::

    migrations = define_migrations({
        "version": 3,
        "migrations": [
            {"to": 2, "steps": [{"op": "rename", "from": "address", "to": "shippingAddress"}]},
            {"to": 3, "steps": [{"op": "default", "name": "country", "value": "NL"}, {"op": "drop", "name": "legacyFlag"}]},
        ],
    })
    migrations.migrate({"address": "Main St 1"}, 1).variables  # → {"shippingAddress": "Main St 1", "country": "NL"}

With ``validate`` (the app's check of one variable's value), a migrated value the app refuses is
set aside, not kept under its name: it moves under the variable ``ws:setAside``
(:data:`SET_ASIDE_KEY`) with the check's message, and the result's ``set_aside`` names it::

    def validate(name: str, value: JsonValue) -> str | None:
        return "expected a number" if name == "age" and not isinstance(value, int) else None

    migrations = define_migrations(declaration, validate=validate)

The steps, as JSON (the op names are the declaration's, shared with TypeScript)::

    {"op": "rename", "from", "to"}                   the variable "from" is now called "to" (one already there is replaced)
    {"op": "default", "name", "value"}               a variable that is missing gets "value"
    {"op": "drop", "name"}                           the variable is no longer used: it is removed
    {"op": "intoWorkflow", "name", "workflow", "field"?}    a plain variable moves into the workflow's data (field: the same name)
    {"op": "outOfWorkflow", "workflow", "field", "name"?}   a workflow's data field moves out as a plain variable (name: the field's)
    {"op": "function", "name"}                       the function registered under "name" makes the new variables from the old
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from typing_extensions import TypedDict

from .models import JsonValue
from .workflow_keys import workflow_data_key

__all__ = [
    "Migration",
    "MigrationError",
    "MigrationFunction",
    "MigrationResult",
    "Migrations",
    "MigrationsDeclaration",
    "PatchChanges",
    "SET_ASIDE_KEY",
    "SetAside",
    "SetAsideValue",
    "Validate",
    "conformance_migrations",
    "define_migrations",
]

#: A ``function`` step's function: old variables in (a copy of its own), new variables out.
MigrationFunction = Callable[[dict[str, JsonValue]], Mapping[str, JsonValue]]

#: A step as JSON: ``{"op": …}`` and the fields its op reads (see the module's docstring).
MigrationStep = dict[str, JsonValue]

#: The app's check of one variable's value, ``validate(name, value)``: None when it is valid, else the problem (a message).
Validate = Callable[[str, JsonValue], str | None]

#: The variable where a migration keeps the values the app refuses once migrated, by name:
#: ``{name: {"value", "problem", "schemaVersion"}}`` (:class:`SetAsideValue`). Nothing is thrown
#: away: the value is out of the way of the new code, and the app can show it, fix it or drop it.
SET_ASIDE_KEY = "ws:setAside"

_OPS = frozenset({"rename", "default", "drop", "intoWorkflow", "outOfWorkflow", "function"})
#: The fields each step needs, as non-empty names (checked when the migrations are defined).
_NEEDS: dict[str, tuple[str, ...]] = {
    "rename": ("from", "to"),
    "default": ("name",),
    "drop": ("name",),
    "intoWorkflow": ("name", "workflow"),
    "outOfWorkflow": ("workflow", "field"),
    "function": ("name",),
}
#: ``Number.MAX_SAFE_INTEGER``: a version is a whole number JavaScript holds exactly, as on the TypeScript side.
_MAX_SAFE_INTEGER = 2**53 - 1
#: Where JavaScript would read ``undefined``: a key the JSON does not have.
_MISSING = object()


class Migration(TypedDict):
    """The steps that take the variables from version ``to - 1`` to ``to``."""

    to: int
    steps: list[MigrationStep]


class MigrationsDeclaration(TypedDict):
    """An app's schema: its current version, and the migrations from version 1 up to it, in order."""

    version: int
    migrations: list[Migration]


class PatchChanges(TypedDict):
    """A patch's changes, as :meth:`Migrations.migrate_patch` moves them."""

    variables: dict[str, JsonValue]
    deleted: list[str]


class SetAside(TypedDict):
    """A variable a migration set aside: its name, and the problem ``validate`` found with its value."""

    name: str
    problem: str


class SetAsideValue(TypedDict):
    """What :data:`SET_ASIDE_KEY` holds for one variable: its value, why it was set aside, and the schema version it was migrated to then."""

    value: JsonValue
    problem: str
    schemaVersion: int


class MigrationError(Exception):
    """Why a migration cannot be made: a declaration that is wrong, a version from the future, a patch a function would have to move."""


@dataclass(frozen=True)
class MigrationResult:
    """What :meth:`Migrations.migrate` returns: the current variables, the version they are of, and whether anything was done."""

    variables: dict[str, JsonValue]
    #: The current schema version (the declaration's).
    version: int
    #: False when there was nothing to do: no migration after the given version has a step, and nothing was set aside.
    changed: bool
    #: The variables set aside under :data:`SET_ASIDE_KEY` because ``validate`` refused their migrated value, in the variables' order.
    set_aside: list[SetAside] = field(default_factory=list)


def define_migrations(
    declaration: Mapping[str, object], functions: Mapping[str, MigrationFunction] | None = None, *, validate: Validate | None = None
) -> Migrations:
    """Checks a declaration and returns its migrations: versions from 2 up without a gap, every step known, every function given.

    ``declaration`` is the JSON the TypeScript side's ``defineMigrations`` takes; ``functions``
    are the functions its ``function`` steps name, by name. Raises :class:`MigrationError`, with
    the TypeScript side's message, for a declaration it refuses. The step's own fields are not
    checked here (nor there): a field a step needs and lacks raises when the step is applied.

    ``validate(name, value)``: the app's check of one variable's value (None: valid; a string:
    the problem), the TypeScript side's ``schema``. After a migration, the values it refuses are
    set aside under :data:`SET_ASIDE_KEY` rather than kept under their names.
    """
    functions = dict(functions or {})
    if validate is not None and not callable(validate):
        raise TypeError("validate must be a function: validate(name, value) -> None or the problem")
    if not isinstance(declaration, Mapping):
        raise MigrationError(f"a declaration is a JSON object, got {_shown(declaration)}")
    version, migrations = _whole(declaration.get("version", _MISSING)), declaration.get("migrations", _MISSING)
    if version is None or version < 1:
        raise MigrationError("version must be a whole number from 1")
    if not isinstance(migrations, (list, tuple)):
        raise MigrationError("migrations must be an array")
    if len(migrations) != version - 1:
        raise MigrationError(f"version {version} needs {version - 1} migrations (to 2 … {version}), got {len(migrations)}")
    for index, migration in enumerate(cast("list[object]", list(migrations))):
        to = migration.get("to", _MISSING) if isinstance(migration, Mapping) else _MISSING
        if _whole(to) != index + 2:
            raise MigrationError(f'migration {index + 1} must have "to": {index + 2}, got {_shown(to)}')
        steps = cast("Mapping[str, object]", migration).get("steps")
        if not isinstance(steps, (list, tuple)):
            raise MigrationError(f"migration to {index + 2}: steps must be an array")
        for step in cast("list[object]", list(steps)):
            op = step.get("op") if isinstance(step, Mapping) else None
            if not isinstance(op, str) or op not in _OPS:
                raise MigrationError(f"migration to {index + 2}: unknown step {_json(step)}")
            fields = cast("Mapping[str, object]", step)
            missing = next((key for key in _NEEDS[op] if not (isinstance(fields.get(key), str) and fields.get(key) != "")), None)
            if missing is not None:
                raise MigrationError(f'migration to {index + 2}: step {_json(step)} needs "{missing}" (a name)')
            if op == "default" and "value" not in fields:
                raise MigrationError(f'migration to {index + 2}: step {_json(step)} needs "value"')
            name = fields.get("name", _MISSING)
            if op == "function" and not (isinstance(name, str) and callable(functions.get(name))):
                raise MigrationError(f'migration to {index + 2}: no function named "{_shown(name)}" was given')
    try:
        # A copy, as JSON: what the caller changes afterwards changes nothing here.
        copied = cast("MigrationsDeclaration", json.loads(json.dumps(dict(declaration), allow_nan=False)))
    except (TypeError, ValueError) as error:
        raise MigrationError(f"a declaration is JSON: {error}") from None
    return Migrations(copied, functions, validate)


class Migrations:
    """An app's checked schema: its version, its declaration, and how old variables and patches are made current.

    Made by :func:`define_migrations`, which checks the declaration first.
    """

    def __init__(self, declaration: MigrationsDeclaration, functions: Mapping[str, MigrationFunction], validate: Validate | None = None) -> None:
        self._declaration = declaration
        self._functions = functions
        self._validate = validate
        # Checked as whole numbers: a 2.0 from JSON is the 2 JavaScript reads.
        self._version = int(declaration["version"])

    @property
    def version(self) -> int:
        """The current schema version."""
        return self._version

    @property
    def declaration(self) -> MigrationsDeclaration:
        """The declaration as JSON, for the other side (the TypeScript client reads the same); a copy of its own at each read."""
        return copy.deepcopy(self._declaration)

    def migrate(self, variables: Mapping[str, JsonValue], from_version: int) -> MigrationResult:
        """The variables of schema version ``from_version`` made current: each migration after it in turn.

        ``variables`` is not changed (the values are shared, not copied, except what a function
        step is given). ``changed`` is False when there was nothing to do. A version above the
        current one (written by newer code) raises a :class:`MigrationError`: old code must not
        guess at a newer shape. When a migration ran and ``validate`` was given, the values it
        refuses move under :data:`SET_ASIDE_KEY`, and ``set_aside`` names them.
        """
        pending = self._after(from_version)
        current = dict(variables)
        for migration in pending:
            for step in migration["steps"]:
                current = self._apply(current, step)
        set_aside: list[SetAside] = []
        if pending and self._validate is not None:
            current, set_aside = _set_aside_refused(current, self._validate, self._version)
        changed = bool(set_aside) or any(migration["steps"] for migration in pending)
        return MigrationResult(variables=current, version=self._version, changed=changed, set_aside=set_aside)

    def migrate_patch(self, changes: PatchChanges, from_version: int) -> PatchChanges:
        """A patch written against schema version ``from_version``, made current.

        Renamed and moved names follow their variable, dropped ones go, defaults do not apply (a
        patch sets only what it names). A ``function`` step cannot say where a patch's values go:
        a :class:`MigrationError`. ``changes`` is not changed.
        """
        current = PatchChanges(variables=dict(changes["variables"]), deleted=list(changes["deleted"]))
        for migration in self._after(from_version):
            for step in migration["steps"]:
                if step["op"] == "function":
                    raise MigrationError(
                        f'a patch of schema version {_shown(from_version)} cannot be moved by the function step "{_shown(step.get("name"))}"'
                    )
                current = _patch_step(current, step)
        return current

    def _after(self, from_version: object) -> list[Migration]:
        """The migrations a version ``from_version`` needs, in order; raises for a version that is not one, or is newer."""
        from_whole = _whole(from_version)
        if from_whole is None or from_whole < 0:
            raise MigrationError(f"a schema version is a whole number, got {_shown(from_version)}")
        if from_whole > self._version:
            raise MigrationError(f"schema version {from_whole} is newer than this code's ({self._version})")
        # Version 0: written before any schema was declared, the same shape as version 1.
        return [migration for migration in self._declaration["migrations"] if migration["to"] > max(from_whole, 1)]

    def _apply(self, variables: dict[str, JsonValue], step: MigrationStep) -> dict[str, JsonValue]:
        """The variables after one step (a new dict; ``variables`` is not changed)."""
        op = step["op"]
        if op == "function":
            return dict(self._functions[cast("str", step["name"])](copy.deepcopy(variables)))
        if op == "default":
            name = _text(step, "name")
            if name in variables:
                return variables
            if "value" not in step:
                raise MigrationError(f'the step {_json(step)} needs a "value"')
            # A copy: the declaration's value is not shared with the variables handed out.
            return {**variables, name: copy.deepcopy(step["value"])}
        moved_to = {name: _moved_name(name, step) for name in variables}
        # The names that stay, then the moved ones, in the TypeScript side's order: a variable that moves
        # onto a name in use replaces what was there, and comes last with the other moved ones.
        landings = {to for name, to in moved_to.items() if to is not None and to != name}
        moved = {name: value for name, value in variables.items() if moved_to[name] == name and name not in landings}
        for name, value in variables.items():
            to = moved_to[name]
            if to is not None and to != name:
                moved[to] = value
        return moved


def _set_aside_refused(variables: dict[str, JsonValue], validate: Validate, version: int) -> tuple[dict[str, JsonValue], list[SetAside]]:
    """The variables without the values ``validate`` refuses, which move under :data:`SET_ASIDE_KEY` beside what earlier migrations set aside; and their names.

    A name set aside again replaces its earlier entry; ``variables`` is returned as it is when
    nothing is refused (an earlier ``ws:setAside`` that is not an object is replaced).
    """
    refused: list[SetAside] = []
    kept: dict[str, JsonValue] = {}
    earlier = variables.get(SET_ASIDE_KEY)
    aside: dict[str, JsonValue] = dict(earlier) if isinstance(earlier, dict) else {}
    for name, value in variables.items():
        problem = None if name == SET_ASIDE_KEY else _problem_of(validate, name, value)
        if problem is None:
            kept[name] = value
        else:
            refused.append(SetAside(name=name, problem=problem))
            aside[name] = cast(JsonValue, SetAsideValue(value=value, problem=problem, schemaVersion=version))
    if not refused:
        return variables, refused
    return {**kept, SET_ASIDE_KEY: aside}, refused


def _problem_of(validate: Validate, name: str, value: JsonValue) -> str | None:
    """What ``validate`` says of one value: None when it is valid, else its message; anything else it answers is a TypeError."""
    problem = validate(name, value)
    if problem is not None and not isinstance(problem, str):
        raise TypeError(f'validate("{name}", …) must return None (valid) or the problem as a string, got {problem!r}')
    return problem


def _patch_step(changes: PatchChanges, step: MigrationStep) -> PatchChanges:
    """A patch's changes after one step: set and deleted names follow their variable; defaults do not apply."""
    if step["op"] in ("default", "function"):
        return changes
    variables: dict[str, JsonValue] = {}
    moved = {name: _moved_name(name, step) for name in changes["variables"]}
    # A name a moved variable lands on held, in the patch's version, the variable the move replaced:
    # what the patch says of it is not sent (nor deleted), as `migrate` drops that variable.
    landing = _landing_of(step)
    # The names that stay first, then the moved ones: a moved value wins, as in `migrate`.
    for name, value in changes["variables"].items():
        if moved[name] == name and name != landing:
            variables[name] = value
    for name, value in changes["variables"].items():
        to = moved[name]
        if to is not None and to != name:
            variables[to] = value
    # Each name once, in order; a name the patch also sets is not deleted.
    kept = (name for name in changes["deleted"] if name != landing or _moved_name(name, step) != name)
    deleted = dict.fromkeys(to for to in (_moved_name(name, step) for name in kept) if to is not None)
    return PatchChanges(variables=variables, deleted=[name for name in deleted if name not in variables])


def _landing_of(step: MigrationStep) -> str | None:
    """The name a step moves a variable onto (replacing what was there), if it moves one."""
    op = step["op"]
    if op == "rename":
        return _text(step, "to")
    if op == "intoWorkflow":
        name = _text(step, "name")
        return workflow_data_key(_text(step, "workflow"), _text(step, "field", default=name))
    if op == "outOfWorkflow":
        field = _text(step, "field")
        return _text(step, "name", default=field)
    return None


def _moved_name(name: str, step: MigrationStep) -> str | None:
    """Where a step moves a variable's name: its new name, None when it is dropped, or the name itself."""
    op = step["op"]
    if op == "rename":
        return _text(step, "to") if name == step.get("from") else name
    if op == "drop":
        return None if name == step.get("name") else name
    if op == "intoWorkflow":
        return workflow_data_key(_text(step, "workflow"), _text(step, "field", default=name)) if name == step.get("name") else name
    if op == "outOfWorkflow":
        field = _text(step, "field")
        return _text(step, "name", default=field) if name == workflow_data_key(_text(step, "workflow"), field) else name
    return name


def _text(step: MigrationStep, key: str, default: str | None = None) -> str:
    """A step's string field; ``default`` when it is missing or null (as ``??`` reads it), else a :class:`MigrationError`.

    The TypeScript side's types make these strings; from JSON it would write a name with
    ``undefined`` in it. Here such a step raises when it is applied.
    """
    value = step.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise MigrationError(f'the step {_json(step)} needs "{key}" as a string')
    return value


def _whole(value: object) -> int | None:
    """``value`` as a whole number when ``Number.isSafeInteger`` takes it (a bool is not one; ``2.0`` is ``2``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INTEGER else None
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return int(value)
    return None


def _shown(value: object) -> str:
    """``value`` in a message as JavaScript's ``String()`` shows it, so that both sides' messages read the same."""
    if value is _MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return _json(value)


def _json(value: object) -> str:
    """``JSON.stringify(value)``: compact, non-ASCII as it is (what is not JSON, as its ``str``)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


#: The conformance schema (docs/protocol.md, "Schema versions"): version 2, whose one migration
#: renames ``conformance_v1`` to ``conformance_v2``. ``workflow-session conformance`` checks
#: schema versions against a backend that declares it while it is tested:
#: ``open_store(url, migrations=conformance_migrations)`` (``python -m workflow_session.serve
#: --conformance`` does). Declare it only while testing, as the conformance step.
conformance_migrations = define_migrations(
    {"version": 2, "migrations": [{"to": 2, "steps": [{"op": "rename", "from": "conformance_v1", "to": "conformance_v2"}]}]}
)
