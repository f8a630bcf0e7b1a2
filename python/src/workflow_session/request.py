"""Reading a request: its path under the mount, its JSON body (with the protocol's limits), its run input and query."""

from __future__ import annotations

import re
from contextlib import aclosing
from enum import Enum
from typing import Final, Literal

from starlette.requests import ClientDisconnect, Request
from starlette.types import Scope

from .deltas import SESSION_BASE_HEADER, SessionBase, parse_session_base, parse_tag
from .errors import SessionProtocolError
from .models import JsonValue
from .rules import MAX_SEQ, parse_json
from .runs import is_run_id


class _NoBody(Enum):
    NO_BODY = "NO_BODY"

    def __repr__(self) -> str:
        return "NO_BODY"


#: What ``read_json_body`` returns for an empty body.
NO_BODY: Final = _NoBody.NO_BODY


def route_path(scope: Scope) -> str:
    """The path below the app's mount point (``root_path``), whichever way the server or router passes it."""
    path: str = scope.get("path", "") or ""
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _too_large(max_bytes: int) -> SessionProtocolError:
    return SessionProtocolError("too_large", f"The body is larger than {max_bytes} bytes")


async def read_json_body(request: Request, max_bytes: int, *, empty_needs_no_type: bool = False) -> JsonValue | Literal[_NoBody.NO_BODY]:
    """Reads a JSON body: 415 unless ``application/json``, 413 past ``max_bytes``, 400 ``invalid_json``.

    The size is counted while reading, so an oversized body is never buffered whole. An empty
    body reads as :data:`NO_BODY`; with ``empty_needs_no_type`` (a run, an adoption) it may come
    without a content type, but not with another one: a cross-site HTML form always sends one, so
    it can never run a step or adopt a session.
    """
    given_type = request.headers.get("content-type")
    content_type = (given_type or "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if content_type != "application/json":
        may_be_empty = empty_needs_no_type and given_type is None and (declared is None or declared.strip() == "0")
        # Read no more than the first chunk: any byte at all makes it a body of the wrong type.
        if not may_be_empty or await _has_bytes(request):
            raise SessionProtocolError("unsupported_media_type", "Send the body as application/json")
        return NO_BODY
    try:
        if declared is not None and float(declared) > max_bytes:
            raise _too_large(max_bytes)
    except ValueError:
        pass
    chunks: list[bytes] = []
    size = 0
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                chunks.append(chunk)
    except ClientDisconnect:
        # A body that stops midway (the client went) is the request's fault, not the server's.
        raise SessionProtocolError("bad_request", "The request body ended before it was complete") from None
    # As a browser's TextDecoder: a leading BOM is dropped, bytes that are not UTF-8 become U+FFFD.
    text = b"".join(chunks).decode("utf-8-sig", errors="replace")
    if text.strip() == "":
        return NO_BODY
    try:
        return parse_json(text)
    except RecursionError:
        raise SessionProtocolError("invalid_patch", "The body nests deeper than any value may (64 levels)") from None
    except ValueError:
        raise SessionProtocolError("invalid_json", "The body is not valid JSON") from None


async def _has_bytes(request: Request) -> bool:
    """Whether the body has a byte at all, reading up to its first chunk that has one (a client that went has none)."""
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                if chunk:
                    return True
    except ClientDisconnect:
        return False
    return False


def first_query_value(request: Request, name: str, *, blank: bool = True) -> str | None:
    """The first ``?name=`` value of the query, or None; with ``blank=False`` an empty value counts as none."""
    return next((value for key, value in request.query_params.multi_items() if key == name and (blank or value != "")), None)


def parse_run_input(body: JsonValue | Literal[_NoBody.NO_BODY]) -> JsonValue:
    """A run body: empty, or ``{"input": any JSON}``. Returns the input (None when there is none)."""
    if body is NO_BODY:
        return None
    if not isinstance(body, dict):
        raise SessionProtocolError("invalid_patch", 'The run body must be a JSON object: { "input": … }')
    return body.get("input")


def parse_run_start(body: JsonValue | Literal[_NoBody.NO_BODY]) -> tuple[str, str, JsonValue]:
    """A run start's body: ``{"runId", "step", "input"?}``; returns them (input None when there is none), else 400 ``invalid_run``."""
    if not isinstance(body, dict):
        raise SessionProtocolError("invalid_run", 'The body must be a JSON object: { "runId", "step", "input"? }')
    run_id, step = body.get("runId"), body.get("step")
    if not isinstance(run_id, str) or not is_run_id(run_id):
        raise SessionProtocolError("invalid_run", '"runId" must be 8 to 128 characters of A-Z a-z 0-9 _ -')
    if not isinstance(step, str):
        raise SessionProtocolError("invalid_run", '"step" must be the name of a step')
    return run_id, step, body.get("input")


def parse_schema_version(body: JsonValue | Literal[_NoBody.NO_BODY], code: str) -> int:
    """The client's schema version in a body (docs/protocol.md, "Schema versions"): 1 when it has none.

    A whole number from 1 to 2^53 - 1 (``2`` and ``2.0`` are good; ``"2"``, ``1.5``, ``0``,
    ``true``, ``null`` are 400 ``code``: ``invalid_patch`` for a patch and a step call,
    ``invalid_run`` for a run start).
    """
    if not isinstance(body, dict) or "schemaVersion" not in body:
        return 1
    value = body["schemaVersion"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()) or not 1 <= value <= MAX_SEQ:
        raise SessionProtocolError(code, '"schemaVersion" must be a whole number from 1 to 2^53 - 1')
    return int(value)


_WHOLE_NUMBER = re.compile(r"[0-9]+")


def whole_number_query(request: Request, name: str, high: int) -> int | None:
    """``?name=``: a whole number from 0 to ``high``, or None when absent; anything else is 400 ``bad_request``."""
    text = first_query_value(request, name)
    if text is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) > high:
        raise SessionProtocolError("bad_request", f'"{name}" must be a whole number from 0 to {high}')
    return int(text)


