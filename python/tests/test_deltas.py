"""Deltas (docs/protocol.md, "Deltas"): a client that says which version it holds (``Session-Base``) gets what changed since, on every store.

Each test plays the client: it applies every delta onto the snapshot it holds (by the protocol's
rule, written here on its own) and compares the result with the server's snapshot, read without
the header, as canonical JSON (``1``, ``1.0`` and ``true`` are not the same value here).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import client_of, new_id

from workflow_session import Caller, SessionStore, StepContext, StepResult, create_session_app, open_store
from workflow_session.deltas import NOTHING, SessionBase
from workflow_session.stores.base import Backend
from workflow_session.stores.memory import MAX_LOGGED_NAMES, ChangeLog, MemoryBackend

pytestmark = pytest.mark.anyio
ADA = {"x-user": "ada"}
#: The keys of a delta besides ``workflowId`` and ``userId``.
DELTA_KEYS = {"sessionId", "base", "version", "variables", "deleted", "createdAt", "updatedAt"}
#: The keys of a run delta while the run runs, and those it adds once the run has ended.
RUN_DELTA_KEYS = {"runId", "base", "rev", "status", "progress", "heartbeatAt"}
RUN_END_KEYS = {"finishedAt", "output", "error", "version"}


def user_header(request: Any) -> str | None:
    return request.headers.get("x-user")


def edit(ctx: StepContext) -> StepResult:
    """A step that sets and deletes what its input says: ``{"set": {…}, "delete": […]}``."""
    given = ctx.input if isinstance(ctx.input, dict) else {}
    return StepResult(output=len(ctx.variables), variables=given.get("set") or {}, deleted=given.get("delete") or [])  # type: ignore[arg-type]


STEPS: dict[str, Any] = {"edit": edit}


def canonical(value: Any) -> str:
    """JSON with sorted keys: equal only when the values are the same JSON (``1 == True`` in Python, not here)."""
    return json.dumps(value, sort_keys=True)


def tag(session: dict[str, Any]) -> str:
    return f"{session['version']}@{session['createdAt']}"


def based(session: dict[str, Any] | None) -> dict[str, str]:
    """The headers of a client that holds ``session`` (or nothing)."""
    return {**ADA, "session-base": tag(session) if session is not None else "0"}


def apply_delta(held: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The protocol's rule: deletions first, then the values, then the head fields (one the delta leaves out is not there)."""
    assert set(delta) - {"workflowId", "userId"} == DELTA_KEYS, delta
    assert (delta["sessionId"], delta["base"], delta["createdAt"]) == (held["sessionId"], held["version"], held["createdAt"]), (held, delta)
    variables = {name: value for name, value in held["variables"].items() if name not in delta["deleted"]}
    variables.update(delta["variables"])
    snapshot = {"sessionId": delta["sessionId"], "variables": variables}
    snapshot.update((key, delta[key]) for key in ("version", "createdAt", "updatedAt", "workflowId", "userId") if key in delta)
    return snapshot


