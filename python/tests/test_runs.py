"""Durable runs (docs/protocol.md, "Runs"): started once per id, watched, cancelled, timed out, lost, kept, on real SQLite files and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from conftest import asgi_call, client_of, http_scope, new_id

from workflow_session import (
    Caller,
    SessionProtocolError,
    SessionStore,
    StepContext,
    StepError,
    StepResult,
    conformance_steps,
    create_session_app,
    open_store,
    timed_step,
)
from workflow_session.runs import ms_of
from workflow_session.stores.postgres import CHANGE_CHANNEL

pytestmark = pytest.mark.anyio
T = TypeVar("T")
ADA = {"x-user": "ada"}


def user_header(request: Any) -> str | None:
    return request.headers.get("x-user")


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["code"]


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 5.0) -> T:
    """``probe()``'s first value that is not None (or False), tried every 20 ms for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running_app(store: SessionStore, steps: dict[str, Any], **options: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app on ``store`` with an in-process client; its runs are stopped and the store closed after."""
    app = create_session_app(store=store, steps=steps, authorize=user_header, **options)
    try:
        async with client_of(app) as client:
            yield app, client
    finally:
        await app.aclose()
        await store.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A store to open: in memory, a SQLite file, or a table of its own in the test database."""
    if request.param == "memory":
        return "memory:", {}
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/runs.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_runs_{uuid.uuid4().hex[:10]}"}


def open_url(store_url: tuple[str, dict[str, Any]]) -> SessionStore:
    url, options = store_url
    return open_store(url, **options)


async def finished(client: httpx.AsyncClient, sid: str, run_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The run once it ended (long polls of at most 5 s)."""

    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/{sid}/runs/{run_id}?after=1000000&waitMs=500", headers=headers or {})).json()
        return body if body["run"]["status"] != "running" else None

    return await eventually(probe)


# --- Start: once per id, join or refuse -------------------------------------------------------------


async def test_a_start_runs_the_step_once_per_run_id_and_a_retry_answers_200(store_url: Any) -> None:
    calls: list[Any] = []
    gate = asyncio.Event()

    async def summarize(ctx: StepContext) -> StepResult:
        calls.append((ctx.run_id, ctx.input, dict(ctx.variables), ctx.user_id))
        await gate.wait()
        return StepResult(output={"pages": ctx.input}, variables={"summary": "short"})

    async with running_app(open_url(store_url), {"summarize": summarize}) as (_, client):
        sid = new_id()
        started = await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "summarize", "input": 3}, headers=ADA)
        assert started.status_code == 202
        run = started.json()["run"]
        assert list(run) == ["runId", "step", "status", "input", "progress", "output", "error", "startedAt", "finishedAt", "heartbeatAt", "readVersion", "version", "rev"]
        assert [run["runId"], run["step"], run["status"], run["input"], run["rev"], run["readVersion"], run["version"]] == ["run-0001", "summarize", "running", 3, 1, 1, None]
        assert "session" not in started.json()
        # The session was created with the run (empty, version 1, the caller's).
        session = (await client.get(f"/{sid}", headers=ADA)).json()
        assert session["version"] == 1 and session["variables"] == {} and session["userId"] == "ada"
        assert session["createdAt"] == run["startedAt"]
        # A retry (whatever its body) answers the run: the step is not run again.
        again = await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "summarize", "input": 99}, headers=ADA)
        assert again.status_code == 200 and again.json()["run"] == run
        gate.set()
        done = await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-0001", "step": "summarize"}, headers=ADA)
        assert done.status_code == 200
        body = done.json()
        assert body["run"]["status"] == "succeeded" and body["run"]["output"] == {"pages": 3} and body["run"]["version"] == 2
        assert body["run"]["rev"] == 2 and body["run"]["error"] is None and body["run"]["finishedAt"] is not None
        assert body["session"]["variables"] == {"summary": "short"} and body["session"]["version"] == 2
        assert calls == [("run-0001", 3, {}, "ada")]


async def test_a_second_run_of_a_running_step_joins_it_or_is_refused(tmp_path: Path) -> None:
    calls: list[str | None] = []
    gate = asyncio.Event()

    async def slow(ctx: StepContext) -> None:
        calls.append(ctx.run_id)
        await gate.wait()

    async with running_app(open_store(f"sqlite:{tmp_path}/join.db"), {"slow": slow, "other": slow}) as (_, client):
        sid = new_id()
        assert (await client.post(f"/{sid}/runs", json={"runId": "first-run", "step": "slow"})).status_code == 202
        joined = await client.post(f"/{sid}/runs", json={"runId": "second-run", "step": "slow"})
        assert joined.status_code == 200 and joined.json()["run"]["runId"] == "first-run"
        # Another step is not this one: it starts.
        assert (await client.post(f"/{sid}/runs", json={"runId": "other-run", "step": "other"})).status_code == 202
        gate.set()
        await finished(client, sid, "first-run")
        # The joined id was never recorded: once the step is free, it starts.
        assert (await client.post(f"/{sid}/runs", json={"runId": "second-run", "step": "slow"})).status_code == 202
        await finished(client, sid, "second-run")
        assert calls == ["first-run", "other-run", "second-run"]

    gate.clear()
    calls.clear()
    async with running_app(open_store(f"sqlite:{tmp_path}/refuse.db"), {"slow": slow}, concurrent_runs="refuse") as (_, client):
        sid = new_id()
        assert (await client.post(f"/{sid}/runs", json={"runId": "first-run", "step": "slow"})).status_code == 202
        refused = await client.post(f"/{sid}/runs", json={"runId": "second-run", "step": "slow"})
        assert error_of(refused) == (409, "run_in_progress")
        assert [run["runId"] for run in (await client.get(f"/{sid}/runs")).json()["runs"]] == ["first-run"]
        gate.set()
        await finished(client, sid, "first-run")
        assert calls == ["first-run"]
    with pytest.raises(ValueError):
        create_session_app(store=open_store("memory:"), concurrent_runs="queue")  # type: ignore[arg-type]


