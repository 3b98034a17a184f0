"""Shared pieces of the wire models: storable text and JSON, severity, base classes."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

MAX_JSON_DEPTH = 32


def _storable_text(value: str) -> str:
    # Both databases refuse NUL and unpaired surrogates; refusing them here makes it a 422.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def _storable_json(value: Any) -> Any:
    _check_json(value, "", 0)
    return value


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels{where and ' at ' + where}")
    if isinstance(value, str):
        _located(_storable_text, value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers must be finite{where and ' at ' + where}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _located(_storable_text, key, f"{where}.{key}" if where else str(key))
            _check_json(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", depth + 1)


def _located(check: Callable[[str], str], value: str, where: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None


# RFC 3339: the date-time of OpenAPI's format, which both the schema and the server hold to
# (not pydantic's lax reading, where "0.5" is a Unix time).
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _moment(value: Any) -> Any:
    if isinstance(value, str):
        if not _DATE_TIME.match(value):
            raise ValueError("must be an ISO 8601 date-time with a zone, e.g. "
                             "2026-03-01T14:05:00Z")
        return _rfc3339(value)
    return value


def _rfc3339(text: str) -> datetime:
    """Read a date-time the pattern has admitted (no zone: the caller's rule decides)."""
    # A leap second (:60) is valid RFC 3339; Python's datetime has none: read it as :59.
    text = text.upper().replace("Z", "+00:00")
    if text[17:19] == "60":
        text = text[:17] + "59" + text[19:]
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a date and time: {exc}") from None


# An alert's event time: RFC 3339 (no offset means UTC), between 1970 and 9000 as
# engine.alerts.event_time_in_range holds; a number is not a time here.
_EVENT_TIME = re.compile(
    r"^(19[7-9][0-9]|[2-8][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$")


def event_time_text(value: Any) -> Any:
    """Read an alert's event time as the schema states it (EVENT_TIME_SCHEMA)."""
    if not isinstance(value, str) or not _EVENT_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time between 1970 and 9000, e.g. "
                         "2026-03-01T14:05:00Z (no offset means UTC)")
    return _rfc3339(value)


EVENT_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time",
                                    "pattern": _EVENT_TIME.pattern})

Moment = Annotated[
    datetime | None,
    BeforeValidator(_moment),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

@dataclass(frozen=True)
class _SchemaPattern:
    """Give a type's JSON schema a pattern its own validator (not pydantic's) enforces."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", self.pattern)
        return schema


# The schema says "no NUL" as _storable_text does (no JSON string can hold a lone surrogate
# that a client would mean to send, so the schema leaves that out).
Text = Annotated[str, AfterValidator(_storable_text), _SchemaPattern(r"^[^\u0000]*$")]
# Any JSON whose strings and keys hold no NUL, as a schema of the OpenAPI document's components
# (api.problems adds it): it refers to itself, which pydantic's inline schemas cannot.
STORABLE_JSON_REF = "#/components/schemas/StorableJson"
_NO_NUL = {"type": "string", "pattern": r"^[^\u0000]*$"}
STORABLE_JSON_SCHEMA: dict[str, Any] = {
    "description": f"Any JSON whose strings hold no NUL, nested at most {MAX_JSON_DEPTH} deep.",
    "anyOf": [
        _NO_NUL, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
        {"type": "array", "items": {"$ref": STORABLE_JSON_REF}},
        {"type": "object", "propertyNames": _NO_NUL,
         "additionalProperties": {"$ref": STORABLE_JSON_REF}},
    ],
}
JsonValue = Annotated[Any, AfterValidator(_storable_json),
                      WithJsonSchema({"allOf": [{"$ref": STORABLE_JSON_REF}]})]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    """What every list answers besides its items: the link to its next page (api.pagination)."""

    next: str | None = Field(description="The relative URL of the next page (same filters and "
                             "limit, with its cursor); null on the last page.")


class ResponseModel(BaseModel):
    """Answers are read from the storage rows' attributes (a copy: rows never leave the API)."""

    model_config = ConfigDict(from_attributes=True)
