"""How settings are written as ``RIPOSTE_*`` variables: names, list and object text, typos.

Every settings area (``core/settings_*.py``) builds on :class:`VariableSettings`, which decodes
a list or object setting given as text, as every environment variable is.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator

ENV_PREFIX = "RIPOSTE_"
# RIPOSTE_* variables that are not settings but are read by something else: never reported as
# unknown. Each says who reads it.
OTHER_VARIABLES = {
    "RIPOSTE_TOKEN": "the token `riposte approvals` and `riposte runs` send to the API",
    "RIPOSTE_VERSION": "the tag of the riposte image docker-compose.yml runs",
    "RIPOSTE_PUBLIC_HOST": "the host name deploy/Caddyfile serves and gets a certificate for",
    "RIPOSTE_TEST_POSTGRES_URL": "the test suite's PostgreSQL server",
    "RIPOSTE_REQUIRE_POSTGRES": "the test suite: fail when no PostgreSQL test ran",
}


def variable(setting: str) -> str:
    """Return a setting's variable: ``cloudtrail_bucket`` -> ``RIPOSTE_CLOUDTRAIL_BUCKET``."""
    return f"{ENV_PREFIX}{setting.upper()}"


def unknown_names(kind: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """Say which names are unknown, which are known, and the likely one meant."""
    unknown, known = list(unknown), list(known)
    said = ", ".join(repr(name) for name in unknown)
    hints = [
        f"{meant!r} for {name!r}" if len(unknown) > 1 else repr(meant)
        for name in unknown if (meant := likely_meant(name, known))
    ]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown {kind}{plural} {said} (known: {', '.join(known)}{hint})"


def likely_meant(name: str, known: list[str]) -> str | None:
    """Return the known name a misspelt or shortened one most likely means (None: no guess)."""
    same = [candidate for candidate in known if candidate.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, known, n=1)
    if close:
        return close[0]
    longer = [candidate for candidate in known if name and candidate.startswith(name)]
    return longer[0] if len(longer) == 1 else None


def decode_list(text: str) -> list[Any]:
    """Decode a list setting: a JSON list, or comma-separated values (blanks around dropped)."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        items: list[Any] = json.loads(stripped)  # JSON text that starts with "[" is a list
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not a JSON list ({exc.msg} at character {exc.pos + 1}): write a JSON list, or "
            "the values separated by commas"
        ) from exc
    return items


def decode_object(text: str) -> dict[str, Any]:
    """Decode an object setting: a JSON object (blank: an empty one)."""
    stripped = text.strip()
    if not stripped:
        return {}
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc.msg} at character {exc.pos + 1})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"a JSON object is expected, not a JSON {type(value).__name__}")
    return value


class VariableSettings(BaseModel):
    """Base of every settings area: decodes list and object settings given as text."""

    # pydantic-settings decodes a list or object setting as JSON and ends a plain value
    # (RIPOSTE_CLOUDTRAIL_SOURCES=s3) in a traceback; _decode_text below decodes them instead,
    # accepting comma-separated lists, and its errors name the variable like any other.
    # It is defined here, in the base every area inherits, so that pydantic runs it after the
    # areas' own "before" validators (it runs a field's "before" validators last-defined
    # first): the console's group=role pairs are not bad JSON.
    @field_validator("*", mode="before")
    @classmethod
    def _decode_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Decode a list or object setting given as text, as every environment variable is."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        shape = get_origin(cls.model_fields[info.field_name].annotation)
        if shape is list:
            return decode_list(value)
        if shape is dict:
            return decode_object(value)
        return value


def unknown_variables(
    given: Iterable[str], unknown_files: Iterable[Path] = (), *, known: Iterable[str]
) -> list[str]:
    """Say which ``RIPOSTE_*`` variables (and secret files) name no setting, and so are ignored,
    with the setting most likely meant; ``known``: the settings' names."""
    names = [name.upper() for name in known]
    found = []
    for name in sorted(given):
        if name in OTHER_VARIABLES or name.removeprefix(ENV_PREFIX) in names:
            continue
        meant = likely_meant(name.removeprefix(ENV_PREFIX), names)
        hint = f" (did you mean {ENV_PREFIX}{meant}?)" if meant else ""
        found.append(f"{name} is set but names no setting: it is ignored{hint}")
    for path in unknown_files:
        meant = likely_meant(path.name.upper().removeprefix(ENV_PREFIX), names)
        hint = f" (did you mean {ENV_PREFIX.lower()}{meant.lower()}?)" if meant else ""
        found.append(f"the secret file {path} names no setting: it is ignored{hint}")
    return found