async def test_the_start_is_checked_in_the_protocols_order(tmp_path: Path) -> None:
    async with running_app(open_store(f"sqlite:{tmp_path}/checks.db"), {"echo": lambda ctx: None}, max_bytes=1000) as (_, client):
        sid = new_id()
        good = {"runId": "run-0001", "step": "echo"}
        assert error_of(await client.post("/short/runs", json=good)) == (400, "invalid_session_id")
        assert error_of(await client.put(f"/{sid}/runs", json=good)) == (405, "method_not_allowed")
        assert error_of(await client.post(f"/{sid}/runs", content=json.dumps(good))) == (415, "unsupported_media_type")
        assert error_of(await client.post(f"/{sid}/runs", content=b"{", headers={"content-type": "application/json"})) == (400, "invalid_json")
        for body in [[], "x", {}, {"step": "echo"}, {"runId": "short", "step": "echo"}, {"runId": "bad id!!", "step": "echo"}, {"runId": 12345678, "step": "echo"}, {"runId": "run-0001", "step": 5}, {"runId": "run-0001"}]:
            assert error_of(await client.post(f"/{sid}/runs", json=body)) == (400, "invalid_run"), body
        assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "nope"})) == (404, "unknown_step")
        lone = b'{"runId": "run-0001", "step": "echo", "input": "\\ud800"}'
        assert error_of(await client.post(f"/{sid}/runs", content=lone, headers={"content-type": "application/json"})) == (400, "invalid_patch")
        deep: Any = "leaf"
        for _ in range(65):
            deep = [deep]
        assert error_of(await client.post(f"/{sid}/runs", json={**good, "input": deep})) == (400, "invalid_patch")
        assert error_of(await client.post(f"/{sid}/runs", json={**good, "input": "x" * 2000})) == (413, "too_large")
        for query in ["waitMs=abc", "waitMs=30001", "waitMs=-1", "waitMs=1.5"]:
            assert error_of(await client.post(f"/{sid}/runs?{query}", json=good)) == (400, "bad_request"), query
        for query in ["after=x&waitMs=10", "after=1&waitMs=40000"]:
            assert error_of(await client.get(f"/{sid}/runs/run-0001?{query}")) == (400, "bad_request"), query
        # Nothing of those was stored.
        assert error_of(await client.get(f"/{sid}")) == (404, "not_found")
        assert (await client.post(f"/{sid}/runs", json=good)).status_code == 202


# --- Cancel, time limits, the end -------------------------------------------------------------------


async def test_a_cancel_ends_a_running_async_step_by_cancelling_its_task_and_merges_nothing(store_url: Any) -> None:
    seen: list[str] = []

    async def waits(ctx: StepContext) -> StepResult:
        ctx.progress("waiting")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return StepResult(variables={"never": True})

    async with running_app(open_url(store_url), {"waits": waits}) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"kept": 1}})
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "waits"})
        await eventually(lambda: _progress_of(client, sid, "run-0001"))
        cancelled = await client.post(f"/{sid}/runs/run-0001/cancel")
        assert cancelled.status_code == 200
        run = cancelled.json()["run"]
        assert run["status"] == "cancelled" and run["error"] == {"code": "cancelled", "message": "The run was cancelled"}
        assert run["output"] is None and run["version"] is None and run["finishedAt"] is not None
        await eventually(lambda: _true(bool(seen)))
        # A finished run is answered as it is.
        again = await client.post(f"/{sid}/runs/run-0001/cancel")
        assert again.status_code == 200 and again.json()["run"] == run
        await asyncio.sleep(0.1)
        session = (await client.get(f"/{sid}")).json()
        assert session["variables"] == {"kept": 1} and session["version"] == 1
        assert (await client.get(f"/{sid}/runs/run-0001")).json()["run"] == run


async def test_a_cancel_of_a_sync_step_sets_ctx_cancelled_and_its_result_is_dropped(tmp_path: Path) -> None:
    saw: list[bool] = []
    threads: list[int] = []

    def spins(ctx: StepContext) -> StepResult:
        threads.append(threading.get_ident())
        ctx.progress({"spinning": True})
        saw.append(ctx.cancelled.wait(10))
        return StepResult(output="late", variables={"never": True})

    async with running_app(open_store(f"sqlite:{tmp_path}/sync.db"), {"spins": spins}) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "spins"})
        await eventually(lambda: _progress_of(client, sid, "run-0001"))
        assert (await client.post(f"/{sid}/runs/run-0001/cancel")).json()["run"]["status"] == "cancelled"
        await eventually(lambda: _true(bool(saw)))
        assert saw == [True] and threads[0] != threading.get_ident()
        await asyncio.sleep(0.1)
        run = (await client.get(f"/{sid}/runs/run-0001")).json()["run"]
        assert run["status"] == "cancelled" and run["output"] is None
        assert (await client.get(f"/{sid}")).json()["version"] == 1


async def test_a_step_ending_while_a_cancel_arrives_ends_in_exactly_one_state(store_url: Any) -> None:
    gates: dict[str, asyncio.Event] = {}

    async def quick(ctx: StepContext) -> StepResult:
        await gates[ctx.session_id].wait()
        return StepResult(output="done", variables={"n": 1})

    outcomes: set[str] = set()
    async with running_app(open_url(store_url), {"quick": quick}) as (_, client):
        for attempt in range(12):
            sid = new_id()
            gates[sid] = asyncio.Event()
            await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "quick"})

            async def release(delay: int = attempt % 4) -> None:
                for _ in range(delay):
                    await asyncio.sleep(0)
                gates[sid].set()

            cancel, _ = await asyncio.gather(client.post(f"/{sid}/runs/run-0001/cancel"), release())
            answered = cancel.json()["run"]
            run = (await finished(client, sid, "run-0001"))["run"]
            assert run["status"] in ("succeeded", "cancelled") and answered["status"] in ("running", run["status"])
            session = (await client.get(f"/{sid}")).json()
            if run["status"] == "succeeded":
                assert session["version"] == 2 and session["variables"] == {"n": 1} and run["version"] == 2 and run["rev"] == 2
            else:
                assert session["version"] == 1 and session["variables"] == {} and run["version"] is None and run["rev"] == 2
            outcomes.add(run["status"])
    assert outcomes  # either end is right; each attempt ended in exactly one