def apply_run_delta(held: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """A run delta completes a record of the same run with a ``rev`` of 1 or more: the fields it carries replace the held ones."""
    assert delta["runId"] == held["runId"] and held["rev"] >= 1
    return {**held, **{key: value for key, value in delta.items() if key != "base"}}


class Holder:
    """A client that holds one snapshot: a delta is applied onto it, a snapshot replaces it."""

    def __init__(self) -> None:
        self.held: dict[str, Any] | None = None
        self.deltas = 0
        self.snapshots = 0

    def headers(self) -> dict[str, str]:
        return based(self.held)

    def take(self, body: dict[str, Any]) -> None:
        if "base" in body:
            assert self.held is not None, body
            self.held = apply_delta(self.held, body)
            self.deltas += 1
        else:
            self.held = body
            self.snapshots += 1


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A store to open: in memory, a SQLite file, or a table of its own in the test database."""
    if request.param == "memory":
        return "memory:", {}
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/deltas.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_deltas_{uuid.uuid4().hex[:10]}"}


def open_url(store_url: tuple[str, dict[str, Any]]) -> SessionStore:
    url, options = store_url
    return open_store(url, **options)


@asynccontextmanager
async def app_on(store: SessionStore, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app on ``store`` with an in-process client; its runs are stopped and the store closed after."""
    app = create_session_app(store=store, steps={**STEPS, **options.pop("steps", {})}, authorize=user_header, **options)
    try:
        async with client_of(app) as client:
            yield client
    finally:
        await app.aclose()
        await store.close()


async def truth_of(client: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    """The server's snapshot, as a client without the header reads it."""
    response = await client.get(f"/{sid}", headers=ADA)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert "base" not in body
    return body


# --- A client applying deltas holds the server's snapshot -------------------------------------------------


VALUES: list[Any] = [1, True, 1.0, 0, False, None, "1", "", [1], [], {"a": 1}, {"a": [True, None]}, "é😀"]


async def test_a_client_applying_each_delta_holds_exactly_the_servers_snapshot(store_url: Any) -> None:
    """A random run of patches, deletions, steps, runs, reads, replays and other tabs' writes, each answer applied and compared."""
    rng = random.Random(20261121)
    names = [f"v{i}" for i in range(10)] + ["wf:signup:email"]

    def random_change() -> dict[str, Any]:
        chosen = rng.sample(names, rng.randint(1, 3))
        change: dict[str, Any] = {"variables": {name: rng.choice(VALUES) for name in chosen if rng.random() < 0.7}}
        change["deleted"] = [name for name in chosen if name not in change["variables"]]
        return change

    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        me = Holder()
        seq = 0
        for turn in range(90):
            op = "patch" if turn == 0 else rng.choice(["patch", "patch", "replay", "empty", "step", "run", "get", "other", "other", "forget", "workflow"])
            if op == "other":  # another tab writes: the client falls behind
                await client.post(f"/{sid}", json=random_change(), headers=ADA)
                continue
            if op == "forget":  # the client drops what it holds: Session-Base: 0
                me.held = None
                continue
            if op == "patch":
                seq += 1
                response = await client.post(f"/{sid}", json={**random_change(), "clientId": "me", "seq": seq}, headers=me.headers())
            elif op == "replay":
                response = await client.post(f"/{sid}", json={"variables": {"v0": "replayed"}, "clientId": "me", "seq": seq}, headers=me.headers())
            elif op == "empty":
                response = await client.post(f"/{sid}", json={}, headers=me.headers())
            elif op == "workflow":
                response = await client.post(f"/{sid}", json={"variables": {"wf:signup:step": turn}, "workflowId": f"flow-{turn % 3}"}, headers=me.headers())
            elif op == "step":
                change = random_change()
                response = await client.post(f"/{sid}/run/edit", json={"input": {"set": change["variables"], "delete": change["deleted"]}}, headers=me.headers())
            elif op == "run":
                change = random_change()
                start = {"runId": f"run-{turn:06d}", "step": "edit", "input": {"set": change["variables"], "delete": change["deleted"]}}
                response = await client.post(f"/{sid}/runs?waitMs=5000", json=start, headers=me.headers())
            else:
                response = await client.get(f"/{sid}", headers=me.headers())
            if response.status_code == 304:
                assert me.held is not None and tag(me.held) == tag(await truth_of(client, sid))
                continue
            assert response.status_code in (200, 202), response.text
            body = response.json()
            if op == "run":
                assert body["run"]["status"] == "succeeded", body
            if op in ("step", "run"):
                body = body["session"]
            if op in ("replay", "empty") and me.held is not None and tag(me.held) == tag(await truth_of(client, sid)):
                # Nothing new for a client that holds the current version: a delta with nothing in it.
                assert body["base"] == body["version"] and body["variables"] == {} and body["deleted"] == []
            me.take(body)
            assert canonical(me.held) == canonical(await truth_of(client, sid)), (turn, op)
        # Deltas were answered (not only snapshots), and snapshots where the client held nothing.
        assert me.deltas >= 40 and me.snapshots >= 2, (me.deltas, me.snapshots)


async def test_a_one_key_patch_is_answered_that_key_alone(store_url: Any) -> None:
    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        big = {f"name{i}": "x" * 100 for i in range(200)}
        held = (await client.post(f"/{sid}", json={"variables": big}, headers=based(None))).json()
        assert "base" not in held and len(held["variables"]) == 200  # Session-Base: 0 is answered the snapshot
        answer = await client.post(f"/{sid}", json={"variables": {"name7": "y"}}, headers=based(held))
        delta = answer.json()
        assert delta["base"] == 1 and delta["version"] == 2 and delta["variables"] == {"name7": "y"} and delta["deleted"] == []
        assert len(answer.content) < 300  # O(change): the snapshot is over 20 KB
        # A client behind by another tab's write gets that write too, and its own, and nothing else.
        await client.post(f"/{sid}", json={"deleted": ["name8"]}, headers=ADA)
        held = apply_delta(held, delta)
        behind = (await client.post(f"/{sid}", json={"variables": {"name9": 9}}, headers=based(held))).json()
        assert behind["base"] == 2 and behind["version"] == 4 and behind["variables"] == {"name9": 9} and behind["deleted"] == ["name8"]
        assert canonical(apply_delta(held, behind)) == canonical(await truth_of(client, sid))
        # A step's answer: its session is the delta of its own change.
        held = apply_delta(held, behind)
        ran = (await client.post(f"/{sid}/run/edit", json={"input": {"set": {"name1": None}}}, headers=based(held))).json()
        assert ran["output"] == 199 and ran["session"]["base"] == 4 and ran["session"]["variables"] == {"name1": None}


async def test_a_replayed_or_empty_patch_is_an_empty_delta_and_adoption_a_delta_of_its_head(store_url: Any) -> None:
    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        held = (await client.post(f"/{sid}", json={"variables": {"a": 1}, "clientId": "tab", "seq": 1})).json()
        assert "userId" not in held
        for body in ({"variables": {"a": 2}, "clientId": "tab", "seq": 1}, {}, {"variables": {}, "deleted": []}):
            answer = (await client.post(f"/{sid}", json=body, headers=based(held))).json()
            assert answer == {**held, "base": 1, "variables": {}, "deleted": []}
        adopted = (await client.post(f"/{sid}/adopt", headers=based(held))).json()
        assert adopted["base"] == 1 and adopted["version"] == 2 and adopted["userId"] == "ada"
        assert adopted["variables"] == {} and adopted["deleted"] == []
        held = apply_delta(held, adopted)
        assert canonical(held) == canonical(await truth_of(client, sid))
        again = (await client.post(f"/{sid}/adopt", headers=based(held))).json()  # the caller's already: nothing new
        assert again["base"] == again["version"] == 2 and again["userId"] == "ada"
        plain = (await client.post(f"/{sid}/adopt", headers=ADA)).json()
        assert "base" not in plain and plain == held


# --- 304 and ETag ---------------------------------------------------------------------------------------------


async def test_get_carries_an_etag_and_answers_304_to_a_client_that_holds_the_current_version(store_url: Any) -> None:
    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        missing = await client.get(f"/{sid}", headers=based(None))
        assert missing.status_code == 404 and "etag" not in missing.headers
        first = (await client.post(f"/{sid}", json={"variables": {"a": 1}}, headers=ADA)).json()
        read = await client.get(f"/{sid}", headers=ADA)
        assert read.status_code == 200 and read.headers["etag"] == f'"{tag(first)}"' and read.json() == first
        for headers in (
            {"if-none-match": f'"{tag(first)}"'},
            {"if-none-match": f'W/"{tag(first)}"'},
            {"if-none-match": f'"0@2020-01-01T00:00:00.000Z", "{tag(first)}"'},
            {"if-none-match": "*"},
            {"session-base": tag(first)},
            {"session-base": tag(first), "if-none-match": '"stale"'},
        ):
            unchanged = await client.get(f"/{sid}", headers=ADA | headers)
            assert unchanged.status_code == 304 and unchanged.content == b"", headers
            assert unchanged.headers["etag"] == f'"{tag(first)}"' and unchanged.headers["cache-control"] == "no-store"
        second = (await client.post(f"/{sid}", json={"variables": {"b": 2}}, headers=ADA)).json()
        stale = await client.get(f"/{sid}", headers=ADA | {"if-none-match": f'"{tag(first)}"'})
        assert stale.status_code == 200 and stale.json() == second and stale.headers["etag"] == f'"{tag(second)}"'
        delta = await client.get(f"/{sid}", headers=based(first))
        assert delta.status_code == 200 and delta.headers["etag"] == f'"{tag(second)}"'
        assert delta.json()["variables"] == {"b": 2} and delta.json()["base"] == 1
        # The ETag is the version's, whether the client reads deltas or not.
        assert (await client.get(f"/{sid}", headers=based(None))).headers["etag"] == f'"{tag(second)}"'


# --- When no delta can be made: a snapshot -------------------------------------------------------------------


async def test_a_tag_of_another_lineage_or_above_the_version_gets_the_snapshot(store_url: Any) -> None:
    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        old = (await client.post(f"/{sid}", json={"variables": {"a": 1, "gone": True}}, headers=ADA)).json()
        await client.post(f"/{sid}", json={"variables": {"a": 2}}, headers=ADA)
        assert (await client.delete(f"/{sid}", headers=ADA)).status_code == 204
        await asyncio.sleep(0.01)  # another millisecond: another createdAt
        await client.post(f"/{sid}", json={"variables": {"b": 1}}, headers=ADA)
        new = (await client.post(f"/{sid}", json={"variables": {"c": 1}}, headers=ADA)).json()
        assert new["createdAt"] != old["createdAt"] and new["version"] == 2
        # The old lineage's version 1 is not the new one's: the whole snapshot, for every answer.
        for answer in (
            (await client.get(f"/{sid}", headers=based(old))).json(),
            (await client.post(f"/{sid}", json={}, headers=based(old))).json(),
            (await client.post(f"/{sid}/run/edit", headers=based(old))).json()["session"],
        ):
            assert "base" not in answer and answer == await truth_of(client, sid) and "gone" not in answer["variables"]
        above = {**new, "version": 99}
        assert "base" not in (await client.get(f"/{sid}", headers=based(above))).json()
        # A tag of version 0 names no snapshot a delta could apply to.
        assert "base" not in (await client.get(f"/{sid}", headers=based({**new, "version": 0}))).json()


async def test_a_base_the_log_or_the_rows_no_longer_cover_gets_the_snapshot(store_url: Any) -> None:
    """1,100 names set then deleted (in patches of 550): past the memory log's 1,024 names, and past the SQL stores' 1,000 tombstones."""
    async with app_on(open_url(store_url)) as client:
        sid = new_id()
        held = (await client.post(f"/{sid}", json={"variables": {"keep": 1}}, headers=ADA)).json()
        batches = [[f"n{i}" for i in range(start, start + 550)] for start in (0, 550)]
        for batch in batches:
            await client.post(f"/{sid}", json={"variables": {name: 1 for name in batch}}, headers=ADA)
        covered = (await client.get(f"/{sid}", headers=based(held))).json()
        if store_url[0] != "memory:":  # the rows still cover it (the memory log dropped version 2's names)
            assert covered["base"] == 1 and len(covered["variables"]) == 1100
        for batch in batches:
            await client.post(f"/{sid}", json={"deleted": batch}, headers=ADA)
        lost = (await client.get(f"/{sid}", headers=based(held))).json()
        assert "base" not in lost and lost == await truth_of(client, sid) and lost["variables"] == {"keep": 1}
        # A base at the version that forgot them is covered again.
        current = await truth_of(client, sid)
        await client.post(f"/{sid}", json={"variables": {"keep": 2}}, headers=ADA)
        delta = (await client.get(f"/{sid}", headers=based(current))).json()
        assert delta["base"] == 5 and delta["variables"] == {"keep": 2} and delta["deleted"] == []


def test_the_memory_change_log_keeps_at_most_1024_names_and_says_from_which_version_it_is_complete() -> None:
    log = ChangeLog(1)
    log.add(2, ["a", "b"])
    log.add(3, [])  # an adoption: no names
    log.add(4, ["b", "c"])
    assert log.names_since(1) == {"a", "b", "c"} and log.names_since(2) == {"b", "c"} and log.names_since(4) == set()
    assert log.names_since(0) is None  # before the session's first version it knows
    log.add(5, [f"x{i}" for i in range(MAX_LOGGED_NAMES - 3)])  # 1,025 names in all: version 2 goes
    assert log.since == 2 and log.names_since(1) is None and log.names_since(2) == {"b", "c", *(f"x{i}" for i in range(MAX_LOGGED_NAMES - 3))}
    log.add(6, [f"y{i}" for i in range(MAX_LOGGED_NAMES + 1)])  # one version over the bound alone: everything goes
    assert log.since == 6 and log.names_since(5) is None and log.names_since(6) == set()


async def test_a_backend_that_keeps_no_changes_answers_reads_with_snapshots() -> None:
    """A backend of an app's own (``Backend.read_since`` not overridden) still works: its reads are snapshots, a patch onto the current version a delta."""

    class Plain(MemoryBackend):
        read_since = Backend.read_since

    async with app_on(SessionStore(Plain())) as client:
        sid = new_id()
        held = (await client.post(f"/{sid}", json={"variables": {"a": 1}})).json()
        patched = (await client.post(f"/{sid}", json={"variables": {"b": 2}}, headers=based(held))).json()
        assert patched["base"] == 1 and patched["variables"] == {"b": 2}
        read = (await client.get(f"/{sid}", headers=based(held))).json()
        assert "base" not in read and read == await truth_of(client, sid)
        # The current tag is told apart without a delta: 304.
        assert (await client.get(f"/{sid}", headers=based(read))).status_code == 304
        assert (await client.get(f"/{sid}", headers={"if-none-match": f'"{tag(read)}"'})).status_code == 304


# --- A bad Session-Base ---------------------------------------------------------------------------------------


async def test_a_bad_session_base_is_400_bad_request_and_changes_nothing() -> None:
    async with app_on(open_store("memory:")) as client:
        sid = new_id()
        requests = [
            ("GET", f"/{sid}", None),
            ("POST", f"/{sid}", {"variables": {"a": 1}}),
            ("POST", f"/{sid}/run/edit", {"input": {"set": {"a": 1}}}),
            ("POST", f"/{sid}/adopt", None),
            ("GET", f"/{sid}/events", None),
            ("POST", f"/{sid}/runs", {"runId": "run-00001", "step": "edit"}),
            ("GET", f"/{sid}/runs", None),
            ("GET", f"/{sid}/runs/run-00001?after=1", None),
            ("POST", f"/{sid}/runs/run-00001/cancel", None),
        ]
        bad_values: list[str | bytes] = [
            "",
            "x",
            "1",
            "00",
            "-1",
            "1@2026-11-21T04:00:00Z",
            "1@2026-11-21T04:00:00.000+00:00",
            "1@2026-11-21 04:00:00.000Z",
            "1@2026-11-21T04:00:00.000Zx",
            "1234567890123456@2026-11-21T04:00:00.000Z",
            "@2026-11-21T04:00:00.000Z",
            "١@2026-11-21T04:00:00.000Z".encode(),  # an Arabic-Indic digit is not a version
        ]
        for method, path, body in requests:
            for value in bad_values:
                response = await client.request(method, path, json=body, headers={**ADA, "session-base": value})  # type: ignore[dict-item]
                assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", (method, path, value)
        assert (await client.get(f"/{sid}", headers=ADA)).status_code == 404  # nothing was created
        # The checks before it come first (the session id), the body after it.
        assert (await client.get("/short", headers={"session-base": "x"})).json()["error"]["code"] == "invalid_session_id"
        response = await client.post(f"/{sid}", content=b"{", headers={"session-base": "x", "content-type": "application/json"})
        assert response.json()["error"]["code"] == "bad_request"
        # The feed's other ways to name a base: a version or a tag, nothing else.
        for headers, query in (({"last-event-id": "x"}, ""), ({}, "?since=1@nope"), ({"last-event-id": "1@2026-11-21T04:00:00Z"}, "")):
            response = await client.get(f"/{sid}/events{query}", headers=headers)
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


# --- Old clients ------------------------------------------------------------------------------------------------


async def test_a_client_without_the_header_gets_exactly_the_snapshots_it_got_before(store_url: Any) -> None:
    gate = asyncio.Event()

    async def slow(ctx: StepContext) -> StepResult:
        await gate.wait()
        return StepResult(output="done", variables={"slow": True})

    store = open_url(store_url)
    async with app_on(store, steps={"slow": slow}) as client:
        sid = new_id()
        created = await client.post(f"/{sid}", json={"variables": {"b": 1, "a": [1]}, "workflowId": "signup"}, headers=ADA)
        snapshot = created.json()
        assert set(snapshot) == {"sessionId", "variables", "version", "createdAt", "updatedAt", "workflowId", "userId"}
        read = await client.get(f"/{sid}", headers=ADA)
        # Byte for byte the store's snapshot, as the app wrote it before deltas.
        assert read.content == json.dumps(await store.get(sid), separators=(",", ":"), ensure_ascii=False).encode()
        assert read.json() == snapshot and list(snapshot["variables"]) == ["a", "b"]
        replayed = await client.post(f"/{sid}", json={}, headers=ADA)
        assert replayed.content == read.content  # nothing new is the snapshot, not an empty delta
        ran = (await client.post(f"/{sid}/run/edit", json={"input": {"set": {"c": 3}}}, headers=ADA)).json()
        assert "base" not in ran["session"] and ran["session"] == await truth_of(client, sid)
        started = (await client.post(f"/{sid}/runs", json={"runId": "run-00001", "step": "slow"}, headers=ADA)).json()
        gate.set()
        polled = (await client.get(f"/{sid}/runs/run-00001?after=1&waitMs=5000", headers=ADA)).json()
        assert polled["run"]["status"] == "succeeded" and polled["run"]["step"] == "slow" and "base" not in polled["run"]
        assert polled["run"]["startedAt"] == started["run"]["startedAt"]
        assert "base" not in polled["session"] and polled["session"] == await truth_of(client, sid)
        listed = (await client.get(f"/{sid}/runs", headers=ADA)).json()
        assert "base" not in listed["session"] and listed["runs"][0] == polled["run"]


# --- Run deltas --------------------------------------------------------------------------------------------------


async def test_a_long_poll_with_session_base_answers_run_deltas(store_url: Any) -> None:
    step_gate, end_gate = asyncio.Event(), asyncio.Event()

    async def staged(ctx: StepContext) -> StepResult:
        await step_gate.wait()
        ctx.progress({"done": 1})
        await end_gate.wait()
        return StepResult(output={"pages": 3}, variables={"summary": "short"}, deleted=["draft"])

    async with app_on(open_url(store_url), steps={"staged": staged}) as client:
        sid = new_id()
        held = (await client.post(f"/{sid}", json={"variables": {"draft": "…", "kept": 1}}, headers=ADA)).json()
        start = await client.post(f"/{sid}/runs", json={"runId": "run-00001", "step": "staged", "input": {"p": 1}}, headers=based(held))
        record = start.json()["run"]
        assert start.status_code == 202 and "base" not in record and record["rev"] == 1  # a start carries the whole record
        asyncio.get_running_loop().call_later(0.05, step_gate.set)
        progressed = (await client.get(f"/{sid}/runs/run-00001?after=1&waitMs=5000", headers=based(held))).json()
        delta = progressed["run"]
        assert set(delta) == RUN_DELTA_KEYS and delta["base"] == 1 and delta["rev"] == 2 and delta["progress"] == {"done": 1}
        assert "session" not in progressed
        record = apply_run_delta(record, delta)
        assert record == (await client.get(f"/{sid}/runs/run-00001", headers=ADA)).json()["run"]
        asyncio.get_running_loop().call_later(0.05, end_gate.set)
        ended = (await client.get(f"/{sid}/runs/run-00001?after=2&waitMs=5000", headers=based(held))).json()
        delta = ended["run"]
        assert set(delta) == RUN_DELTA_KEYS | RUN_END_KEYS and delta["base"] == 2 and delta["status"] == "succeeded"
        assert delta["output"] == {"pages": 3} and delta["version"] == 2 and delta["error"] is None and delta["finishedAt"]
        record = apply_run_delta(record, delta)
        whole = (await client.get(f"/{sid}/runs/run-00001", headers=ADA)).json()
        assert record == whole["run"] and "base" not in whole["run"]
        # The session of a succeeded run is a delta from the client's base.
        session = ended["session"]
        assert session["base"] == 1 and session["variables"] == {"summary": "short"} and session["deleted"] == ["draft"]
        held = apply_delta(held, session)
        assert canonical(held) == canonical(await truth_of(client, sid))
        # The whole record: ?after=0, a rev it has not reached, no ?after=, a cancel, the list.
        for path in ("/runs/run-00001?after=0", "/runs/run-00001?after=9&waitMs=100", "/runs/run-00001"):
            answer = (await client.get(f"/{sid}{path}", headers=based(held))).json()
            assert answer["run"] == whole["run"] and answer["session"]["base"] == answer["session"]["version"] == 2, path
        cancelled = (await client.post(f"/{sid}/runs/run-00001/cancel", headers=based(held))).json()
        assert cancelled["run"] == whole["run"] and cancelled["session"]["variables"] == {}
        listed = (await client.get(f"/{sid}/runs", headers=based(held))).json()
        assert listed["runs"] == [whole["run"]] and listed["session"]["base"] == 2


# --- The change feed ---------------------------------------------------------------------------------------------


def event_of(block: list[str]) -> tuple[str | None, str, dict[str, Any]]:
    """An event's id (None without one), its name and its data."""
    lines = dict(line.split(": ", 1) for line in block)
    return lines.get("id"), lines["event"], json.loads(lines["data"])


def served_app(store_url: Any, **steps: Any) -> Callable[[], Any]:
    """Makes the app in the server's loop (a PostgreSQL store belongs to one loop)."""
    return lambda: create_session_app(store=open_url(store_url), steps={**STEPS, **steps}, heartbeat_seconds=0.5)


async def next_event(stream: Any, name: str | None = None) -> tuple[str | None, str, dict[str, Any]]:
    """The stream's next event (named ``name``, when given), past keep-alives."""
    while True:
        block = await stream.next_block()
        if block and not block[0].startswith(":"):
            event = event_of(block)
            if name is None or event[1] == name:
                return event


async def test_a_feed_with_a_tag_streams_deltas_with_tag_ids(serve: Any, events: Any, store_url: Any) -> None:
    server = serve(served_app(store_url))
    async with httpx.AsyncClient(base_url=server.url) as client:
        sid = new_id()
        first = (await client.post(f"/{sid}", json={"variables": {"a": 1, "b": 2}})).json()
        await client.post(f"/{sid}", json={"variables": {"a": 3}, "deleted": ["b"]})
        stream = await events(f"{server.url}/{sid}/events", **{"session-base": tag(first)})
        assert await stream.next_block() == [": connected"]
        held = first
        for change in (None, {"variables": {"c": [1]}}, {"deleted": ["a"]}, "step"):  # None: the catch-up on open
            if change == "step":
                await client.post(f"/{sid}/run/edit", json={"input": {"set": {"d": True}}})
            elif change is not None:
                await client.post(f"/{sid}", json=change)
            event_id, name, data = await next_event(stream)
            assert name == "delta" and data["base"] == held["version"] and data["version"] == held["version"] + 1
            held = apply_delta(held, data)
            assert event_id == tag(held) and canonical(held) == canonical((await client.get(f"/{sid}")).json())
        await client.post(f"/{sid}", json={})  # applies nothing: no event
        await client.post(f"/{sid}", json={"variables": {"e": 5}})
        _, name, data = await next_event(stream)
        assert name == "delta" and data["variables"] == {"e": 5} and data["base"] == held["version"]
        held = apply_delta(held, data)
        # The same from ?since= and Last-Event-ID (an EventSource's reconnect), which comes first.
        for way in ("since", "last-event-id"):
            if way == "since":
                resumed = await events(f"{server.url}/{sid}/events?since={tag(held)}")
            else:
                resumed = await events(f"{server.url}/{sid}/events?since=1", **{"last-event-id": tag(held)})
            assert await resumed.next_block() == [": connected"]
            assert await resumed.next_block() == [": keep-alive"]  # it holds the current version: nothing to send
            await client.post(f"/{sid}", json={"variables": {"f": way}})
            event_id, name, data = await next_event(resumed)
            assert name == "delta" and data["base"] == held["version"] and data["variables"] == {"f": way}
            held = apply_delta(held, data)
            assert event_id == tag(held)


async def test_a_feed_with_session_base_0_starts_with_a_snapshot_and_a_plain_number_streams_snapshots(serve: Any, events: Any, store_url: Any) -> None:
    server = serve(served_app(store_url))
    async with httpx.AsyncClient(base_url=server.url) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"a": 1}})
        await client.post(f"/{sid}", json={"variables": {"b": 2}})
        nothing = await events(f"{server.url}/{sid}/events", **{"session-base": "0"})
        plain = await events(f"{server.url}/{sid}/events", **{"last-event-id": "1"})
        current = tag((await client.get(f"/{sid}")).json())
        plain_first = await events(f"{server.url}/{sid}/events?since={current}", **{"last-event-id": "1"})
        plain_over_base = await events(f"{server.url}/{sid}/events", **{"last-event-id": "1", "session-base": current})
        for stream in (nothing, plain, plain_first, plain_over_base):
            assert await stream.next_block() == [": connected"]
        event_id, name, held = await next_event(nothing)
        assert name == "snapshot" and "base" not in held and event_id == tag(held) and held["version"] == 2
        for stream in (plain, plain_first, plain_over_base):  # Last-Event-ID comes first: a plain number there streams snapshots
            event_id, name, snapshot = await next_event(stream)
            assert (event_id, name) == ("2", "snapshot") and snapshot == held
        await client.post(f"/{sid}", json={"variables": {"a": 2}})
        event_id, name, data = await next_event(nothing)
        assert name == "delta" and data["base"] == 2 and data["variables"] == {"a": 2}
        held = apply_delta(held, data)
        assert event_id == tag(held)
        event_id, name, snapshot = await next_event(plain)
        assert (event_id, name) == ("3", "snapshot") and snapshot == held
        # A session made again under its id is another lineage: its snapshot, whole, with its tag.
        await client.delete(f"/{sid}")
        await asyncio.sleep(0.01)
        await client.post(f"/{sid}", json={"variables": {"z": 0}})
        event_id, name, again = await next_event(nothing)
        assert name == "snapshot" and again["version"] == 1 and again["variables"] == {"z": 0} and event_id == tag(again)
        assert again["createdAt"] != held["createdAt"]


