"""Schema migrations: the cases both languages run (test/protocol/migrations.test.ts reads the same file), one declaration, the same results.

Values are compared as canonical JSON too, as the TypeScript test's ``toEqual`` does (``1`` and
``true`` are not the same value there, though ``1 == True`` in Python).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from workflow_session.migrations import SET_ASIDE_KEY, MigrationError, MigrationFunction, MigrationResult, Validate, define_migrations

CASES = json.loads((Path(__file__).resolve().parents[2] / "test" / "protocol" / "migrations-cases.json").read_text(encoding="utf-8"))


def split_name(variables: dict[str, Any]) -> dict[str, Any]:
    """``"name": "Ada Lovelace"`` → ``"firstName": "Ada", "lastName": "Lovelace"``, ``name`` gone (the TypeScript test's ``splitName``)."""
    rest = dict(variables)
    first_name, *last = str(rest.pop("name", None)).split(" ")
    return {**rest, "firstName": first_name, "lastName": " ".join(last)}


#: The test functions both languages register under the same names.
FUNCTIONS: dict[str, MigrationFunction] = {"splitName": split_name}


#: A case's ``types``: the JSON type a named variable must have, as the check of each Python value.
TYPE_CHECKS = {
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "string": lambda value: isinstance(value, str),
}


def validate_of(types: dict[str, str]) -> Validate:
    """The app's check a case's ``types`` declare (the TypeScript test's ``schemaOf``): a value of another type is refused with ``expected a <type>``."""

    def validate(name: str, value: Any) -> str | None:
        expected = types.get(name)
        return f"expected a {expected}" if expected is not None and not TYPE_CHECKS[expected](value) else None

    return validate


def assert_same_json(actual: Any, expected: Any) -> None:
    assert actual == expected
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["name"] for case in CASES["cases"]])
def test_a_shared_case(case: dict[str, Any]) -> None:
    migrations = define_migrations(case["declaration"], FUNCTIONS, validate=validate_of(case["types"]) if "types" in case else None)
    before = copy.deepcopy(case["variables"])
    migrated = migrations.migrate(case["variables"], case["from"])
    expected = MigrationResult(
        variables=case["expected"],
        version=case["declaration"]["version"],
        changed=not case.get("unchanged"),
        set_aside=case.get("expectedSetAside", []),
    )
    assert migrated == expected
    assert migrated.set_aside == case.get("expectedSetAside", [])
    assert_same_json(migrated.variables, case["expected"])
    assert_same_json(case["variables"], before)  # the variables given are not changed
    for more in case.get("also", []):
        assert_same_json(migrations.migrate(more["variables"], more["from"]).variables, more["expected"])
    patch_before = copy.deepcopy(case["patch"])
    if "patchError" in case:
        with pytest.raises(MigrationError, match=re.escape(case["patchError"])):
            migrations.migrate_patch(case["patch"], case["from"])
    else:
        assert_same_json(migrations.migrate_patch(case["patch"], case["from"]), case["expectedPatch"])
    assert_same_json(case["patch"], patch_before)  # nor is the patch


@pytest.mark.parametrize("refused", CASES["refused"], ids=[refused["name"] for refused in CASES["refused"]])
def test_refuses_with_a_migration_error(refused: dict[str, Any]) -> None:
    with pytest.raises(MigrationError, match=re.escape(refused["error"])):
        define_migrations(refused["declaration"], FUNCTIONS).migrate({}, refused.get("from", 1))


def test_gives_the_declaration_back_as_json_a_copy_the_caller_cannot_change_afterwards() -> None:
    declaration: dict[str, Any] = {"version": 2, "migrations": [{"to": 2, "steps": [{"op": "drop", "name": "x"}]}]}
    migrations = define_migrations(declaration)
    declaration["migrations"][0]["steps"].append({"op": "drop", "name": "y"})
    assert migrations.declaration == {"version": 2, "migrations": [{"to": 2, "steps": [{"op": "drop", "name": "x"}]}]}
    assert migrations.migrate({"x": 1, "y": 2}, 1).variables == {"y": 2}
    assert json.loads(json.dumps(migrations.declaration)) == migrations.declaration
    # Nor through what it gives back: each read is a copy of its own.
    migrations.declaration["migrations"][0]["steps"].clear()
    assert migrations.migrate({"x": 1, "y": 2}, 1).variables == {"y": 2}


def test_a_type_check_of_the_cases_refuses_what_json_would_not_call_that_type() -> None:
    validate = validate_of({"age": "number", "email": "string"})
    assert [validate("age", value) for value in (41, 4.5, True, "41", None)] == [None, None, "expected a number", "expected a number", "expected a number"]
    assert [validate("email", value) for value in ("a@b.c", 7)] == [None, "expected a string"]
    assert validate("other", True) is None


def refuse_negative(name: str, value: Any) -> str | None:
    """The app's check of these tests: a negative ``age`` is refused."""
    return "must not be negative" if name == "age" and isinstance(value, int) and value < 0 else None


RENAME_TO_2: dict[str, Any] = {"version": 2, "migrations": [{"to": 2, "steps": [{"op": "rename", "from": "years", "to": "age"}]}]}


def test_sets_aside_only_when_a_migration_ran() -> None:
    migrations = define_migrations(RENAME_TO_2, validate=refuse_negative)
    # Current already: nothing is checked, nothing set aside, even a value the check refuses.
    current = migrations.migrate({"age": -1}, 2)
    assert current == MigrationResult(variables={"age": -1}, version=2, changed=False, set_aside=[])
    migrated = migrations.migrate({"years": -1, "name": "Ada"}, 1)
    assert migrated.variables == {"name": "Ada", SET_ASIDE_KEY: {"age": {"value": -1, "problem": "must not be negative", "schemaVersion": 2}}}
    assert migrated.set_aside == [{"name": "age", "problem": "must not be negative"}] and migrated.changed


def test_a_migration_with_empty_steps_that_sets_aside_is_a_change() -> None:
    migrations = define_migrations({"version": 2, "migrations": [{"to": 2, "steps": []}]}, validate=refuse_negative)
    assert not migrations.migrate({"age": 3}, 1).changed
    refused = migrations.migrate({"age": -3}, 1)
    assert refused.changed and refused.set_aside == [{"name": "age", "problem": "must not be negative"}]


def test_a_name_set_aside_again_replaces_its_earlier_entry_and_ws_set_aside_itself_is_never_checked() -> None:
    checked: list[str] = []

    def validate(name: str, value: Any) -> str | None:
        checked.append(name)
        return refuse_negative(name, value)

    migrations = define_migrations(RENAME_TO_2, validate=validate)
    earlier = {"age": {"value": "old", "problem": "was a string", "schemaVersion": 1}, "nick": {"value": 7, "problem": "p", "schemaVersion": 1}}
    given = {SET_ASIDE_KEY: earlier, "years": -2}
    before = copy.deepcopy(given)
    migrated = migrations.migrate(given, 1)
    assert migrated.variables == {
        SET_ASIDE_KEY: {"age": {"value": -2, "problem": "must not be negative", "schemaVersion": 2}, "nick": {"value": 7, "problem": "p", "schemaVersion": 1}}
    }
    assert checked == ["age"]  # not ws:setAside
    assert_same_json(given, before)  # the earlier entries are not changed in place


def test_a_check_that_answers_neither_none_nor_a_message_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="validate"):
        define_migrations(RENAME_TO_2, validate="not a function")  # type: ignore[arg-type]
    migrations = define_migrations(RENAME_TO_2, validate=lambda name, value: False)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match='validate\\("age", …\\) must return None'):
        migrations.migrate({"years": 1}, 1)
