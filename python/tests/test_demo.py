"""The Python demo's steps and server options (python/examples): the report step as the TypeScript demo's, RUN_LOST_AFTER_MS."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import client_of, new_id

from workflow_session import SessionApp, create_session_app, memory_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import demo_app  # noqa: E402
from demo_steps import demo_steps  # noqa: E402

pytestmark = pytest.mark.anyio
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@asynccontextmanager
async def demo_client() -> AsyncIterator[tuple[SessionApp, httpx.AsyncClient]]:
    app = create_session_app(store=memory_store(), steps=demo_steps)
    try:
        async with client_of(app) as client:
            yield app, client
    finally:
        await app.aclose()
        await app.store.close()


async def ended(client: httpx.AsyncClient, sid: str, run_id: str) -> dict[str, Any]:
    for _ in range(20):
        body: dict[str, Any] = (await client.get(f"/{sid}/runs/{run_id}?after=1000000&waitMs=500")).json()
        if body["run"]["status"] != "running":
            return body
    raise AssertionError("the run did not end")


async def test_the_report_step_reports_ten_parts_and_saves_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_REPORT_MS", "500")
    async with demo_client() as (_, client):
        sid = new_id()
        # wf:signup:at is set by the server: not one of the saved fields the report counts.
        await client.post(f"/{sid}", json={"variables": {"wf:signup:v:email": "ada@example.com", "note": "hi"}})
        assert "wf:signup:at" in (await client.get(f"/{sid}")).json()["variables"]
        began = time.monotonic()
        started = (await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-report-1", "step": "report"})).json()["run"]
        assert [started["status"], started["progress"]] == ["running", {"done": 0, "of": 10}]
        body = await ended(client, sid, "run-report-1")
        assert time.monotonic() - began >= 0.5
        run, message = body["run"], "Report ready: 2 saved fields looked at"
        assert [run["status"], run["output"], run["progress"]] == ["succeeded", {"message": message}, {"done": 9, "of": 10}]
        report = body["session"]["variables"]["report"]
        assert report["message"] == message and ISO_MS.fullmatch(report["at"])


async def test_the_report_step_stops_when_cancelled_and_saves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_REPORT_MS", "20000")
    async with demo_client() as (app, client):
        sid = new_id()
        await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-report-1", "step": "report"})
        cancelled = (await client.post(f"/{sid}/runs/run-report-1/cancel")).json()["run"]
        assert cancelled["status"] == "cancelled"
        for _ in range(50):
            if "run-report-1" not in app.runner.alive(sid):
                break
            await asyncio.sleep(0.02)
        assert "run-report-1" not in app.runner.alive(sid)
        session = (await client.get(f"/{sid}")).json()
        assert "report" not in session["variables"] and session["version"] == 1


def test_the_demo_server_takes_run_lost_after_ms_from_its_environment(tmp_path: Path) -> None:
    assert demo_app.run_lost_after_ms_of({}) is None
    assert demo_app.run_lost_after_ms_of({"RUN_LOST_AFTER_MS": ""}) is None
    assert demo_app.run_lost_after_ms_of({"RUN_LOST_AFTER_MS": "3000"}) == 3000
    (tmp_path / "index.html").write_text("<!doctype html>")

    def sessions_of(app: Any) -> SessionApp:
        sessions = inspect.getclosurevars(app).nonlocals["sessions"]
        assert isinstance(sessions, SessionApp)
        return sessions

    assert sessions_of(demo_app.create_demo_app("memory:", tmp_path, b"secret", 3000)).runner.lost_after_ms == 3000
    assert sessions_of(demo_app.create_demo_app("memory:", tmp_path, b"secret")).runner.lost_after_ms == 30_000
    assert "report" in sessions_of(demo_app.create_demo_app("memory:", tmp_path, b"secret")).steps
