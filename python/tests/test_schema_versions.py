"""Schema versions (docs/protocol.md, "Schema versions"): old sessions migrated once as they are read, patches of older clients moved, the 409s, on every store.

"Old" sessions are written by a store without migrations (schema version 1), or are rows from
before the ``schema_version`` column (version 0); a store with migrations on the same backend
(the same object, file or table) then reads them at its version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import client_of, new_id

from workflow_session import (
    SET_ASIDE_KEY,
    Caller,
    JsonValue,
    MigrationProgress,
    Migrations,
    SessionProtocolError,
    SessionStore,
    SetAsideError,
    StepContext,
    StepResult,
    conformance_migrations,
    create_session_app,
    define_migrations,
    migrate_sessions,
    open_store,
    workflow_data_key,
    workflow_slot_key,
)
from workflow_session.stores.base import Backend

pytestmark = pytest.mark.anyio
ADA = {"x-user": "ada"}

#: Version 2 of an app's schema: a rename, a drop, and a variable moved into a workflow's data.
TO_2: dict[str, Any] = {
    "to": 2,
    "steps": [
        {"op": "rename", "from": "address", "to": "shippingAddress"},
        {"op": "drop", "name": "legacyFlag"},
        {"op": "intoWorkflow", "name": "plan", "workflow": "signup"},
    ],
}
M2 = define_migrations({"version": 2, "migrations": [TO_2]})
#: Version 3 with a data step: what newer code declares (a server at M2 was rolled back from it).
M3_DATA = define_migrations({"version": 3, "migrations": [TO_2, {"to": 3, "steps": [{"op": "default", "name": "country", "value": "NL"}]}]})


def split_name(variables: dict[str, Any]) -> dict[str, Any]:
    rest = dict(variables)
    first, _, last = str(rest.pop("name", "")).partition(" ")
    return {**rest, "firstName": first, "lastName": last}


#: Version 3 with a function step: a patch of version 1 or 2 cannot be moved past it.
M3_FUNCTION = define_migrations({"version": 3, "migrations": [TO_2, {"to": 3, "steps": [{"op": "function", "name": "splitName"}]}]}, {"splitName": split_name})

#: An old session's variables, and the same at version 2.
OLD: dict[str, Any] = {"address": "Main St 1", "legacyFlag": True, "plan": "pro", "keep": [1, {"deep": None}]}
PLAN = workflow_data_key("signup", "plan")
MIGRATED: dict[str, Any] = {"shippingAddress": "Main St 1", PLAN: "pro", "keep": [1, {"deep": None}]}


def user_header(request: Any) -> str | None:
    return request.headers.get("x-user")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def error_of(response: httpx.Response) -> tuple[int, str, int | None]:
    """An error answer's status, code and ``schemaVersion`` (None without one); its body has nothing else."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "schemaVersion"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return response.status_code, body["error"]["code"], body["error"].get("schemaVersion")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A store to open: in memory, a SQLite file, or a table of its own in the test database."""
    if request.param == "memory":
        return "memory:", {}
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/schema.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_schema_{uuid.uuid4().hex[:10]}"}


@pytest.fixture
async def backend(store_url: tuple[str, dict[str, Any]]) -> AsyncIterator[Backend]:
    """One backend that stores at several schema versions share (``SessionStore(backend, migrations)``); closed after the test."""
    url, options = store_url
    opened = open_store(url, **options)
    try:
        yield opened.backend
    finally:
        await opened.close()


async def old_session(backend: Backend, *, user: str | None = None) -> tuple[str, dict[str, Any]]:
    """A session written by a store without migrations: ``OLD`` at version 2 (the second patch from client ``tab``, seq 1). Its id and snapshot."""
    old = SessionStore(backend)
    sid = new_id()
    caller = Caller(user) if user is not None else None
    await old.apply(sid, {"variables": {**OLD, "n": 0}}, caller=caller)
    written = await old.apply(sid, {"deleted": ["n"], "clientId": "tab", "seq": 1}, caller=caller)
    assert written.snapshot["version"] == 2 and "schemaVersion" not in written.snapshot
    return sid, dict(written.snapshot)


async def stored_head(backend: Backend, sid: str) -> dict[str, Any]:
    record = await backend.read(sid)
    assert record is not None
    return dict(record["head"])


@asynccontextmanager
async def app_on(store: SessionStore, steps: dict[str, Any] | None = None, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app on ``store`` with an in-process client; its runs are stopped after (the backend fixture closes the store)."""
    app = create_session_app(store=store, steps=steps or {}, authorize=user_header, **options)
    try:
        async with client_of(app) as client:
            yield client
    finally:
        await app.aclose()


class Seen:
    """A step that answers the variables it was given and sets ``stepped``; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx: StepContext) -> StepResult:
        self.calls += 1
        return StepResult(output=dict(ctx.variables), variables={"stepped": self.calls})


async def finished_run(client: httpx.AsyncClient, sid: str, run_id: str) -> dict[str, Any]:
    """The run's answer once it ended (long polls of at most 5 s in all)."""
    deadline = time.monotonic() + 5
    while True:
        body: dict[str, Any] = (await client.get(f"/{sid}/runs/{run_id}?after=1000000&waitMs=500", headers=ADA)).json()
        if body["run"]["status"] != "running":
            return body
        assert time.monotonic() < deadline, "the run did not end"


# --- Old sessions are migrated once, as they are read or written --------------------------------------


