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

from workflow_session.migrations import MigrationError, MigrationFunction, MigrationResult, define_migrations

CASES = json.loads((Path(__file__).resolve().parents[2] / "test" / "protocol" / "migrations-cases.json").read_text(encoding="utf-8"))


def split_name(variables: dict[str, Any]) -> dict[str, Any]:
    """``"name": "Ada Lovelace"`` → ``"firstName": "Ada", "lastName": "Lovelace"``, ``name`` gone (the TypeScript test's ``splitName``)."""
    rest = dict(variables)
    first_name, *last = str(rest.pop("name", None)).split(" ")
    return {**rest, "firstName": first_name, "lastName": " ".join(last)}


#: The test functions both languages register under the same names.
FUNCTIONS: dict[str, MigrationFunction] = {"splitName": split_name}


def assert_same_json(actual: Any, expected: Any) -> None:
    assert actual == expected
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["name"] for case in CASES["cases"]])
def test_a_shared_case(case: dict[str, Any]) -> None:
    migrations = define_migrations(case["declaration"], FUNCTIONS)
    before = copy.deepcopy(case["variables"])
    migrated = migrations.migrate(case["variables"], case["from"])
    assert migrated == MigrationResult(variables=case["expected"], version=case["declaration"]["version"], changed=not case.get("unchanged"))
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
