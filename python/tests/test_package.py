"""The tests run against the package as a user installs it (`pip install ./python`), not the source folder."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import workflow_session

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())


def test_the_installed_package_is_tested() -> None:
    assert "site-packages" in workflow_session.__file__
    assert importlib.metadata.version("workflow-session") == PYPROJECT["project"]["version"]


def test_its_dependencies_are_declared_with_postgres_optional() -> None:
    requires = importlib.metadata.requires("workflow-session") or []
    plain = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("starlette") for r in plain) and not any("psycopg" in r for r in plain)
    assert any("psycopg" in r and 'extra == "postgres"' in r for r in requires)