async def test_an_old_session_is_migrated_once_when_read_and_written_at_the_new_version(backend: Backend) -> None:
    sid, before = await old_session(backend)
    assert (await stored_head(backend, sid))["schemaVersion"] == 1
    store = SessionStore(backend, migrations=M2)
    # Ten readers at once: one migration, one version bump.
    read = await asyncio.gather(*(store.get(sid) for _ in range(10)))
    assert all(snapshot == read[0] for snapshot in read)
    got = read[0]
    assert got is not None and canonical(got["variables"]) == canonical(MIGRATED)
    assert (got["version"], got["schemaVersion"], got["createdAt"]) == (before["version"] + 1, 2, before["createdAt"])
    # A migration changes no one's work: the session keeps its place in listings and its time to live.
    assert got["updatedAt"] == before["updatedAt"]
    head = await stored_head(backend, sid)
    assert (head["schemaVersion"], head["version"]) == (2, 3)
    assert head["bytes"] == len(json.dumps(MIGRATED, separators=(",", ":")).encode())
    assert await store.get(sid) == got  # a second read does not bump
    assert not await store.migrate(sid)


async def test_the_listing_migrates_the_stale_sessions_of_its_page(backend: Backend) -> None:
    old_ids = [(await old_session(backend, user="lister"))[0] for _ in range(3)]
    store = SessionStore(backend, migrations=M2)
    current = new_id()
    await store.apply(current, {"variables": {"shippingAddress": "x"}}, caller=Caller("lister"))
    listed = {summary["sessionId"]: summary for summary in await store.list(user_id="lister")}
    assert set(listed) == {*old_ids, current}
    stored = {sid: await stored_head(backend, sid) for sid in listed}
    assert all((listed[sid]["version"], stored[sid]["version"], stored[sid]["schemaVersion"]) == (3, 3, 2) for sid in old_ids)
    assert (listed[current]["version"], stored[current]["schemaVersion"]) == (1, 2)
    for sid in old_ids:
        snapshot = await store.get(sid)
        assert snapshot is not None and snapshot["version"] == 3 and canonical(snapshot["variables"]) == canonical(MIGRATED)
    again = {summary["sessionId"]: summary["version"] for summary in await store.list(user_id="lister")}
    assert again == {sid: summary["version"] for sid, summary in listed.items()}  # nothing bumped twice


async def test_a_patch_to_an_old_session_is_one_write_with_one_version_bump(backend: Backend) -> None:
    sid, before = await old_session(backend)
    store = SessionStore(backend, migrations=M2)
    # Under the current names (schema version 2): migration and patch in one write.
    result = await store.apply(sid, {"variables": {"shippingAddress": "Elm St 2", "more": 1}}, schema_version=2)
    assert result.applied and result.migrated
    assert result.snapshot["version"] == before["version"] + 1 and result.snapshot["schemaVersion"] == 2
    assert canonical(result.snapshot["variables"]) == canonical({**MIGRATED, "shippingAddress": "Elm St 2", "more": 1})
    assert await store.get(sid) == result.snapshot
    assert (await stored_head(backend, sid))["schemaVersion"] == 2


async def test_a_patch_of_an_older_client_to_an_old_session_lands_under_the_current_names(backend: Backend) -> None:
    sid, before = await old_session(backend)
    store = SessionStore(backend, migrations=M2)
    result = await store.apply(sid, {"variables": {"address": "Elm St 2", "legacyFlag": False}, "deleted": ["plan"]}, schema_version=1)
    assert result.snapshot["version"] == before["version"] + 1
    # "plan" deleted under its new name, a change of the workflow: its time is the merge's.
    expected = {"shippingAddress": "Elm St 2", "keep": [1, {"deep": None}], workflow_slot_key("signup", "at"): result.snapshot["updatedAt"]}
    assert canonical(result.snapshot["variables"]) == canonical(expected)


async def test_a_replayed_patch_to_an_old_session_still_writes_the_migration(backend: Backend) -> None:
    sid, before = await old_session(backend)
    store = SessionStore(backend, migrations=M2)
    replay = await store.apply(sid, {"variables": {"shippingAddress": "replayed"}, "clientId": "tab", "seq": 1}, schema_version=2)
    assert not replay.applied and replay.migrated
    assert replay.snapshot["version"] == before["version"] + 1 and canonical(replay.snapshot["variables"]) == canonical(MIGRATED)
    assert await store.get(sid) == replay.snapshot


async def test_a_run_start_migrates_first_and_the_run_reads_the_migrated_variables(backend: Backend) -> None:
    sid, before = await old_session(backend)
    store = SessionStore(backend, migrations=M2)
    start = await store.start_run(sid, "run-old-00001", "summarize", schema_version=2)
    assert start.started and start.wrote and canonical(start.variables) == canonical(MIGRATED)
    assert start.run["readVersion"] == before["version"] + 1
    retry = await store.start_run(sid, "run-old-00001", "summarize", schema_version=2)
    assert not retry.started and (await stored_head(backend, sid))["version"] == before["version"] + 1


async def test_a_run_started_before_the_migration_ends_with_its_changes_in_the_migrations_one_bump(backend: Backend) -> None:
    sid, before = await old_session(backend)
    started = await SessionStore(backend).start_run(sid, "run-old-00002", "summarize")
    assert started.started
    store = SessionStore(backend, migrations=M2)
    end = await store.finish_run(sid, "run-old-00002", "succeeded", changes={"variables": {"summary": "done"}})
    assert end.ended and end.applied and end.snapshot is not None
    assert end.snapshot["version"] == before["version"] + 1 and end.snapshot["schemaVersion"] == 2
    assert canonical(end.snapshot["variables"]) == canonical({**MIGRATED, "summary": "done"})
    assert end.run is not None and end.run["version"] == before["version"] + 1


async def test_adopt_and_the_workflow_reads_migrate_first(backend: Backend) -> None:
    sid, before = await old_session(backend)
    store = SessionStore(backend, migrations=M2)
    adopted = await store.adopt(sid, "eve")
    assert (adopted["version"], adopted["userId"], adopted["schemaVersion"]) == (before["version"] + 1, "eve", 2)  # one bump for both
    assert canonical(adopted["variables"]) == canonical(MIGRATED)
    other, other_before = await old_session(backend)
    state = await store.get_workflow(other, "signup")
    assert state is not None and state.data == {"plan": "pro"}
    assert (await stored_head(backend, other))["version"] == other_before["version"] + 1
    edited = await store.update_workflow(other, "signup", lambda workflow: workflow.set("email", "a@b.c"))
    # Migrated by the read above; the edit is one more version.
    assert edited["version"] == other_before["version"] + 2 and edited["variables"][workflow_data_key("signup", "email")] == "a@b.c"
    assert edited["variables"][PLAN] == "pro" and "plan" not in edited["variables"]