async def test_the_store_writes_one_end_over_a_running_run_only(store_url: Any) -> None:
    store = open_url(store_url)
    try:
        sid = new_id()
        await store.start_run(sid, "run-0001", "step")
        cancelled = await store.cancel_run(sid, "run-0001")
        assert cancelled is not None and cancelled["status"] == "cancelled" and cancelled["rev"] == 2
        late = await store.finish_run(sid, "run-0001", "succeeded", output=1, changes={"variables": {"n": 1}})
        assert not late.ended and late.run == cancelled and late.snapshot is None
        assert (await store.get(sid))["version"] == 1  # type: ignore[index]
        await store.start_run(sid, "run-0002", "step")
        end = await store.finish_run(sid, "run-0002", "succeeded", output=1, changes={"variables": {"n": 1}})
        assert end.ended and end.applied and end.run is not None and end.run["version"] == 2 and end.snapshot is not None
        assert await store.cancel_run(sid, "run-0002") == end.run  # finished: as it is
        # Changes that break a rule: failed, nothing merged.
        await store.start_run(sid, "run-0003", "step")
        broken = await store.finish_run(sid, "run-0003", "succeeded", changes={"variables": {"__proto__": 1}})
        assert broken.ended and broken.run is not None and broken.run["status"] == "failed" and broken.problem is not None
        assert broken.run["error"] is not None and broken.run["error"]["code"] == "step_failed"
        too_big = await store.start_run(sid, "run-0004", "step")
        assert too_big.started and too_big.run["readVersion"] == 2
        big = await store.finish_run(sid, "run-0004", "succeeded", changes={"variables": {"big": "x" * 2000}}, max_bytes=1000)
        assert big.run is not None and big.run["status"] == "failed" and (await store.get(sid))["version"] == 2  # type: ignore[index]
        # Nothing changed: succeeded at the current version, no bump.
        await store.start_run(sid, "run-0005", "step")
        same = await store.finish_run(sid, "run-0005", "succeeded", output=None, changes={})
        assert same.run is not None and same.run["version"] == 2 and not same.applied
    finally:
        await store.close()


async def test_time_limits_end_runs_timed_out(tmp_path: Path) -> None:
    saw: list[bool] = []

    async def sleepy(ctx: StepContext) -> StepResult:
        await asyncio.sleep(30)
        return StepResult(variables={"never": True})

    def blocking(ctx: StepContext) -> StepResult:
        saw.append(ctx.cancelled.wait(10))
        return StepResult(variables={"never": True})

    steps: dict[str, Any] = {
        "own": timed_step(sleepy, timeout_ms=150),
        "app_wide": blocking,
        "fast": lambda ctx: {"output": "in time"},
        "timed_sync": timed_step(lambda ctx: {"output": "no limit here"}, timeout_ms=1),
    }
    async with running_app(open_store(f"sqlite:{tmp_path}/timeouts.db"), steps, run_timeout_ms=300) as (_, client):
        sid = new_id()
        # The synchronous run takes a timed step as it is.
        assert (await client.post(f"/{sid}/run/timed_sync")).json()["output"] == "no limit here"
        for run_id, step in [("run-own-limit", "own"), ("run-app-wide", "app_wide"), ("run-fast", "fast")]:
            await client.post(f"/{sid}/runs", json={"runId": run_id, "step": step})
        own = (await finished(client, sid, "run-own-limit"))["run"]
        assert own["status"] == "timed_out" and own["error"] == {"code": "timed_out", "message": "The step did not finish within 150 ms"}
        wide = (await finished(client, sid, "run-app-wide"))["run"]
        assert wide["status"] == "timed_out" and wide["error"]["message"] == "The step did not finish within 300 ms"
        assert (await finished(client, sid, "run-fast"))["run"]["output"] == "in time"
        await eventually(lambda: _true(bool(saw)))
        assert saw == [True] and (await client.get(f"/{sid}")).json()["variables"] == {}
    with pytest.raises(ValueError):
        timed_step(sleepy, timeout_ms=0)
    with pytest.raises(ValueError):
        create_session_app(store=open_store("memory:"), run_timeout_ms=0)


async def test_a_failing_step_ends_failed_and_a_step_error_is_logged_without_a_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(ctx: StepContext) -> None:
        ctx.workflow("w").set("half", "done")
        raise StepError("Add a card first")

    async def crash(ctx: StepContext) -> None:
        raise RuntimeError("password=hunter2")

    steps: dict[str, Any] = {"refuse": refuse, "crash": crash, "bad_key": lambda ctx: {"variables": {"__proto__": 1}}}
    caplog.set_level(logging.WARNING, logger="workflow_session")
    store = open_store(f"sqlite:{tmp_path}/fail.db")
    app = create_session_app(store=store, steps=steps)  # the default on_error: the workflow_session logger
    async with client_of(app) as client:
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-refuse", "step": "refuse"})
        refused = (await finished(client, sid, "run-refuse"))["run"]
        assert refused["status"] == "failed" and refused["error"] == {"code": "step_failed", "message": "Add a card first"}
        [line] = [record for record in caplog.records if record.name == "workflow_session"]
        assert line.exc_info is None and "Add a card first" in line.getMessage() and "Traceback" not in caplog.text
        caplog.clear()
        await client.post(f"/{sid}/runs", json={"runId": "run-crash", "step": "crash"})
        crashed = (await finished(client, sid, "run-crash"))["run"]
        assert crashed["error"] == {"code": "step_failed", "message": "The step failed"}
        [line] = [record for record in caplog.records if record.name == "workflow_session"]
        assert line.exc_info is not None and "hunter2" in caplog.text  # in the log, never in the answer
        await client.post(f"/{sid}/runs", json={"runId": "run-bad-key", "step": "bad_key"})
        bad = (await finished(client, sid, "run-bad-key"))["run"]
        assert bad["status"] == "failed" and bad["error"]["code"] == "step_failed" and "cannot be stored" in bad["error"]["message"]
        session = (await client.get(f"/{sid}")).json()
        assert session["variables"] == {} and session["version"] == 1
    await app.aclose()
    await store.close()


