from __future__ import annotations

import math

import pytest

from workflow_session.rules import is_json_value, is_session_id, json_bytes, key_problem, parse_json


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_session_ids_are_8_to_128_characters_of_a_small_alphabet() -> None:
    assert is_session_id("abcdefgh") and is_session_id("A_-9" * 32)
    assert not is_session_id("short") and not is_session_id("x" * 129) and not is_session_id("bad.id.here")
    assert not is_session_id("abcdefgh\n") and not is_session_id(12345678)


def test_variable_names_are_1_to_256_code_points_of_unicode_text_and_not_reserved() -> None:
    assert key_problem("é" * 256) is None and key_problem("😀" * 256) is None  # code points, not UTF-16 units
    assert key_problem("😀" * 257) is not None
    for bad in ["", "__proto__", "constructor", "prototype", "a\ud800b", 5]:
        assert key_problem(bad) is not None, bad


def test_values_nest_at_most_64_levels_and_are_json() -> None:
    assert is_json_value(nested(64)) and not is_json_value(nested(65))
    assert is_json_value({"a": [1, 2.5, None, True, "x"]})
    for bad in [math.nan, math.inf, (1, 2), {1, 2}, b"x", object(), {1: "a"}, "\udc00", {"k\ud800": 1}]:
        assert not is_json_value(bad), repr(bad)
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert not is_json_value(cyclic)


def test_json_text_is_read_as_the_protocol_reads_it() -> None:
    for literal in ["NaN", "Infinity", "-Infinity", '{"a": NaN}']:
        with pytest.raises(ValueError):
            parse_json(literal)
    assert parse_json('{"a": 1, "a": 2}') == {"a": 2}  # the last duplicate counts
    assert parse_json('"\\ud83d\\ude00"') == "😀"  # a pair is one code point
    assert parse_json('"\\ud800"') == "\ud800"  # a lone one stays, for the rules to refuse


def test_size_is_utf8_bytes_of_compact_json() -> None:
    assert json_bytes({"a": "é"}) == len('{"a":"é"}'.encode())