async def test_migrate_sessions_migrates_every_stale_session_and_reports_progress(backend: Backend) -> None:
    old_ids = [(await old_session(backend))[0] for _ in range(4)]
    store = SessionStore(backend, migrations=M2)
    current = new_id()
    await store.apply(current, {"variables": {"shippingAddress": "x"}})
    progress: list[tuple[int, int]] = []
    result = await migrate_sessions(store, lambda done, migrated: progress.append((done, migrated)))
    assert result == MigrationProgress(done=5, migrated=4)
    assert [done for done, _ in progress] == [1, 2, 3, 4, 5] and progress[-1] == (5, 4)
    assert all(later[1] - earlier[1] in (0, 1) for earlier, later in zip(progress, progress[1:]))
    for sid in old_ids:
        head = await stored_head(backend, sid)
        assert (head["version"], head["schemaVersion"]) == (3, 2)
    assert (await stored_head(backend, current))["version"] == 1
    told: list[tuple[int, int]] = []

    async def on_progress(done: int, migrated: int) -> None:
        told.append((done, migrated))

    assert await migrate_sessions(store, on_progress) == MigrationProgress(done=5, migrated=0)
    assert told[-1] == (5, 0)


# --- What snapshots, deltas and summaries carry ---------------------------------------------------------

#: The fields of a listing's summary (docs/protocol.md): nothing else, ``schemaVersion`` neither.
SUMMARY_FIELDS = {"sessionId", "version", "createdAt", "updatedAt", "workflowId", "userId"}


async def test_listing_summaries_never_carry_the_schema_version(backend: Backend) -> None:
    stale, _ = await old_session(backend, user="ada")
    plain = SessionStore(backend)
    created = new_id()
    await plain.apply(created, {"variables": {"a": 1}, "workflowId": "signup"}, caller=Caller("ada"))
    store = SessionStore(backend, migrations=M2)
    current = new_id()
    await store.apply(current, {"variables": {"b": 2}}, caller=Caller("ada"))
    # One page with a session migrated by the listing itself, one read migrated before, one written at 2.
    assert (await store.get(created)) is not None
    for listing in (await store.list(user_id="ada"), await store.list()):
        listed = {summary["sessionId"]: summary for summary in listing}
        assert {stale, created, current} <= set(listed)
        assert all(set(summary) <= SUMMARY_FIELDS for summary in listing), listing
        assert set(listed[created]) == SUMMARY_FIELDS  # every field it has, and nothing more
    for sid in (stale, created, current):
        assert (await stored_head(backend, sid))["schemaVersion"] == 2  # each one is stored at 2 all the same
    async with app_on(store) as client:
        response = await client.get("/", headers=ADA)
        assert response.status_code == 200
        sessions = response.json()["sessions"]
        assert {stale, created, current} <= {summary["sessionId"] for summary in sessions}
        assert all(set(summary) <= SUMMARY_FIELDS for summary in sessions), sessions


async def test_snapshots_carry_the_schema_version_only_from_2_up_after_the_heads_other_fields(backend: Backend) -> None:
    plain = SessionStore(backend)
    sid = new_id()
    created = (await plain.apply(sid, {"variables": {"a": 1}, "workflowId": "signup"}, caller=Caller("ada"))).snapshot
    assert "schemaVersion" not in created and (await stored_head(backend, sid))["schemaVersion"] == 1
    assert all("schemaVersion" not in summary for summary in await plain.list(user_id="ada"))
    store = SessionStore(backend, migrations=M2)
    got = await store.get(sid)  # version 1 is stale at 2: migrated (nothing of it renamed)
    assert got is not None and got["version"] == 2 and list(got)[-1] == "schemaVersion" and got["schemaVersion"] == 2
    assert {"workflowId", "userId"} <= set(got)
    summary = (await store.list(user_id="ada"))[0]
    assert "schemaVersion" not in summary and summary["version"] == 2  # the protocol's summary has none
    empty = (await store.apply(new_id(), {})).snapshot  # a version-0 snapshot is of the server's version too
    assert empty["version"] == 0 and empty["schemaVersion"] == 2


async def test_a_client_holding_the_tag_from_before_the_migration_gets_a_right_delta(backend: Backend) -> None:
    store = SessionStore(backend, migrations=M2)
    async with app_on(store) as client:
        for migrated_by_another_read in (False, True):
            sid, before = await old_session(backend, user="ada")
            if migrated_by_another_read:
                assert (await store.get(sid)) is not None
            response = await client.get(f"/{sid}", headers={**ADA, "session-base": f"{before['version']}@{before['createdAt']}"})
            delta = response.json()
            assert response.status_code == 200 and delta["base"] == before["version"] and delta["version"] == before["version"] + 1
            assert list(delta)[-1] == "schemaVersion" and delta["schemaVersion"] == 2
            assert sorted(delta["variables"]) == sorted(["shippingAddress", PLAN]) and delta["deleted"] == ["address", "legacyFlag", "plan"]
            truth = (await client.get(f"/{sid}", headers=ADA)).json()
            assert canonical(applied(before, delta)) == canonical(truth)