# --- Progress and long polls ------------------------------------------------------------------------


async def test_progress_is_written_at_most_four_times_a_second_and_the_last_value_is_kept(tmp_path: Path) -> None:
    calls: list[int] = []

    async def chatty(ctx: StepContext) -> StepResult:
        until = time.monotonic() + 1.0
        n = 0
        while n < 1000 and time.monotonic() < until:
            ctx.progress({"n": n})
            calls.append(n)
            n += 1
            if n % 10 == 0:
                await asyncio.sleep(0.01)
        with pytest.raises(ValueError):
            ctx.progress(float("nan"))
        with pytest.raises(ValueError):
            ctx.progress("x" * 5000)
        return StepResult(output=n)

    def threaded(ctx: StepContext) -> None:
        for n in range(1000):
            ctx.progress(n)
            if n % 100 == 0:
                time.sleep(0.05)

    async with running_app(open_store(f"sqlite:{tmp_path}/progress.db"), {"chatty": chatty, "threaded": threaded}, max_bytes=4000) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "chatty"})
        run = (await finished(client, sid, "run-0001"))["run"]
        assert run["status"] == "succeeded" and len(calls) >= 100
        assert run["progress"] == {"n": calls[-1]}  # the last value, flushed with the end
        # rev: 1 at the start, at most ~5 progress writes in the second (4 a second, the first at once), 1 for the end.
        assert 3 <= run["rev"] <= 7, run["rev"]
        await client.post(f"/{sid}/runs", json={"runId": "run-0002", "step": "threaded"})
        run = (await finished(client, sid, "run-0002"))["run"]
        assert run["status"] == "succeeded" and run["progress"] == 999 and run["rev"] <= 6


async def test_a_long_poll_answers_as_soon_as_the_run_changes_or_after_its_wait(tmp_path: Path) -> None:
    step_gate, end_gate = asyncio.Event(), asyncio.Event()

    async def staged(ctx: StepContext) -> StepResult:
        await step_gate.wait()
        ctx.progress("half")
        await end_gate.wait()
        return StepResult(output="all")

    async with running_app(open_store(f"sqlite:{tmp_path}/poll.db"), {"staged": staged}) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "staged"})
        started = time.monotonic()
        quiet = (await client.get(f"/{sid}/runs/run-0001?after=1&waitMs=300")).json()["run"]
        assert quiet["rev"] == 1 and quiet["status"] == "running" and time.monotonic() - started >= 0.29
        asyncio.get_running_loop().call_later(0.2, step_gate.set)
        started = time.monotonic()
        changed = (await client.get(f"/{sid}/runs/run-0001?after=1&waitMs=10000")).json()["run"]
        assert changed["rev"] == 2 and changed["progress"] == "half" and time.monotonic() - started < 3
        # Without ?after=, or with a rev it has not reached yet after the end: at once.
        assert (await client.get(f"/{sid}/runs/run-0001?waitMs=10000")).json()["run"]["rev"] == 2
        asyncio.get_running_loop().call_later(0.1, end_gate.set)
        ended = (await client.get(f"/{sid}/runs/run-0001?after=2&waitMs=10000")).json()
        assert ended["run"]["status"] == "succeeded" and ended["session"]["version"] == 1
        started = time.monotonic()
        assert (await client.get(f"/{sid}/runs/run-0001?after=50&waitMs=10000")).json()["run"]["rev"] == 3
        assert time.monotonic() - started < 1  # a finished run never changes: no wait


async def test_a_start_with_wait_ms_answers_at_the_runs_first_change_not_at_its_end(store_url: Any) -> None:
    gate = asyncio.Event()

    async def reports(ctx: StepContext) -> StepResult:
        ctx.progress({"done": 1})
        await gate.wait()
        return StepResult(output="all", variables={"done": True})

    async def quiet(ctx: StepContext) -> None:
        await gate.wait()

    def quick(ctx: StepContext) -> StepResult:
        return StepResult(output="at once", variables={"quick": 1})

    async with running_app(open_url(store_url), {"reports": reports, "quiet": quiet, "quick": quick}) as (_, client):
        sid = new_id()
        began = time.monotonic()
        started = await client.post(f"/{sid}/runs?waitMs=10000", json={"runId": "run-0001", "step": "reports"})
        # Its first stored progress value answers the start: the step is still running.
        assert started.status_code == 202 and time.monotonic() - began < 3
        assert "session" not in started.json()
        run = started.json()["run"]
        assert [run["status"], run["rev"], run["progress"]] == ["running", 2, {"done": 1}]
        # A quick step is one request: its end, with the session.
        done = await client.post(f"/{sid}/runs?waitMs=10000", json={"runId": "run-0002", "step": "quick"})
        assert done.status_code == 202
        assert [done.json()["run"]["status"], done.json()["run"]["output"]] == ["succeeded", "at once"]
        assert done.json()["session"]["variables"] == {"quick": 1}
        # A run that does not change within the wait: answered after it, as it is (rev 1).
        began = time.monotonic()
        waited = await client.post(f"/{sid}/runs?waitMs=300", json={"runId": "run-0003", "step": "quiet"})
        assert waited.status_code == 202 and time.monotonic() - began >= 0.29
        assert [waited.json()["run"]["status"], waited.json()["run"]["rev"]] == ["running", 1]
        # A start with the id of a run that exists waits for a change past the rev it has (here, the end).
        asyncio.get_running_loop().call_later(0.2, gate.set)
        began = time.monotonic()
        again = await client.post(f"/{sid}/runs?waitMs=10000", json={"runId": "run-0001", "step": "reports"})
        assert again.status_code == 200 and time.monotonic() - began < 3
        assert [again.json()["run"]["status"], again.json()["run"]["rev"], again.json()["run"]["output"]] == ["succeeded", 3, "all"]
        assert again.json()["session"]["variables"] == {"quick": 1, "done": True}
        # A finished run is answered at once.
        began = time.monotonic()
        assert (await client.post(f"/{sid}/runs?waitMs=10000", json={"runId": "run-0002", "step": "quick"})).json()["run"]["rev"] == 2
        assert time.monotonic() - began < 1


