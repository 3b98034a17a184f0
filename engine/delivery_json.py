"""Parse the JSON a sender delivers, refusing what no database stores as sent.

Python's ``json`` accepts more than JSON, and more than SQLite and PostgreSQL store: NaN and
Infinity, numbers beyond a double (``1e400`` becomes ``inf``), escapes of lone UTF-16
surrogates (``"\\ud800"``, which is no Unicode character), ``"\\u0000"`` (PostgreSQL stores no
NUL), and nesting deep enough to break serializers later (pydantic stops at 255 levels, when
the alert is read back). Each is refused here, before anything is stored, with where it is:

- ``MalformedJson``: not JSON as Riposte reads it (syntax, not UTF-8, NaN/Infinity, a number
  beyond a double or longer than Python parses, nesting deeper than ``MAX_DEPTH``);
- ``UnstorableText``: JSON, but a string or key holds a lone surrogate or a NUL. Riposte does
  not replace them: a security tool that silently altered what it received would be altering
  evidence, so the delivery is refused and the sender (or its operator) sees why.

Every delivery pays for one check of its nesting; the walk that names where a problem is runs
only when there is one, or when the text holds an escape that could make one.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from typing import Any

# Far deeper than the AWS payloads Riposte reads (the samples in tests/samples nest at most 8
# levels, a CloudTrail record inside an EventBridge event included), and far enough below
# pydantic's 255 for the envelopes Riposte adds around a payload when it stores it.
MAX_DEPTH = 64
# Only these escapes make unstorable text out of valid UTF-8 JSON: bodies without them are not
# walked string by string.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")

Path = tuple[str | int, ...]


class MalformedJson(ValueError):
    """The text is not JSON Riposte reads (the message says what and where)."""


class UnstorableText(ValueError):
    """The JSON holds text no database stores as sent (the message names where)."""


def parse_delivery_json(text: str | bytes, *, at: Path = ()) -> Any:
    """Return the JSON value of ``text``, or raise MalformedJson or UnstorableText.

    ``at``: where ``text`` itself was found (``("Message",)`` inside an SNS message), so that
    the errors name the place in the whole delivery.
    """
    if isinstance(text, bytes):
        try:
            # UTF-8 only (RFC 8259 §8.1; a leading BOM is skipped, as json.loads skips it):
            # json.loads would also take UTF-16 and UTF-32, and it decodes bytes with
            # "surrogatepass", letting encoded lone surrogates through.
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"not UTF-8 ({exc.reason} at position {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno} column {exc.colno} "
                            f"(position {exc.pos})") from None
    except RecursionError:
        raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # a number: NaN / Infinity, beyond a double, too many digits
        raise MalformedJson(_number_problem(text, at, exc)) from None
    suspect = _may_hold_unstorable_text(text)
    if suspect or _deeper_than(document, MAX_DEPTH):
        _check(document, at, check_text=suspect)
    return document


def _may_hold_unstorable_text(text: str) -> bool:
    if "\\u" in text and _UNSTORABLE_ESCAPE.search(text):
        return True
    # Text given as str (an SNS Message) may hold raw surrogates; text decoded from UTF-8 cannot.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Unreadable:
    """A number json.loads would refuse or turn into infinity, kept to say where it was."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal[:20]} is beyond the range of a double (about 1.8e308)")
    return value


def _number_problem(text: str, at: Path, exc: ValueError) -> str:
    """Say which number json.loads refused, and where (parsing again, marking each one)."""
    digits = sys.get_int_max_str_digits()

    def mark_float(literal: str) -> Any:
        if math.isfinite(float(literal)):
            return float(literal)
        return _Unreadable(f"{literal[:20]} is beyond the range of a double (about 1.8e308)")

    def mark_int(literal: str) -> Any:
        if len(literal.lstrip("-")) <= digits:
            return int(literal)
        return _Unreadable(f"an integer has more than {digits} digits")

    try:
        marked = json.loads(text, parse_float=mark_float, parse_int=mark_int,
                            parse_constant=lambda name: _Unreadable(f"{name} is not a JSON value"))
    except (ValueError, RecursionError):
        return str(exc)
    for path, value in _values(marked, at):
        if isinstance(value, _Unreadable):
            return f"{value.problem} (at {render_path(path)})"
    return str(exc)


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (level by level, keeping no path)."""
    # Plain loops and exact types (json.loads makes only dict and list): this runs on every
    # delivery, and costs a fraction of parsing it.
    level = [document] if type(document) in (dict, list) else []
    for _ in range(limit):
        if not level:
            return False
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return bool(level)


def _values(document: Any, at: Path) -> Iterator[tuple[Path, Any]]:
    """Yield (path, value) of every value inside ``document``, depth first, iteratively."""
    stack: list[tuple[Any, Path]] = [(document, at)]
    while stack:
        node, path = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend(((value, (*path, key)) for key, value in reversed(node.items())))
        elif isinstance(node, list):
            stack.extend(((value, (*path, index)) for index, value in reversed(
                list(enumerate(node)))))


def _check(document: Any, at: Path, *, check_text: bool) -> None:
    """Raise naming where ``document`` nests too deep or holds unstorable text."""
    for path, value in _values(document, at):
        # A container at path length n is nested n + 1 levels deep.
        if isinstance(value, dict | list) and len(path) - len(at) >= MAX_DEPTH:
            raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels (under "
                                f"{render_path(path[:len(at) + 6])}...)")
        if not check_text:
            continue
        if isinstance(value, str):
            _check_text(value, path, what="text")
        elif isinstance(value, dict):
            for key in value:
                _check_text(key, path, what="a key")


def _check_text(value: str, path: Path, *, what: str) -> None:
    if "\x00" in value:
        problem = "a NUL character (\\u0000), which PostgreSQL cannot store"
    else:
        try:
            value.encode("utf-8")
            return
        except UnicodeEncodeError as exc:
            problem = (f"a lone UTF-16 surrogate (\\u{ord(value[exc.start]):04x}), which is "
                       "not a Unicode character")
    where = f"in {render_path(path)}" if what == "a key" and path else f"at {render_path(path)}"
    raise UnstorableText(f"{what} {where} holds {problem}; Riposte stores what it receives "
                         "as sent or not at all")


def render_path(path: Path) -> str:
    """Render a path into a JSON document as ``Records[0].userIdentity.userName``.

    Keys are the sender's: one that is not a plain name is shown JSON-escaped and shortened, so
    that the message holds no character it could not be stored with.
    """
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _SIMPLE_KEY.fullmatch(step):
            parts.append(f".{step}" if parts else step)
        else:
            quoted = json.dumps(step, ensure_ascii=True)
            parts.append(f"[{quoted[:40]}{'...' if len(quoted) > 40 else ''}]")
    return "".join(parts) or "the top level"
