"""The store as the CLI's administration commands open it (db, token, audit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """Return sessions on the configured database."""
    from engine.store.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings.database_url))


def shown_url(url: str) -> str:
    """Return a database URL fit for printing: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL: show nothing of it rather than a secret
        return "<unparsable URL>"
