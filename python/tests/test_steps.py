"""Steps over HTTP: what they are given, what they return, what is merged, how they fail."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest
from conftest import client_of, new_id

from workflow_session import StepContext, StepError, StepResult, conformance_steps, create_session_app, memory_store, workflow_data_key

pytestmark = pytest.mark.anyio


def make_app(steps: dict[str, Any], errors: list[BaseException] | None = None, **options: Any) -> Any:
    def on_error(error: BaseException, request: Any, step: str | None) -> None:
        if errors is not None:
            errors.append(error)

    return create_session_app(store=memory_store(), steps=steps, authorize=lambda request: request.headers.get("x-user"), on_error=on_error, **options)


def error_code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_step_gets_the_stored_variables_input_and_user_and_its_changes_merge_as_one_version() -> None:
    seen: dict[str, Any] = {}

    def pay(ctx: StepContext) -> dict[str, Any]:
        seen.update(session_id=ctx.session_id, variables=copy.deepcopy(dict(ctx.variables)), input=ctx.input, user_id=ctx.user_id)
        with pytest.raises(TypeError):
            ctx.variables["cart"] = []  # type: ignore[index]
        ctx.variables["cart"].append("stolen")  # a copy: changes nothing stored
        checkout = ctx.workflow("checkout")
        checkout.set("paid", True)
        checkout.set_step("done")
        return {"output": {"total": 3}, "variables": {"receipt": "r-1"}, "deleted": ["draft"]}

    async with client_of(make_app({"pay": pay})) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"cart": ["milk"], "draft": "x"}}, headers={"x-user": "ada"})
        response = await client.post(f"/{sid}/run/pay", json={"input": {"card": "4242"}}, headers={"x-user": "ada"})
        assert response.status_code == 200
        body = response.json()
        assert body["output"] == {"total": 3}
        assert seen == {"session_id": sid, "variables": {"cart": ["milk"], "draft": "x"}, "input": {"card": "4242"}, "user_id": "ada"}
        variables = body["session"]["variables"]
        assert body["session"]["version"] == 2
        assert variables["cart"] == ["milk"] and variables["receipt"] == "r-1" and "draft" not in variables
        assert variables[workflow_data_key("checkout", "paid")] is True and variables["wf:checkout:step"] == "done"
        assert variables["wf:checkout:at"] == body["session"]["updatedAt"]
        assert (await client.get(f"/{sid}", headers={"x-user": "ada"})).json() == body["session"]


async def test_async_steps_and_step_result_and_sync_steps_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    async def slow(ctx: StepContext) -> StepResult:
        await asyncio.sleep(0)
        return StepResult(output="async", variables={"a": 1})

    def blocking(ctx: StepContext) -> None:
        threads.append(threading.get_ident())
        ctx.workflow("w").set("k", "v")

    async with client_of(make_app({"slow": slow, "blocking": blocking})) as client:
        sid = new_id()
        assert (await client.post(f"/{sid}/run/slow")).json()["output"] == "async"
        done = (await client.post(f"/{sid}/run/blocking")).json()
        assert done["output"] is None and done["session"]["variables"]["wf:w:v:k"] == "v" and done["session"]["version"] == 2
        assert threads and threads[0] != loop_thread


async def test_a_step_that_changes_nothing_bumps_nothing_and_creates_nothing() -> None:
    async with client_of(make_app({"look": lambda ctx: {"output": len(ctx.variables)}})) as client:
        sid = new_id()
        response = (await client.post(f"/{sid}/run/look", headers={"x-user": "ada"})).json()
        assert response["output"] == 0 and response["session"]["version"] == 0 and response["session"]["variables"] == {}
        assert (await client.get(f"/{sid}", headers={"x-user": "ada"})).status_code == 404
        await client.post(f"/{sid}", json={"variables": {"a": 1}})
        assert (await client.post(f"/{sid}/run/look")).json()["session"]["version"] == 1


async def test_a_run_on_a_missing_session_creates_it_owned_by_the_caller() -> None:
    async with client_of(make_app({"start": lambda ctx: {"variables": {"started": True}}})) as client:
        sid = new_id()
        session = (await client.post(f"/{sid}/run/start", headers={"x-user": "ada"})).json()["session"]
        assert session["version"] == 1 and session["userId"] == "ada"


async def test_another_users_session_is_refused_before_its_step_runs() -> None:
    ran: list[str] = []
    async with client_of(make_app({"spy": lambda ctx: ran.append(ctx.session_id)})) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"secret": 1}}, headers={"x-user": "ada"})
        for headers in [{"x-user": "mallory"}, {}]:
            assert error_code(await client.post(f"/{sid}/run/spy", headers=headers)) == (404, "not_found")
        assert ran == []


async def test_failing_steps_say_only_what_is_safe_and_store_nothing() -> None:
    def refuse(ctx: StepContext) -> None:
        ctx.workflow("w").set("half", "done")
        raise StepError("Add a card first")

    def crash(ctx: StepContext) -> None:
        raise RuntimeError("password=hunter2")

    steps: dict[str, Any] = {
        "refuse": refuse,
        "crash": crash,
        "bad_output": lambda ctx: {"output": float("nan")},
        "bad_result": lambda ctx: ["not", "a", "result"],
        "bad_variables": lambda ctx: {"variables": ["x"]},
        "bad_deleted": lambda ctx: {"deleted": [1]},
        "bad_key": lambda ctx: {"variables": {"__proto__": 1}},
        "bad_value": lambda ctx: {"variables": {"when": object()}},
        "too_big": lambda ctx: {"variables": {"big": "x" * 2000}},
    }
    errors: list[BaseException] = []
    async with client_of(make_app(steps, errors, max_bytes=1000)) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"kept": 1}})
        refused = await client.post(f"/{sid}/run/refuse")
        assert error_code(refused) == (500, "step_failed") and refused.json()["error"]["message"] == "Add a card first"
        crashed = await client.post(f"/{sid}/run/crash")
        assert crashed.json()["error"] == {"code": "step_failed", "message": "The step failed"}
        for name in ["bad_output", "bad_result", "bad_variables", "bad_deleted", "bad_key", "bad_value", "too_big"]:
            assert error_code(await client.post(f"/{sid}/run/{name}")) == (500, "step_failed"), name
        assert len(errors) == 9 and "hunter2" in str(errors[1])
        after = (await client.get(f"/{sid}")).json()
        assert after["variables"] == {"kept": 1} and after["version"] == 1


async def test_run_bodies_empty_without_a_type_or_json_with_input() -> None:
    echo = {**conformance_steps}
    async with client_of(make_app(echo)) as client:
        sid = new_id()
        assert (await client.post(f"/{sid}/run/conformance_echo")).json()["output"] == {"input": None, "seen": {}}
        # Empty, but with a form's content type: a cross-site form never runs a step.
        plain = await client.post(f"/{sid}/run/conformance_echo", content=b"", headers={"content-type": "text/plain"})
        assert error_code(plain) == (415, "unsupported_media_type")
        assert error_code(await client.post(f"/{sid}/run/conformance_echo", content=b'{"input": 1}', headers={"content-type": "text/plain"})) == (415, "unsupported_media_type")
        assert error_code(await client.post(f"/{sid}/run/conformance_echo", json=[1])) == (400, "invalid_patch")
        assert error_code(await client.post(f"/{sid}/run/conformance_echo", content=b"{", headers={"content-type": "application/json"})) == (400, "invalid_json")
        echoed = (await client.post(f"/{sid}/run/conformance_echo", json={"input": {"q": [1, 2]}})).json()
        assert echoed["output"]["input"] == {"q": [1, 2]} and echoed["session"]["variables"]["conformance_echo"] == {"q": [1, 2]}
        failed = await client.post(f"/{sid}/run/conformance_echo", json={"input": {"fail": "as asked"}})
        assert failed.json()["error"] == {"code": "step_failed", "message": "as asked"}
        assert error_code(await client.post(f"/{sid}/run/nope")) == (404, "unknown_step")


async def test_the_conformance_step_sleeps_in_a_synchronous_run_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import workflow_session.steps

    async with client_of(make_app({**conformance_steps})) as client:
        sid = new_id()
        began = time.monotonic()
        slept = (await client.post(f"/{sid}/run/conformance_echo", json={"input": {"sleepMs": 300}})).json()
        # Progress does nothing here: it sleeps, then echoes.
        assert time.monotonic() - began >= 0.3
        assert slept["output"] == {"input": {"sleepMs": 300}, "seen": {}} and slept["session"]["variables"] == {"conformance_echo": {"sleepMs": 300}}
        # At most 60 s (here the bound is made 0.2 s).
        monkeypatch.setattr(workflow_session.steps, "_CONFORMANCE_MAX_SLEEP_MS", 200)
        began = time.monotonic()
        capped = await client.post(f"/{sid}/run/conformance_echo", json={"input": {"sleepMs": 10**9}})
        assert capped.status_code == 200 and 0.2 <= time.monotonic() - began < 3
        # Not a number of milliseconds: no sleep.
        began = time.monotonic()
        for odd in [True, "500", None, -5]:
            assert (await client.post(f"/{sid}/run/conformance_echo", json={"input": {"sleepMs": odd}})).json()["output"]["input"] == {"sleepMs": odd}
        assert time.monotonic() - began < 1