async def test_a_patch_with_the_tag_from_before_the_migration_is_answered_a_right_delta(backend: Backend) -> None:
    store = SessionStore(backend, migrations=M2)
    async with app_on(store) as client:
        sid, before = await old_session(backend, user="ada")
        headers = {**ADA, "session-base": f"{before['version']}@{before['createdAt']}"}
        delta = (await client.post(f"/{sid}", json={"variables": {"address": "Elm St 2"}}, headers=headers)).json()
        assert (delta["base"], delta["version"], delta["schemaVersion"]) == (before["version"], before["version"] + 1, 2)
        assert delta["variables"]["shippingAddress"] == "Elm St 2"
        truth = (await client.get(f"/{sid}", headers=ADA)).json()
        assert canonical(applied(before, delta)) == canonical(truth) and truth["version"] == before["version"] + 1


def applied(held: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The protocol's rule: deletions first, then the values, then the head fields (``schemaVersion`` one of them)."""
    assert (delta["sessionId"], delta["base"], delta["createdAt"]) == (held["sessionId"], held["version"], held["createdAt"])
    variables = {name: value for name, value in held["variables"].items() if name not in delta["deleted"]}
    variables.update(delta["variables"])
    snapshot = {"sessionId": delta["sessionId"], "variables": variables}
    snapshot.update((key, delta[key]) for key in ("version", "createdAt", "updatedAt", "workflowId", "userId", "schemaVersion") if key in delta)
    return snapshot


async def test_the_change_feed_streams_a_migrated_session_with_its_schema_version(tmp_path: Path, serve: Any, events: Any) -> None:
    path = tmp_path / "feed.db"
    plain = open_store(f"sqlite:{path}")
    held_sid, held = await old_session(plain.backend)
    whole_sid, _ = await old_session(plain.backend)
    await plain.close()
    server = serve(lambda: create_session_app(store=open_store(f"sqlite:{path}", migrations=M2), heartbeat_seconds=5))
    # A client holding the version from before the migration: the delta to the migrated one.
    deltas = await events(f"{server.url}/{held_sid}/events", **{"session-base": f"{held['version']}@{held['createdAt']}"})
    assert await deltas.next_block() == [": connected"]
    tag, event, data = await deltas.next_block()
    delta = json.loads(data.removeprefix("data: "))
    assert event == "event: delta" and tag == f"id: {held['version'] + 1}@{held['createdAt']}" and delta["schemaVersion"] == 2
    async with httpx.AsyncClient() as client:
        truth = (await client.get(f"{server.url}/{held_sid}")).json()
        assert canonical(applied(held, delta)) == canonical(truth)
    # Snapshots (a plain version), as the first read migrated it.
    snapshots = await events(f"{server.url}/{whole_sid}/events")
    assert await snapshots.next_block() == [": connected"]
    _, event, data = await snapshots.next_block()
    snapshot = json.loads(data.removeprefix("data: "))
    assert event == "event: snapshot" and (snapshot["version"], snapshot["schemaVersion"]) == (3, 2)
    assert canonical(snapshot["variables"]) == canonical(MIGRATED)


# --- A session stored at a newer version (a rollback) ----------------------------------------------------


async def test_a_session_stored_at_a_newer_version_is_answered_as_stored_and_never_changed(backend: Backend) -> None:
    newer = SessionStore(backend, migrations=M3_DATA)
    owned, ownerless = new_id(), new_id()
    await newer.apply(owned, {"variables": {"shippingAddress": "x", "country": "NL"}}, caller=Caller("ada"))
    await newer.apply(ownerless, {"variables": {"country": "DE"}})
    heads = {sid: await stored_head(backend, sid) for sid in (owned, ownerless)}
    seen = Seen()
    store = SessionStore(backend, migrations=M2)
    async with app_on(store, {"seen": seen}) as client:
        got = (await client.get(f"/{owned}", headers=ADA)).json()
        assert (got["version"], got["schemaVersion"], got["variables"]) == (1, 3, {"country": "NL", "shippingAddress": "x"})
        assert [(s["sessionId"], s["version"], "schemaVersion" in s) for s in (await client.get("/", headers=ADA)).json()["sessions"]] == [(owned, 1, False)]
        for body in ({"variables": {"a": 1}, "schemaVersion": 2}, {"variables": {"a": 1}, "schemaVersion": 3}, {"variables": {"a": 1}}, {}):
            assert error_of(await client.post(f"/{owned}", json=body, headers=ADA)) == (409, "schema_mismatch", 3)
        assert error_of(await client.post(f"/{owned}/runs", json={"runId": "run-newer-001", "step": "seen", "schemaVersion": 2}, headers=ADA)) == (409, "schema_mismatch", 3)
        assert error_of(await client.post(f"/{owned}/run/seen", json={"input": None, "schemaVersion": 2}, headers=ADA)) == (409, "schema_mismatch", 3)
        assert error_of(await client.post(f"/{ownerless}/adopt", headers=ADA)) == (409, "schema_mismatch", 3)
        assert (await client.post(f"/{owned}/adopt", headers=ADA)).json()["version"] == 1  # already the caller's: nothing to change
    with pytest.raises(SessionProtocolError) as refused:
        await store.update_workflow(owned, "signup", lambda workflow: workflow.set("x", 1))
    assert (refused.value.code, refused.value.schema_version) == ("schema_mismatch", 3)
    assert not await store.migrate(owned) and (await migrate_sessions(store)).migrated == 0
    assert seen.calls == 0
    assert {sid: await stored_head(backend, sid) for sid in (owned, ownerless)} == heads


# --- The wire: the schemaVersion of patches, runs and step calls -----------------------------------------


async def test_a_patch_of_schema_version_1_on_a_version_2_server_is_moved_to_the_new_names(backend: Backend) -> None:
    async with app_on(SessionStore(backend, migrations=M2)) as client:
        sid = new_id()
        for body in ({"variables": {"address": "A", "plan": "free"}, "schemaVersion": 1}, {"variables": {"address": "B", "legacyFlag": 1}}):
            response = await client.post(f"/{sid}", json=body, headers=ADA)
            assert response.status_code == 200 and response.json()["schemaVersion"] == 2
        assert (await client.post(f"/{sid}", json={"deleted": ["address"], "variables": {"keep": 1}, "schemaVersion": 1.0}, headers=ADA)).status_code == 200
        variables = (await client.get(f"/{sid}", headers=ADA)).json()["variables"]
        # "address" moved, then deleted under its new name; the workflow's time is the server's, as for any patch.
        assert variables == {PLAN: "free", "keep": 1, workflow_slot_key("signup", "at"): variables[workflow_slot_key("signup", "at")]}
        as_is = (await client.post(f"/{sid}", json={"variables": {"address": "C"}, "schemaVersion": 2}, headers=ADA)).json()
        assert as_is["variables"]["address"] == "C" and as_is["version"] == 4  # at the server's version: taken as it is


async def test_a_patch_that_cannot_be_moved_or_is_newer_is_409_and_changes_nothing(backend: Backend) -> None:
    async with app_on(SessionStore(backend, migrations=M3_FUNCTION)) as client:
        sid = new_id()
        created = (await client.post(f"/{sid}", json={"variables": {"firstName": "Ada"}, "schemaVersion": 3}, headers=ADA)).json()
        for version in (1, 2):  # a function step lies between: where the values go cannot be told
            response = await client.post(f"/{sid}", json={"variables": {"name": "Ada L"}, "schemaVersion": version}, headers=ADA)
            assert error_of(response) == (409, "schema_mismatch", 3)
        assert error_of(await client.post(f"/{sid}", json={"variables": {"x": 1}, "schemaVersion": 4}, headers=ADA)) == (409, "schema_mismatch", 3)
        assert (await client.get(f"/{sid}", headers=ADA)).json() == created
        missing = new_id()
        assert error_of(await client.post(f"/{missing}", json={"variables": {"x": 1}, "schemaVersion": 4}, headers=ADA)) == (409, "schema_mismatch", 3)
        assert (await client.get(f"/{missing}", headers=ADA)).status_code == 404
    # An old session refused so is not migrated either: the refusal changes nothing.
    sid, _ = await old_session(backend, user="ada")
    head = await stored_head(backend, sid)
    async with app_on(SessionStore(backend, migrations=M3_FUNCTION)) as client:
        assert error_of(await client.post(f"/{sid}", json={"variables": {"name": "Ada L"}}, headers=ADA)) == (409, "schema_mismatch", 3)
    assert await stored_head(backend, sid) == head


async def test_the_schema_version_is_checked_after_the_owner_and_before_the_size_after_the_merge() -> None:
    store = SessionStore(open_store("memory:").backend, migrations=M2)
    async with app_on(store, {"seen": Seen()}, max_bytes=200) as client:
        sid = new_id()
        assert (await client.post(f"/{sid}", json={"variables": {"a": "y" * 120}, "schemaVersion": 2}, headers=ADA)).status_code == 200
        grace = {"x-user": "grace"}
        assert error_of(await client.post(f"/{sid}", json={"variables": {"a": 2}, "schemaVersion": 3}, headers=grace))[:2] == (404, "not_found")
        assert error_of(await client.post(f"/{sid}/run/seen", json={"schemaVersion": 3}, headers=grace))[:2] == (404, "not_found")
        assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-grace-001", "step": "seen", "schemaVersion": 3}, headers=grace))[:2] == (
            404,
            "not_found",
        )
        # A body within the limit whose merge would not be: the schema version is checked first.
        big = {"variables": {"big": "x" * 120}, "schemaVersion": 3}
        assert error_of(await client.post(f"/{sid}", json=big, headers=ADA)) == (409, "schema_mismatch", 2)
        assert error_of(await client.post(f"/{sid}", json={**big, "schemaVersion": 2}, headers=ADA))[:2] == (413, "too_large")
        # Another caller's old session: 404, and not migrated by the refused requests.
        old, _ = await old_session(store.backend, user="ada")
        assert (await client.get(f"/{old}", headers=grace)).status_code == 404
        assert error_of(await client.post(f"/{old}", json={"variables": {"a": 1}, "schemaVersion": 2}, headers=grace))[:2] == (404, "not_found")
        assert error_of(await client.post(f"/{old}/run/seen", json={"schemaVersion": 2}, headers=grace))[:2] == (404, "not_found")
        assert (await stored_head(store.backend, old))["schemaVersion"] == 1


