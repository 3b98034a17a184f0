"""Text for a terminal: one line at a time, nothing an attacker wrote taken as a control."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import typer


def shown(text: str) -> str:
    """Return ``text`` with control and bidi characters escaped.

    Plans and alerts carry text attackers write: none of it reaches the terminal as a control.
    """
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def one_line(text: str) -> str:
    """Return ``text`` on one line (whitespace runs as one space), shown safely."""
    return shown(" ".join(str(text).split()))


def when(stamp: str) -> str:
    """Return an ISO time as ``YYYY-MM-DD HH:MM:SS UTC`` (as given if it does not read)."""
    try:
        return f"{datetime.fromisoformat(stamp):%Y-%m-%d %H:%M:%S} UTC"
    except (TypeError, ValueError):
        return str(stamp)


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows (the first one the header) in columns as wide as their widest cell."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())
