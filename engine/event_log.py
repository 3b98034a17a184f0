"""Write a log line for each run and approval event of the audit log, once it is committed.

Every state change of a run or an approval request leaves an audit row (``audit.record``, the
one writer); this turns the same rows into log lines, so the log tells the story the audit log
keeps, from whichever process made the change (the worker, the API, the CLI) and on the line
of the HTTP request that caused it (its ``request_id``). A line is written only once its
transaction commits: a change rolled back leaves no line claiming it happened.

Which rows: ``run.*`` (queued, rejudged, released, succeeded, failed, cancelled, …) and
``approval.*`` (requested, approve / reject by each approver, approved, rejected, expired,
escalated, superseded, refused, notified). Steps are logged by the driver, which knows their
duration (engine.driver); alerts and refusals by the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.logs import bound, fields

log = logging.getLogger("riposte.events")

LOGGED_PREFIXES = ("run.", "approval.")
# Events that say something went wrong, or that a run ended without doing its work.
LEVELS = {
    "run.failed": logging.ERROR,
    "run.cancelled": logging.WARNING,
    "run.lease_expired": logging.WARNING,
    "approval.rejected": logging.WARNING,
    "approval.expired": logging.WARNING,
    "approval.refused": logging.WARNING,
}
_PENDING = "riposte_events_to_log"


def logged(verb: str) -> bool:
    """Tell whether an audit event of ``verb`` becomes a log line."""
    return verb.startswith(LOGGED_PREFIXES)


def after_commit(session: Session, content: dict[str, Any]) -> None:
    """Log the audit event ``content`` once ``session``'s transaction commits (if ``logged``)."""
    if logged(content["verb"]):
        on_commit(session, lambda: write(content))


def on_commit(session: Session, do: Callable[[], None]) -> None:
    """Call ``do`` once ``session``'s transaction commits; never if it is rolled back.

    For what must follow a change only if it is kept: its log line, its metrics.
    """
    session.info.setdefault(_PENDING, []).append(do)


def write(content: dict[str, Any]) -> None:
    """Write the log line of one audit event."""
    verb: str = content["verb"]
    details: dict[str, Any] = content.get("details") or {}
    summary = [f"{key} {details[key]}" for key in ("request", "replaced_by") if details.get(key)]
    if details.get("error"):
        summary.append(str(details["error"]))
    if details.get("reason"):
        summary.append(f"reason: {details['reason']}")
    message = f"{verb} by {content['actor']}" + (f": {'; '.join(summary)}" if summary else "")
    with bound(alert_id=content.get("alert_id"), run_id=content.get("run_id"),
               step_id=content.get("step_id")):
        log.log(LEVELS.get(verb, logging.INFO), message,
                extra=fields(event=verb, actor=content["actor"], details=details))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for do in session.info.pop(_PENDING, ()):
        try:
            do()
        except Exception:  # the change is committed whatever a line or a metric does
            log.exception("could not follow up a committed change")


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
