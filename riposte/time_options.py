"""Times given on the command line: ``2h`` ago, or an ISO 8601 moment (UTC unless it says)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

_AGO = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def moment(text: str | None) -> str | None:
    """Return ``text`` as an ISO 8601 time with its zone, as the API's filters take it.

    ``30m``, ``2h``, ``7d``: that long ago. ``2026-12-03T09:00``: that time, UTC if no zone.
    """
    if text is None:
        return None
    given = text.strip()
    ago = _AGO.fullmatch(given)
    if ago:
        delta = timedelta(**{_UNITS[ago[2]]: int(ago[1])})
        return (datetime.now(UTC) - delta).isoformat(timespec="seconds")
    try:
        parsed = datetime.fromisoformat(given)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a time ago (30m, 2h, 7d) nor an ISO 8601 time "
            "(2026-12-03T09:00, UTC unless it gives a zone)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


Since = Annotated[
    str | None,
    typer.Option(callback=moment, show_default=False,
                 help="Only those created at or after: a time ago (30m, 2h, 7d) or an ISO 8601 "
                 "time (UTC unless it gives a zone)."),
]
Until = Annotated[
    str | None,
    typer.Option(callback=moment, show_default=False,
                 help="Only those created before: a time ago or an ISO 8601 time."),
]
