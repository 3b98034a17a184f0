"""JSON text with what no database stores as sent, for the fuzz tests of every ingest path.

Values are built as Python objects and written as text by ``encode``, which writes ``Raw``
tokens verbatim: an integer of 5,000 digits (Python's json refuses to write one), NaN,
Infinity, a number beyond a double, nesting deeper than any parser's limit. Strings holding a
lone surrogate or a NUL are written as JSON escapes (``"\\ud800"``, ``"\\u0000"``), as a
sender would.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.samples import load, names

LONE = ["\ud800", "\udbff", "\udc00", "\udfff", "\x00"]


@dataclass(frozen=True)
class Raw:
    """JSON text written as is."""

    text: str


def encode(value: Any) -> str:
    """Write ``value`` as JSON text, ``Raw`` tokens verbatim, other strings ASCII-escaped."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{encode(item)}"
                              for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return json.dumps(value)


unstorable_text = st.builds(lambda before, lone, after: before + lone + after,
                            st.text(max_size=6), st.sampled_from(LONE), st.text(max_size=6))
hostile_values: st.SearchStrategy[Any] = st.one_of(
    unstorable_text,
    st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"),
                     Raw("-2e308")]),
    st.integers(4301, 6000).map(lambda digits: Raw("9" * digits)),
    st.integers(1, 1500).map(lambda depth: Raw("[" * depth + "1" + "]" * depth)),
    st.integers(1, 300).map(lambda depth: Raw('{"a":' * depth + "1" + "}" * depth)),
    st.dictionaries(unstorable_text, st.integers(), min_size=1, max_size=2),
)


@st.composite
def hostile_documents(draw: st.DrawFn) -> Any:
    """A published sample with one value somewhere inside replaced by a hostile one."""
    document = copy.deepcopy(load(draw(st.sampled_from(names()))))
    node = document
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict)
                   else st.integers(0, len(node) - 1))
        child = node[key]
        if not isinstance(child, dict | list) or not child:
            break
        node = child
    value = draw(hostile_values)
    if isinstance(node, dict):
        keys = st.sampled_from(sorted(node)) | unstorable_text if node else unstorable_text
        node[draw(keys)] = value
    elif isinstance(node, list) and node:
        node[draw(st.integers(0, len(node) - 1))] = value
    else:
        return value
    return document


hostile_texts: st.SearchStrategy[str] = hostile_documents().map(encode)