@pytest.mark.parametrize("bad", ["2", 1.5, 0, -1, True, None, [2], 2**53])
async def test_a_schema_version_that_is_not_a_whole_number_from_1_is_400(bad: Any) -> None:
    seen = Seen()
    async with app_on(SessionStore(open_store("memory:").backend, migrations=M2), {"seen": seen}) as client:
        sid = new_id()
        assert error_of(await client.post(f"/{sid}", json={"variables": {"a": 1}, "schemaVersion": bad}, headers=ADA))[:2] == (400, "invalid_patch")
        assert error_of(await client.post(f"/{sid}/runs", json={"runId": "run-bad-00001", "step": "seen", "schemaVersion": bad}, headers=ADA))[:2] == (
            400,
            "invalid_run",
        )
        assert error_of(await client.post(f"/{sid}/run/seen", json={"input": 1, "schemaVersion": bad}, headers=ADA))[:2] == (400, "invalid_patch")
        assert (await client.get(f"/{sid}", headers=ADA)).status_code == 404 and seen.calls == 0


@pytest.mark.parametrize("migrations", [M2, None], ids=["version 2", "no migrations"])
async def test_run_starts_and_step_calls_at_another_schema_version_are_409(migrations: Migrations | None) -> None:
    server = migrations.version if migrations is not None else 1
    seen = Seen()
    async with app_on(SessionStore(open_store("memory:").backend, migrations=migrations), {"seen": seen}) as client:
        sid = new_id()
        for other in ({}, {"schemaVersion": 1}, {"schemaVersion": 2}, {"schemaVersion": 3}):
            if other.get("schemaVersion", 1) == server:
                continue
            start = await client.post(f"/{sid}/runs", json={"runId": "run-other-0001", "step": "seen", **other}, headers=ADA)
            assert error_of(start) == (409, "schema_mismatch", server)
            assert error_of(await client.post(f"/{sid}/run/seen", json={"input": None, **other}, headers=ADA)) == (409, "schema_mismatch", server)
        assert seen.calls == 0 and (await client.get(f"/{sid}", headers=ADA)).status_code == 404
        called = await client.post(f"/{sid}/run/seen", json={"input": None, "schemaVersion": server}, headers=ADA)
        assert called.status_code == 200 and called.json()["session"]["variables"] == {"stepped": 1}
        started = await client.post(f"/{sid}/runs", json={"runId": "run-right-001", "step": "seen", "schemaVersion": server}, headers=ADA)
        assert started.status_code == 202
        assert (await finished_run(client, sid, "run-right-001"))["run"]["status"] == "succeeded"


