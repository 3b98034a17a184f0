"""A run's mode: live, or dry_run (a rehearsal), and how a rehearsal is marked for people.

A dry run goes through every step as live would — investigation, narrative, the approval
request — but plans each call that would change AWS instead of making it (the client factory's
guard refuses any that is not read-only). Wherever a run or its approval is shown (the API's
``mode``, the CLI, the notices, the demo), a dry run says so first.
"""

from __future__ import annotations

from typing import Literal

LIVE = "live"
DRY_RUN = "dry_run"
MODES = (LIVE, DRY_RUN)
Mode = Literal["live", "dry_run"]

REHEARSAL = "REHEARSAL (dry run, nothing will change)"


def rehearsal_mark(mode: str) -> str:
    """The words put before anything shown of a run in ``mode``: empty for a live run."""
    return f"{REHEARSAL}: " if mode == DRY_RUN else ""


def mode_label(mode: str) -> str:
    """A run's mode as a table shows it: a dry run is marked as the rehearsal it is."""
    return "REHEARSAL" if mode == DRY_RUN else mode
