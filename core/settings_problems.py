"""Say what is wrong with settings as a user reads it: the variable, where, and why."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from core.setting_variables import variable


class SettingsInvalid(ValueError):
    """Settings Riposte cannot start with; each problem names its ``RIPOSTE_*`` variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(problems))


def settings_problems(
    error: ValidationError, files: Mapping[str, Path] | None = None
) -> list[str]:
    """Describe each error of a settings validation as a user reads it: variable, where, why.

    ``files``: the secret file each setting given by one came from, named with its problem.
    """
    return [_problem(detail, files or {}) for detail in error.errors()]


def _problem(detail: ErrorDetails, files: Mapping[str, Path]) -> str:
    context = detail.get("ctx") or {}
    why = str(context["error"]) if detail["type"] == "value_error" else detail["msg"]
    if detail["type"] == "literal_error":
        why += f", not {detail['input']!r}"
    if not detail["loc"]:
        return why  # a check across settings, whose message names them
    setting, *inside = detail["loc"]
    where = "".join(f" item {part + 1}" if isinstance(part, int) else f"[{part!r}]"
                    for part in inside)
    origin = f" (from the secret file {files[str(setting)]})" if str(setting) in files else ""
    return f"{variable(str(setting))}{where}{origin}: {why}"
