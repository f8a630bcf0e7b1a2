"""The tests run against the package as a user installs it: the wheel `python -m build` made in python/dist (scripts/test-env.sh)."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import tarfile
import tomllib
from pathlib import Path

import workflow_session

PYTHON_DIR = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((PYTHON_DIR / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
DIST = PYTHON_DIR / "dist"


def test_the_installed_package_is_the_built_wheel() -> None:
    assert "site-packages" in workflow_session.__file__
    distribution = importlib.metadata.distribution("workflow-session")
    assert distribution.version == VERSION
    # pip records where an install came from: the wheel file in python/dist, not the source folder.
    origin = json.loads(distribution.read_text("direct_url.json") or "{}")
    assert "archive_info" in origin and origin["url"].endswith(f"/python/dist/workflow_session-{VERSION}-py3-none-any.whl"), origin
    # Typed: the marker that makes type checkers read the package's annotations is installed.
    assert (Path(workflow_session.__file__).parent / "py.typed").is_file()


def test_the_metadata_names_the_python_versions_and_what_it_is() -> None:
    metadata = importlib.metadata.metadata("workflow-session")
    classifiers = metadata.get_all("Classifier") or []
    for classifier in [
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
        "Framework :: AsyncIO",
    ]:
        assert classifier in classifiers
    # The Python that runs these tests is one the package says it supports.
    assert f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}" in classifiers
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"


def test_its_dependencies_are_declared_with_postgres_and_serve_optional() -> None:
    requires = importlib.metadata.requires("workflow-session") or []
    plain = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("starlette") for r in plain) and not any("psycopg" in r or "uvicorn" in r for r in plain)
    assert any("psycopg" in r and 'extra == "postgres"' in r for r in requires)
    assert any(r.startswith("uvicorn") and 'extra == "serve"' in r for r in requires)


def test_the_sdist_beside_the_wheel_holds_the_package() -> None:
    with tarfile.open(DIST / f"workflow_session-{VERSION}.tar.gz") as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "PKG-INFO", "src/workflow_session/__init__.py", "src/workflow_session/py.typed"} <= names
    assert not any(name.startswith("tests/") for name in names)
