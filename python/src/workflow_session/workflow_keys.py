"""How a workflow's fields are laid out as session variables (the same layout as the TypeScript client).

Every field is its own top-level variable, so changing one field sends one key::

    wf:{id}:v:{key}   a data field        wf:{id}:step     the current step
    wf:{id}:flow      the current flow    wf:{id}:params   the current flow's params
    wf:{id}:stack     the parent flows    wf:{id}:at       when the server last changed it

``{id}`` and ``{key}`` are percent-encoded as JavaScript's ``encodeURIComponent`` does, which
never leaves a ``:`` in them, so a key splits back into exactly one (workflow, field).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple
from urllib.parse import quote, unquote

WORKFLOW_PREFIX = "wf:"
WorkflowSlot = Literal["step", "flow", "params", "stack", "at"]
SLOTS: frozenset[str] = frozenset({"step", "flow", "params", "stack", "at"})

# encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) as they are; quote() always keeps the
# letters, digits and "_.-~".
_SAFE = "!*'()"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def encode_component(text: str) -> str:
    """``encodeURIComponent``: UTF-8 percent-encoding. Raises UnicodeEncodeError for a lone surrogate."""
    return quote(text, safe=_SAFE, encoding="utf-8", errors="strict")


def decode_component(text: str) -> str | None:
    """``decodeURIComponent``, or None where it would throw (a malformed escape, bytes that are not UTF-8)."""
    if _BAD_ESCAPE.search(text):
        return None
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None


def workflow_prefix(workflow_id: str) -> str:
    """The prefix shared by every variable of workflow ``workflow_id``."""
    return f"{WORKFLOW_PREFIX}{encode_component(workflow_id)}:"


def workflow_data_key(workflow_id: str, key: str) -> str:
    """The variable that holds data field ``key`` of workflow ``workflow_id``."""
    return f"{workflow_prefix(workflow_id)}v:{encode_component(key)}"


def workflow_slot_key(workflow_id: str, slot: WorkflowSlot) -> str:
    """The variable that holds one of the workflow's own slots (step, flow, params, stack, at)."""
    return f"{workflow_prefix(workflow_id)}{slot}"


class ParsedKey(NamedTuple):
    workflow_id: str
    #: The data field's name, or None for a slot.
    field: str | None
    #: The slot's name, or None for a data field.
    slot: str | None


def parse_workflow_key(name: str) -> ParsedKey | None:
    """The workflow and field (or slot) a variable name belongs to, or None for a plain variable."""
    if not name.startswith(WORKFLOW_PREFIX):
        return None
    parts = name[len(WORKFLOW_PREFIX) :].split(":")
    if len(parts) == 3 and parts[1] == "v":
        workflow_id, field = decode_component(parts[0]), decode_component(parts[2])
        if workflow_id is not None and field is not None:
            return ParsedKey(workflow_id, field, None)
    elif len(parts) == 2 and parts[1] in SLOTS:
        workflow_id = decode_component(parts[0])
        if workflow_id is not None:
            return ParsedKey(workflow_id, None, parts[1])
    return None
