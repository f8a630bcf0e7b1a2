"""The demo page on the Python backend: one process serving the page and the session API.

Run it from the repository's root, after building the page once (it is the TypeScript demo's)::

    npx tsx python/examples/build_assets.ts python/examples/.assets
    python python/examples/demo_app.py

Environment: PORT (default 3000; 0 for any free port), HOST (127.0.0.1), SESSION_STORE
(sqlite:.data/sessions.db, or memory:, postgres://…), SESSION_SECRET (signs the user cookie;
default: a random secret kept in .data/cookie-secret), DEMO_ASSETS (the built page's folder),
RUN_LOST_AFTER_MS (a run whose server stopped answering is ended lost after this long; default
30 s), DEMO_REPORT_MS (how long the report step takes; default 20 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import signal
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

sys.path.insert(0, str(Path(__file__).parent))
from demo_steps import demo_steps  # noqa: E402

from workflow_session import create_session_app, open_store  # noqa: E402

COOKIE = "ws_user"
YEAR_SECONDS = 365 * 24 * 3600
BASE = "/api/session"


def load_secret(file: str = ".data/cookie-secret") -> bytes:
    """SESSION_SECRET, else one kept in a file so that restarts keep users signed in."""
    if os.environ.get("SESSION_SECRET"):
        return os.environ["SESSION_SECRET"].encode()
    path = Path(file)
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret


class CookieAuth:
    """Each browser gets a user id in a signed, HttpOnly cookie (HMAC-SHA256); sessions belong to that user."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, user_id: str) -> str:
        return hmac.new(self._secret, user_id.encode(), hashlib.sha256).hexdigest()

    def user_of(self, request: Request) -> str | None:
        """The user id in the request's cookie, if its signature holds."""
        user_id, _, signature = request.cookies.get(COOKIE, "").rpartition(".")
        return user_id if user_id and hmac.compare_digest(signature, self._signature(user_id)) else None

    def sign_in(self, request: Request) -> str | None:
        """A Set-Cookie header for a new user, or None when the request already has a valid one."""
        if self.user_of(request):
            return None
        user_id = f"user-{uuid.uuid4()}"
        secure = "; Secure" if request.url.scheme == "https" else ""
        return f"{COOKIE}={user_id}.{self._signature(user_id)}; Path=/; HttpOnly; SameSite=Lax; Max-Age={YEAR_SECONDS}{secure}"


def create_demo_app(store_url: str, assets: Path, secret: bytes, run_lost_after_ms: int | None = None) -> Any:
    store = open_store(store_url)
    auth = CookieAuth(secret)
    runs: dict[str, Any] = {} if run_lost_after_ms is None else {"run_lost_after_ms": run_lost_after_ms}
    sessions = create_session_app(store=store, steps=demo_steps, authorize=auth.user_of, require_user=True, base=BASE, **runs)
    files = {"/app.js": ("app.js", "text/javascript"), "/app.css": ("app.css", "text/css")}
    index_html = (assets / "index.html").read_text()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            # The session app's lifespan opens the store at startup and closes it at shutdown.
            await sessions(scope, receive, send)
            return
        path = scope["path"]
        if path == BASE or path.startswith(f"{BASE}/"):
            await sessions(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("Method not allowed", status_code=405)
        elif path in files:
            name, kind = files[path]
            response = Response((assets / name).read_bytes(), media_type=kind, headers={"cache-control": "no-cache"})
        else:
            # The page signs a new visitor in, so that the API calls that follow carry a user.
            response = Response(index_html, media_type="text/html", headers={"cache-control": "no-cache"})
            cookie = auth.sign_in(request)
            if cookie:
                response.headers.append("set-cookie", cookie)
        await response(scope, receive, send)

    return app


def run_lost_after_ms_of(environ: Mapping[str, str]) -> int | None:
    """RUN_LOST_AFTER_MS: a run whose server stopped answering is ended lost after this long (None: the app's 30 s)."""
    value = environ.get("RUN_LOST_AFTER_MS", "")
    return int(value) if value else None


def main() -> int:
    store_url = os.environ.get("SESSION_STORE", "sqlite:.data/sessions.db")
    assets = Path(os.environ.get("DEMO_ASSETS", Path(__file__).parent / ".assets"))
    if not (assets / "index.html").exists():
        print(f"workflow-session demo: no built page in {assets}: npx tsx python/examples/build_assets.ts {assets}", file=sys.stderr)
        return 1
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "3000"))
    run_lost_after_ms = run_lost_after_ms_of(os.environ)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    server = uvicorn.Server(uvicorn.Config(create_demo_app(store_url, assets, load_secret(), run_lost_after_ms), log_level="warning", timeout_graceful_shutdown=2))

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[listener]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(f"workflow-session demo on http://{host}:{listener.getsockname()[1]} (store: {store_url})", flush=True)
        await task

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    asyncio.run(serve())
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