# --- Lost runs and shutdown -------------------------------------------------------------------------


async def test_a_running_run_with_an_old_heartbeat_is_ended_lost_by_whoever_reads_it(store_url: Any) -> None:
    store = open_url(store_url)
    ran: list[str | None] = []
    async with running_app(store, {"noop": lambda ctx: ran.append(ctx.run_id)}, run_lost_after_ms=200) as (_, client):
        sid = new_id()
        # Runs written by a server that then stopped (no heartbeat comes): only the records.
        for run_id in ["run-get1", "run-list", "run-again", "run-stale"]:
            start = await store.start_run(sid, run_id, "noop" if run_id == "run-stale" else f"step-{run_id}")
            assert start.started
        await asyncio.sleep(0.3)
        got = (await client.get(f"/{sid}/runs/run-get1")).json()["run"]
        assert got["status"] == "lost" and got["error"] == {"code": "lost", "message": "The server running the step stopped answering"}
        assert got["rev"] == 2 and got["finishedAt"] is not None
        assert (await store.get_run(sid, "run-get1", lost_after_ms=10**9)) == got  # in the store first
        listed = (await client.get(f"/{sid}/runs")).json()["runs"]
        assert {run["runId"]: run["status"] for run in listed} == dict.fromkeys(["run-get1", "run-list", "run-again", "run-stale"], "lost")
        # A start of a step whose running run is stale: that one ends lost, the new one starts.
        fresh = await store.start_run(sid, "run-fresh", "noop2")
        assert fresh.started
        await asyncio.sleep(0.3)
        restarted = await client.post(f"/{sid}/runs", json={"runId": "run-next", "step": "noop"})
        assert restarted.status_code == 202
        await finished(client, sid, "run-next")
        assert ran == ["run-next"]
        # A start with a stale run's id answers it lost (never runs it).
        assert (await client.post(f"/{sid}/runs", json={"runId": "run-fresh", "step": "noop"})).json()["run"]["status"] == "lost"


async def test_this_servers_own_runs_are_not_lost_while_it_runs_them(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def slow(ctx: StepContext) -> StepResult:
        await gate.wait()
        return StepResult(output="ok")

    async with running_app(open_store(f"sqlite:{tmp_path}/own.db"), {"slow": slow}, run_lost_after_ms=300) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "slow"})
        before = (await client.get(f"/{sid}/runs/run-0001")).json()["run"]
        await asyncio.sleep(0.5)  # heartbeats every 100 ms meanwhile
        after = (await client.get(f"/{sid}/runs/run-0001")).json()["run"]
        assert after["status"] == "running" and after["rev"] == 1 and ms_of(after["heartbeatAt"]) > ms_of(before["heartbeatAt"])
        gate.set()
        assert (await finished(client, sid, "run-0001"))["run"]["status"] == "succeeded"


async def test_a_shutdown_ends_the_servers_running_runs_lost(serve: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    saw: list[bool] = []

    async def waits(ctx: StepContext) -> None:
        await asyncio.sleep(60)

    def blocks(ctx: StepContext) -> None:
        saw.append(ctx.cancelled.wait(60))

    path = f"sqlite:{tmp_path}/shutdown.db"
    server = serve(lambda: create_session_app(store=open_store(path), steps={"waits": waits, "blocks": blocks}))
    sid = new_id()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for run_id, step in [("run-async", "waits"), ("run-sync", "blocks")]:
            assert (await client.post(f"/{sid}/runs", json={"runId": run_id, "step": step})).status_code == 202
    server.stop()
    assert saw == [True]
    store = open_store(path)
    try:
        runs = await store.list_runs(sid)
        assert runs is not None and {run["runId"]: run["status"] for run in runs} == {"run-async": "lost", "run-sync": "lost"}
        assert all(run["error"] == {"code": "lost", "message": "The server stopped while the step ran"} for run in runs)
    finally:
        await store.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "workflow_session"]
    assert sorted(lines) == sorted(
        f'workflow-session: run "{run_id}" of step "{step}" (session {sid}) ended lost: the server stopped while the step ran'
        for run_id, step in [("run-async", "waits"), ("run-sync", "blocks")]
    )
    assert "CancelledError" not in caplog.text and "Traceback" not in caplog.text


async def test_requests_waiting_for_a_run_at_shutdown_answer_503_in_json(tmp_path: Path) -> None:
    async def waits(ctx: StepContext) -> None:
        await asyncio.sleep(60)

    store = open_store(f"sqlite:{tmp_path}/wait503.db")
    app = create_session_app(store=store, steps={"waits": waits})
    sid = new_id()
    async with client_of(app) as client:
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "waits"})
        waiting = asyncio.ensure_future(client.get(f"/{sid}/runs/run-0001?after=1&waitMs=20000"))
        await asyncio.sleep(0.1)
        app.close()
        answer = await asyncio.wait_for(waiting, 5)
        assert error_of(answer) == (503, "unavailable") and answer.headers["retry-after"] == "1"
        assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-0002", "step": "waits"})) == (503, "unavailable")
    await store.close()  # waits for the run's end to be written
    reopened = open_store(f"sqlite:{tmp_path}/wait503.db")
    assert (await reopened.get_run(sid, "run-0001"))["status"] == "lost"  # type: ignore[index]
    await reopened.close()

    # A server that cancels a waiting request (its graceful shutdown timed out) gets the protocol's 503, not a plain-text 500.
    store = open_store(f"sqlite:{tmp_path}/cancelled.db")
    app = create_session_app(store=store, steps={"waits": waits})
    async with client_of(app) as client:
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "waits"})
    call, sent = asgi_call(app, http_scope("GET", f"/{sid}/runs/run-0001", b"after=1&waitMs=20000"))
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.wait_for(task, 5)
    assert sent[0]["status"] == 503 and json.loads(sent[1]["body"])["error"]["code"] == "unavailable"
    await app.aclose()
    await store.close()