async def test_a_step_call_and_a_run_on_an_old_session_read_it_migrated(backend: Backend) -> None:
    seen = Seen()
    async with app_on(SessionStore(backend, migrations=M2), {"seen": seen}) as client:
        sid, before = await old_session(backend, user="ada")
        called = (await client.post(f"/{sid}/run/seen", json={"input": None, "schemaVersion": 2}, headers=ADA)).json()
        assert canonical(called["output"]) == canonical(MIGRATED)
        assert (called["session"]["version"], called["session"]["schemaVersion"]) == (before["version"] + 2, 2)  # migrated, then the step's change
        other, other_before = await old_session(backend, user="ada")
        started = await client.post(f"/{other}/runs", json={"runId": "run-migrated-1", "step": "seen", "schemaVersion": 2}, headers=ADA)
        assert started.status_code == 202 and started.json()["run"]["readVersion"] == other_before["version"] + 1
        ended = await finished_run(client, other, "run-migrated-1")
        assert canonical(ended["run"]["output"]) == canonical(MIGRATED) and ended["session"]["schemaVersion"] == 2


# --- Values the app's check refuses once migrated are set aside, and reported once -------------------------


def address_object(name: str, value: JsonValue) -> str | None:
    """The app's check at version 2: ``shippingAddress`` is an object now (``OLD``'s string address is refused)."""
    return "expected an object" if name == "shippingAddress" and not isinstance(value, dict) else None


M2_CHECKED = define_migrations({"version": 2, "migrations": [TO_2]}, validate=address_object)
#: ``OLD`` at version 2 with the check: the address set aside rather than kept under its new name.
SET_ASIDE: dict[str, Any] = {
    PLAN: "pro",
    "keep": [1, {"deep": None}],
    SET_ASIDE_KEY: {"shippingAddress": {"value": "Main St 1", "problem": "expected an object", "schemaVersion": 2}},
}


class Told:
    """An ``on_error`` that keeps what it is told: ``(error, session_id)`` pairs."""

    def __init__(self) -> None:
        self.calls: list[tuple[Exception, str]] = []

    def __call__(self, error: Exception, session_id: str) -> None:
        self.calls.append((error, session_id))

    def of(self, sid: str) -> list[Exception]:
        """The errors told of session ``sid``."""
        return [error for error, told_sid in self.calls if told_sid == sid]


def assert_told_the_address_set_aside(told: Told, sid: str) -> None:
    """``told`` was called exactly once, for ``sid``, with the :class:`SetAsideError` of ``OLD``'s address."""
    assert len(told.calls) == 1, told.calls
    error, told_sid = told.calls[0]
    assert told_sid == sid and isinstance(error, SetAsideError)
    assert (error.session_id, error.schema_version, error.set_aside) == (sid, 2, [{"name": "shippingAddress", "problem": "expected an object"}])
    assert sid in str(error) and '"shippingAddress" (expected an object)' in str(error) and SET_ASIDE_KEY in str(error)
    copied = pickle.loads(pickle.dumps(error))  # as an error tracker or a process pool may hand it on
    assert (type(copied), str(copied), copied.set_aside) == (SetAsideError, str(error), error.set_aside)


class ReadTogether:
    """A backend whose reads wait for one another: ``readers`` reads of a stale session all happen before any of them migrates it."""

    def __init__(self, backend: Backend, readers: int) -> None:
        self._backend = backend
        self._together = asyncio.Barrier(readers)

    async def read(self, session_id: str) -> Any:
        record = await self._backend.read(session_id)
        await self._together.wait()
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


async def test_a_read_sets_aside_what_the_check_refuses_and_reports_it_once(backend: Backend) -> None:
    sid, before = await old_session(backend)
    told = Told()
    # Two readers at once, both reading the session stale: one migration, one report.
    racing = SessionStore(ReadTogether(backend, 2), migrations=M2_CHECKED, on_error=told)  # type: ignore[arg-type]
    read = await asyncio.gather(racing.get(sid), racing.get(sid))
    assert read[0] == read[1] and read[0] is not None
    got = read[0]
    assert canonical(got["variables"]) == canonical(SET_ASIDE) and "shippingAddress" not in got["variables"]
    assert (got["version"], got["schemaVersion"]) == (before["version"] + 1, 2)
    head = await stored_head(backend, sid)
    assert (head["version"], head["schemaVersion"]) == (before["version"] + 1, 2)
    assert_told_the_address_set_aside(told, sid)
    # Read again, listed, migrated by the job: current, nothing more to report.
    store = SessionStore(backend, migrations=M2_CHECKED, on_error=told)
    assert await store.get(sid) == got
    assert sid in {summary["sessionId"] for summary in await store.list()}
    assert not await store.migrate(sid)
    assert len(told.calls) == 1