def page_of(request: Request) -> tuple[int, int]:
    """A listing page from ``?limit=`` (1-100, default 50) and ``?offset=`` (default 0); else 400 ``bad_request``."""

    def number(name: str, fallback: int, low: int, high: int) -> int:
        text = first_query_value(request, name)
        if text is None:
            return fallback
        if not _WHOLE_NUMBER.fullmatch(text) or not low <= int(text) <= high:
            raise SessionProtocolError("bad_request", f'"{name}" must be a whole number from {low} to {high}')
        return int(text)

    return number("limit", 50, 1, 100), number("offset", 0, 0, 2**53 - 1)


def session_base_of(request: Request) -> SessionBase | None:
    """The version the client holds (the ``Session-Base`` header, docs/protocol.md "Deltas"): None without it; else 400 ``bad_request`` unless ``0`` or a tag."""
    return parse_session_base(request.headers.get(SESSION_BASE_HEADER))


def feed_start_of(last_event_id: str | None, session_base: SessionBase | None, since: str | None) -> tuple[int, SessionBase | None]:
    """Where a change feed starts: ``(version, None)`` streams snapshots newer than that version (as before deltas);
    ``(0, base)`` streams deltas from what the client holds.

    The client's version comes from ``Last-Event-ID`` (an EventSource's reconnect) first, then
    ``Session-Base``, then ``?since=``. A tag there, or ``Session-Base: 0``, streams deltas; a
    plain version number (``Last-Event-ID: 7``, as before) streams snapshots. ``Last-Event-ID``
    and ``since`` must each be a whole number (at most 15 digits) or a tag: anything else is 400
    ``bad_request``.
    """
    given: list[SessionBase | None] = [_version_or_tag(last_event_id), session_base, _version_or_tag(since)]
    chosen = next((base for base in given if base is not None), None)
    if chosen is None:
        return 0, None
    if chosen.created_at or chosen is session_base:
        return 0, chosen
    return chosen.version, None


def _version_or_tag(text: str | None) -> SessionBase | None:
    """``Last-Event-ID`` or ``?since=``: a version (of no known lineage) or a tag; None when absent; else 400 ``bad_request``."""
    if text is None:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 15:
        return SessionBase(int(text), "")
    tagged = parse_tag(text)
    if tagged is None:
        raise SessionProtocolError("bad_request", "Last-Event-ID and since must be a version (a whole number) or a tag (version@createdAt)")
    return tagged
