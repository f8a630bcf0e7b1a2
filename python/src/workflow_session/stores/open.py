"""Opens the store a URL names: how a deployment picks its store from configuration."""

from __future__ import annotations

from typing import Any

from .base import SessionStore


def open_store(url: str, **options: Any) -> SessionStore:
    """The store ``url`` names, like the TypeScript ``openStore``.

    ============================  ==========================================================
    ``memory:``                   :func:`~workflow_session.stores.memory.memory_store`
    ``sqlite:PATH``               :func:`~workflow_session.stores.sqlite.sqlite_store` at PATH
                                  (relative to the working directory, or absolute;
                                  ``sqlite::memory:`` for a private in-memory database)
    ``postgres://…``              :func:`~workflow_session.stores.postgres.postgres_store`
    ============================  ==========================================================

    ``options`` go to the store (``busy_timeout=``, ``table=``, ...).

    Example::

        store = open_store(os.environ.get("SESSION_STORE", "sqlite:.data/sessions.db"))
    """
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower() if colon else ""
    if scheme == "memory":
        from .memory import memory_store

        return memory_store(**options)
    if scheme == "sqlite":
        from .sqlite import sqlite_store

        path = rest[2:] if rest.startswith("///") else rest
        if not path:
            raise ValueError(f'open_store: "{url}" names no path, e.g. sqlite:.data/sessions.db')
        return sqlite_store(path, **options)
    if scheme in ("postgres", "postgresql"):
        from .postgres import postgres_store

        return postgres_store(url, **options)
    raise ValueError(f'open_store: cannot open "{url}". Use memory:, sqlite:PATH (for example sqlite:.data/sessions.db) or postgres://…')
