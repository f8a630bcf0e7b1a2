"""Session state for workflow apps: the server side of the session protocol (docs/protocol.md) in Python.

Example::

    from fastapi import FastAPI
    from workflow_session import StepContext, StepError, StepResult, create_session_app, open_store

    def register(ctx: StepContext) -> StepResult:
        signup = ctx.workflow("signup")
        email = signup.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise StepError("Enter a valid email address first")
        signup.set_step("registered")
        return StepResult(output={"ok": True})

    app = FastAPI()
    create_session_app(store=open_store("sqlite:.data/sessions.db"), steps={"register": register}).mount_on(app, "/api/session")
"""

from .app import SessionApp, create_session_app
from .deltas import SessionBase
from .errors import SessionProtocolError
from .merge import MAX_REMEMBERED_CLIENTS, ValidChange, merge_session, valid_change
from .migrations import SET_ASIDE_KEY, MigrationError, Migrations, SetAside, SetAsideValue, conformance_migrations, define_migrations
from .models import (
    Delta,
    ErrorBody,
    JsonInput,
    JsonValue,
    Patch,
    Record,
    RunAnswer,
    RunDelta,
    RunError,
    RunRecord,
    RunResponse,
    RunStatus,
    SessionHead,
    Snapshot,
    Summary,
)
from .steps import Step, StepContext, StepError, StepResult, StepResultDict, conformance_steps, timed_step
from .stores import (
    ApplyResult,
    Caller,
    MigrationProgress,
    SessionStore,
    SetAsideError,
    WorkflowState,
    memory_store,
    migrate_sessions,
    open_store,
    postgres_store,
    sqlite_store,
)
from .workflow import Workflow
from .workflow_keys import parse_workflow_key, workflow_data_key, workflow_slot_key

__all__ = [
    "MAX_REMEMBERED_CLIENTS",
    "SET_ASIDE_KEY",
    "ApplyResult",
    "Caller",
    "Delta",
    "ErrorBody",
    "JsonInput",
    "JsonValue",
    "MigrationError",
    "MigrationProgress",
    "Migrations",
    "Patch",
    "Record",
    "RunAnswer",
    "RunDelta",
    "RunError",
    "RunRecord",
    "RunResponse",
    "RunStatus",
    "SessionApp",
    "SessionBase",
    "SessionHead",
    "SessionProtocolError",
    "SessionStore",
    "SetAside",
    "SetAsideError",
    "SetAsideValue",
    "Snapshot",
    "Step",
    "StepContext",
    "StepError",
    "StepResult",
    "StepResultDict",
    "Summary",
    "ValidChange",
    "Workflow",
    "WorkflowState",
    "conformance_migrations",
    "conformance_steps",
    "create_session_app",
    "define_migrations",
    "memory_store",
    "merge_session",
    "migrate_sessions",
    "open_store",
    "parse_workflow_key",
    "postgres_store",
    "sqlite_store",
    "timed_step",
    "valid_change",
    "workflow_data_key",
    "workflow_slot_key",
]
