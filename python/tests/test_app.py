"""The HTTP contract on the memory store: errors, check order, limits, owner rules (docs/protocol.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import asgi_call, client_of, http_scope, new_id

from workflow_session import SessionProtocolError, SessionStore, create_session_app, memory_store
from workflow_session.stores.memory import MemoryBackend

pytestmark = pytest.mark.anyio


def user_header(request: Any) -> str | None:
    return request.headers.get("x-user")


def make_app(**options: Any) -> Any:
    return create_session_app(store=options.pop("store", None) or memory_store(), authorize=user_header, **options)


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, body["error"]["code"]


async def test_a_patch_creates_and_merges_and_get_reads_it() -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        assert error_of(await client.get(f"/{sid}")) == (404, "not_found")
        first = await client.post(f"/{sid}", json={"variables": {"email": "a@b.c"}})
        assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
        snapshot = first.json()
        assert [snapshot["sessionId"], snapshot["variables"], snapshot["version"]] == [sid, {"email": "a@b.c"}, 1]
        assert (await client.get(f"/{sid}")).json() == snapshot
        assert (await client.post(f"/{sid}", json={})).json()["version"] == 1
        deleted = await client.delete(f"/{sid}")
        assert deleted.status_code == 204 and deleted.content == b"" and deleted.headers["cache-control"] == "no-store"
        assert error_of(await client.delete(f"/{sid}")) == (404, "not_found")


async def test_every_path_and_method_under_the_app_answers_protocol_json() -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        for method, path, expected in [
            ("PUT", f"/{sid}", (405, "method_not_allowed")),
            ("PATCH", f"/{sid}", (405, "method_not_allowed")),
            ("HEAD", f"/{sid}", None),
            ("OPTIONS", "/", (405, "method_not_allowed")),
            ("POST", "/", (405, "method_not_allowed")),
            ("DELETE", f"/{sid}/events", (405, "method_not_allowed")),
            ("GET", f"/{sid}/run/x", (405, "method_not_allowed")),
            ("GET", f"/{sid}/nothing", (404, "not_found")),
            ("GET", f"/{sid}/run/a/b", (404, "not_found")),
            ("POST", f"/{sid}/a/b/c/d", (404, "not_found")),
            ("GET", "/%zz/%%", (404, "not_found")),
            ("GET", "/abc%zz12345", (404, "not_found")),
            ("GET", "/abc%FF12345", (404, "not_found")),
            ("GET", "/abc%2F12345", (400, "invalid_session_id")),
        ]:
            response = await client.request(method, path)
            if expected is None:  # HEAD: no body, but the status and headers of the JSON error
                assert response.status_code == 405 and response.headers["cache-control"] == "no-store"
            else:
                assert error_of(response) == expected, (method, path)


async def test_a_base_path_when_served_alone() -> None:
    async with client_of(make_app(base="/api/session")) as client:
        assert error_of(await client.get("/")) == (404, "not_found")
        assert error_of(await client.get("/api/sessionx")) == (404, "not_found")
        assert (await client.get("/api/session")).json() == {"sessions": []}
        assert error_of(await client.get("/api/session/short")) == (400, "invalid_session_id")


# Each row breaks two rules; the one earlier in the protocol's order answers.
ORDER_CASES: list[tuple[str, str, str, dict[str, str], Any, tuple[int, str]]] = [
    ("path before method", "PUT", "/{id}/x/y/z", {}, None, (404, "not_found")),
    ("method before origin", "PUT", "/{id}", {"origin": "https://evil.example"}, None, (405, "method_not_allowed")),
    ("origin before user", "POST", "/{id}", {"origin": "https://evil.example"}, {}, (403, "forbidden_origin")),
    ("user before session id", "POST", "/bad", {}, {}, (401, "unauthenticated")),
    ("session id before step name", "POST", "/bad/run/nope", {"x-user": "ada"}, {}, (400, "invalid_session_id")),
    ("step name before content type", "POST", "/{id}/run/nope", {"x-user": "ada", "content-type": "text/plain"}, "x", (404, "unknown_step")),
    ("content type before size", "POST", "/{id}", {"x-user": "ada", "content-type": "text/plain"}, "x" * 2000, (415, "unsupported_media_type")),
    ("size before JSON", "POST", "/{id}", {"x-user": "ada"}, "{" * 2000, (413, "too_large")),
    ("JSON before shape", "POST", "/{id}", {"x-user": "ada"}, "[1,", (400, "invalid_json")),
    ("shape before keys per patch", "POST", "/{id}", {"x-user": "ada"}, {"variables": {f"k{i}": 1 for i in range(20)}, "seq": 1}, (400, "invalid_patch")),
    ("keys per patch before names", "POST", "/{id}", {"x-user": "ada"}, {"variables": {"": 1, **{f"k{i}": 1 for i in range(20)}}}, (413, "too_large")),
    ("names and values in the order given", "POST", "/{id}", {"x-user": "ada"}, {"variables": {"a": float("inf"), "": 1}}, (400, "invalid_patch")),
    ("names before owner", "POST", "/{taken}", {"x-user": "ada"}, {"variables": {"__proto__": 1}}, (400, "invalid_key")),
    ("owner before size after the merge", "POST", "/{taken}", {"x-user": "ada"}, {"variables": {"big": "x" * 900}}, (404, "not_found")),
]


@pytest.mark.parametrize("name,method,path,headers,body,expected", ORDER_CASES, ids=[case[0] for case in ORDER_CASES])
async def test_checks_run_in_the_protocols_order(name: str, method: str, path: str, headers: dict[str, str], body: Any, expected: tuple[int, str]) -> None:
    app = make_app(require_user=True, allowed_origins=["https://app.example/"], max_bytes=1000, max_keys_per_patch=10, steps={"real": lambda ctx: None})
    async with client_of(app) as client:
        taken = new_id()
        assert (await client.post(f"/{taken}", json={"variables": {"a": 1}}, headers={"x-user": "grace"})).status_code == 200
        if isinstance(body, (dict, list)):
            content = json.dumps(body).replace("Infinity", "1e400").encode()
        else:
            content = None if body is None else body.encode()
        send_headers = {"content-type": "application/json", **headers}
        response = await client.request(method, path.format(id=new_id(), taken=taken), content=content, headers=send_headers)
        assert error_of(response) == expected
        assert (await client.get(f"/{taken}", headers={"x-user": "grace"})).json()["version"] == 1


async def test_size_limits_on_the_body_and_on_the_session() -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        over = json.dumps({"variables": {"kept": "x" * (1024 * 1024)}})
        assert error_of(await client.post(f"/{sid}", content=over, headers={"content-type": "application/json"})) == (413, "too_large")
        half = "x" * (600 * 1024)
        assert (await client.post(f"/{sid}", json={"variables": {"a": half}})).status_code == 200
        assert error_of(await client.post(f"/{sid}", json={"variables": {"b": half}})) == (413, "too_large")
        assert (await client.get(f"/{sid}")).json()["version"] == 1
        too_many = {"variables": {f"k{i}": i for i in range(1001)}}
        assert error_of(await client.post(f"/{sid}", json=too_many)) == (413, "too_large")
        assert (await client.post(f"/{sid}", json={"variables": {f"k{i}": i for i in range(1000)}})).status_code == 200


@pytest.mark.parametrize(
    "body,code",
    [
        ("{", "invalid_json"),
        ("NaN", "invalid_json"),
        ('{"variables": {"a": NaN}}', "invalid_json"),
        ("[1, 2]", "invalid_patch"),
        ("", "invalid_patch"),
        ('{"variables": ["x"]}', "invalid_patch"),
        ('{"variables": null}', "invalid_patch"),
        ('{"deleted": [1]}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "c", "seq": "5"}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "c", "seq": 1.5}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "c", "seq": 0}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "c", "seq": true}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "c", "seq": 9007199254740992}', "invalid_patch"),
        ('{"variables": {"a": 1}, "seq": 1}', "invalid_patch"),
        ('{"variables": {"a": 1}, "clientId": "", "seq": 1}', "invalid_patch"),
        ('{"variables": {"a": 1}, "workflowId": 5}', "invalid_patch"),
        ('{"variables": {"a": "\\ud800"}}', "invalid_patch"),
        ('{"variables": {"\\udc00": 1}}', "invalid_key"),
        ('{"variables": {"__proto__": {"polluted": true}}}', "invalid_key"),
        ('{"deleted": ["prototype"]}', "invalid_key"),
        ('{"variables": {"a": ' + "[" * 65 + "]" * 65 + "}}", "invalid_patch"),
        ('{"variables": {"a": ' + "[" * 5000 + "]" * 5000 + "}}", "invalid_patch"),
    ],
)
async def test_bad_bodies_change_nothing(body: str, code: str) -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"kept": 1}})
        response = await client.post(f"/{sid}", content=body.encode(), headers={"content-type": "application/json"})
        assert error_of(response) == (400, code)
        assert (await client.get(f"/{sid}")).json()["variables"] == {"kept": 1}


async def test_seq_good_forms_and_exactly_once() -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        ok = await client.post(f"/{sid}", content=b'{"variables": {"n": 1}, "clientId": "tab", "seq": 5.0}', headers={"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 200 and ok.json()["version"] == 1
        replay = await client.post(f"/{sid}", json={"variables": {"n": 9}, "clientId": "tab", "seq": 5})
        assert replay.json()["variables"] == {"n": 1} and replay.json()["version"] == 1
        assert (await client.post(f"/{sid}", json={"variables": {"n": 2}, "clientId": "tab", "seq": 9}, headers={})).json()["version"] == 2
        missing = new_id()
        empty = await client.post(f"/{missing}", json={"clientId": "tab", "seq": 1})
        assert empty.status_code == 200 and empty.json()["version"] == 0 and empty.json()["variables"] == {}
        assert error_of(await client.get(f"/{missing}")) == (404, "not_found")


async def test_the_owner_comes_from_authorize_only_and_others_see_nothing() -> None:
    async with client_of(make_app()) as client:
        mine, unused = new_id(), new_id()
        created = await client.post(f"/{mine}", json={"variables": {"a": 1}, "userId": "mallory"}, headers={"x-user": "ada"})
        assert created.json()["userId"] == "ada"
        assert (await client.get(f"/{mine}", headers={"x-user": "ada"})).status_code == 200
        for headers in [{"x-user": "mallory"}, {}]:
            for method in ["GET", "DELETE"]:
                theirs = await client.request(method, f"/{mine}", headers=headers)
                nobodys = await client.request(method, f"/{unused}", headers=headers)
                # No existence oracle: the same status, headers and bytes as an id nobody uses.
                assert (theirs.status_code, theirs.content, theirs.headers) == (nobodys.status_code, nobodys.content, nobodys.headers)
                assert theirs.status_code == 404
            write = await client.post(f"/{mine}", json={"variables": {"a": 2}}, headers=headers)
            assert error_of(write) == (404, "not_found")
        assert (await client.get(f"/{mine}", headers={"x-user": "ada"})).json()["variables"] == {"a": 1}
        # A session without an owner is reachable by anyone with its id; a user's write keeps it ownerless.
        shared = new_id()
        await client.post(f"/{shared}", json={"variables": {"a": 1}})
        assert (await client.post(f"/{shared}", json={"variables": {"a": 2}}, headers={"x-user": "ada"})).status_code == 200
        assert "userId" not in (await client.get(f"/{shared}")).json()


async def test_listing_the_callers_sessions_newest_first_in_pages() -> None:
    async with client_of(make_app()) as client:
        ids = [new_id() for _ in range(3)]
        for sid in ids:
            await client.post(f"/{sid}", json={"variables": {"a": 1}, "workflowId": "signup"}, headers={"x-user": "ada"})
        await client.post(f"/{new_id()}", json={"variables": {"a": 1}}, headers={"x-user": "grace"})
        await client.post(f"/{new_id()}", json={"variables": {"a": 1}})
        assert (await client.get("/")).json() == {"sessions": []}  # anonymous: nobody's ids
        listed = (await client.get("/", headers={"x-user": "ada"})).json()["sessions"]
        assert {s["sessionId"] for s in listed} == set(ids)
        assert all(set(s) == {"sessionId", "version", "createdAt", "updatedAt", "workflowId", "userId"} for s in listed)
        assert [s["updatedAt"] for s in listed] == sorted((s["updatedAt"] for s in listed), reverse=True)
        page = (await client.get("/?limit=2&offset=1", headers={"x-user": "ada"})).json()["sessions"]
        assert page == listed[1:3]
        for query in ["limit=0", "limit=101", "limit=", "limit=1.5", "offset=-1", "limit=%EF%BC%91"]:
            assert error_of(await client.get(f"/?{query}", headers={"x-user": "ada"})) == (400, "bad_request"), query


async def test_allowed_origins_guard_writes_only() -> None:
    async with client_of(make_app(allowed_origins=["https://app.example"])) as client:
        sid = new_id()
        assert (await client.post(f"/{sid}", json={"variables": {"a": 1}}, headers={"origin": "https://app.example"})).status_code == 200
        assert (await client.post(f"/{sid}", json={"variables": {"a": 2}})).status_code == 200  # no Origin: not a browser
        assert error_of(await client.delete(f"/{sid}", headers={"origin": "https://evil.example"})) == (403, "forbidden_origin")
        assert (await client.get(f"/{sid}", headers={"origin": "https://evil.example"})).status_code == 200


async def test_require_user_answers_401_without_one() -> None:
    async with client_of(make_app(require_user=True)) as client:
        assert error_of(await client.get("/")) == (401, "unauthenticated")
        assert (await client.get("/", headers={"x-user": "ada"})).status_code == 200


async def test_async_authorize_with_the_starlette_request() -> None:
    async def from_cookie(request: Any) -> str | None:
        return request.cookies.get("user")

    app = create_session_app(store=memory_store(), authorize=from_cookie)
    async with client_of(app) as client:
        sid = new_id()
        response = await client.post(f"/{sid}", json={"variables": {"a": 1}}, headers={"cookie": "user=ada"})
        assert response.json()["userId"] == "ada"


class Unreachable(MemoryBackend):
    async def read(self, session_id: str) -> Any:
        raise SessionProtocolError("unavailable", "The session database cannot be reached right now; try again")

    async def update(self, session_id: str, decide: Any) -> Any:
        raise SessionProtocolError("unavailable", "The session database cannot be reached right now; try again")


class Broken(MemoryBackend):
    async def update(self, session_id: str, decide: Any) -> Any:
        raise RuntimeError("disk on fire at /var/lib/secret")


async def test_a_store_that_cannot_reach_its_database_is_503_with_retry_after() -> None:
    async with client_of(make_app(store=SessionStore(Unreachable()))) as client:
        for response in [await client.get(f"/{new_id()}"), await client.post(f"/{new_id()}", json={"variables": {"a": 1}})]:
            assert error_of(response) == (503, "unavailable") and response.headers["retry-after"] == "1"


async def test_a_failing_store_is_500_internal_error_without_internals() -> None:
    errors: list[BaseException] = []
    app = make_app(store=SessionStore(Broken()), on_error=lambda error, request, step: errors.append(error))
    async with client_of(app) as client:
        response = await client.post(f"/{new_id()}", json={"variables": {"a": 1}})
        assert error_of(response) == (500, "internal_error") and "secret" not in response.text
        assert len(errors) == 1 and "disk on fire" in str(errors[0])


async def test_a_body_cut_off_midway_is_400_bad_request() -> None:
    scope = http_scope("POST", f"/{new_id()}", headers=[(b"content-type", b"application/json")])
    call, sent = asgi_call(make_app(), scope, [{"type": "http.request", "body": b'{"varia', "more_body": True}, {"type": "http.disconnect"}])
    await call
    assert sent[0]["status"] == 400 and json.loads(sent[1]["body"])["error"]["code"] == "bad_request"


async def test_a_user_who_signs_in_adopts_the_session_they_started_and_nobody_else() -> None:
    async with client_of(make_app()) as client:
        sid = new_id()
        await client.post(f"/{sid}", json={"variables": {"draft": "typed before signing in"}})
        assert error_of(await client.post(f"/{sid}/adopt")) == (401, "unauthenticated")
        # A cross-site form signed in as eve cannot adopt it for her: forms send a content type.
        form = {"x-user": "eve", "content-type": "application/x-www-form-urlencoded"}
        assert error_of(await client.post(f"/{sid}/adopt", headers=form, content=b"")) == (415, "unsupported_media_type")
        assert (await client.get("", headers={"x-user": "eve"})).json()["sessions"] == []
        adopted = (await client.post(f"/{sid}/adopt", headers={"x-user": "eve"})).json()
        assert adopted["userId"] == "eve" and adopted["version"] == 2
        assert error_of(await client.get(f"/{sid}")) == (404, "not_found")
        assert error_of(await client.post(f"/{sid}/adopt", headers={"x-user": "ada"})) == (404, "not_found")
        assert [s["sessionId"] for s in (await client.get("", headers={"x-user": "eve"})).json()["sessions"]] == [sid]


async def test_a_change_is_checked_once_on_each_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's patch at the edge only; a step's changes and server code's in the store only."""
    from workflow_session import merge

    checked: list[list[str]] = []
    check = merge.assert_valid_change

    def counted(change: Any) -> None:
        checked.append(sorted(change.get("variables") or {}))
        check(change)

    monkeypatch.setattr(merge, "assert_valid_change", counted)
    store = memory_store()
    async with client_of(make_app(store=store, steps={"step": lambda ctx: {"variables": {"b": 2}}})) as client:
        sid = new_id()
        assert (await client.post(f"/{sid}", json={"variables": {"a": 1}})).status_code == 200
        assert checked == [["a"]]
        assert (await client.post(f"/{sid}/run/step")).status_code == 200
        assert checked == [["a"], ["b"]]
    await store.apply(sid, {"variables": {"c": 3}})
    assert checked == [["a"], ["b"], ["c"]]