# --- Access, keeping, deleting ----------------------------------------------------------------------


async def test_another_users_session_is_404_on_every_run_endpoint_and_a_run_of_another_session_is_unknown(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def slow(ctx: StepContext) -> None:
        await gate.wait()

    async with running_app(open_store(f"sqlite:{tmp_path}/owner.db"), {"slow": slow}) as (_, client):
        sid, other = new_id(), new_id()
        assert (await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "slow"}, headers=ADA)).status_code == 202
        await client.post(f"/{other}", json={"variables": {"a": 1}}, headers=ADA)
        for headers in [{"x-user": "mallory"}, {}]:
            assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-0002", "step": "slow"}, headers=headers)) == (404, "not_found")
            assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "slow"}, headers=headers)) == (404, "not_found")
            assert error_of(await client.get(f"/{sid}/runs", headers=headers)) == (404, "not_found")
            assert error_of(await client.get(f"/{sid}/runs/run-0001", headers=headers)) == (404, "not_found")
            assert error_of(await client.get(f"/{sid}/runs/run-0001?after=0&waitMs=100", headers=headers)) == (404, "not_found")
            assert error_of(await client.post(f"/{sid}/runs/run-0001/cancel", headers=headers)) == (404, "not_found")
        # A run id of another session answers exactly like an unknown one.
        for path in [f"/{other}/runs/run-0001", f"/{other}/runs/run-0001/cancel"]:
            method = client.post if path.endswith("cancel") else client.get
            theirs = await method(path, headers=ADA)
            unknown = await method(path.replace("run-0001", "run-9999"), headers=ADA)
            assert error_of(theirs) == (404, "not_found") and theirs.json() == unknown.json() == {"error": {"code": "not_found", "message": "No such run"}}
        assert error_of(await client.get(f"/{new_id()}/runs", headers=ADA)) == (404, "not_found")
        assert (await client.get(f"/{sid}/runs/run-0001", headers=ADA)).json()["run"]["status"] == "running"
        assert (await client.get(f"/{other}/runs", headers=ADA)).json() == {"runs": []}
        gate.set()


async def test_the_runs_of_a_missing_or_unreachable_session_are_404_no_such_session_alike(tmp_path: Path) -> None:
    async with running_app(open_store(f"sqlite:{tmp_path}/list.db"), {"quick": lambda ctx: None}) as (_, client):
        sid, missing = new_id(), new_id()
        await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-0001", "step": "quick"}, headers=ADA)
        expected = {"error": {"code": "not_found", "message": "No such session"}}
        answers = [
            await client.get(f"/{missing}/runs", headers=ADA),  # no such session
            await client.get(f"/{sid}/runs", headers={"x-user": "mallory"}),  # another user's
            await client.get(f"/{sid}/runs"),  # an anonymous caller, on a user's session
            await client.get(f"/{missing}/runs"),
        ]
        for answer in answers:
            assert answer.status_code == 404 and answer.json() == expected
            assert dict(answer.headers) == dict(answers[0].headers)
            assert answer.content == answers[0].content
        # As GET {base}/{id} answers them.
        assert (await client.get(f"/{missing}", headers=ADA)).content == answers[0].content
        assert (await client.get(f"/{sid}", headers={"x-user": "mallory"})).content == answers[0].content
        # Listing created nothing; the owner lists the runs.
        assert (await client.get(f"/{missing}", headers=ADA)).status_code == 404
        assert [run["runId"] for run in (await client.get(f"/{sid}/runs", headers=ADA)).json()["runs"]] == ["run-0001"]


async def test_a_session_keeps_its_fifty_newest_finished_runs(store_url: Any) -> None:
    store = open_url(store_url)
    try:
        sid = new_id()
        await store.start_run(sid, "run-running", "long")
        for n in range(55):
            await asyncio.sleep(0.002)  # distinct startedAt
            await store.start_run(sid, f"run-{n:05d}", "step")
            await store.finish_run(sid, f"run-{n:05d}", "succeeded")
        await asyncio.sleep(0.002)
        await store.start_run(sid, "run-last1", "step")
        runs = await store.list_runs(sid)
        assert runs is not None
        finished_ids = [run["runId"] for run in runs if run["status"] != "running"]
        assert finished_ids == [f"run-{n:05d}" for n in range(54, 4, -1)]  # the 50 newest, newest first
        assert {run["runId"] for run in runs if run["status"] == "running"} == {"run-running", "run-last1"}
    finally:
        await store.close()


async def test_deleting_a_session_deletes_its_runs_and_stops_their_steps(tmp_path: Path) -> None:
    seen: list[str] = []

    async def waits(ctx: StepContext) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    path = tmp_path / "delete.db"
    async with running_app(open_store(f"sqlite:{path}"), {"waits": waits, "fast": lambda ctx: None}, run_lost_after_ms=300) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}/runs", json={"runId": "run-fast", "step": "fast"})
        await finished(client, sid, "run-fast")
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "waits"})
        assert (await client.delete(f"/{sid}")).status_code == 204
        assert error_of(await client.get(f"/{sid}/runs")) == (404, "not_found")
        assert error_of(await client.get(f"/{sid}/runs/run-0001")) == (404, "not_found")
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM ws_runs WHERE session_id = ?", (sid,)).fetchone() == (0,)
        await eventually(lambda: _true(bool(seen)))  # its next heartbeat found no run: the step was stopped
        # A new session with the id starts with no runs.
        await client.post(f"/{sid}", json={"variables": {"a": 1}})
        assert (await client.get(f"/{sid}/runs")).json() == {"runs": []}


