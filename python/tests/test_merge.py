from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workflow_session import MAX_REMEMBERED_CLIENTS, SessionProtocolError, merge_session, valid_change
from workflow_session.merge import iso_time

NOW = datetime(2026, 11, 21, 4, 5, 12, 345678, tzinfo=timezone.utc)


def merged(current, change, now=NOW, **limits):
    return merge_session(current, "session-1", change, now, **limits)


def test_times_are_iso_utc_with_milliseconds() -> None:
    assert iso_time(NOW) == "2026-11-21T04:05:12.345Z"


def test_the_first_change_creates_version_1_and_each_applied_one_adds_one() -> None:
    first = merged(None, {"variables": {"cart": {"a": 1, "b": 2}, "keep": True, "draft": "x"}})
    assert first.applied and first.record["head"]["version"] == 1
    assert first.record["head"]["createdAt"] == first.record["head"]["updatedAt"] == "2026-11-21T04:05:12.345Z"
    later = NOW + timedelta(seconds=1)
    second = merged(first.record, {"variables": {"cart": {"c": 3}, "note": None}, "deleted": ["draft"]}, later)
    head = second.record["head"]
    assert second.record["variables"] == {"cart": {"c": 3}, "keep": True, "note": None}  # per key, whole; null is a value
    assert head["version"] == 2 and head["createdAt"] == "2026-11-21T04:05:12.345Z"
    assert head["updatedAt"] == "2026-11-21T04:05:13.345Z"
    assert first.record["variables"]["draft"] == "x"  # the current record is not changed


def test_an_empty_change_applies_nothing_and_creates_nothing() -> None:
    result = merged(None, {}, owner="ada")
    assert not result.applied
    assert result.record["head"]["version"] == 0 and result.record["head"]["userId"] == "ada"


def test_a_key_both_set_and_deleted_is_set() -> None:
    assert merged(None, {"variables": {"a": 1}, "deleted": ["a"]}).record["variables"] == {"a": 1}


def test_seq_is_applied_once_per_client_with_gaps_allowed() -> None:
    record = merged(None, {"variables": {"n": 1}, "clientId": "a", "seq": 1}).record
    record = merged(record, {"variables": {"n": 2}, "clientId": "b", "seq": 1}).record
    replay = merged(record, {"variables": {"n": 1}, "clientId": "a", "seq": 1})
    assert not replay.applied and replay.record["variables"] == {"n": 2}
    gap = merged(record, {"variables": {"n": 3}, "clientId": "a", "seq": 7})
    assert gap.applied and gap.record["head"]["clients"] == {"b": 1, "a": 7}  # recency order
    assert not merged(gap.record, {"variables": {"n": 4}, "clientId": "a", "seq": 6}).applied


def test_the_256_most_recent_clients_are_remembered() -> None:
    record = merged(None, {"variables": {"n": 0}, "clientId": "client-0", "seq": 1}).record
    for number in range(1, MAX_REMEMBERED_CLIENTS + 1):
        record = merged(record, {"variables": {"n": number}, "clientId": f"client-{number}", "seq": 1}).record
    assert len(record["head"]["clients"]) == MAX_REMEMBERED_CLIENTS and "client-0" not in record["head"]["clients"]
    # The forgotten client's replay is applied again: the documented bound.
    assert merged(record, {"variables": {"n": -1}, "clientId": "client-0", "seq": 1}).applied
    assert not merged(record, {"variables": {"n": -1}, "clientId": "client-1", "seq": 1}).applied


def test_a_change_to_a_workflow_stamps_its_at_in_the_same_merge() -> None:
    record = merged(None, {"variables": {"wf:signup:v:email": "a@b.c", "wf:a%3Ab:step": "two", "plain": 1}}).record
    variables = record["variables"]
    assert variables["wf:signup:at"] == variables["wf:a%3Ab:at"] == "2026-11-21T04:05:12.345Z"
    deleted = merged(record, {"deleted": ["wf:signup:v:email"]}, NOW + timedelta(seconds=2)).record
    assert deleted["variables"]["wf:signup:at"] == "2026-11-21T04:05:14.345Z"
    assert deleted["variables"]["wf:a%3Ab:at"] == "2026-11-21T04:05:12.345Z"
    # Writing only the stamp, or a name that is not a workflow's, stamps nothing.
    assert "wf:x:at" not in merged(None, {"variables": {"wf:x:nope": 1}}).record["variables"]


def test_the_result_is_limited_in_size_and_nothing_is_applied_past_it() -> None:
    with pytest.raises(SessionProtocolError) as raised:
        merged(None, {"variables": {"big": "x" * 100}}, max_bytes=50)
    assert raised.value.code == "too_large" and raised.value.status == 413
    assert merged(None, {"variables": {"ok": "x"}}, max_bytes=50).applied


def test_names_and_values_are_checked_in_the_order_given() -> None:
    with pytest.raises(SessionProtocolError) as raised:
        merged(None, {"variables": {"fine": float("nan"), "": 1}})
    assert raised.value.code == "invalid_patch"
    with pytest.raises(SessionProtocolError) as raised:
        merged(None, {"variables": {"constructor": 1, "bad": float("nan")}})
    assert raised.value.code == "invalid_key"


def test_the_workflow_id_is_recorded() -> None:
    record = merged(None, {"variables": {"a": 1}, "workflowId": "checkout"}).record
    assert record["head"]["workflowId"] == "checkout"


def test_a_valid_change_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflow_session import merge

    change = valid_change({"variables": {"a": 1}, "clientId": "tab", "seq": 1})
    calls: list[object] = []
    monkeypatch.setattr(merge, "assert_valid_change", calls.append)
    assert merged(None, change).record["variables"] == {"a": 1} and calls == []
    assert merged(None, {"variables": {"a": 1}}).applied and len(calls) == 1
