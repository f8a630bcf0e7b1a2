"""The protocol's rules for session ids, variable names and values (shared by the app and the stores)."""

from __future__ import annotations

import json
import math
import re
from typing import NoReturn, cast

from .models import JsonValue

#: Session ids the server accepts.
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
#: Longest variable name, in code points.
MAX_KEY_LENGTH = 256
#: Longest ``clientId`` and ``workflowId``, in code points.
MAX_NAME_LENGTH = 128
#: Names that would reach ``Object.prototype`` in a JavaScript client that merged naively.
FORBIDDEN_KEYS = frozenset({"__proto__", "constructor", "prototype"})
#: Deepest nesting of arrays and objects a variable may have (a string is level 0, ``[]`` level 1).
MAX_DEPTH = 64
#: Largest request body and largest stored session, in bytes of JSON (1 MiB).
DEFAULT_MAX_BYTES = 1024 * 1024
#: The largest ``seq``: 2^53 - 1, the largest integer every JSON reader holds exactly.
MAX_SEQ = 2**53 - 1

# Python strings are code points, so a lone surrogate is any code point in this range (a valid
# pair in JSON text, "\ud83d\ude00", is decoded into one code point by the json module).
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID_PATTERN.fullmatch(value) is not None


def is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text: no lone surrogate (which UTF-8, and so storage, cannot hold)."""
    return _SURROGATE.search(value) is None


def is_name(value: object, max_length: int = MAX_NAME_LENGTH) -> bool:
    """A ``clientId`` or ``workflowId``: a string of 1 to ``max_length`` code points."""
    return isinstance(value, str) and 1 <= len(value) <= max_length


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a variable, or None when it can."""
    if not isinstance(key, str):
        return f"a variable name must be a string, got {type(key).__name__}"
    if key == "":
        return "a variable name must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"variable name is longer than {MAX_KEY_LENGTH} characters"
    if key in FORBIDDEN_KEYS:
        return f'"{key}" is reserved and cannot name a variable'
    if not is_text(key):
        return "a variable name must be Unicode text (it has a lone surrogate)"
    return None


def json_value_problem(value: object, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` is not a JSON value within the depth limit (with where inside it), or None."""
    return _walk(value, "", 0, max_depth, set())


def is_json_value(value: object, max_depth: int = MAX_DEPTH) -> bool:
    return json_value_problem(value, max_depth) is None


def _walk(value: object, path: str, depth: int, max_depth: int, seen: set[int]) -> str | None:
    at = f" at {path}" if path else ""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if is_text(value) else f"a string with a lone surrogate is not Unicode text{at}"
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a JSON number{at}; store None or a string instead"
    if not isinstance(value, (dict, list)):
        return _type_problem(value, at)
    if depth >= max_depth:
        return f"value is nested deeper than {max_depth} levels{at}"
    if id(value) in seen:
        return f"value contains a cycle{at}; JSON cannot represent it"
    seen.add(id(value))
    try:
        if isinstance(value, list):
            for index, item in enumerate(value):
                problem = _walk(item, f"{path}[{index}]", depth + 1, max_depth, seen)
                if problem:
                    return problem
            return None
        for key, item in value.items():
            if not isinstance(key, str):
                return f"an object key must be a string, got {type(key).__name__}{at}"
            if not is_text(key):
                return f"an object key with a lone surrogate is not Unicode text{at}"
            problem = _walk(item, f"{path}.{key}", depth + 1, max_depth, seen)
            if problem:
                return problem
        return None
    finally:
        seen.discard(id(value))


def _type_problem(value: object, at: str) -> str:
    if isinstance(value, tuple):
        return f"a tuple is not JSON{at}; store a list"
    if isinstance(value, (set, frozenset)):
        return f"a set is not JSON{at}; store a sorted list"
    if isinstance(value, (bytes, bytearray)):
        return f"bytes are not JSON{at}; store text (e.g. base64)"
    if hasattr(value, "isoformat"):
        return f"a {type(value).__name__} is not JSON{at}; store value.isoformat()"
    return f"a {type(value).__name__} is not JSON{at}; store a dict, list, str, int, float, bool or None"


def compact_json(value: object) -> str:
    """JSON as the server writes it: compact, UTF-8 text (as JavaScript's ``JSON.stringify``)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_bytes(value: object) -> int:
    """Size of ``value`` as compact UTF-8 JSON, in bytes: how the session size limit is measured."""
    return len(compact_json(value).encode("utf-8"))


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> JsonValue:
    """Parses JSON text as the protocol reads it: ``NaN`` and ``Infinity`` are not JSON.

    Raises ValueError for text that is not JSON, RecursionError for nesting too deep to read.
    """
    return cast(JsonValue, json.loads(text, parse_constant=_no_constant))
