"""Shared pieces of the wire models: storable text and JSON, severity, base classes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

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


Text = Annotated[str, AfterValidator(_storable_text)]
JsonValue = Annotated[Any, AfterValidator(_storable_json)]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """Answers are read from the storage rows' attributes (a copy: rows never leave the API)."""

    model_config = ConfigDict(from_attributes=True)
