"""Turn a trigger's fnmatch glob into EventBridge string matchers: exact where possible.

EventBridge matches strings exactly, by ``prefix``, by ``suffix`` or by ``wildcard`` (``*`` only:
any run of characters). fnmatch has more: ``?`` (one character) and character classes
(``[TUE]``, ``[!x]``, ``[a-z]``). A class of a few characters is expanded into alternatives,
which keeps the match exact: ``[UC][nr]*Access:*`` is the four wildcards ``Un*Access:*``,
``Ur*Access:*``, ``Cn*Access:*`` and ``Cr*Access:*``. What cannot be said exactly — ``?``, a
negated class, or classes whose expansion would pass ``MAX_ALTERNATIVES`` — becomes ``*``: the
matchers then select a superset, and Riposte's own trigger matching (``fnmatchcase``) does the
exact filtering of what arrives. ``GlobMatchers.exact`` says which case it is.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from dataclasses import dataclass
from typing import Any

# More alternatives than this and the largest classes are widened to ``*`` instead (EventBridge
# counts every alternative against a rule's pattern complexity).
MAX_ALTERNATIVES = 16


@dataclass(frozen=True)
class _Star:
    """``*``: any run of characters (``?`` and unexpressible classes are widened to it)."""


@dataclass(frozen=True)
class _One:
    """``?``: exactly one character."""


@dataclass(frozen=True)
class _Class:
    """``[...]``: one of ``chars``, or one character not among them when ``negated``."""

    chars: frozenset[str]
    negated: bool


_Token = str | _Star | _One | _Class  # a str token is one literal character
STAR = _Star()


@dataclass(frozen=True)
class GlobMatchers:
    """The EventBridge matchers of one glob; ``matchers`` None means "any value at all"."""

    matchers: list[Any] | None
    exact: bool


def glob_matchers(glob: str) -> GlobMatchers:
    """Return EventBridge matchers selecting what ``fnmatchcase(value, glob)`` selects, or more."""
    tokens = _tokens(glob)
    widened = _widen(tokens)
    alternatives = [_parts(picked) for picked in itertools.product(*map(_choices, widened))]
    exact = widened == tokens
    if any(parts == [STAR] for parts in alternatives):
        return GlobMatchers(matchers=None, exact=exact)
    matchers = list(dict.fromkeys(_matcher(parts) for parts in alternatives))
    return GlobMatchers(matchers=[_as_json(m) for m in matchers], exact=exact)


def literal(glob: str) -> str | None:
    """Return the one string the glob matches, or None if it matches more than one."""
    chars = []
    for token in _tokens(glob):
        if isinstance(token, str):
            chars.append(token)
        elif isinstance(token, _Class) and not token.negated and len(token.chars) == 1:
            chars.extend(token.chars)  # "[*]" is a literal star
        else:
            return None
    return "".join(chars)


def _tokens(glob: str) -> list[_Token]:
    """Read a glob the way ``fnmatch.translate`` does (an unclosed ``[`` is a literal)."""
    tokens: list[_Token] = []
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char == "*":
            if not tokens or tokens[-1] != STAR:
                tokens.append(STAR)
        elif char == "?":
            tokens.append(_One())
        elif char == "[":
            j = i
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                tokens.append("[")
            else:
                tokens.append(_class(glob[i:j]))
                i = j + 1
        else:
            tokens.append(char)
    return tokens


def _class(body: str) -> _Class:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    chars: set[str] = set()
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            chars.update(chr(code) for code in range(ord(body[k]), ord(body[k + 2]) + 1))
            k += 3
        else:
            chars.add(body[k])
            k += 1
    return _Class(frozenset(chars), negated)


def _widen(tokens: list[_Token]) -> list[_Token]:
    """Replace ``?``, negated or empty classes, then the largest classes, by ``*``."""
    widened: list[_Token] = [
        STAR
        if isinstance(token, _One)
        or (isinstance(token, _Class) and (token.negated or not token.chars))
        else token
        for token in tokens
    ]
    while _alternatives(widened) > MAX_ALTERNATIVES:
        sizes = {i: len(t.chars) for i, t in enumerate(widened) if isinstance(t, _Class)}
        widened[max(sizes, key=lambda i: sizes[i])] = STAR
    collapsed: list[_Token] = []
    for token in widened:
        if not (token == STAR and collapsed and collapsed[-1] == STAR):
            collapsed.append(token)
    return collapsed


def _alternatives(tokens: list[_Token]) -> int:
    return math.prod(len(t.chars) for t in tokens if isinstance(t, _Class))


def _choices(token: _Token) -> list[str | _Star]:
    if isinstance(token, _Class):
        return [*sorted(token.chars)]
    if isinstance(token, (str, _Star)):
        return [token]
    raise AssertionError("'?' is widened before expansion")


def _parts(picked: tuple[str | _Star, ...]) -> list[str | _Star]:
    """Merge consecutive literal characters: ``["Un", STAR, "Access:", STAR]``."""
    parts: list[str | _Star] = []
    for piece in picked:
        if isinstance(piece, str) and parts and isinstance(parts[-1], str):
            parts[-1] += piece
        elif not (piece == STAR and parts and parts[-1] == STAR):
            parts.append(piece)
    return parts


def _matcher(parts: list[str | _Star]) -> tuple[str, str]:
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) == len(parts):
        return ("equals", "".join(texts))
    if len(parts) == 2 and parts[1] == STAR:
        return ("prefix", texts[0])
    if len(parts) == 2 and parts[0] == STAR:
        return ("suffix", texts[0])
    return ("wildcard", "".join(_escaped(p) if isinstance(p, str) else "*" for p in parts))


def _escaped(text: str) -> str:
    # EventBridge wildcards escape a literal star and backslash with a backslash.
    return text.replace("\\", "\\\\").replace("*", "\\*")


def _as_json(matcher: tuple[str, str]) -> Any:
    kind, value = matcher
    return value if kind == "equals" else {kind: value}


def example_of(glob: str, *, lead: str) -> str | None:
    """Return one string the glob matches (a leading ``*`` becomes ``lead``), or None.

    Used to name a resource the trigger must match, e.g. ``*instance-termination*`` ->
    ``riposte-instance-termination`` for the alarm of mass-instance-termination.
    """
    text = []
    for index, token in enumerate(_tokens(glob)):
        if isinstance(token, str):
            text.append(token)
        elif isinstance(token, _Star):
            text.append(lead if index == 0 else "")
        elif isinstance(token, _One):
            text.append("x")
        elif not token.negated and token.chars:
            text.append(min(token.chars))
        else:
            return None
    found = "".join(text)
    return found if fnmatch.fnmatchcase(found, glob) else None
