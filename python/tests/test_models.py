"""The wire models as TypedDicts: a type checker reads them, and Pydantic validates with them."""

from __future__ import annotations

import pytest
from conftest import client_of, new_id
from pydantic import BaseModel, TypeAdapter, ValidationError

from workflow_session import Patch, RunResponse, Snapshot, Summary, conformance_steps, create_session_app, memory_store

pytestmark = pytest.mark.anyio


class CheckoutView(BaseModel):
    """An app's own model with the package's TypedDicts as field types."""

    session: Snapshot
    recent: list[Summary] = []


async def test_real_responses_validate_as_the_models() -> None:
    app = create_session_app(store=memory_store(), steps=conformance_steps, authorize=lambda request: "ada")
    async with client_of(app) as client:
        sid = new_id()
        patch: Patch = {"variables": {"cart": ["milk"], "nested": {"a": [1, 2.5, None, True]}}, "clientId": "tab", "seq": 1, "workflowId": "checkout"}
        snapshot = TypeAdapter(Snapshot).validate_python((await client.post(f"/{sid}", json=patch)).json())
        assert snapshot["variables"]["cart"] == ["milk"] and snapshot["userId"] == "ada"
        run = TypeAdapter(RunResponse).validate_json((await client.post(f"/{sid}/run/conformance_echo", json={"input": 1})).content)
        assert run["output"] == {"input": 1, "seen": snapshot["variables"]} and run["session"]["version"] == 2
        listed = (await client.get("/")).json()["sessions"]
        view = CheckoutView(session=run["session"], recent=listed)
        assert view.session["sessionId"] == sid and view.recent[0]["sessionId"] == sid
        assert CheckoutView.model_validate_json(view.model_dump_json()) == view


def test_pydantic_refuses_what_is_not_a_snapshot() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Snapshot).validate_python({"sessionId": "abcdefgh", "variables": {}, "version": "seven"})
    with pytest.raises(ValidationError):
        TypeAdapter(Patch).validate_python({"variables": {"when": object()}})
