"""The session protocol (docs/protocol.md) as an ASGI app on Starlette's routing: mount it, or serve it alone.

Example (FastAPI)::

    session_app = create_session_app(store=open_store("sqlite:.data/sessions.db"), steps={"register": register})
    app = FastAPI()
    app.mount("/api/session", session_app)

The endpoints are Starlette routes (``Route``) in a ``Router``: per resource, one route for each
of its methods, whose endpoint is a ``request -> response`` function, then one that answers any
other method 405 with the resource's ``Allow``; the router's default answers any other path 404.
Every answer is the protocol's JSON, and the checks run in the protocol's order: the path and
the method (the router), then the origin, the user, the session id and the step name (each
endpoint, before its handler), then the body (the handler). What is not Starlette's own, and why:

- **The path the router reads.** The TypeScript server splits a path at its raw ``/`` and then
  decodes each part; Starlette routes on the decoded path, where an encoded ``%2F`` has already
  split a part in two, and it keeps empty parts (``//``, a trailing ``/``). So the router reads
  the parts as the TypeScript server has them (a part holding a ``/`` or a ``%`` percent-encoded,
  decoded again for the endpoint), the app answers 404 itself to a malformed escape (``%zz``,
  bytes that are not UTF-8), which ``decodeURIComponent`` refuses, and an endpoint is handed the
  request as it came (its own path and method) with the path parameters the router found.
- **No HEAD.** Starlette's ``Route`` takes HEAD wherever it takes GET; the protocol has no HEAD
  (405, like any method a resource lacks), so each route takes exactly its own method.
- **The lifespan** (served alone) is the app's own: Starlette's ``Router`` answers a failed
  startup with the whole traceback and raises it again; the app says in one line why the store
  could not open (``lifespan.startup.failed``).
- **The change feed** is a ``Response`` that the feed writes itself, not a ``StreamingResponse``:
  the stream has to hear the client go while it is idle (it reads ``receive`` itself; a
  ``StreamingResponse`` under ASGI 2.4 notices only when it next writes), and to end quietly,
  with the response closed, when the server cancels it at shutdown (a ``StreamingResponse``
  lets the cancellation through and closes nothing).
- **The body** is read by the app (``Request.stream()``, counting bytes as they come): the
  content type is checked before the size, and an oversized body is answered 413 in the
  protocol's JSON; Starlette's own body limit (1.x only) answers in plain text.
- **Deltas** (docs/protocol.md, "Deltas"): a request with ``Session-Base`` (checked after the
  step name, before the query and the body) is answered a delta wherever the answer carries
  the session, when the store can tell what changed since its base, else the snapshot; a
  ``GET {base}/{id}`` answer carries ``ETag: "{tag}"`` and is 304 to a client that holds it.
  Starlette has no ETag of its own for a JSON answer: the app writes it.
- **Durable runs** (``{base}/{id}/runs``) go on after the request that started them was
  answered: the app's :class:`~workflow_session.runner.Runner` drives them, and ``close()`` ends
  those still running ``lost``. A request that waits for a run (``?waitMs=``) and is cancelled by
  the server's shutdown answers 503 ``unavailable`` in the protocol's JSON, not the server's
  plain-text 500.
- **Schema versions** (docs/protocol.md, "Schema versions") are the store's: its migrations
  (``open_store(url, migrations=…)``) say the server's version, it migrates old sessions as it
  reads them, and it checks a request's ``schemaVersion`` after the owner (409
  ``schema_mismatch``). The app reads the field from the bodies (400 when it is not a version).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from starlette.applications import Starlette

from .deltas import SessionBase, is_current, run_delta_of, tag_of
from .errors import RETRY_AFTER_SECONDS, SessionProtocolError
from .feed import HEARTBEAT_SECONDS, ChangeFeed
from .merge import valid_change
from .models import Delta, JsonValue, Patch, RunRecord, Snapshot, Summary
from .request import (
    feed_start_of,
    first_query_value,
    page_of,
    parse_run_input,
    parse_run_start,
    parse_schema_version,
    read_json_body,
    route_path,
    session_base_of,
    whole_number_query,
)
from .rules import DEFAULT_MAX_BYTES, is_session_id, json_bytes, json_value_problem
from .runner import Runner
from .runs import DEFAULT_RUN_LOST_AFTER_MS, DEFAULT_RUN_TIMEOUT_MS
from .steps import Step, StepError, run_step
from .stores.base import STEP_RESULT_PROBLEMS, Caller, SessionStore, no_such_session
from .workflow_keys import decode_component

log = logging.getLogger("workflow_session")

#: The caller's user id from a request, or None for an anonymous caller (sync or async).
Authorize = Callable[[Request], "str | None | Awaitable[str | None]"]
#: Told of unexpected errors and failed steps (the response says only what is safe).
OnError = Callable[[BaseException, Request, "str | None"], None]
#: The variables the app's steps read (an app's ``TypedDict``, or any JSON by default).
_Vars = TypeVar("_Vars", bound=Mapping[str, object])

#: Where the routed scope keeps the request's scope as it came (see ``SessionApp._routed``).
_AS_SENT = "workflow_session.scope"
#: The longest a request waits for a run (``?waitMs=``), in milliseconds.
MAX_WAIT_MS = 30_000
#: The largest ``rev`` a long poll may name (``?after=``).
_MAX_REV = 2**53 - 1


def _no_such_endpoint() -> SessionProtocolError:
    return SessionProtocolError("not_found", "No such endpoint")


def _encode(body: object) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in an error message: escaped, still JSON
        return json.dumps(body, separators=(",", ":")).encode("ascii")


class JsonResponse(Response):
    """The protocol's JSON: compact UTF-8, never cached."""

    media_type = "application/json; charset=utf-8"

    def __init__(self, body: object, status_code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(_encode(body), status_code, {"cache-control": "no-store", **(headers or {})})


def error_response(error: SessionProtocolError) -> JsonResponse:
    """``{"error": {"code", "message"}}`` with the code's status (and ``Retry-After`` or ``Allow`` where it has one)."""
    headers = {"retry-after": str(RETRY_AFTER_SECONDS)} if error.code == "unavailable" else {}
    if error.allow:
        headers["allow"] = ", ".join(error.allow)
    return JsonResponse(error.body(), error.status, headers)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: no route has this path."""
    await error_response(_no_such_endpoint())(scope, receive, send)


class _NotAllowed:
    """A resource's route for every method it does not have: 405 with its ``Allow``."""

    def __init__(self, allow: list[str]) -> None:
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(SessionProtocolError("method_not_allowed", "Method not allowed here", self.allow))(scope, receive, send)


class _EventStream(Response):
    """``GET {base}/{id}/events``: the change feed writes the response itself (see the module docstring)."""

    def __init__(self, feed: ChangeFeed, session_id: str, since: int, caller: Caller, base: SessionBase | None = None) -> None:
        super().__init__(status_code=200)
        self.feed, self.session_id, self.since, self.caller, self.base = feed, session_id, since, caller, base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.feed.stream(send, receive, self.session_id, self.since, self.caller, base=self.base)


@dataclass(frozen=True)
class _Call:
    """One request, past the checks every endpoint makes: what its handler is given."""

    request: Request
    caller: Caller
    session_id: str
    step: str
    run_id: str = ""


_Handler = Callable[[_Call], Awaitable[Response]]


class SessionApp:
    """The ASGI app :func:`create_session_app` returns. ``close()`` ends open change streams and the runs it still runs."""

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
        run_timeout_ms: int = DEFAULT_RUN_TIMEOUT_MS,
        run_lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS,
        concurrent_runs: Literal["join", "refuse"] = "join",
    ) -> None:
        if not isinstance(store, SessionStore):
            raise TypeError("store must be a SessionStore: open_store('sqlite:…'), memory_store(), …")
        for name, value in [("run_timeout_ms", run_timeout_ms), ("run_lost_after_ms", run_lost_after_ms)]:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number of milliseconds, got {value!r}")
        if concurrent_runs not in ("join", "refuse"):
            raise ValueError(f'concurrent_runs must be "join" or "refuse", got {concurrent_runs!r}')
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
        #: The durable runs this app starts (``{base}/{id}/runs``).
        self.runner: Runner
        self.feed = ChangeFeed(store, heartbeat_seconds, runs_of=self._runs_for_feed, recheck_seconds=min(1.0, run_lost_after_ms / 4000))
        self.runner = Runner(
            store=store,
            feed=self.feed,
            steps=self.steps,
            report=self._report,
            max_bytes=max_bytes,
            timeout_ms=run_timeout_ms,
            lost_after_ms=run_lost_after_ms,
            concurrent=concurrent_runs,
        )
        #: The endpoints, below the mount point.
        self.router = Router(
            routes=[
                *self._resource("/", {"GET": self._list}),
                *self._resource("/{session_id}", {"GET": self._get, "POST": self._patch, "DELETE": self._delete}),
                *self._resource("/{session_id}/events", {"GET": self._events}),
                *self._resource("/{session_id}/adopt", {"POST": self._adopt}),
                *self._resource("/{session_id}/run/{step}", {"POST": self._run}),
                *self._resource("/{session_id}/runs", {"GET": self._list_runs, "POST": self._start_run}),
                *self._resource("/{session_id}/runs/{run_id}", {"GET": self._get_run}),
                *self._resource("/{session_id}/runs/{run_id}/cancel", {"POST": self._cancel_run}),
            ],
            redirect_slashes=False,
            default=_not_found,
        )

    def _resource(self, path: str, handlers: Mapping[str, _Handler]) -> list[BaseRoute]:
        """A route per method of the resource at ``path``, then one that answers every other method 405."""
        path = self.base + path
        routes: list[BaseRoute] = []
        for method, handler in handlers.items():
            route = Route(path, self._endpoint(handler), methods=[method])
            route.methods = {method}  # not HEAD too, as Route adds to GET: the protocol has no HEAD
            routes.append(route)
        routes.append(Route(path, _NotAllowed(list(handlers))))
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            routed = self._routed(scope)
            if routed is None:
                await _not_found(scope, receive, send)
            else:
                await self.router(routed, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1003})

    def _routed(self, scope: Scope) -> Scope | None:
        """The request as the router reads it (see the module docstring), or None when there is no such endpoint.

        Its path: the mount point, ``base``, then the parts below ``base`` as the TypeScript
        server splits them; its method in capitals. It keeps the request as it came for the
        endpoint.
        """
        path = route_path(scope)
        if self.base:
            if path != self.base and not path.startswith(f"{self.base}/"):
                return None
            path = path[len(self.base) :]
        parts = _raw_parts(scope, [part for part in path.split("/") if part])
        if parts is None:
            return None
        below = "/" + "/".join(quote(part, safe="") if "/" in part or "%" in part else part for part in parts)
        routed_path = scope.get("root_path", "") + self.base + below
        return {**scope, "method": scope["method"].upper(), "path": routed_path, _AS_SENT: scope}

    def _endpoint(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """The route's endpoint: the checks every endpoint makes, then ``handler``; any error as the protocol's JSON."""

        async def endpoint(routed: Request) -> Response:
            # The request as it came (its own path and method, for authorize and on_error), with
            # the path parameters the router found.
            request = Request({**routed.scope[_AS_SENT], "path_params": routed.path_params}, routed.receive)
            try:
                return await handler(await self._call_of(request, routed.method))
            except SessionProtocolError as error:
                return error_response(error)
            except Exception as error:
                self.on_error(error, request, None)
                return error_response(SessionProtocolError("internal_error", "The server could not handle the request"))

        return endpoint

    async def _call_of(self, request: Request, method: str) -> _Call:
        # The protocol's order after the path and the method (the router's): origin, user, session
        # id, step name; the body is the handler's.
        if self.allowed_origins is not None and method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin not in self.allowed_origins:
                raise SessionProtocolError("forbidden_origin", "Requests from this origin may not change sessions")
        user_id = await self._user_of(request)
        if self.require_user and user_id is None:
            raise SessionProtocolError("unauthenticated", "Sign in first")
        # Always a caller, never trusted: a request reaches only sessions without an owner and its own.
        caller = Caller(user_id)

        params = request.path_params
        session_id = unquote(params["session_id"]) if "session_id" in params else ""
        if "session_id" in params and not is_session_id(session_id):
            raise SessionProtocolError("invalid_session_id", "A session id is 8 to 128 characters of A-Z a-z 0-9 _ -")
        step = unquote(params["step"]) if "step" in params else ""
        if "step" in params and step not in self.steps:
            raise SessionProtocolError("unknown_step", f'No step named "{step}"')
        run_id = unquote(params["run_id"]) if "run_id" in params else ""
        return _Call(request, caller, session_id, step, run_id)

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
                self.close()  # the runs still running end lost; store.close() waits for those writes
                await self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

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

    async def _list(self, call: _Call) -> Response:
        limit, offset = page_of(call.request)
        # Only a known user has "their" sessions. Listing anonymous sessions would hand out their
        # ids, and an id is all it takes to read one.
        user_id = call.caller.user_id
        sessions: list[Summary] = [] if user_id is None else await self.store.list(user_id=user_id, limit=limit, offset=offset)
        return JsonResponse({"sessions": sessions})

    async def _adopt(self, call: _Call) -> Response:
        # Sign-in: the caller takes a session made before it (ownerless) as its own, explicitly.
        if call.caller.user_id is None:
            raise SessionProtocolError("unauthenticated", "Sign in to adopt a session")
        base = session_base_of(call.request)
        # No body is read; like a run's, the request has no content type or JSON (never a form's).
        await read_json_body(call.request, self.max_bytes, empty_needs_no_type=True)
        snapshot = await self.store.adopt(call.session_id, call.caller.user_id)
        self.feed.announce(call.session_id)
        # With a base: what changed since it, read after the adoption (its version or a newer one).
        answer = await self.store.get_since(call.session_id, base, caller=call.caller) if base is not None else None
        return JsonResponse(answer if answer is not None and answer["version"] >= snapshot["version"] else snapshot)

    async def _get(self, call: _Call) -> Response:
        base = session_base_of(call.request)
        answer = await self.store.get_since(call.session_id, base, caller=call.caller)
        if answer is None:
            raise no_such_session()
        headers = {"etag": f'"{tag_of(answer)}"'}
        # Nothing new for a client that holds the current version (its Session-Base, or the ETag it kept).
        if (base is not None and is_current(base, answer)) or _none_match(call.request.headers.get("if-none-match"), tag_of(answer)):
            return Response(status_code=304, headers={"cache-control": "no-store", **headers})
        return JsonResponse(answer, headers=headers)

    async def _patch(self, call: _Call) -> Response:
        base = session_base_of(call.request)
        # Checked here, at the edge, and only here, in the protocol's order (shape, keys per patch,
        # names and values): the store takes the ValidChange as it is. The schema version is the
        # store's to check, after the owner (it moves a patch of an older one).
        body = await read_json_body(call.request, self.max_bytes)
        schema_version = parse_schema_version(body, "invalid_patch")
        change = valid_change(body, max_keys=self.max_keys_per_patch)
        result = await self.store.apply(call.session_id, change, caller=call.caller, max_bytes=self.max_bytes, base=base, schema_version=schema_version)
        if result.applied or result.migrated:
            self.feed.announce(call.session_id)
        return JsonResponse(result.delta if result.delta is not None else result.snapshot)

    async def _delete(self, call: _Call) -> Response:
        if not await self.store.delete(call.session_id, caller=call.caller):
            raise no_such_session()
        return Response(status_code=204, headers={"cache-control": "no-store"})

    async def _run(self, call: _Call) -> Response:
        request, caller, session_id, step = call.request, call.caller, call.session_id, call.step
        base = session_base_of(request)
        body = await read_json_body(request, self.max_bytes, empty_needs_no_type=True)
        run_input = parse_run_input(body)
        schema_version = parse_schema_version(body, "invalid_patch")
        # Refused before the step runs: another user's session (404), then a schema version that is not the server's (409).
        current = await self.store.get_for_step(session_id, caller=caller, schema_version=schema_version)

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
            applied = await self.store.apply(session_id, change, caller=caller, max_bytes=self.max_bytes, base=base)
        except SessionProtocolError as error:
            if error.code not in STEP_RESULT_PROBLEMS:
                raise
            # The step's own changes broke a rule: that is the step's failure, and nothing was stored.
            report(error)
            raise SessionProtocolError("step_failed", f'Step "{step}" returned changes that cannot be stored: {error.message}') from error
        if applied.applied:
            self.feed.announce(session_id)
        return JsonResponse({"output": result["output"], "session": applied.delta if applied.delta is not None else applied.snapshot})

    async def _events(self, call: _Call) -> Response:
        # Every event is read as the caller: another user's session streams exactly like an unused
        # id (nothing but keep-alives), so the feed tells no one which ids exist.
        # What the caller has: Last-Event-ID (an EventSource's reconnect), else Session-Base, else
        # ?since=; a tag (or Session-Base: 0) streams deltas, a plain number snapshots.
        session_base = session_base_of(call.request)
        last_event_id = call.request.headers.get("last-event-id")
        since, base = feed_start_of(last_event_id, session_base, first_query_value(call.request, "since", blank=False))
        return _EventStream(self.feed, call.session_id, since, call.caller, base)

    # --- Durable runs (docs/protocol.md, "Runs") ---

    async def _start_run(self, call: _Call) -> Response:
        # After the checks every endpoint makes: ?waitMs=, then the body (JSON as for a patch, its
        # runId and step, the step registered, the input as a variable's value); the owner in the
        # store's atomic step that writes the record.
        base = session_base_of(call.request)
        wait_ms = whole_number_query(call.request, "waitMs", MAX_WAIT_MS) or 0
        body = await read_json_body(call.request, self.max_bytes)
        run_id, step, run_input = parse_run_start(body)
        schema_version = parse_schema_version(body, "invalid_run")
        if step not in self.steps:
            raise SessionProtocolError("unknown_step", f'No step named "{step}"')
        problem = json_value_problem(run_input)
        if problem:
            raise SessionProtocolError("invalid_patch", f'"input": {problem}')
        if json_bytes(run_input) > self.max_bytes:
            raise SessionProtocolError("too_large", f'"input" is larger than {self.max_bytes} bytes')
        run, started = await self.runner.start(call.session_id, run_id, step, run_input, call.caller, call.request, schema_version)
        if wait_ms and run["status"] == "running":
            # The answer waits for the run's first change (a stored progress value, or its end),
            # not for its end: a quick step is one request, and progress shows at once.
            run = await self.runner.wait(call.session_id, run["runId"], call.caller, _newer_than(run["rev"]), wait_ms) or run
        return await self._run_answer(call.session_id, run, 202 if started else 200, base)

    async def _list_runs(self, call: _Call) -> Response:
        base = session_base_of(call.request)
        runs = await self.runner.list(call.session_id, call.caller)
        if runs is None:
            raise no_such_session()
        body: dict[str, object] = {"runs": runs}
        if any(run["status"] == "succeeded" for run in runs):
            session = await self.store.get_since(call.session_id, base)
            if session is not None:
                body["session"] = session
        return JsonResponse(body)

    async def _get_run(self, call: _Call) -> Response:
        base = session_base_of(call.request)
        after = whole_number_query(call.request, "after", _MAX_REV)
        wait_ms = whole_number_query(call.request, "waitMs", MAX_WAIT_MS) or 0
        if after is not None and wait_ms:
            run = await self.runner.wait(call.session_id, call.run_id, call.caller, _newer_than(after), wait_ms)
        else:
            run = await self.runner.get(call.session_id, call.run_id, call.caller)
        if run is None:
            raise _no_such_run()
        return await self._run_answer(call.session_id, run, base=base, after=after)

    async def _cancel_run(self, call: _Call) -> Response:
        base = session_base_of(call.request)
        # No body is read; like an adoption's, the request has no content type or JSON (never a form's).
        await read_json_body(call.request, self.max_bytes, empty_needs_no_type=True)
        run = await self.runner.cancel(call.session_id, call.run_id, call.caller)
        if run is None:
            raise _no_such_run()
        return await self._run_answer(call.session_id, run, base=base)

    async def _run_answer(self, session_id: str, run: RunRecord, status: int = 200, base: SessionBase | None = None, after: int | None = None) -> Response:
        """``{"run": record}``, with ``"session"`` (the session now) when the run succeeded.

        With ``Session-Base`` (``base``): a long poll's ``?after=REV`` (REV from 1 up to the run's
        ``rev``) is answered the run delta from REV, and ``session`` is a delta when one can be made.
        """
        body: dict[str, object] = {"run": run_delta_of(run, after) if base is not None and after is not None and 1 <= after <= run["rev"] else run}
        if run["status"] == "succeeded":
            session: Snapshot | Delta | None = await self.store.get_since(session_id, base)
            if session is not None:
                body["session"] = session
        return JsonResponse(body, status)

    async def _runs_for_feed(self, session_id: str, caller: Caller) -> list[RunRecord] | None:
        return await self.runner.list(session_id, caller)

    def _report(self, error: BaseException, request: Request, step: str | None) -> None:
        self.on_error(error, request, step)

    def close(self) -> None:
        """Ends every open change stream and every run this server still runs (before shutting down); stops watching the store.

        Each run still ``running`` ends ``lost`` ("The server stopped while the step ran"), one
        log line each; ``store.close()`` waits for those writes, so call it after this one (the
        app's own lifespan does, served alone). Requests waiting for a run answer 503.
        """
        self.feed.close()
        self.runner.close()

    async def aclose(self) -> None:
        """``close()``, then waits until the runs it stopped are written as ended (the store stays open)."""
        self.close()
        await self.runner.wait_closed()

    def mount_on(self, app: Starlette, path: str = "/api/session") -> None:
        """Mounts the endpoints on a Starlette or FastAPI ``app`` at ``path``, the mount point included.

        ``app.mount(path, sessions)`` alone serves what is below ``path``; for ``path`` itself
        (``GET /api/session``, the caller's sessions) Starlette answers a redirect to
        ``path + "/"``, built from the request's ``Host``, which behind a proxy can point
        elsewhere. This serves both, with no redirect::

            sessions.mount_on(app, "/api/session")
        """
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


def _no_such_run() -> SessionProtocolError:
    return SessionProtocolError("not_found", "No such run")


def _none_match(header: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names the entity tag ``"{tag}"`` (a list of them, weak or strong, or ``*``): the client has it."""
    if header is None:
        return False
    for given in header.split(","):
        given = given.strip()
        if given == "*" or given.removeprefix("W/") == f'"{tag}"':
            return True
    return False


def _newer_than(rev: int) -> Callable[[RunRecord], bool]:
    """A wait that ends when the run's ``rev`` passes ``rev`` (a progress value, its end), or with its time."""

    def changed(run: RunRecord) -> bool:
        return run["rev"] > rev

    return changed


def _raw_parts(scope: Scope, parts: list[str]) -> list[str] | None:
    """The path's parts as the TypeScript server splits them: at a raw ``/``, each part then decoded.

    A server decodes the whole path first, so ``%2F`` would split a part in two; and a malformed
    escape (``%zz``, bytes that are not UTF-8) is no endpoint (None), as ``decodeURIComponent``
    refuses it.
    """
    raw = scope.get("raw_path")
    if not raw or b"%" not in raw:
        return parts
    decoded_or_none = [decode_component(part) for part in bytes(raw).split(b"?", 1)[0].decode("latin-1").split("/") if part]
    decoded = [part for part in decoded_or_none if part is not None]
    if len(decoded) != len(decoded_or_none):
        return None
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
    run_timeout_ms: int = DEFAULT_RUN_TIMEOUT_MS,
    run_lost_after_ms: int = DEFAULT_RUN_LOST_AFTER_MS,
    concurrent_runs: Literal["join", "refuse"] = "join",
) -> SessionApp:
    """The session endpoints as an ASGI app: mount it (``app.mount("/api/session", session_app)``) or serve it alone.

    - ``store``: where sessions live (``open_store(url)``); with ``migrations=`` (the app's
      schema, ``define_migrations(…)``) it answers at that schema version and migrates older
      sessions as it reads them (docs/protocol.md, "Schema versions").
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
      the ``workflow_session`` logger (a ``StepError`` as one line, anything else with its
      traceback).
    - Durable runs (``POST {base}/{id}/runs`` with ``{"runId", "step", "input"?}``): the same
      ``steps``, started once per run id, going on after the request was answered.
      ``run_timeout_ms``: a run's time limit unless its step has one (:func:`timed_step`); 15
      minutes. ``run_lost_after_ms``: a ``running`` run whose heartbeat is older than this (30 s)
      lost its server and is ended ``lost`` by whoever reads it; the heartbeat comes every 5 s (a
      third of this bound when that is shorter). ``concurrent_runs``: a start with a new run id
      while a run of the same step is ``running`` in the session joins it (``"join"``: answered
      with that run, 200) or is refused (``"refuse"``: 409 ``run_in_progress``).

    Served alone, its lifespan opens the store at startup and closes it at shutdown (ending the
    runs still running ``lost`` first); mounted, call ``close()`` and then ``store.close()`` in
    the host app's lifespan.
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
        run_timeout_ms=run_timeout_ms,
        run_lost_after_ms=run_lost_after_ms,
        concurrent_runs=concurrent_runs,
    )