# --- The conformance step ---------------------------------------------------------------------------


async def test_the_conformance_step_sleeps_reporting_progress_then_echoes(store_url: Any) -> None:
    async with running_app(open_url(store_url), {**conformance_steps}) as (_, client):
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"kept": 1}})
        began = time.monotonic()
        start = {"runId": "run-0001", "step": "conformance_echo", "input": {"sleepMs": 800}}
        started = await client.post(f"/{sid}/runs?waitMs=10000", json=start)
        # The start answers at its first progress value, reported at once.
        run = started.json()["run"]
        assert started.status_code == 202 and time.monotonic() - began < 0.7
        assert [run["status"], list(run["progress"])] == ["running", ["slept"]] and run["rev"] >= 2
        later = (await client.get(f"/{sid}/runs/run-0001?after={run['rev']}&waitMs=5000")).json()["run"]
        assert later["rev"] == run["rev"] + 1 and run["progress"]["slept"] < later["progress"]["slept"] < 800
        ended = await finished(client, sid, "run-0001")
        assert time.monotonic() - began >= 0.8
        run = ended["run"]
        assert [run["status"], run["output"], run["version"]] == ["succeeded", {"input": {"sleepMs": 800}, "seen": {"kept": 1}}, 2]
        assert 500 <= run["progress"]["slept"] < 800 and run["rev"] >= 5
        assert ended["session"]["variables"] == {"kept": 1, "conformance_echo": {"sleepMs": 800}}
        # {"fail": message}: failed with that message, nothing stored.
        await client.post(f"/{sid}/runs", json={"runId": "run-0002", "step": "conformance_echo", "input": {"fail": "as asked"}})
        failed = (await finished(client, sid, "run-0002"))["run"]
        assert [failed["status"], failed["error"]] == ["failed", {"code": "step_failed", "message": "as asked"}]
        assert (await client.get(f"/{sid}")).json()["version"] == 2


async def test_the_conformance_step_stops_at_once_when_its_run_is_cancelled(store_url: Any) -> None:
    async with running_app(open_url(store_url), {**conformance_steps}) as (app, client):
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"kept": 1}})
        start = {"runId": "run-0001", "step": "conformance_echo", "input": {"sleepMs": 20000}}
        # Running, at its first progress value or a later one (a busy machine may have reported more).
        running = (await client.post(f"/{sid}/runs?waitMs=5000", json=start)).json()["run"]
        assert running["status"] == "running" and running["rev"] >= 2
        cancelled = (await client.post(f"/{sid}/runs/run-0001/cancel")).json()["run"]
        assert [cancelled["status"], cancelled["error"]["code"]] == ["cancelled", "cancelled"]
        # Its task ends at once (this server drives no run of the session any more).
        began = time.monotonic()
        await eventually(lambda: _true("run-0001" not in app.runner.alive(sid)), timeout=1)
        assert time.monotonic() - began < 1
        await asyncio.sleep(0.3)
        assert (await client.get(f"/{sid}/runs/run-0001")).json()["run"] == cancelled
        session = (await client.get(f"/{sid}")).json()
        assert session["variables"] == {"kept": 1} and session["version"] == 1


# --- The feed ---------------------------------------------------------------------------------------


async def test_the_feed_sends_each_run_as_its_rev_passes(serve: Any, events: Any, tmp_path: Path) -> None:
    gate = threading.Event()

    def staged(ctx: StepContext) -> StepResult:
        ctx.progress("half")
        gate.wait(10)
        return StepResult(output="all", variables={"done": True})

    server = serve(lambda: create_session_app(store=open_store(f"sqlite:{tmp_path}/feed.db"), steps={"staged": staged, "quick": lambda ctx: None}))
    sid = new_id()
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-before", "step": "quick"})
        stream = await events(f"{server.url}/{sid}/events")
        assert await stream.next_block() == [": connected"]
        assert (await stream.next_block())[1] == "event: snapshot"  # a finished run before the stream opened is not news
        await client.post(f"/{sid}/runs", json={"runId": "run-0001", "step": "staged"})
        revs = await _run_events(stream, "run-0001", lambda run: run["rev"] >= 2)
        assert revs[0]["status"] == "running" and revs[-1]["progress"] == "half"
        # A stream opened now gets the running run at once.
        late = await events(f"{server.url}/{sid}/events?since=1")
        assert await late.next_block() == [": connected"]
        opened = await _run_events(late, "run-0001", lambda run: True)
        assert opened[-1]["rev"] == 2
        gate.set()
        for watching in (stream, late):
            ended = await _run_events(watching, "run-0001", lambda run: run["status"] != "running")
            assert ended[-1]["status"] == "succeeded" and ended[-1]["rev"] == 3
        # A stream opened before its session exists: every run that comes is news, even one that ends at once.
        fresh = new_id()
        early = await events(f"{server.url}/{fresh}/events")
        assert await early.next_block() == [": connected"]
        await asyncio.sleep(0.1)  # its first read found no session
        await client.post(f"/{fresh}/runs?waitMs=5000", json={"runId": "run-quick", "step": "quick"})
        assert (await _run_events(early, "run-quick", lambda run: run["status"] != "running"))[-1]["status"] == "succeeded"


