"""Say what pydantic refused in a playbook author's words: the field's path, never union internals.

pydantic names the members of a union in an error's location (``int``,
``literal['LOW','HIGH']``, ``function-after[_notify_target(), str]``) and reports one error per
member. An author wrote a field, not a union: the members are dropped from the location, and
the errors of one field become one message that says what the field takes.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from engine.checks import Finding, Loc, did_you_mean

# What a value of the wrong type should have been, by pydantic error type.
_EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "datetime_parsing": "a date and time (e.g. 2024-05-01T12:00:00Z)",
    "datetime_type": "a date and time (e.g. 2024-05-01T12:00:00Z)",
    "datetime_from_date_parsing": "a date and time (e.g. 2024-05-01T12:00:00Z)",
    "url_parsing": "a URL",
    "url_type": "a URL",
}
_CHOICES = frozenset({"literal_error", "enum"})
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
# Names pydantic gives union members that are no field of ours.
_MEMBER_NAMES = frozenset({
    "int", "float", "str", "bool", "none", "bytes", "list", "dict", "set", "frozenset", "tuple",
    "decimal", "date", "datetime", "time", "timedelta", "url", "uuid", "any",
})


def describe(
    errors: Sequence[Mapping[str, Any]],
    data: Any,
    model: type[BaseModel],
    *,
    root: Loc = (),
    noun: str = "field",
) -> list[Finding]:
    """Turn a ``ValidationError``'s errors on ``data`` into one finding per field.

    Locations are relative to ``data``; messages name fields from ``root`` (``with``) on, with
    a did-you-mean for unknown keys and for a value that is close to one of the choices.
    """
    groups: dict[Loc, list[Mapping[str, Any]]] = {}
    shown: dict[Loc, str] = {}
    members: dict[Loc, bool] = {}
    for error in errors:
        loc, text, member = _clean(error["loc"], data, root)
        groups.setdefault(loc, []).append(error)
        shown[loc] = text
        members[loc] = members.get(loc, False) or member
    findings: list[Finding] = []
    for loc, group in groups.items():
        if members[loc] and len(group) > 1:
            findings.extend((loc, message) for message in _union(shown[loc], group))
            continue
        for error in group:
            findings.append((loc, _single(error, loc, shown[loc], model, root, noun)))
    return findings


def field_names(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """Return the keys an author may write at ``loc`` of ``model``, or None if it is no model."""
    annotation: Any = model
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return None
    found = _model_in(annotation)
    if found is None:
        return None
    return [field.alias or name for name, field in found.model_fields.items()]


def _clean(raw: Sequence[str | int], data: Any, root: Loc) -> tuple[Loc, str, bool]:
    """Drop union members from a location; return it, its text for people, and if any dropped."""
    node, member = data, False
    loc: list[str | int] = []
    text: list[str | int] = [*root]
    for part in raw:
        if isinstance(part, int):
            loc.append(part)
            if isinstance(node, list):
                node = node[part] if 0 <= part < len(node) else None
                text.append(part)
            # else: a mapping read as a list of one (``trigger:``): no index for people
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif part in _MEMBER_NAMES or any(c in part for c in "[](),") or part[:1].isupper():
            member = True
            continue
        else:
            node = None
        loc.append(part)
        text.append(part)
    return tuple(loc), path_text(tuple(text)), member


def path_text(loc: Loc) -> str:
    """Write a location as an author would: ``approval.notify[0]`` (a step's own fields)."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        loc = loc[2:]  # the problem names its step already
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _single(
    error: Mapping[str, Any], loc: Loc, shown: str, model: type[BaseModel], root: Loc, noun: str
) -> str:
    kind = error["type"]
    if kind in ("extra_forbidden", "missing"):
        key = str(loc[-1]) if loc else ""
        parent = path_text((*root, *loc[:-1]))
        where = f" in {parent}" if parent and parent != path_text(root) else ""
        if kind == "missing":
            return f"missing {noun} {key!r}{where}"
        known = field_names(model, loc[:-1]) or []
        return f"unknown {noun} {key!r}{where}{did_you_mean(key, known)}"
    return f"{shown or 'the value'}: {_refusal(error)}"


def _union(shown: str, group: list[Mapping[str, Any]]) -> list[str]:
    """One message for the errors of every member of a union (or the specific ones)."""
    specific = [e for e in group if e["type"] not in _EXPECTED and e["type"] not in _CHOICES
                and e["type"] != "none_required"]
    if specific:  # the value had a member's type but broke its rule: that rule is the news
        return [f"{shown}: {_refusal(e)}" for e in specific]
    expected: list[str] = []
    choices: list[str] = []
    for error in group:
        if error["type"] in _CHOICES:
            options = _options(error)
            choices += options
            expected.append("one of " + ", ".join(repr(o) for o in options))
        elif error["type"] in _EXPECTED and _EXPECTED[error["type"]] not in expected:
            expected.append(_EXPECTED[error["type"]])
    value = group[0].get("input")
    hint = did_you_mean(str(value), choices) if isinstance(value, str) and choices else ""
    return [f"{shown}: {_value(value)} is not {' or '.join(expected)}{hint}"]


def _refusal(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind in _CHOICES:
        options = _options(error)
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return f"{_value(value)} is not one of {', '.join(repr(o) for o in options)}{hint}"
    if kind in _EXPECTED:
        return f"{_value(value)} is not {_EXPECTED[kind]}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be "):
        return f"{_value(value)} should be {message.removeprefix('Input should be ')}"
    return message[:1].lower() + message[1:]


def _options(error: Mapping[str, Any]) -> list[str]:
    expected = str((error.get("ctx") or {}).get("expected", ""))
    return [match.replace("\\'", "'") for match in _QUOTED.findall(expected)]


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _step_into(annotation: Any, part: str | int) -> Any:
    """Return the annotation of ``part`` inside ``annotation`` (a model, list or mapping)."""
    for option in _options_of(annotation):
        if isinstance(part, int):
            if get_origin(option) in (list, tuple, set) and get_args(option):
                return get_args(option)[0]
            if _model_in(option) is not None:  # a mapping read as a list of one (trigger:)
                return option
            continue
        found = _model_in(option)
        if found is not None:
            for name, field in found.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
        if get_origin(option) is dict and len(get_args(option)) == 2:
            return get_args(option)[1]
    return None


def _options_of(annotation: Any) -> list[Any]:
    """Unwrap ``Annotated`` and unions into the types a value may have."""
    if get_origin(annotation) is Annotated:
        return _options_of(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [inner for arg in get_args(annotation) for inner in _options_of(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _options_of(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None
