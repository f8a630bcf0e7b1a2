"""The session protocol (docs/protocol.md) as an ASGI app, on Starlette: mount it, or serve it alone.

Example (FastAPI)::

    session_app = create_session_app(store=open_store("sqlite:.data/sessions.db"), steps={"register": register})
    app = FastAPI()
    app.mount("/api/session", session_app)
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from starlette.applications import Starlette

from .errors import RETRY_AFTER_SECONDS, SessionProtocolError
from .feed import HEARTBEAT_SECONDS, ChangeFeed
from .merge import valid_change
from .request import header, page_of, parse_run_input, read_json_body, route_path, since_of
from .rules import DEFAULT_MAX_BYTES, is_session_id
from .models import JsonValue, Patch, Summary
from .steps import Step, StepError, run_step
from .stores.base import Caller, SessionStore, may_reach, no_such_session
from .workflow_keys import decode_component

log = logging.getLogger("workflow_session")

#: The caller's user id from a request, or None for an anonymous caller (sync or async).
Authorize = Callable[[Request], "str | None | Awaitable[str | None]"]
#: Told of unexpected errors and failed steps (the response says only what is safe).
OnError = Callable[[BaseException, Request, "str | None"], None]
#: The variables the app's steps read (an app's ``TypedDict``, or any JSON by default).
_Vars = TypeVar("_Vars", bound=Mapping[str, object])

#: Errors of a step's own changes: the step's failure (500 ``step_failed``), not the request's.
_STEP_RESULT_PROBLEMS = frozenset({"invalid_key", "invalid_patch", "too_large"})
_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8"), (b"cache-control", b"no-store")]


def _no_such_endpoint() -> SessionProtocolError:
    return SessionProtocolError("not_found", "No such endpoint")


def _encode(body: object) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in an error message: escaped, still JSON
        return json.dumps(body, separators=(",", ":")).encode("ascii")


async def send_json(send: Send, status: int, body: object, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    data = _encode(body)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(data)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def send_error(send: Send, error: SessionProtocolError) -> None:
    extra = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())] if error.code == "unavailable" else []
    if error.allow:
        extra.append((b"allow", ", ".join(error.allow).encode()))
    await send_json(send, error.status, error.body(), extra)


@dataclass(frozen=True)
class _Call:
    """One request, routed: what its handler is given."""

    scope: Scope
    receive: Receive
    send: Send
    request: Request
    caller: Caller
    session_id: str
    step: str


class SessionApp:
    """The ASGI app :func:`create_session_app` returns. ``close()`` ends open change streams."""

    def __init__(
        self,
        *,
        store: SessionStore,
        steps: Mapping[str, Step[_Vars]] | None = None,
        authorize: Authorize | None = None,
        require_user: bool = False,
        allowed_origins: Iterable[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_keys_per_patch: int = 1000,
        base: str = "",
        on_error: OnError | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise TypeError("store must be a SessionStore: open_store('sqlite:…'), memory_store(), …")
        self.store = store
        # Each step reads the variables its own way (its type parameter); the app only calls it.
        self.steps: dict[str, Step[Any]] = dict(steps or {})
        self.authorize = authorize
        self.require_user = require_user
        self.allowed_origins = None if allowed_origins is None else {origin.rstrip("/") for origin in allowed_origins}
        self.max_bytes = max_bytes
        self.max_keys_per_patch = max_keys_per_patch
        self.base = base.rstrip("/")
        self.on_error = on_error or _log_error
        self.feed = ChangeFeed(store, heartbeat_seconds)
        self._routes: dict[str, dict[str, Callable[[_Call], Awaitable[None]]]] = {
            "list": {"GET": self._list},
            "session": {"GET": self._get, "POST": self._patch, "DELETE": self._delete},
            "run": {"POST": self._run},
            "events": {"GET": self._events},
            "adopt": {"POST": self._adopt},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # Only when the app is served alone: a router that mounts it runs its own lifespan.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.store.open()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": f"workflow-session: {error}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await self._route(scope, receive, send, request)
        except SessionProtocolError as error:
            await send_error(send, error)
        except Exception as error:
            self.on_error(error, request, None)
            await send_error(send, SessionProtocolError("internal_error", "The server could not handle the request"))

    async def _route(self, scope: Scope, receive: Receive, send: Send, request: Request) -> None:
        # The protocol's order: path, method, origin, user, session id, step name, then the body.
        path = route_path(scope)
        if self.base:
            if path != self.base and not path.startswith(f"{self.base}/"):
                raise _no_such_endpoint()
            path = path[len(self.base) :]
        parts = _raw_parts(scope, [part for part in path.split("/") if part])
        name = _route_of(parts)
        method = scope["method"].upper()
        answer = self._routes[name].get(method)
        if answer is None:
            raise SessionProtocolError("method_not_allowed", "Method not allowed here", list(self._routes[name]))

        if self.allowed_origins is not None and method not in ("GET", "HEAD"):
            origin = header(scope, b"origin")
            if origin is not None and origin not in self.allowed_origins:
                raise SessionProtocolError("forbidden_origin", "Requests from this origin may not change sessions")
        user_id = await self._user_of(request)
        if self.require_user and user_id is None:
            raise SessionProtocolError("unauthenticated", "Sign in first")
        # Always a caller, never trusted: a request reaches only sessions without an owner and its own.
        caller = Caller(user_id)

        session_id = parts[0] if parts else ""
        if name != "list" and not is_session_id(session_id):
            raise SessionProtocolError("invalid_session_id", "A session id is 8 to 128 characters of A-Z a-z 0-9 _ -")
        step = parts[2] if name == "run" else ""
        if name == "run" and step not in self.steps:
            raise SessionProtocolError("unknown_step", f'No step named "{step}"')
        await answer(_Call(scope, receive, send, request, caller, session_id, step))

    async def _user_of(self, request: Request) -> str | None:
        if self.authorize is None:
            return None
        user_id = self.authorize(request)
        if inspect.isawaitable(user_id):
            user_id = await user_id
        if user_id is None:
            return None
        if not isinstance(user_id, str) or user_id == "":
            raise TypeError(f"authorize must return a non-empty user id or None, got {user_id!r}")
        return user_id

    async def _list(self, call: _Call) -> None:
        scope, send, caller = call.scope, call.send, call.caller
        query: dict[str, str] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(key, value)
        limit, offset = page_of(query)
        # Only a known user has "their" sessions. Listing anonymous sessions would hand out their
        # ids, and an id is all it takes to read one.
        sessions: list[Summary] = [] if caller.user_id is None else await self.store.list(user_id=caller.user_id, limit=limit, offset=offset)
        await send_json(send, 200, {"sessions": sessions})

    async def _adopt(self, call: _Call) -> None:
        scope, receive, send, caller, session_id = call.scope, call.receive, call.send, call.caller, call.session_id
        # Sign-in: the caller takes a session made before it (ownerless) as its own, explicitly.
        if caller.user_id is None:
            raise SessionProtocolError("unauthenticated", "Sign in to adopt a session")
        # No body is read; like a run's, the request has no content type or JSON (never a form's).
        await read_json_body(scope, receive, self.max_bytes, empty_needs_no_type=True)
        snapshot = await self.store.adopt(session_id, caller.user_id)
        self.feed.announce(session_id)
        await send_json(send, 200, snapshot)

    async def _get(self, call: _Call) -> None:
        send, caller, session_id = call.send, call.caller, call.session_id
        snapshot = await self.store.get(session_id, caller=caller)
        if snapshot is None:
            raise no_such_session()
        await send_json(send, 200, snapshot)

    async def _patch(self, call: _Call) -> None:
        scope, receive, send, caller, session_id = call.scope, call.receive, call.send, call.caller, call.session_id
        # Checked here, at the edge, and only here, in the protocol's order (shape, keys per patch,
        # names and values): the store takes the ValidChange as it is.
        change = valid_change(await read_json_body(scope, receive, self.max_bytes), max_keys=self.max_keys_per_patch)
        result = await self.store.apply(session_id, change, caller=caller, max_bytes=self.max_bytes)
        if result.applied:
            self.feed.announce(session_id)
        await send_json(send, 200, result.snapshot)

    async def _delete(self, call: _Call) -> None:
        send, caller, session_id = call.send, call.caller, call.session_id
        if not await self.store.delete(session_id, caller=caller):
            raise no_such_session()
        await send({"type": "http.response.start", "status": 204, "headers": [(b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b""})

    async def _run(self, call: _Call) -> None:
        scope, receive, send, request, caller, session_id, step = call.scope, call.receive, call.send, call.request, call.caller, call.session_id, call.step
        run_input = parse_run_input(await read_json_body(scope, receive, self.max_bytes, empty_needs_no_type=True))
        # Read as the server, so that another user's session is refused before its step runs.
        current = await self.store.get(session_id)
        if current is not None and not may_reach(current, caller):
            raise no_such_session()

        def report(error: BaseException) -> None:
            self.on_error(error, request, step)

        variables: dict[str, JsonValue] = current["variables"] if current is not None else {}
        result = await run_step(
            self.steps[step],
            session_id=session_id,
            variables=variables,
            input=run_input,
            user_id=caller.user_id,
            report=report,
        )
        change: Patch = {"variables": result["variables"], "deleted": result["deleted"]}
        # The step's changes are server code's: the store checks them (one check, there).
        try:
            applied = await self.store.apply(session_id, change, caller=caller, max_bytes=self.max_bytes)
        except SessionProtocolError as error:
            if error.code not in _STEP_RESULT_PROBLEMS:
                raise
            # The step's own changes broke a rule: that is the step's failure, and nothing was stored.
            report(error)
            raise SessionProtocolError("step_failed", f'Step "{step}" returned changes that cannot be stored: {error.message}') from error
        if applied.applied:
            self.feed.announce(session_id)
        await send_json(send, 200, {"output": result["output"], "session": applied.snapshot})

    async def _events(self, call: _Call) -> None:
        scope, receive, send, caller, session_id = call.scope, call.receive, call.send, call.caller, call.session_id
        # Every event is read as the caller: another user's session streams exactly like an unused
        # id (nothing but keep-alives), so the feed tells no one which ids exist.
        query = next((value for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if key == "since"), None)
        await self.feed.stream(send, receive, session_id, since_of(header(scope, b"last-event-id"), query), caller)

    def close(self) -> None:
        """Ends every open change stream (before shutting down) and stops watching the store."""
        self.feed.close()

    def mount_on(self, app: Starlette, path: str = "/api/session") -> None:
        """Mounts the endpoints on a Starlette or FastAPI ``app`` at ``path``, the mount point included.

        ``app.mount(path, sessions)`` alone serves what is below ``path``; for ``path`` itself
        (``GET /api/session``, the caller's sessions) Starlette answers a redirect to
        ``path + "/"``, built from the request's ``Host``, which behind a proxy can point
        elsewhere. This serves both, with no redirect::

            sessions.mount_on(app, "/api/session")
        """
        from starlette.routing import Route

        path = path.rstrip("/")
        app.mount(path, self)
        app.router.routes.append(Route(path, endpoint=_AtMountPoint(self, path)))


class _AtMountPoint:
    """The session app for a request to its mount point itself, as a mount would pass it."""

    def __init__(self, app: SessionApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "root_path": scope.get("root_path", "") + self.path}, receive, send)


def _route_of(parts: list[str]) -> str:
    """Which route a path's parts (after the base) name: ``[]``, ``[id]``, ``[id, "run", step]``, ``[id, "events"]``."""
    if not parts:
        return "list"
    if len(parts) == 1:
        return "session"
    if len(parts) == 2 and parts[1] == "events":
        return "events"
    if len(parts) == 2 and parts[1] == "adopt":
        return "adopt"
    if len(parts) == 3 and parts[1] == "run":
        return "run"
    raise _no_such_endpoint()


def _raw_parts(scope: Scope, parts: list[str]) -> list[str]:
    """The path's parts as the TypeScript server splits them: at a raw ``/``, each part then decoded.

    A server decodes the whole path first, so ``%2F`` would split a part in two; and a malformed
    escape (``%zz``, bytes that are not UTF-8) is 404, as ``decodeURIComponent`` refuses it.
    """
    raw = scope.get("raw_path")
    if not raw or b"%" not in raw:
        return parts
    decoded_or_none = [decode_component(part) for part in bytes(raw).split(b"?", 1)[0].decode("latin-1").split("/") if part]
    decoded = [part for part in decoded_or_none if part is not None]
    if len(decoded) != len(decoded_or_none):
        raise _no_such_endpoint()
    # The raw parts below the mount: the shortest tail that decodes to the parts the server gave.
    target = "/".join(parts)
    for count in range(len(decoded) + 1):
        tail = decoded[len(decoded) - count :]
        if "/".join(tail) == target:
            return tail
    return parts


def _log_error(error: BaseException, request: Request, step: str | None) -> None:
    where = f' in step "{step}"' if step else ""
    if isinstance(error, StepError):  # raised on purpose, its message already answered
        log.warning("workflow-session: %s %s: step \"%s\" refused: %s", request.method, request.url.path, step, error)
    else:
        log.error("workflow-session: %s %s failed%s", request.method, request.url.path, where, exc_info=error)


def create_session_app(
    *,
    store: SessionStore,
    steps: Mapping[str, Step[_Vars]] | None = None,
    authorize: Authorize | None = None,
    require_user: bool = False,
    allowed_origins: Iterable[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_keys_per_patch: int = 1000,
    base: str = "",
    on_error: OnError | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> SessionApp:
    """The session endpoints as an ASGI app: mount it (``app.mount("/api/session", session_app)``) or serve it alone.

    - ``store``: where sessions live (``open_store(url)``).
    - ``steps``: what ``POST {base}/{id}/run/{step}`` may run: ``{"name": function}``.
    - ``authorize(request)``: the caller's user id, or None for an anonymous caller (sync or
      async; given a Starlette ``Request``). A session records the user that created it; every
      other caller gets 404 for it. The owner comes from here only, never from a body.
    - ``require_user``: answer 401 to a request without a user.
    - ``allowed_origins``: origins allowed to POST and DELETE (else 403 ``forbidden_origin``);
      requests without an ``Origin`` header pass. Default: any origin.
    - ``max_bytes``: largest body and largest session (1 MiB); ``max_keys_per_patch``: most
      variables one patch may change (1000).
    - ``base``: the path of the endpoints below the mount point; ``""`` when mounted at
      ``/api/session``, ``"/api/session"`` when served alone at the root.
    - ``on_error(error, request, step)``: told of unexpected errors and failed steps; default:
      the ``workflow_session`` logger.

    Served alone, its lifespan opens the store at startup and closes it at shutdown.
    """
    return SessionApp(
        store=store,
        steps=steps,
        authorize=authorize,
        require_user=require_user,
        allowed_origins=allowed_origins,
        max_bytes=max_bytes,
        max_keys_per_patch=max_keys_per_patch,
        base=base,
        on_error=on_error,
        heartbeat_seconds=heartbeat_seconds,
    )
