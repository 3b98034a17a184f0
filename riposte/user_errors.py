"""Failures a user can fix, said in one line with what to do, never as a stack trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.settings import Settings
from riposte.terminal import fail


class UserError(Exception):
    """A failure the user can fix: printed as one line, no stack trace, exit status 1."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one clear line and a non-zero exit."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from core.settings import SettingsInvalid
    from engine.store.errors import Conflict, Forbidden, NotFound

    try:
        yield
    except (UserError, Conflict, Forbidden, NotFound) as exc:
        fail(str(exc))
    except SettingsInvalid as exc:  # a setting read late (a worker's signing key, say)
        fail(f"invalid settings: {exc}")
    except (ArgumentError, NoSuchModuleError) as exc:
        fail(f"RIPOSTE_DATABASE_URL is not a usable database URL: {exc}")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(
            f"database error: {reason} (is the database reachable and migrated? "
            "run `riposte db upgrade`)"
        )


def load_settings() -> Settings:
    """Read the settings from the environment, reporting a bad value by its variable."""
    from core.settings import SettingsInvalid, get_settings

    try:
        return get_settings()
    except SettingsInvalid as exc:
        fail(str(exc))
