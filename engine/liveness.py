"""Whether workers are alive, said truthfully: heartbeats in the database, a probe of the worker
threads an API process runs, and a watch for runs that no live worker is there to take.

A worker's loop survives every error (engine.worker); what can still end it — a bug raising
something that is not an ``Exception``, a thread killed with its process — is what these see.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from core.logs import bound
from engine.metrics import UNATTENDED_RUNS
from engine.store import workers
from engine.store.types import utcnow

log = logging.getLogger("riposte.worker")

PRUNE_EVERY = 3600.0  # seconds between deletions of long-silent heartbeat rows, per worker


def database_unreachable(exc: BaseException) -> bool:
    """Tell whether an error says the database is away (down, restarting, out of connections).

    Such an error is waited out with a growing pause; any other is a bug or bad data.
    """
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Backoff:
    """Pauses that double while failures repeat, up to a cap, with jitter so that the workers
    of a fleet do not all knock at the same moment when the database comes back."""

    def __init__(self, *, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """Return the pause before the next attempt, and count this failure."""
        delay = min(self.cap, self.first * 2.0 ** min(self.failures, 30))
        self.failures += 1
        jitter: float = random.uniform(0.75, 1.0)
        return delay * jitter

    def reset(self) -> None:
        """Start again from the first pause (an attempt worked)."""
        self.failures = 0


class Heartbeat:
    """Writes a worker's heartbeat row every ``every`` seconds, from a thread of its own, while
    the worker's loop thread is alive.

    Its own thread because a step may run for minutes; the loop's thread is watched so that a
    loop that died stops beating and goes silent.
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        describe: Callable[[], workers.Beat],
        every: float,
        silent_after: float,
        failed: Callable[[str, Exception], None],
        recovered: Callable[[str], None],
    ) -> None:
        self.sessions = sessions
        self.describe = describe
        self.every = every
        self.silent_after = silent_after
        self.failed = failed
        self.recovered = recovered
        self._created = time.monotonic()
        self._last_beat: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0

    def start(self, loop: threading.Thread) -> None:
        """Beat now and then every ``every`` seconds while ``loop`` is alive."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(loop,), daemon=True, name="riposte-heartbeat"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (the worker stopped, or its loop died)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def silent_for(self) -> float:
        """Seconds since the last heartbeat recorded (since creation, before the first)."""
        return time.monotonic() - (self._last_beat or self._created)

    def _run(self, loop: threading.Thread) -> None:
        first = True
        while loop.is_alive() and not self._stop.is_set():
            try:
                self._beat(first)
            except Exception as exc:
                self.failed("heartbeat", exc)
            else:
                self.recovered("heartbeat")
                first = False
            self._stop.wait(self.every)

    def _beat(self, first: bool) -> None:
        beat = self.describe()
        with self.sessions.begin() as session:
            twin = (
                workers.same_id_elsewhere(session, beat, silent_after=self.silent_after)
                if first else None
            )
            workers.beat(session, beat)
            if time.monotonic() >= self._next_prune:
                workers.prune(session)
                self._next_prune = time.monotonic() + PRUNE_EVERY
        self._last_beat = time.monotonic()
        if twin is not None:
            log.error(
                "worker id %s was heard from %s ago by process %s on %s, which has not "
                "stopped: if it still runs, two workers share an id and their leases; give "
                "each its own RIPOSTE_WORKER_ID (or --id)",
                beat.worker_id, utcnow() - twin.last_seen_at, twin.pid, twin.host,
            )


def silence(worker_id: str, *, silent_for: float, silent_after: float) -> str | None:
    """Say that a worker has been silent too long, or None if it has not."""
    if silent_for <= silent_after:
        return None
    return (
        f"worker {worker_id} has recorded no heartbeat for {silent_for:.0f}s "
        f"(RIPOSTE_WORKER_SILENT_AFTER is {silent_after:g}s): it is stuck or cannot reach the "
        "database"
    )


class Serving(Protocol):
    """What the API needs of a worker it runs in a thread."""

    worker_id: str

    def serve(self, stop: threading.Event) -> None: ...

    def problem(self) -> str | None: ...


class InProcessWorker:
    """A worker running in a thread of the API process, and what is wrong with it, if anything."""

    def __init__(self, worker: Serving, name: str) -> None:
        self.worker = worker
        self.died_of: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._stop: threading.Event | None = None

    def start(self, stop: threading.Event) -> None:
        """Start the worker's loop; it runs until ``stop`` is set."""
        self._stop = stop
        self.thread.start()

    def problem(self) -> str | None:
        """Say why this worker is not working (dead, or silent too long), or None if it is."""
        worker_id = self.worker.worker_id
        if not self.thread.is_alive():
            if self._stop is not None and self._stop.is_set():
                return f"in-process worker {worker_id} has stopped (the API is shutting down)"
            why = f": {self.died_of}" if self.died_of else ""
            return f"in-process worker {worker_id} is dead{why}; restart riposte serve"
        return self.worker.problem()

    def _run(self) -> None:
        assert self._stop is not None
        try:
            self.worker.serve(self._stop)
        except BaseException as exc:  # reported by problem() (/readyz), not by the thread's hook
            self.died_of = f"{type(exc).__name__}: {exc}"
            log.critical("in-process worker %s died: %s", self.worker.worker_id, self.died_of,
                         exc_info=exc)


class UnattendedWatch:
    """Logs and counts each run left runnable too long while no worker is live.

    The API runs it: when no worker is live, no worker can say so.
    """

    REMEMBERED = 10_000  # run ids already reported, so each is reported once

    def __init__(
        self, *, sessions: sessionmaker[Session], after: float, silent_after: float
    ) -> None:
        self.sessions = sessions
        self.after = after
        self.silent_after = silent_after
        self._reported: OrderedDict[str, None] = OrderedDict()

    def check(self) -> list[workers.Unattended]:
        """Report the runs newly found unattended; return them."""
        with self.sessions() as session:
            if workers.count_live(session, silent_after=self.silent_after):
                return []
            cutoff = utcnow() - timedelta(seconds=self.after)
            found = workers.unattended_runs(session, runnable_before=cutoff)
        new = [run for run in found if run.run_id not in self._reported]
        for run in new:
            self._reported[run.run_id] = None
            waited = (utcnow() - run.runnable_since).total_seconds()
            with bound(run_id=run.run_id, alert_id=run.alert_id):
                log.error(
                    "run %s has been %s and runnable for %.0fs but no worker is live (none "
                    "heard from in %gs): start `riposte worker`, or look at GET /v1/workers",
                    run.run_id, run.status, waited, self.silent_after,
                )
        while len(self._reported) > self.REMEMBERED:
            self._reported.popitem(last=False)
        UNATTENDED_RUNS.inc(len(new))
        return new

    def run(self, stop: threading.Event, every: float) -> None:
        """Check every ``every`` seconds until ``stop`` is set; errors are logged, not fatal."""
        while not stop.wait(every):
            try:
                self.check()
            except Exception as exc:
                log.warning("could not look for unattended runs: %s: %s", type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
