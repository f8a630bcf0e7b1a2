"""Mounted in FastAPI: the protocol under the mount point, and FastAPI's own errors nowhere under it."""

from __future__ import annotations

import pytest
from conftest import client_of, new_id
from fastapi import FastAPI

from workflow_session import StepContext, StepError, create_session_app, memory_store

pytestmark = pytest.mark.anyio


def register(ctx: StepContext) -> dict[str, object]:
    signup = ctx.workflow("signup")
    if "@" not in signup.get("email", ""):
        raise StepError("Enter a valid email address first")
    signup.set_step("registered")
    return {"output": {"message": f"Welcome, {signup.get('email')}!"}}


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app.mount("/api/session", create_session_app(store=memory_store(), steps={"register": register}, authorize=lambda r: r.headers.get("x-user")))
    return app


async def test_mount_on_serves_the_mount_point_itself_without_a_redirect() -> None:
    app = FastAPI()
    create_session_app(store=memory_store(), authorize=lambda r: r.headers.get("x-user")).mount_on(app, "/api/session/")
    async with client_of(app, **{"x-user": "ada"}) as client:
        sid = new_id()
        assert (await client.post(f"/api/session/{sid}", json={"variables": {"a": 1}})).status_code == 200
        listed = await client.get("/api/session")  # no redirect followed: answered here
        assert listed.status_code == 200 and [s["sessionId"] for s in listed.json()["sessions"]] == [sid]
        wrong = await client.request("PATCH", "/api/session", content=b"")
        assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


async def test_the_endpoints_under_the_mount_point() -> None:
    async with client_of(make_app(), **{"x-user": "ada"}) as client:
        sid = new_id()
        assert (await client.get("/hello")).json() == {"hello": "world"}
        await client.post(f"/api/session/{sid}", json={"variables": {"wf:signup:v:email": "ada@example.com"}})
        run = await client.post(f"/api/session/{sid}/run/register")
        assert run.json()["output"] == {"message": "Welcome, ada@example.com!"}
        assert run.json()["session"]["variables"]["wf:signup:step"] == "registered"
        assert (await client.get(f"/api/session/{sid}")).json()["version"] == 2
        # GET {base}: FastAPI redirects the mount point to its slash form, where the app answers.
        listed = await client.get("/api/session", follow_redirects=True)
        assert listed.json()["sessions"][0]["sessionId"] == sid


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        ("GET", "/api/session/short", 400, "invalid_session_id"),
        ("PUT", "/api/session/abcdefgh12", 405, "method_not_allowed"),
        ("POST", "/api/session/abcdefgh12", 400, "invalid_patch"),
        ("GET", "/api/session/abcdefgh12/what/ever/else", 404, "not_found"),
        ("POST", "/api/session/abcdefgh12/run/nope", 404, "unknown_step"),
        ("PATCH", "/api/session/", 405, "method_not_allowed"),
    ],
)
async def test_no_fastapi_error_leaks_under_the_mount(method: str, path: str, status: int, code: str) -> None:
    async with client_of(make_app()) as client:
        response = await client.request(method, path, content=b"", headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (status, {"error": {"code": code, "message": response.json()["error"]["message"]}})
        assert response.headers["cache-control"] == "no-store"
