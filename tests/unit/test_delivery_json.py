"""engine.delivery_json: JSON a sender delivers, refused where no database stores it as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.delivery_json import (
    MAX_DEPTH,
    MalformedJson,
    UnstorableText,
    parse_delivery_json,
    render_path,
)
from tests.hostile_json import hostile_texts


def _refusal(text: str | bytes) -> str:
    with pytest.raises((MalformedJson, UnstorableText)) as refused:
        parse_delivery_json(text)
    return str(refused.value)


@pytest.mark.parametrize(("text", "kind", "fragment"), [
    pytest.param('{"Records": [{"userAgent": "a\\ud800"}]}', UnstorableText,
                 "text at Records[0].userAgent holds a lone UTF-16 surrogate (\\ud800)",
                 id="surrogate-in-a-value"),
    pytest.param('{"detail": {"k\\udc00": 1}}', UnstorableText,
                 "a key in detail holds a lone UTF-16 surrogate (\\udc00)",
                 id="surrogate-in-a-key"),
    pytest.param('{"a": "\\u0000"}', UnstorableText, "text at a holds a NUL character",
                 id="nul"),
    pytest.param('"\\udfff"', UnstorableText, "text at the top level", id="top-level-string"),
    pytest.param('{"a": NaN}', MalformedJson, "NaN is not a JSON value (at a)", id="nan"),
    pytest.param('[-Infinity]', MalformedJson, "-Infinity is not a JSON value (at [0])",
                 id="infinity"),
    pytest.param('{"n": [1.5, -1e400]}', MalformedJson,
                 "-1e400 is beyond the range of a double (about 1.8e308) (at n[1])",
                 id="beyond-a-double"),
    pytest.param('{"n": {"m": -' + "9" * 5000 + "}}", MalformedJson,
                 "an integer has more than 4300 digits (at n.m)", id="huge-integer"),
    pytest.param("[" * 5000 + "]" * 5000, MalformedJson, f"nested deeper than {MAX_DEPTH}",
                 id="deeper-than-the-parser"),
    pytest.param('{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", MalformedJson,
                 f"nested deeper than {MAX_DEPTH} levels (under a[0][0][0][0][0]...)",
                 id="one-level-too-deep"),
    pytest.param('{"a": ', MalformedJson, "(position 6)", id="truncated"),
])
def test_what_no_database_stores_is_refused_naming_where(
    text: str, kind: type[Exception], fragment: str
) -> None:
    with pytest.raises(kind) as refused:
        parse_delivery_json(text)
    assert fragment in str(refused.value)


@pytest.mark.parametrize("body", [
    pytest.param(b'{"a": "Robo\xed\xa0\x80man"}', id="utf-8-encoded-surrogate"),
    pytest.param('{"a": 1}'.encode("utf-16"), id="utf-16"),
    pytest.param(b'{"a": "\xff"}', id="not-utf-8"),
])
def test_bodies_are_utf_8_only(body: bytes) -> None:
    # json.loads would decode the first with "surrogatepass" and accept the second.
    assert _refusal(body).startswith("not UTF-8")


def test_max_depth_levels_and_surrogate_pairs_are_read() -> None:
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_delivery_json(deepest) == json.loads(deepest)
    assert parse_delivery_json('{"agent": "\\ud83d\\udd25", "z": "\\u00e9"}') == {
        "agent": "\U0001f525", "z": "\u00e9"}


def test_a_path_through_hostile_keys_is_itself_storable() -> None:
    path = ("Records", 0, "k\ud800\x00" + "x" * 100, "userAgent")
    rendered = render_path(path)
    assert rendered.startswith('Records[0]["k\\ud800\\u0000xx')
    assert rendered.endswith('...].userAgent')
    rendered.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(hostile_texts)
def test_a_hostile_text_is_refused_with_a_storable_message_or_read_as_storable(
    text: str
) -> None:
    try:
        document = parse_delivery_json(text)
    except (MalformedJson, UnstorableText) as exc:
        message = str(exc)
        assert "\x00" not in message and len(message) < 400
        message.encode("utf-8")
        return
    _assert_storable(document)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=20))
def test_storable_json_reads_back_as_written(value: Any) -> None:
    text = json.dumps(value, allow_nan=True)
    try:
        document = parse_delivery_json(text)
    except (MalformedJson, UnstorableText):
        assert "NaN" in text or "Infinity" in text or "\\u0000" in text
        return
    assert document == json.loads(text)


def _assert_storable(value: Any) -> None:
    # What both databases take: finite numbers, UTF-8 text without NUL.
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    assert "\\u0000" not in text
    text.encode("utf-8")