async def test_a_delta_feed_sends_a_run_whole_once_then_run_deltas(serve: Any, events: Any, store_url: Any) -> None:
    gate = threading.Event()

    def staged(ctx: StepContext) -> StepResult:
        ctx.progress("half")
        gate.wait(10)
        return StepResult(output="all", variables={"done": True})

    server = serve(served_app(store_url, staged=staged))
    async with httpx.AsyncClient(base_url=server.url) as client:
        sid = new_id()
        held = (await client.post(f"/{sid}", json={"variables": {"a": 1}})).json()
        stream = await events(f"{server.url}/{sid}/events", **{"session-base": tag(held)})
        legacy = await events(f"{server.url}/{sid}/events?since=1")
        for opened in (stream, legacy):
            assert await opened.next_block() == [": connected"]
        await client.post(f"/{sid}/runs", json={"runId": "run-00001", "step": "staged", "input": [1, 2]})
        _, _, record = await next_event(stream, "run")
        assert "base" not in record and record["step"] == "staged" and record["input"] == [1, 2]  # not sent before: whole
        while record["rev"] < 2:
            _, _, delta = await next_event(stream, "run")
            assert set(delta) == RUN_DELTA_KEYS and delta["base"] == record["rev"]
            record = apply_run_delta(record, delta)
        assert record["progress"] == "half"
        gate.set()
        # The end: the session's delta (the step's change) and the run's, in whichever reads the stream made.
        session: dict[str, Any] | None = None
        while session is None or record["status"] == "running":
            _, name, data = await next_event(stream)
            if name == "delta":
                session = data
            else:
                assert name == "run" and set(data) == RUN_DELTA_KEYS | RUN_END_KEYS and data["base"] == 2 and data["status"] == "succeeded"
                record = apply_run_delta(record, data)
        assert session["base"] == 1 and session["variables"] == {"done": True}
        assert record == (await client.get(f"/{sid}/runs/run-00001")).json()["run"]
        # A stream without a tag gets every run whole, as before.
        runs = [(await next_event(legacy, "run"))[2]]
        while runs[-1]["status"] == "running":
            runs.append((await next_event(legacy, "run"))[2])
        assert all("base" not in data and data["step"] == "staged" for data in runs) and runs[-1] == record
        # A stream opened now with a tag: the finished run is not news; a new run comes whole.
        late = await events(f"{server.url}/{sid}/events", **{"session-base": tag(apply_delta(held, session))})
        assert await late.next_block() == [": connected"]
        await client.post(f"/{sid}/runs?waitMs=5000", json={"runId": "run-00002", "step": "edit", "input": {"set": {"x": 1}}})
        _, _, fresh = await next_event(late, "run")
        assert fresh["runId"] == "run-00002" and "base" not in fresh


