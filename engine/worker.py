"""The worker: claim a run under a lease, drive it step by step, record every step durably.

A worker stops only when asked (``stop``: SIGTERM, Ctrl-C, the API shutting down). Any other
error is logged with the run it concerns, counted (``riposte_worker_errors_total`` by kind) and
the loop goes on; while the database is away it tries again after pauses growing to
``RETRY_MAX_SECONDS`` and resumes by itself. Its heartbeat (engine.liveness) tells the API and
``GET /v1/workers`` that it is alive.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from core.logs import bound
from core.settings import Settings, get_settings
from engine import approval_notices as notices
from engine import wakeup
from engine.audit_checkpoints import Checkpointer
from engine.driver import RunDriver
from engine.liveness import Backoff, Heartbeat, database_unreachable, silence
from engine.metrics import LEASE_EXPIRIES, LEASE_RENEWALS, WORKER_ERRORS
from engine.notice_feed import NoticeFeed
from engine.playbooks import LoadedPlaybook, parse_playbook
from engine.slack import is_slack_target
from engine.slack.notifier import SlackNotifier
from engine.store import approvals, leases, triggers, workers
from engine.store.messages import ESCALATION, REQUEST
from engine.store.models import Run
from engine.store.types import utcnow

log = logging.getLogger("riposte.worker")

# The longest pause between two attempts while the database is away (or errors repeat).
RETRY_MAX_SECONDS = 5.0


def default_worker_id() -> str:
    """Name a worker after its host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Claims runnable runs and drives each until it ends or waits for a human."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 5.0,
        approval_expiry: float = 3600.0,
        settings: Settings | None = None,
        prune_every: float = 60.0,
        prune_batch: int = triggers.PRUNE_BATCH,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.settings = settings or get_settings()
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.approval_expiry = approval_expiry
        self._playbooks: dict[str, LoadedPlaybook] = {}
        self._last_housekeeping = 0.0
        self.prune_every = prune_every
        self.prune_batch = prune_batch
        self._next_pruning = 0.0  # time.monotonic() of the next pruning pass
        self.retry_max_seconds = retry_max_seconds
        self.started_at = utcnow()
        self.runs_claimed = 0
        self.errors = 0
        self.current_run: str | None = None
        self._failing: dict[str, int] = {}  # errors in a row, by kind
        self._counting = threading.Lock()  # the lease keeper and heartbeat threads count too
        self._stop: threading.Event | None = None
        # A run was left mid-way when the database went away: hand it over once it is back.
        self._hand_over_pending = False
        self.heartbeat = Heartbeat(
            sessions=sessions, describe=self._beat, every=self.settings.worker_heartbeat_seconds,
            silent_after=self.settings.worker_silent_after, failed=self.failed,
            recovered=self.recovered,
        )
        # Signs audit checkpoints in housekeeping; an unusable key file stops it here, at start.
        self.checkpoints = Checkpointer.from_settings(self.settings, sessions=sessions,
                                                      actor=self.worker_id)
        # Slack messages about approvals (engine.slack), and what the audit log's events call
        # for telling people (engine.notice_feed).
        self.slack = SlackNotifier.from_settings(sessions, self.settings)
        self.notice_feed = NoticeFeed(self)

    @property
    def stopping(self) -> bool:
        """Whether the worker was asked to stop (it hands its run over at the next step)."""
        return self._stop is not None and self._stop.is_set()

    def silent_for(self) -> float:
        """Seconds since this worker last recorded its heartbeat."""
        return self.heartbeat.silent_for()

    def problem(self) -> str | None:
        """Say why this worker is not working (silent too long), or None if it is."""
        return silence(self.worker_id, silent_for=self.silent_for(),
                       silent_after=self.settings.worker_silent_after)

    def serve(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set, sleeping between runs until woken or polled.

        Nothing else ends it: an error is logged and counted, and the next attempt comes after
        a pause that grows while errors repeat (``Backoff``), up to ``retry_max_seconds``.
        """
        self._stop = stop
        url = self.sessions.kw["bind"].url
        listener: threading.Thread | None = None
        listening = threading.Event()  # set when the loop ends, whyever it ends
        if url.get_backend_name() == "postgresql":
            listener = threading.Thread(
                target=wakeup.listen_postgres,
                args=(url.render_as_string(hide_password=False), listening),
                daemon=True,
                name="riposte-listen",
            )
            listener.start()
        self.heartbeat.start(threading.current_thread())
        log.info("worker %s started", self.worker_id)
        backoff = Backoff(cap=self.retry_max_seconds)
        try:
            while not stop.is_set():
                seen = wakeup.generation()
                try:
                    worked = self._pass()
                except Exception as exc:
                    self.failed("claim", exc)
                    stop.wait(backoff.next())
                    continue
                self.recovered("claim")
                backoff.reset()
                if not worked:
                    wakeup.wait(seen, self.poll_seconds)
        finally:
            listening.set()
            self.heartbeat.stop()
            if stop.is_set():  # else the loop died: it goes silent rather than stopped
                self._sign_off()
                if listener is not None:
                    listener.join(timeout=2)
        log.info("worker %s stopped", self.worker_id)

    def _pass(self) -> bool:
        """Hand over runs left mid-way, keep house, then claim and drive one run."""
        if self._hand_over_pending:
            with self.sessions.begin() as session:
                handed = leases.give_up_leases(
                    session=session, worker=self.worker_id,
                    reason="the worker lost the database while driving it",
                )
            self._hand_over_pending = False
            if handed:
                log.info("handed over runs %s, left mid-way when the database went away",
                         ", ".join(handed))
        self.housekeeping()
        return self.work_once()

    def failed(self, kind: str, exc: Exception, *, run_id: str | None = None) -> None:
        """Log and count an error the worker goes on after (``riposte_worker_errors_total``).

        The first of a series of the same kind is logged with its traceback, the next ones
        in one line each; an error driving a run always in full.
        """
        WORKER_ERRORS.labels(kind).inc()
        with self._counting:
            self.errors += 1
            in_a_row = self._failing[kind] = self._failing.get(kind, 0) + 1
        said = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {said[0] if said else ''}"
        on = f" on run {run_id}" if run_id else ""
        with bound(run_id=run_id):
            if in_a_row == 1 or kind == "drive":
                log.error("worker %s: %s error%s: %s (the worker goes on)", self.worker_id,
                          kind, on, reason, exc_info=exc)
            else:
                log.warning("worker %s: %s error%s, %d in a row: %s", self.worker_id, kind, on,
                            in_a_row, reason)

    def recovered(self, kind: str) -> None:
        """Note that ``kind`` works again (logged once, after a series of errors)."""
        with self._counting:
            in_a_row = self._failing.pop(kind, 0)
        if in_a_row:
            log.info("worker %s: %s works again after %d error(s) in a row", self.worker_id,
                     kind, in_a_row)

    def _beat(self) -> workers.Beat:
        return workers.Beat(
            worker_id=self.worker_id, host=socket.gethostname(), pid=os.getpid(),
            started_at=self.started_at, runs_claimed=self.runs_claimed, errors=self.errors,
            run_id=self.current_run,
        )

    def _sign_off(self) -> None:
        try:
            with self.sessions.begin() as session:
                workers.sign_off(session, self.worker_id)
        except Exception as exc:  # it just goes silent instead of stopped
            self.failed("heartbeat", exc)

    def housekeeping(self) -> None:
        """Expire and escalate approvals (at most once a second), tell people what changed
        (engine.notice_feed), prune threshold events.

        Pruning runs every ``prune_every`` seconds, or at every pass while the last one left
        events to prune. Every part is safe to run from every worker at once.
        """
        now = time.monotonic()
        if now - self._last_housekeeping < 1.0:
            return
        self._last_housekeeping = now
        worked = True
        for part in (self._expire_approvals, self._escalate_approvals, self.notice_feed.follow,
                     self._prune, self.checkpoints.sign_if_due):
            try:
                part(now)
            except Exception as exc:
                self.failed("housekeeping", exc)
                if database_unreachable(exc):
                    return  # the other parts would fail alike
                worked = False
        if worked:
            self.recovered("housekeeping")

    def _expire_approvals(self, _now: float) -> None:
        # Each expiry is logged by engine.event_log (approval.expired) once committed.
        with self.sessions.begin() as session:
            approvals.expire_due(session=session, actor=self.worker_id)

    def _escalate_approvals(self, _now: float) -> None:
        with self.sessions.begin() as session:
            due = [notices.Notice.of(session, r) for r in approvals.claim_escalations(session)]
        for notice in due:
            subject, text = notices.escalated(notice, settings=self.settings)
            self.tell(notice, "approval.escalated", notice.escalate_to, subject, text)

    def _prune(self, now: float) -> None:
        if now < self._next_pruning:
            return
        pruned = 0
        for _ in range(triggers.PRUNE_BATCHES_PER_PASS):
            # One transaction per batch: no lock is held for the whole pass.
            with self.sessions.begin() as session:
                deleted = triggers.prune_threshold_events(session=session, batch=self.prune_batch)
            pruned += deleted
            if deleted < self.prune_batch:
                self._next_pruning = now + self.prune_every
                break
        else:  # a backlog is left: go on at the next pass rather than after prune_every
            self._next_pruning = now
        if pruned:
            log.debug("pruned %d threshold events", pruned)

    def tell(
        self, notice: notices.Notice, verb: str, targets: list[str], subject: str, text: str
    ) -> None:
        """Send a notice outside any transaction, then audit who got it.

        ``slack:`` targets get the interactive message (engine.slack), kept to be edited later;
        the others the text. An error is logged and counted (kind ``notify``); the run is not
        held up by it.
        """
        try:
            sent, failed = notices.send(
                [target for target in targets if not is_slack_target(target)],
                subject=subject, text=text, settings=self.settings, run_id=notice.run_id,
            )
            chat_sent, chat_failed = self.slack.post_request(
                notice.request_id, [target for target in targets if is_slack_target(target)],
                kind=ESCALATION if verb == "approval.escalated" else REQUEST,
            )
            sent, failed = sent + chat_sent, failed + chat_failed
            with self.sessions.begin() as session:
                approvals.record_notice(
                    session=session, request_id=notice.request_id, verb=verb,
                    actor=self.worker_id, sent=sent, failed=failed,
                )
        except Exception as exc:
            self.failed("notify", exc, run_id=notice.run_id)
        # Who was told is logged by engine.event_log (the audit row of ``verb``) once committed.

    def work_once(self) -> bool:
        """Claim one run and drive it; tell whether there was one.

        An error in claiming is raised; one in driving is logged and counted (kind ``drive``)
        and then the run is failed, or, if the database went away, handed over once it is back.
        """
        with self.sessions.begin() as session:
            claim = leases.claim_next_run(
                session=session, worker=self.worker_id, lease_seconds=self.lease_seconds
            )
            if claim is None:
                return False
            run_id, alert_id = claim.run.id, claim.run.alert_id
        self.runs_claimed += 1
        if claim.reclaimed:
            LEASE_EXPIRIES.inc()
        with bound(run_id=run_id, alert_id=alert_id):
            self.current_run = run_id
            lease = _LeaseKeeper(self, run_id)
            lease.start()
            try:
                # One connection for the whole run: no pool checkout and ping per transaction.
                with self.sessions.kw["bind"].connect() as connection:
                    sessions = sessionmaker(bind=connection, expire_on_commit=False)
                    RunDriver(self, sessions, run_id).drive()
            except Exception as exc:
                self.failed("drive", exc, run_id=run_id)
                self._after_drive_error(run_id, exc)
            finally:
                lease.stop()
                self.current_run = None
        return True

    def _after_drive_error(self, run_id: str, exc: Exception) -> None:
        """Fail the run an error stopped (a bug or bad data would stop it again at every try),
        unless the database went away: then it is handed over once the database is back."""
        if database_unreachable(exc):
            self._hand_over_pending = True
            return
        error = (f"worker {self.worker_id} could not drive the run: {type(exc).__name__}: "
                 f"{exc} (the worker's log has the traceback)")
        try:
            with self.sessions.begin() as session:
                if not leases.fail_held(session=session, run_id=run_id, worker=self.worker_id,
                                      error=error):  # it ended meanwhile (cancelled)
                    leases.let_go(session=session, run_id=run_id, worker=self.worker_id)
        except Exception as second:
            self.failed("drive", second, run_id=run_id)
            self._hand_over_pending = True

    def playbook(self, run: Run) -> LoadedPlaybook:
        """Return the run's pinned playbook, parsed once per text."""
        cached = self._playbooks.get(run.playbook_hash)
        if cached is None:
            cached = parse_playbook(run.playbook_text, f"{run.playbook} (pinned in run {run.id})",
                                    pinned=True)
            self._playbooks[run.playbook_hash] = cached
        return cached


class _LeaseKeeper:
    """Renews a run's lease in the background while the worker drives it."""

    def __init__(self, worker: Worker, run_id: str) -> None:
        self.worker = worker
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="riposte-lease")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        interval = self.worker.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                with self.worker.sessions.begin() as session:
                    held = leases.renew_lease(
                        session=session, run_id=self.run_id, worker=self.worker.worker_id,
                        lease_seconds=self.worker.lease_seconds,
                    )
            except Exception as exc:  # a database blip: try again at the next interval
                self.worker.failed("lease", exc, run_id=self.run_id)
                continue
            self.worker.recovered("lease")
            if not held:
                return
            LEASE_RENEWALS.inc()
