"""The workflow view (the same key layout and members as the TypeScript one) and the store's workflow calls."""

from __future__ import annotations

import asyncio

import pytest
from conftest import new_id

from workflow_session import Workflow, memory_store, parse_workflow_key, workflow_data_key, workflow_slot_key
from workflow_session.workflow import Draft
from workflow_session.workflow_keys import ParsedKey

pytestmark = pytest.mark.anyio


def test_keys_are_laid_out_as_the_typescript_client_lays_them_out() -> None:
    # The same strings encodeURIComponent makes: "a:b é/ü" → "a%3Ab%20%C3%A9%2F%C3%BC"; !*'() stay.
    assert workflow_data_key("a:b", "é/ü name") == "wf:a%3Ab:v:%C3%A9%2F%C3%BC%20name"
    assert workflow_data_key("x", "it's (ok)!*~") == "wf:x:v:it's%20(ok)!*~"
    assert workflow_slot_key("sign up", "step") == "wf:sign%20up:step"
    assert parse_workflow_key("wf:a%3Ab:v:%C3%A9%2F%C3%BC%20name") == ParsedKey("a:b", "é/ü name", None)
    assert parse_workflow_key("wf:sign%20up:at") == ParsedKey("sign up", None, "at")
    for plain in ["email", "wf:x", "wf:x:nope", "wf:%zz:step", "wf:%FF:step", "wf:a:v:b:c"]:
        assert parse_workflow_key(plain) is None, plain


def test_the_view_reads_and_writes_its_own_fields_only() -> None:
    draft = Draft({"wf:other:v:name": "Grace", "email": "a@b.c"})
    signup = Workflow(draft, "signup")
    assert signup.get("name") is None and signup.get("name", "") == "" and not signup.has("name")
    signup.set("name", "Ada")
    signup.set("nickname", None)
    assert signup.has("nickname") and signup.get("nickname", "x") is None  # None stored is a value
    assert signup.get_all() == {"name": "Ada", "nickname": None}
    signup.delete("nickname")
    assert signup.step is None and signup.flow == "signup" and signup.stack == [] and signup.params is None
    signup.set_step("details")
    assert draft.changes() == {"variables": {"wf:signup:v:name": "Ada", "wf:signup:step": "details"}, "deleted": ["wf:signup:v:nickname"]}
    assert Workflow(draft, "other").get("name") == "Grace"


def test_subflows_stack_and_return() -> None:
    draft = Draft({"wf:checkout:at": "2026-11-21T04:05:12.345Z"})
    checkout = Workflow(draft, "checkout")
    checkout.set_step("payment")
    checkout.enter_subflow("3ds", "challenge", {"amount": 42})
    assert (checkout.flow, checkout.step, checkout.params) == ("3ds", "challenge", {"amount": 42})
    assert checkout.stack == [{"flow": "checkout", "step": "payment", "params": None}]
    checkout.enter_subflow("otp", "code")
    assert len(checkout.stack) == 2 and checkout.params is None
    checkout.exit_subflow("verified")
    assert (checkout.flow, checkout.step, checkout.params) == ("3ds", "verified", {"amount": 42})
    checkout.exit_subflow("confirm")
    assert (checkout.flow, checkout.step, checkout.params, checkout.stack) == ("checkout", "confirm", None, [])
    with pytest.raises(ValueError):
        checkout.exit_subflow("nowhere")
    assert checkout.last_modified == "2026-11-21T04:05:12.345Z"
    checkout.set("address", "Paris")
    checkout.clear()
    assert checkout.get_all() == {} and checkout.step is None and checkout.last_modified is not None  # clear keeps `at`


async def test_get_workflow_and_update_workflow_merge_once_and_retry_on_a_newer_session() -> None:
    store = memory_store()
    sid = new_id()
    assert await store.get_workflow(sid, "signup") is None
    snapshot = await store.update_workflow(sid, "signup", lambda signup: (signup.set("email", "a@b.c"), signup.set_step("email"))[-1])
    assert snapshot["version"] == 1 and snapshot["variables"]["wf:signup:v:email"] == "a@b.c"
    state = await store.get_workflow(sid, "signup")
    assert state is not None and state.data == {"email": "a@b.c"} and state.step == "email" and state.flow == "signup"
    assert state.last_modified == snapshot["updatedAt"]

    attempts: list[int] = []

    async def edit(signup: Workflow) -> None:
        attempts.append(len(attempts))
        if len(attempts) == 1:  # another write lands between the read and the merge
            await store.apply(sid, {"variables": {"wf:signup:v:count": 10}})
        signup.set("count", (signup.get("count") or 0) + 1)

    after = await store.update_workflow(sid, "signup", edit)
    assert len(attempts) == 2 and after["variables"]["wf:signup:v:count"] == 11 and after["version"] == 3
    results = await asyncio.gather(*(store.update_workflow(sid, "signup", lambda w: w.set("count", w.get("count") + 1)) for _ in range(5)))
    assert max(r["version"] for r in results) == 8 and (await store.get_state(sid, "wf:signup:v:count")) == 16