async def _run_events(stream: Any, run_id: str, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The stream's run events of ``run_id`` until one passes ``until`` (other events skipped)."""
    seen: list[dict[str, Any]] = []
    while True:
        block = await stream.next_block()
        if len(block) >= 2 and block[0] == "event: run":
            run = json.loads(block[1].removeprefix("data: "))
            if run["runId"] == run_id:
                seen.append(run)
                if until(run):
                    return seen


# --- The tables -------------------------------------------------------------------------------------


async def test_the_sqlite_table_is_the_typescript_stores(tmp_path: Path) -> None:
    path = tmp_path / "tables.db"
    store = open_store(f"sqlite:{path}")
    sid = new_id()
    await store.start_run(sid, "run-0001", "step", {"a": 1})
    await store.progress_run(sid, "run-0001", {"done": 1})
    await store.close()
    with sqlite3.connect(path) as db:
        columns = [(row[1], row[2], row[3], row[5]) for row in db.execute("PRAGMA table_info(ws_runs)")]
        assert columns == [
            ("session_id", "TEXT", 1, 1),
            ("run_id", "TEXT", 1, 2),
            ("step", "TEXT", 1, 0),
            ("status", "TEXT", 1, 0),
            ("started_at", "TEXT", 1, 0),
            ("heartbeat_at", "INTEGER", 1, 0),
            ("record", "TEXT", 1, 0),
        ]
        assert "WITHOUT ROWID" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'ws_runs'").fetchone()[0]
        index = [(row[2], row[3]) for row in db.execute("PRAGMA index_xinfo(ws_runs_by_session_newest)") if row[1] >= 0]
        assert index[:2] == [("session_id", 0), ("started_at", 1)]
        [(session_id, run_id, step, status, started_at, heartbeat_at, record)] = db.execute("SELECT * FROM ws_runs").fetchall()
    run = json.loads(record)
    assert (session_id, run_id, step, status, started_at) == (sid, run["runId"], run["step"], run["status"], run["startedAt"])
    assert heartbeat_at == ms_of(run["heartbeatAt"]) and isinstance(heartbeat_at, int)
    assert run["progress"] == {"done": 1} and run["rev"] == 2 and run["input"] == {"a": 1}


async def test_the_postgres_table_and_every_run_write_notifies(postgres_url: str) -> None:
    table = f"ws_notify_{uuid.uuid4().hex[:10]}"
    store = open_store(postgres_url, table=table)
    listener = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
    try:
        sid = new_id()
        await store.open()
        await listener.execute(f"LISTEN {CHANGE_CHANNEL}")
        notices = listener.notifies()

        async def next_notice() -> Any:
            return json.loads((await asyncio.wait_for(anext(notices), 5)).payload)

        await store.start_run(sid, "run-0001", "step")
        assert await next_notice() == {"id": sid, "version": 1}  # the session created with the run
        for write in [store.progress_run(sid, "run-0001", 1), store.renew_run(sid, "run-0001"), store.cancel_run(sid, "run-0001")]:
            await write
            assert await next_notice() == {"id": sid, "version": 1}
        await notices.aclose()  # the generator holds its connection: the checks below use another
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", (f"{table}_runs",)
            )
            assert await cursor.fetchall() == [
                ("session_id", "text"),
                ("run_id", "text"),
                ("step", "text"),
                ("status", "text"),
                ("started_at", "text"),
                ("heartbeat_at", "bigint"),
                ("record", "text"),
            ]
            cursor = await admin.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"{table}_runs_by_session_newest",))
            [(definition,)] = await cursor.fetchall()
            assert "(session_id, started_at DESC)" in definition
            cursor = await admin.execute(f"SELECT status, heartbeat_at, record FROM {table}_runs WHERE session_id = %s", (sid,))
            [(status, heartbeat_at, record)] = await cursor.fetchall()
            assert status == "cancelled" == json.loads(record)["status"] and heartbeat_at == ms_of(json.loads(record)["heartbeatAt"])
            assert await store.delete(sid)
            cursor = await admin.execute(f"SELECT count(*) FROM {table}_runs WHERE session_id = %s", (sid,))
            assert await cursor.fetchone() == (0,)
    finally:
        await listener.close()
        await store.close()


async def test_two_servers_on_one_database_share_runs_feeds_and_cancels(serve: Any, events: Any, postgres_url: str) -> None:
    table = f"ws_runs2_{uuid.uuid4().hex[:10]}"
    stopped = threading.Event()

    async def waits(ctx: StepContext) -> None:
        ctx.progress("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise

    def make() -> Any:
        return create_session_app(store=open_store(postgres_url, table=table), steps={"waits": waits}, run_lost_after_ms=600)

    first, second = serve(make), serve(make)
    sid = new_id()
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{first.url}/{sid}/runs", json={"runId": "run-0001", "step": "waits"})).status_code == 202
        await eventually(lambda: _progress_of(client, sid, "run-0001", base=second.url))
        # The same id through the other server: the run that exists, never a second execution.
        again = await client.post(f"{second.url}/{sid}/runs", json={"runId": "run-0001", "step": "waits"})
        assert again.status_code == 200 and again.json()["run"]["status"] == "running"
        stream = await events(f"{second.url}/{sid}/events")
        assert await stream.next_block() == [": connected"]
        assert (await _run_events(stream, "run-0001", lambda run: True))[-1]["progress"] == "started"
        # Cancelled through the second server: the first stops its step at its next heartbeat (every 200 ms here).
        assert (await client.post(f"{second.url}/{sid}/runs/run-0001/cancel")).json()["run"]["status"] == "cancelled"
        assert await asyncio.get_running_loop().run_in_executor(None, stopped.wait, 5)
        assert (await _run_events(stream, "run-0001", lambda run: run["status"] != "running"))[-1]["status"] == "cancelled"
        assert (await client.get(f"{first.url}/{sid}/runs/run-0001")).json()["run"]["status"] == "cancelled"


async def _progress_of(client: httpx.AsyncClient, sid: str, run_id: str, base: str = "") -> Any:
    response = await client.get(f"{base}/{sid}/runs/{run_id}")
    return response.status_code == 200 and response.json()["run"]["progress"]


async def _true(value: bool) -> bool:
    return value


async def test_the_store_api_checks_run_ids() -> None:
    store = open_store("memory:")
    with pytest.raises(SessionProtocolError) as raised:
        await store.start_run(new_id(), "short", "step")
    assert raised.value.code == "invalid_run"
    with pytest.raises(SessionProtocolError) as raised:
        await store.get_run("nope", "run-0001")
    assert raised.value.code == "invalid_session_id"
    assert await store.get_run(new_id(), "short") is None
    assert await store.cancel_run(new_id(), "run-0001", caller=Caller("ada")) is None
    assert await store.list_runs(new_id()) is None