# --- The store API ---------------------------------------------------------------------------------------------


async def test_the_store_answers_get_since_and_apply_with_a_base(store_url: Any) -> None:
    store = open_url(store_url)
    try:
        sid = new_id()
        assert await store.get_since(sid, SessionBase(1, "2026-11-21T04:00:00.000Z")) is None
        first = (await store.apply(sid, {"variables": {"a": 1, "b": 2}})).snapshot
        base = SessionBase(first["version"], first["createdAt"])
        second = await store.apply(sid, {"variables": {"a": 2}, "deleted": ["b"]}, base=base)
        assert second.delta is not None and second.delta["variables"] == {"a": 2} and second.delta["deleted"] == ["b"]
        assert second.snapshot["variables"] == {"a": 2}
        assert await store.get_since(sid, base) == second.delta
        assert await store.get_since(sid, NOTHING) == second.snapshot == await store.get_since(sid, None)
        assert (await store.apply(sid, {"variables": {"c": 3}})).delta is None  # no base: no delta
        owned = await store.apply(new_id(), {"variables": {"a": 1}}, caller=Caller("ada"))
        mine = SessionBase(owned.snapshot["version"], owned.snapshot["createdAt"])
        assert await store.get_since(owned.snapshot["sessionId"], mine, caller=Caller("grace")) is None  # another user's: none
        assert await store.get_since(owned.snapshot["sessionId"], mine, caller=Caller("ada")) is not None
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A database two stores (two servers) may share: a SQLite file, or a table of its own in the test database."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/shared.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_shared_{uuid.uuid4().hex[:10]}"}


async def test_two_stores_on_one_database_answer_deltas_of_each_others_writes(shared_url: Any) -> None:
    """The SQL stores keep nothing between requests: the rows tell a reader what another server wrote."""
    writer, reader = open_url(shared_url), open_url(shared_url)
    try:
        sid = new_id()
        first = (await writer.apply(sid, {"variables": {"a": 1, "c": 1}})).snapshot
        await writer.apply(sid, {"variables": {"b": 1}, "deleted": ["a"]})
        delta: Any = await reader.get_since(sid, SessionBase(first["version"], first["createdAt"]))
        assert delta["base"] == 1 and delta["version"] == 2 and delta["variables"] == {"b": 1} and delta["deleted"] == ["a"]
        # And a patch from the reader, onto the writer's version, is answered its own change.
        mine = await reader.apply(sid, {"variables": {"c": 2}}, base=SessionBase(2, first["createdAt"]))
        assert mine.delta is not None and mine.delta["variables"] == {"c": 2} and mine.delta["base"] == 2
    finally:
        await writer.close()
        await reader.close()
