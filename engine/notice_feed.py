"""Telling people what changed, by following the audit log: one place sees every change.

A request is decided through the API, the CLI, the console or Slack, expires in a worker's
housekeeping, is superseded when a decision finds its plan moved or when alerts make its run
start over; a run fails in a worker or is cancelled through the API. Each of these writes its
audit row in the same transaction as the change, and the log is appended in commit order
(engine.store.notice_feed). So the workers follow the log, one at a time under a lease, from
where they stopped, and for each event that calls for it:

- every Slack message about the request is edited to show it as it is now (a decision, the
  outcome, expiry, escalation, supersession, a cancelled run): buttons go once it is settled;
- a request that replaced a superseded one is announced to its approvers again;
- a run that failed or was cancelled is told to its playbook's ``on_failure.notify`` (else
  ``RIPOSTE_FAILURE_NOTIFY``, else whoever its approvals were sent to) and in its approval's
  Slack thread; a run that ended otherwise has its outcome posted in that thread.

An event is told at least once: the feed moves past it only after it is told (a worker that
dies in between leaves it to the next, which may tell it again). A target that cannot be
reached is audited and skipped; the database going away stops the pass until it is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from engine import approval_notices as notices
from engine import audit
from engine.alerts import template_view
from engine.liveness import database_unreachable
from engine.playbooks import LoadedPlaybook, PlaybookInvalid
from engine.run_notices import failure_notice, outcome_notice, read_ending
from engine.slack import is_slack_target
from engine.slack.notifier import SlackNotifier
from engine.store import notice_feed as feed
from engine.store.alert_reads import as_normalized, get_alert
from engine.store.approvals import PENDING, get_request
from engine.store.messages import messages_of_run
from engine.store.models import Run
from engine.store.runs import get_run

log = logging.getLogger("riposte.notices")

LEASE_SECONDS = 60.0
BATCH = 100
# Events after which the messages about a request show something new.
_REQUEST_CHANGED = ("approval.approve", "approval.reject", "approval.approved",
                    "approval.rejected", "approval.expired", "approval.escalated")
VERBS = (*_REQUEST_CHANGED, "approval.superseded", "run.rejudged", "run.cancelled",
         "run.failed", "run.succeeded")


class Telling(Protocol):
    """What the feed needs of its worker."""

    worker_id: str
    sessions: sessionmaker[Session]
    settings: Settings
    slack: SlackNotifier

    def playbook(self, run: Run) -> LoadedPlaybook: ...

    def tell(
        self, notice: notices.Notice, verb: str, targets: list[str], subject: str, text: str
    ) -> None: ...

    def failed(self, kind: str, exc: Exception, *, run_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class Event:
    """An audit event the feed acts on, read out of its session."""

    id: int
    verb: str
    actor: str
    run_id: str | None
    details: dict[str, Any]


class NoticeFeed:
    """Follows the audit log and tells people what its events call for."""

    def __init__(self, worker: Telling) -> None:
        self.worker = worker

    def follow(self, _now: float = 0.0) -> None:
        """Tell what the events since the last pass call for (one worker at a time)."""
        sessions, me = self.worker.sessions, self.worker.worker_id
        with sessions() as session:
            if not feed.behind(session):
                return
        with sessions.begin() as session:
            last = feed.claim(session, worker=me, lease_seconds=LEASE_SECONDS)
        if last is None:
            return  # another worker follows it now
        try:
            while True:
                with sessions() as session:
                    found, end = feed.events_after(session, last, verbs=VERBS, limit=BATCH)
                    events = [Event(id=e.id, verb=e.verb, actor=e.actor, run_id=e.run_id,
                                    details=dict(e.details or {})) for e in found]
                for event in events:
                    self._tell(event)
                    with sessions.begin() as session:
                        if not feed.advance(session, worker=me, to=event.id,
                                            lease_seconds=LEASE_SECONDS):
                            return  # the lease lapsed and another worker goes on
                    last = event.id
                if end > last:
                    with sessions.begin() as session:
                        if not feed.advance(session, worker=me, to=end,
                                            lease_seconds=LEASE_SECONDS):
                            return
                    last = end
                if len(events) < BATCH:
                    return
        finally:
            with sessions.begin() as session:
                feed.release(session, worker=me)

    def _tell(self, event: Event) -> None:
        try:
            self._act(event)
        except Exception as exc:
            if database_unreachable(exc):
                raise  # told again once the database is back
            self.worker.failed("notify", exc, run_id=event.run_id)

    def _act(self, event: Event) -> None:
        slack, details = self.worker.slack, event.details
        if event.verb in _REQUEST_CHANGED and details.get("request"):
            slack.refresh([str(details["request"])])
        elif event.verb == "approval.superseded":
            slack.refresh([str(details["request"])])
            self._announce(str(details["replaced_by"]), replaces=str(details["request"]),
                           changes=str(details.get("changes") or "the plan changed"))
        elif event.verb == "run.rejudged":
            slack.refresh([str(request) for request in details.get("approvals_superseded") or []])
        elif event.verb in ("run.cancelled", "run.failed") and event.run_id:
            if event.verb == "run.cancelled":
                slack.refresh_run(event.run_id)
            self._run_failed(event.run_id, by=event.actor)
        elif event.verb == "run.succeeded" and event.run_id:
            self._run_outcome(event.run_id)

    def _announce(self, request_id: str, *, replaces: str, changes: str) -> None:
        """Tell the approvers of a superseded request about the one that replaced it."""
        settings = self.worker.settings
        with self.worker.sessions() as session:
            request = get_request(session, request_id)
            if request.status != PENDING:
                return  # decided, or superseded again, before anyone could be told
            run = get_run(session, request.run_id)
            approval = self._playbook(run)
            step = approval.spec.step(request.step_id) if approval is not None else None
            named = step.approval.notify if step is not None and step.approval else []
            targets = list(named or settings.approval_notify)
            notice = notices.Notice.of(session, request)
            alert = template_view(run.alert_id, as_normalized(get_alert(session, run.alert_id)))
        if not targets:
            return
        subject, text = notices.opened(notice, alert=alert, settings=settings,
                                       replaces=(replaces, changes))
        self.worker.tell(notice, "approval.notified", targets, subject, text)

    def _run_failed(self, run_id: str, *, by: str) -> None:
        """Tell who must know that a run failed or was cancelled, and what it left."""
        settings = self.worker.settings
        with self.worker.sessions() as session:
            run = get_run(session, run_id)
            playbook = self._playbook(run)
            ending = read_ending(session, run_id, by=by, playbook=playbook, settings=settings)
            threads = {m.target for m in messages_of_run(session, run_id)}
        targets, fallback = failure_targets(playbook, settings)
        if fallback:  # the approvers' channels hear it in the approval's thread instead
            targets = [target for target in targets if target not in threads]
        subject, text = failure_notice(ending)
        sent, failed = self._send(targets, subject=subject, text=text, run_id=run_id)
        in_threads, failed_threads = self.worker.slack.reply_in_threads(run_id, text)
        sent, failed = sent + in_threads, failed + failed_threads
        details = {"status": ending.status, "notified": sent, "failed": failed}
        if sent or failed:
            self._audit(run, "run.failure_notified", details)
        if sent:
            return
        if ending.acted:  # a containment left half done, and nobody knows
            log.error("run %s %s during containment and nobody could be told: set the "
                      "playbook's on_failure.notify or RIPOSTE_FAILURE_NOTIFY (failed: %s)",
                      run_id, ending.status, failed)
            self._audit(run, "run.failure_untold", details)
        else:
            log.info("run %s %s before any change; nobody to tell (no on_failure.notify, "
                     "RIPOSTE_FAILURE_NOTIFY or approval notify)", run_id, ending.status)

    def _run_outcome(self, run_id: str) -> None:
        """Post a run's outcome in the thread of its approval, if it had one in Slack."""
        settings = self.worker.settings
        with self.worker.sessions() as session:
            if not messages_of_run(session, run_id):
                return
            run = get_run(session, run_id)
            ending = read_ending(session, run_id, by=self.worker.worker_id,
                                 playbook=self._playbook(run), settings=settings)
        sent, failed = self.worker.slack.reply_in_threads(run_id, outcome_notice(ending))
        self._audit(run, "run.outcome_notified",
                    {"outcome": ending.outcome, "notified": sent, "failed": failed})

    def _send(self, targets: list[str], *, subject: str, text: str, run_id: str
              ) -> tuple[list[str], list[str]]:
        chat = [target for target in targets if is_slack_target(target)]
        others = [target for target in targets if not is_slack_target(target)]
        sent, failed = notices.send(others, subject=subject, text=text,
                                    settings=self.worker.settings, run_id=run_id)
        chat_sent, chat_failed = self.worker.slack.post_text(chat, text)
        return sent + chat_sent, failed + chat_failed

    def _playbook(self, run: Run) -> LoadedPlaybook | None:
        try:
            return self.worker.playbook(run)
        except PlaybookInvalid:
            return None  # failed for that very reason: the settings' targets are told

    def _audit(self, run: Run, verb: str, details: dict[str, Any]) -> None:
        with self.worker.sessions.begin() as session:
            audit.record(session, actor=self.worker.worker_id, verb=verb, alert_id=run.alert_id,
                         run_id=run.id, details=details)


def failure_targets(
    playbook: LoadedPlaybook | None, settings: Settings
) -> tuple[list[str], bool]:
    """Who is told of a failed or cancelled run, and whether they are the approvals' fallback.

    The playbook's ``on_failure.notify``, else ``RIPOSTE_FAILURE_NOTIFY``, else whoever its
    approvals are sent to (their ``notify``, else ``RIPOSTE_APPROVAL_NOTIFY``).
    """
    spec = playbook.spec if playbook is not None else None
    if spec is not None and spec.on_failure is not None:
        return list(spec.on_failure.notify), False
    if settings.failure_notify:
        return list(settings.failure_notify), False
    approvers: list[str] = [] if spec is not None else list(settings.approval_notify)
    for step in spec.steps if spec is not None else []:
        if step.approval is not None:
            approvers += step.approval.notify or settings.approval_notify
    return list(dict.fromkeys(approvers)), True
