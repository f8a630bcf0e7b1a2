"""Serves the session endpoints alone on uvicorn: ``python -m workflow_session.serve --store URL``.

Prints ``workflow-session on http://HOST:PORT/api/session`` once it accepts requests.
``--conformance`` registers the protocol's conformance step and declares the conformance schema
(for testing only: it echoes what it is given); ``--migrations FILE`` declares the app's schema,
a JSON declaration with data steps only (``define_migrations``' input); ``--user-header NAME``
takes the caller's user id from that header (testing only: anyone can send it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from typing import NoReturn

from .app import create_session_app
from .migrations import Migrations, conformance_migrations, define_migrations
from .steps import conformance_steps
from .stores.open import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflow_session.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:.data/sessions.db", help="memory:, sqlite:PATH or postgres://… (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 for any free port")
    parser.add_argument("--base", default="/api/session", help="path of the endpoints (default %(default)s)")
    parser.add_argument("--conformance", action="store_true", help="register the conformance_echo step and declare the conformance schema (testing only)")
    parser.add_argument("--migrations", metavar="FILE", help="the app's schema: a JSON declaration of data steps ({version, migrations})")
    parser.add_argument("--user-header", metavar="NAME", help="take the user id from this request header (testing only)")
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("workflow-session: serve needs uvicorn: pip install 'workflow-session[serve]'", file=sys.stderr)
        return 2

    if args.conformance and args.migrations:
        parser.error("--conformance declares the conformance schema: give it or --migrations, not both")
    user_header = args.user_header.lower() if args.user_header else None
    try:
        migrations = conformance_migrations if args.conformance else read_migrations(args.migrations) if args.migrations else None
        store = open_store(args.store, migrations=migrations)
    except Exception as error:
        print(f"workflow-session: {error}", file=sys.stderr)
        return 1
    app = create_session_app(
        store=store,
        steps=conformance_steps if args.conformance else {},
        authorize=(lambda request: request.headers.get(user_header) or None) if user_header else None,
        base=args.base,
    )
    # Bound here, so that port 0 gets a free port that can be printed before the first request.
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[listener]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(f"workflow-session on http://{args.host}:{port}{args.base}", flush=True)
        await task

    # uvicorn stops gracefully on SIGTERM or SIGINT, then raises the signal again: exit 0 then.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    asyncio.run(serve())
    return 0 if server.started else 1


def read_migrations(path: str) -> Migrations:
    """The schema a ``--migrations`` file declares (JSON, data steps only: a function step names a function this command does not have)."""
    with open(path, encoding="utf-8") as file:
        try:
            declaration = json.load(file)
        except ValueError as error:
            raise ValueError(f"{path} is not JSON: {error}") from None
    return define_migrations(declaration)


def _run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    _run()
