"""Text for a terminal: one line at a time, nothing an attacker wrote taken as a control."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from engine.playbooks import LoadedPlaybook


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


def say(line: str = "") -> None:
    """Print one line of text made for people (``engine.render``), shown safely."""
    typer.echo(shown(line))


def print_json(document: Any) -> None:
    """Print a JSON document as the API gave it, for scripts (ASCII: no control reaches the
    terminal, escapes keep every character)."""
    typer.echo(json.dumps(document, indent=2, ensure_ascii=True))


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows (the first one the header) in columns as wide as their widest cell."""
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def valid_playbooks(paths: Sequence[Path]) -> list[LoadedPlaybook]:
    """The playbooks of ``paths``, every one valid, or exit 1 saying what is wrong."""
    from engine.playbooks import load_all, playbook_files

    if not playbook_files(list(paths)):
        fail(f"no *.yml or *.yaml playbook in {', '.join(str(p) for p in paths)}")
    loaded, problems = load_all(list(paths))
    if problems:
        fail("; ".join(str(problem) for problem in problems) + " (see `riposte validate`)")
    return list(loaded.values())
