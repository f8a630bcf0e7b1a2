"""The protocol's errors: each code with its HTTP status (docs/protocol.md, "Errors")."""

from __future__ import annotations

#: The HTTP status of each error code; ``exists`` is the stores' own (``create`` on a taken id).
STATUS_OF: dict[str, int] = {
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_patch": 400,
    "invalid_key": 400,
    "invalid_session_id": 400,
    "invalid_run": 400,
    "unauthenticated": 401,
    "forbidden_origin": 403,
    "not_found": 404,
    "unknown_step": 404,
    "method_not_allowed": 405,
    "exists": 409,
    "run_in_progress": 409,
    "schema_mismatch": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "step_failed": 500,
    "internal_error": 500,
    "unavailable": 503,
}

#: Seconds a client should wait before retrying a ``503 unavailable``.
RETRY_AFTER_SECONDS = 1


class SessionProtocolError(Exception):
    """An error that carries its protocol response: ``{"error": {"code", "message"}}`` with the code's status.

    Stores and the app raise it; the app answers it. Its message is safe to show.
    """

    def __init__(self, code: str, message: str, allow: list[str] | None = None, *, schema_version: int | None = None) -> None:
        if code not in STATUS_OF:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_OF[code]
        #: With ``method_not_allowed``: the methods the resource has, for the ``Allow`` header.
        self.allow = allow
        #: With ``schema_mismatch``: the schema version the client must be at (the server's, or a newer session's).
        self.schema_version = schema_version

    def body(self) -> dict[str, dict[str, str | int]]:
        """``{"error": {"code", "message"}}``, and ``"schemaVersion"`` when the error carries one."""
        detail: dict[str, str | int] = {"code": self.code, "message": self.message}
        if self.schema_version is not None:
            detail["schemaVersion"] = self.schema_version
        return {"error": detail}


def schema_mismatch(message: str, schema_version: int) -> SessionProtocolError:
    """409 ``schema_mismatch`` (docs/protocol.md, "Schema versions"): the client must be at ``schema_version`` to be answered."""
    return SessionProtocolError("schema_mismatch", message, schema_version=schema_version)