async def test_a_patch_to_an_old_session_sets_aside_in_its_one_write_and_reports_it_once(backend: Backend) -> None:
    sid, before = await old_session(backend)
    told = Told()
    store = SessionStore(backend, migrations=M2_CHECKED, on_error=told)
    result = await store.apply(sid, {"variables": {"more": 1}}, schema_version=2)
    assert result.applied and result.migrated and result.snapshot["version"] == before["version"] + 1
    assert canonical(result.snapshot["variables"]) == canonical({**SET_ASIDE, "more": 1})
    assert await store.get(sid) == result.snapshot
    assert_told_the_address_set_aside(told, sid)
    # The app puts the address back in its new shape: an ordinary patch, nothing migrated, nothing told.
    fixed = await store.apply(sid, {"variables": {"shippingAddress": {"street": "Main St 1"}}, "deleted": [SET_ASIDE_KEY]})
    assert not fixed.migrated and SET_ASIDE_KEY not in fixed.snapshot["variables"]
    assert len(told.calls) == 1


async def test_every_way_a_store_migrates_reports_what_it_set_aside_once(backend: Backend) -> None:
    told = Told()
    store = SessionStore(backend, migrations=M2_CHECKED, on_error=told)
    listed, _ = await old_session(backend, user="lister")
    assert listed in {summary["sessionId"] for summary in await store.list(user_id="lister")}
    job, _ = await old_session(backend)
    assert (await migrate_sessions(store)).migrated >= 1
    adopted, _ = await old_session(backend)
    assert canonical((await store.adopt(adopted, "eve"))["variables"]) == canonical(SET_ASIDE)
    started, _ = await old_session(backend)
    assert (await store.start_run(started, "run-aside-0001", "seen", schema_version=2)).started
    stepped, _ = await old_session(backend)
    for_step = await store.get_for_step(stepped, schema_version=2)
    assert for_step is not None and canonical(for_step["variables"]) == canonical(SET_ASIDE)
    ended, _ = await old_session(backend)
    assert (await SessionStore(backend).start_run(ended, "run-aside-0002", "seen")).started  # started before the migration
    end = await store.finish_run(ended, "run-aside-0002", "succeeded", changes={"variables": {"done": True}})
    assert end.snapshot is not None and canonical(end.snapshot["variables"]) == canonical({**SET_ASIDE, "done": True})
    workflow, _ = await old_session(backend)
    await store.update_workflow(workflow, "signup", lambda view: view.set("email", "a@b.c"))
    for sid in (listed, job, adopted, started, stepped, ended, workflow):
        errors = told.of(sid)
        assert len(errors) == 1 and isinstance(errors[0], SetAsideError) and errors[0].session_id == sid, (sid, errors)
    assert len(told.calls) == 7
    # Once current, none of them is reported again.
    await store.list()
    assert (await migrate_sessions(store)).migrated == 0 and len(told.calls) == 7


async def test_a_migration_the_check_accepts_reports_nothing() -> None:
    backend = open_store("memory:").backend
    sid, _ = await old_session(backend)
    told = Told()
    store = SessionStore(backend, migrations=define_migrations({"version": 2, "migrations": [TO_2]}, validate=lambda name, value: None), on_error=told)
    got = await store.get(sid)
    assert got is not None and canonical(got["variables"]) == canonical(MIGRATED) and told.calls == []


async def test_the_default_on_error_logs_the_set_aside_values_and_a_failing_on_error_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="workflow_session")
    backend = open_store("memory:").backend
    sid, _ = await old_session(backend)
    got = await SessionStore(backend, migrations=M2_CHECKED).get(sid)
    assert got is not None and SET_ASIDE_KEY in got["variables"]
    [line] = [record for record in caplog.records if record.name == "workflow_session"]
    assert line.levelno == logging.ERROR and sid in line.getMessage() and '"shippingAddress" (expected an object)' in line.getMessage()
    caplog.clear()

    def failing(error: Exception, session_id: str) -> None:
        raise RuntimeError("the error tracker is down")

    other, before = await old_session(backend)
    result = await SessionStore(backend, migrations=M2_CHECKED, on_error=failing).apply(other, {"variables": {"more": 1}})
    assert result.applied and result.snapshot["version"] == before["version"] + 1 and SET_ASIDE_KEY in result.snapshot["variables"]
    [line] = [record for record in caplog.records if record.name == "workflow_session"]
    assert line.levelno == logging.ERROR and line.exc_info is not None and "the error tracker is down" in caplog.text and other in line.getMessage()


async def test_the_store_factories_pass_on_error_on(store_url: tuple[str, dict[str, Any]]) -> None:
    url, options = store_url
    told = Told()
    store = open_store(url, migrations=M2_CHECKED, on_error=told, **options)
    try:
        sid, _ = await old_session(store.backend)
        assert store.on_error is told and (await store.get(sid)) is not None
        assert [error.session_id for error in told.of(sid) if isinstance(error, SetAsideError)] == [sid]
    finally:
        await store.close()
    with pytest.raises(TypeError, match="on_error"):
        SessionStore(store.backend, on_error="log it")  # type: ignore[arg-type]


# --- The tables the TypeScript stores share -------------------------------------------------------------


async def sql(store_url: tuple[str, dict[str, Any]], statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Runs one statement on the store's database (``{sessions}``: its sessions table); the rows it answers."""
    url, options = store_url
    statement = statement.format(sessions=options.get("table", "ws_sessions"))
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:"))) as db, db:
            return db.execute(statement.replace("%s", "?"), params).fetchall()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        cursor = await db.execute(statement, params)
        return await cursor.fetchall() if cursor.description else []


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path}/shared.db", {}
    return request.getfixturevalue("postgres_url"), {"table": f"ws_schema_{uuid.uuid4().hex[:10]}"}


