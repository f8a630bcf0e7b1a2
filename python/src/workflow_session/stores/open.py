"""Opens the store a URL names: how a deployment picks its store from configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from typing_extensions import TypedDict, Unpack

from ..migrations import Migrations
from .base import ErrorListener, SessionStore


class StoreOptions(TypedDict, total=False):
    """The options ``open_store`` passes on; each store takes its own (another's raises TypeError)."""

    #: SQLite: ``"full"`` (default) or ``"normal"``.
    synchronous: Literal["full", "normal"]
    #: SQLite: seconds a write waits for another process's write (5.0).
    busy_timeout: float
    #: PostgreSQL: the sessions table (``"workflow_sessions"``).
    table: str
    #: PostgreSQL: most connections in the pool (10).
    pool_size: int
    #: PostgreSQL: seconds to wait for a connection (5.0).
    connect_timeout: float
    #: Every store: the app's schema (``define_migrations(…)``); sessions stored at an older version are migrated when read.
    migrations: Migrations | None
    #: Every store: told of the values a migration set aside (a ``SetAsideError``); default: logged.
    on_error: ErrorListener | None


def open_store(url: str, **options: Unpack[StoreOptions]) -> SessionStore:
    """The store ``url`` names, like the TypeScript ``openStore``.

    ============================  ==========================================================
    ``memory:``                   :func:`~workflow_session.stores.memory.memory_store`
    ``sqlite:PATH``               :func:`~workflow_session.stores.sqlite.sqlite_store` at PATH
                                  (relative to the working directory, or absolute;
                                  ``sqlite::memory:`` for a private in-memory database)
    ``postgres://…``              :func:`~workflow_session.stores.postgres.postgres_store`
    ============================  ==========================================================

    ``options`` go to the store (``busy_timeout=``, ``table=``, ``migrations=``, ``on_error=``, ...).

    Example::

        store = open_store(os.environ.get("SESSION_STORE", "sqlite:.data/sessions.db"))
    """
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower() if colon else ""
    if scheme == "memory":
        from .memory import memory_store

        return _made(memory_store, options)
    if scheme == "sqlite":
        from .sqlite import sqlite_store

        path = rest[2:] if rest.startswith("///") else rest
        if not path:
            raise ValueError(f'open_store: "{url}" names no path, e.g. sqlite:.data/sessions.db')
        return _made(sqlite_store, options, path)
    if scheme in ("postgres", "postgresql"):
        from .postgres import postgres_store

        return _made(postgres_store, options, url)
    raise ValueError(f'open_store: cannot open "{url}". Use memory:, sqlite:PATH (for example sqlite:.data/sessions.db) or postgres://…')


def _made(make: Callable[..., SessionStore], options: Mapping[str, object], *args: str) -> SessionStore:
    """The store ``make`` makes with the options as given: one it does not take raises TypeError, as calling it would."""
    return make(*args, **options)
