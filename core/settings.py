"""The one settings object: every knob is a ``RIPOSTE_*`` environment variable.

A list setting takes comma-separated values (``RIPOSTE_CLOUDTRAIL_SOURCES=s3,ingested``) or a
JSON list; an object setting (``RIPOSTE_ACCOUNTS``) a JSON object. A value Riposte cannot use
stops it at start-up with :class:`SettingsInvalid`, whose message names each variable and what
is wrong with it; a value that is valid but has no effect is one of :meth:`Settings.warnings`,
logged when ``riposte serve`` and ``riposte worker`` start, and so is a ``RIPOSTE_*`` variable
that names no setting (a typo would otherwise be ignored without a word).

The settings are declared by area, each a pydantic model of its own module (``settings_service``,
``settings_runs``, ``settings_aws``, ``settings_console``, ``settings_slack``), and composed here
into the one :class:`Settings`; what they have in common is in ``setting_variables``.

A setting may also come from a file, as Docker and Kubernetes hand out secrets: with
``RIPOSTE_SECRETS_DIR`` set, a file there named like the setting's variable gives its value
(``core/secret_files.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

from pydantic import PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.secret_files import read_secret_files
from core.setting_variables import (
    ENV_PREFIX,
    OTHER_VARIABLES,
    unknown_names,
    unknown_variables,
    variable,
)
from core.settings_aws import CLOUDTRAIL_SOURCES, AccountEntry, AwsSettings
from core.settings_console import ConsoleSettings, Role
from core.settings_problems import SettingsInvalid, settings_problems
from core.settings_runs import RunSettings
from core.settings_service import ServiceSettings
from core.settings_slack import SlackPerson, SlackSettings

# What importers have always found here, whichever area module now declares it.
__all__ = [
    "CLOUDTRAIL_SOURCES",
    "ENV_PREFIX",
    "OTHER_VARIABLES",
    "AccountEntry",
    "Role",
    "Settings",
    "SettingsInvalid",
    "SlackPerson",
    "env_file_lines",
    "get_settings",
    "read_settings",
    "settings_problems",
    "variable",
]


# pydantic orders fields (and problems) from the last base to the first: service first.
class Settings(
    SlackSettings, ConsoleSettings, AwsSettings, RunSettings, ServiceSettings, BaseSettings
):
    """Riposte's configuration, read from ``RIPOSTE_*`` environment variables."""

    # List and object settings are decoded by the areas' VariableSettings, not by
    # pydantic-settings (which reads them as JSON only, and a plain value ends in a traceback).
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", enable_decoding=False)

    # What read_settings found that names no setting (RIPOSTE_* variables, secret files).
    _unknown: list[str] = PrivateAttr(default_factory=list)

    def unknown_variables(self) -> list[str]:
        """Say which ``RIPOSTE_*`` variables and secret files read name no setting, and so are
        ignored, each with the setting most likely meant."""
        return list(self._unknown)

    def warnings(self, *, serving: bool = False) -> list[str]:
        """Say which settings are valid but have no effect, naming their variables, and which
        variables name no setting (:meth:`unknown_variables`).

        ``serving``: also those that matter only to `riposte serve` (its HTTP endpoints).
        """
        found = self.unknown_variables()
        if serving and not self.sns_topics:
            found.append(
                f"{variable('sns_topics')} is empty: POST /v1/webhooks/sns refuses every SNS "
                "message (403); set it to the TopicArn globs of the topics that send to Riposte, "
                "e.g. arn:aws:sns:*:123456789012:riposte-* (ignore this if none does)"
            )
        bucket = [
            variable(name) for name, value in (
                ("cloudtrail_bucket", self.cloudtrail_bucket),
                ("cloudtrail_bucket_prefix", self.cloudtrail_bucket_prefix),
                ("cloudtrail_bucket_account", self.cloudtrail_bucket_account),
            ) if value
        ]
        if bucket and "s3" not in self.cloudtrail_sources:
            sources = variable("cloudtrail_sources")
            found.append(
                f"{' and '.join(bucket)} {'are' if len(bucket) > 1 else 'is'} set but {sources} "
                f"({','.join(self.cloudtrail_sources)}) leaves out s3: investigations do not read "
                "the trail's bucket, only steps whose `sources` name s3 do; add s3 to "
                f"{sources} to read it"
            )
        if serving and self.console_secret_key is None:
            found.append(
                f"{variable('console_secret_key')} is not set: this API process signs console "
                "sessions with a random key of its own, so every sign-in ends when it restarts "
                "and is refused by any other API replica; set it (openssl rand -hex 32, in a "
                "secret file)"
            )
        found.extend(self._oidc_warnings(serving=serving))
        found.extend(self._slack_warnings(serving=serving))
        return found


def read_settings() -> Settings:
    """Read the settings from the environment and the files in ``RIPOSTE_SECRETS_DIR``.

    Raise :class:`SettingsInvalid` if they are unusable, or if a setting is given both as a
    variable and as a file: which of the two should win is not for Riposte to guess (a stale
    variable would hide a rotated secret, or a forgotten file an override).
    """
    given = {name.upper() for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    directory = next((value for name, value in os.environ.items()
                      if name.upper() == variable("secrets_dir") and value), None)
    values: dict[str, str] = {}
    files: dict[str, Path] = {}
    unknown_files: list[Path] = []
    if directory is not None:
        problems = read_secret_files(
            Path(directory), given, values, files, unknown_files, known=Settings.model_fields
        )
        if problems:
            raise SettingsInvalid(problems)
    try:
        settings = Settings(**values)  # type: ignore[arg-type]  # text, validated as the env's
    except ValidationError as exc:
        raise SettingsInvalid(settings_problems(exc, files)) from exc
    settings._unknown = unknown_variables(given, unknown_files, known=Settings.model_fields)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment (see read_settings)."""
    return read_settings()


def env_file_lines(values: Mapping[str, Any]) -> list[str]:
    """Write settings as the ``RIPOSTE_NAME=value`` lines of an env file that gives them.

    Lists are written comma-separated when that reads back the same, else as JSON; objects as
    JSON; an unset (None) setting as a comment, since an env file can only leave it out; a
    secret as a comment, never its value. Reading the lines back as the environment gives
    the same settings (tests/unit/test_settings.py proves it).
    """
    lines = []
    for name, value in values.items():
        field = Settings.model_fields.get(name)
        if field is None:
            raise ValueError(unknown_names("setting", [name], Settings.model_fields))
        secret = SecretStr in (field.annotation, *get_args(field.annotation))
        if value is None:
            lines.append(f"# {variable(name)} unset")
        elif secret:
            lines.append(f"# {variable(name)} set (a secret: not shown)")
        else:
            lines.append(f"{variable(name)}={_env_text(value)}")
    return lines


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
        plain = all(item and item == item.strip() and item.isprintable() and "," not in item
                    for item in items)
        if plain and not (items and items[0].startswith("[")):
            return ",".join(items)
        return json.dumps(items, separators=(",", ":"))
    if isinstance(value, Mapping):  # compact: no blank an env-file reader might trim or split on
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)
