"""Where sessions live: memory, SQLite (the default) and PostgreSQL, all on one store layer."""

from ..migrations import Migrations
from .base import (
    ApplyResult,
    Backend,
    Caller,
    Changes,
    Decision,
    ErrorListener,
    Keep,
    Listed,
    MigrationProgress,
    Put,
    Remove,
    RunEnd,
    RunsDecision,
    RunStart,
    SessionStore,
    SetAsideError,
    WorkflowState,
    may_reach,
    migrate_sessions,
)
from .memory import memory_store
from .open import open_store
from .sqlite import sqlite_store

__all__ = [
    "ApplyResult",
    "Backend",
    "Caller",
    "Changes",
    "Decision",
    "ErrorListener",
    "Keep",
    "Listed",
    "MigrationProgress",
    "Put",
    "Remove",
    "RunEnd",
    "RunStart",
    "RunsDecision",
    "SessionStore",
    "SetAsideError",
    "WorkflowState",
    "may_reach",
    "memory_store",
    "migrate_sessions",
    "open_store",
    "postgres_store",
    "sqlite_store",
]


def postgres_store(
    url: str,
    *,
    table: str = "workflow_sessions",
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    migrations: Migrations | None = None,
    on_error: ErrorListener | None = None,
) -> SessionStore:
    """Sessions in PostgreSQL; see :func:`workflow_session.stores.postgres.postgres_store` (needs psycopg)."""
    from .postgres import postgres_store as open_postgres

    return open_postgres(url, table=table, pool_size=pool_size, connect_timeout=connect_timeout, migrations=migrations, on_error=on_error)