async def test_rows_from_before_the_column_read_as_0_and_are_migrated_when_read(sql_url: tuple[str, dict[str, Any]]) -> None:
    url, options = sql_url
    plain = open_store(url, **options)
    sid, before = await old_session(plain.backend)
    await plain.close()
    await sql(sql_url, "ALTER TABLE {sessions} DROP COLUMN schema_version")  # a table of the previous version
    reopened = open_store(url, **options)  # adds the column: every row at 0
    try:
        assert (await stored_head(reopened.backend, sid))["schemaVersion"] == 0
        snapshot = await reopened.get(sid)
        assert snapshot is not None and "schemaVersion" not in snapshot and snapshot["version"] == before["version"]  # 0 reads as 1: nothing to do
    finally:
        await reopened.close()
    if url.startswith("sqlite:"):
        column = await sql(sql_url, "SELECT type, \"notnull\", dflt_value FROM pragma_table_info('ws_sessions') WHERE name = 'schema_version'")
        assert column == [("INTEGER", 1, "0")]
    else:
        column = await sql(
            sql_url,
            "SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = %s AND column_name = 'schema_version'",
            options["table"],
        )
        assert column == [("integer", "NO", "0")]
    store = open_store(url, migrations=M2, **options)
    try:
        got = await store.get(sid)
        assert got is not None and (got["version"], got["schemaVersion"]) == (before["version"] + 1, 2)
        assert canonical(got["variables"]) == canonical(MIGRATED)
    finally:
        await store.close()
    assert await sql(sql_url, "SELECT version, schema_version FROM {sessions} WHERE id = %s", sid) == [(3, 2)]
    # What the migration wrote as rows: the new names at its version, the old ones as tombstones.
    variables = "ws_variables" if url.startswith("sqlite:") else f"{options['table']}_variables"
    rows = await sql(sql_url, f"SELECT name, value IS NULL, version FROM {variables} WHERE session_id = %s AND version = 3 ORDER BY name", sid)
    assert rows == sorted([("address", True, 3), ("legacyFlag", True, 3), ("plan", True, 3), ("shippingAddress", False, 3), (PLAN, False, 3)])


RACER = textwrap.dedent(
    """
    import asyncio, json, sys
    from workflow_session import define_migrations, open_store

    async def main(url, table, declaration, sid):
        options = {"table": table} if table else {}
        store = open_store(url, migrations=define_migrations(json.loads(declaration)), **options)
        await store.open()
        print("ready", flush=True)
        sys.stdin.readline()  # every process reads the session at once
        seen = await asyncio.gather(*(store.get(sid) for _ in range(4)))
        print(json.dumps([snapshot["version"] for snapshot in seen]), flush=True)
        await store.close()

    asyncio.run(main(*sys.argv[1:5]))
    """
)


async def test_two_processes_reading_an_old_session_at_once_migrate_it_once(sql_url: tuple[str, dict[str, Any]]) -> None:
    url, options = sql_url
    plain = open_store(url, **options)
    sid, before = await old_session(plain.backend)
    await plain.close()
    argv = [sys.executable, "-c", RACER, url, options.get("table", ""), json.dumps(M2.declaration), sid]
    racers = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        seen = [json.loads(racer.communicate(timeout=60)[0]) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
    assert [racer.returncode for racer in racers] == [0, 0]
    assert seen == [[before["version"] + 1] * 4] * 2
    assert await sql(sql_url, "SELECT version, schema_version FROM {sessions} WHERE id = %s", sid) == [(before["version"] + 1, 2)]


# --- python -m workflow_session.serve ---------------------------------------------------------------------


@contextmanager
def served(*args: str) -> Iterator[str]:
    """``python -m workflow_session.serve`` on a free port: its endpoints' URL while it runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "workflow_session.serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("workflow-session on "), (line, process.stderr.read() if process.stderr and process.poll() is not None else "")
        yield line.removeprefix("workflow-session on ").strip()
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_serve_with_conformance_declares_the_conformance_schema() -> None:
    assert conformance_migrations.version == 2
    assert conformance_migrations.migrate({"conformance_v1": 1}, 1).variables == {"conformance_v2": 1}
    with served("--store", "memory:", "--conformance") as url, httpx.Client(timeout=10) as client:
        sid = new_id()
        snapshot = client.post(f"{url}/{sid}", json={"variables": {"conformance_v1": "old"}}).json()
        assert (snapshot["variables"], snapshot["schemaVersion"]) == ({"conformance_v2": "old"}, 2)
        called = client.post(f"{url}/{sid}/run/conformance_echo", json={"input": 1, "schemaVersion": 2})
        assert called.status_code == 200 and called.json()["session"]["schemaVersion"] == 2
        assert error_of(client.post(f"{url}/{sid}/run/conformance_echo", json={"input": 1})) == (409, "schema_mismatch", 2)


def test_serve_with_a_migrations_file_migrates_the_sessions_of_its_store(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    plain = open_store(f"sqlite:{path}")
    sid, before = asyncio.run(old_session(plain.backend))
    asyncio.run(plain.close())
    declaration = tmp_path / "schema.json"
    declaration.write_text(json.dumps(M2.declaration))
    with served("--store", f"sqlite:{path}", "--migrations", str(declaration)) as url, httpx.Client(timeout=10) as client:
        got = client.get(f"{url}/{sid}").json()
        assert (got["version"], got["schemaVersion"]) == (before["version"] + 1, 2) and canonical(got["variables"]) == canonical(MIGRATED)
    with_function = tmp_path / "function.json"
    with_function.write_text(json.dumps(M3_FUNCTION.declaration))
    serve = [sys.executable, "-m", "workflow_session.serve", "--store", "memory:", "--port", "0"]
    refused = subprocess.run([*serve, "--migrations", str(with_function)], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and 'no function named "splitName"' in refused.stderr
    both = subprocess.run([*serve, "--conformance", "--migrations", str(declaration)], capture_output=True, text=True, timeout=30)
    assert both.returncode == 2 and "not both" in both.stderr
