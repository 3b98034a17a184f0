"""Refusals of senders who proved no identity: always counted, recorded at a bounded rate.

A request refused because it carried no live credential (a 401), or an SNS message refused
before its sender was known (the signature is the SNS endpoint's only credential), is written
to the audit log, and a refused delivery to the deliveries table, only while this process has
recorded fewer than ``RIPOSTE_ANONYMOUS_REFUSALS_PER_ADDRESS`` from the same address and fewer
than ``RIPOSTE_ANONYMOUS_REFUSALS_PER_MINUTE`` in all in the current minute. The rest are
counted (``riposte_anonymous_refusals_total``) and, once the minute is over, summed up in one
audit row (``auth.refusals_summarized``): how many, from which addresses, why. So an anonymous
flood adds at most ``PER_MINUTE + 1`` audit rows and ``PER_MINUTE`` delivery rows a minute per
API process, whatever its rate; the audit log, which is never pruned, does not grow with it.

Refusals of a known token (a 403 for the wrong role) are not bounded: the token is accountable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from prometheus_client import Counter as MetricCounter
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from engine import audit
from engine.store.types import utcnow

log = logging.getLogger("riposte.api")

WINDOW_SECONDS = 60.0
# Unrecorded refusals are tallied per address up to this many addresses a window (memory stays
# bounded however many addresses a flood comes from); later ones are tallied together.
TRACKED_ADDRESSES = 1000
# The summary row names the addresses that sent the most; the others are summed.
SUMMARY_ADDRESSES = 20
SUMMARY_VERB = "auth.refusals_summarized"

ANONYMOUS_REFUSALS = MetricCounter(
    "riposte_anonymous_refusals",
    "Requests refused because they proved no identity, by why and whether their own audit row "
    "(and delivery row) was written or they were only summed up in a summary row",
    ["why", "recorded"],
)

# Why a request proved no identity: the label values of the metric, a closed set.
MISSING = "missing"  # no credentials at all
NOT_LIVE = "not_live"  # a token that is unknown, revoked or expired
WRONG_BASIC = "wrong_basic"  # basic credentials that are not RIPOSTE_SNS_BASIC_AUTH
SNS_UNPROVEN = "sns_unproven"  # an SNS message refused before it proved to come from SNS
SLACK_UNPROVEN = "slack_unproven"  # a Slack interaction whose signature did not verify


@dataclass
class RefusalSummary:
    """The refusals of one window that were counted but not recorded one by one."""

    since: datetime
    seconds: float
    unrecorded: int
    recorded: int
    by_address: dict[str, int]
    other_addresses: int
    by_why: dict[str, int]

    def details(self) -> dict[str, Any]:
        """The audit row's details (no key looks like a credential, so none is masked)."""
        return {
            "since": self.since.isoformat(),
            "seconds": self.seconds,
            "unrecorded": self.unrecorded,
            "recorded": self.recorded,
            "by_address": self.by_address,
            "other_addresses": self.other_addresses,
            "by_why": self.by_why,
        }


@dataclass
class _Window:
    started: float
    since: datetime
    recorded: Counter[str] = field(default_factory=Counter)
    unrecorded: Counter[str] = field(default_factory=Counter)
    untracked: int = 0
    by_why: Counter[str] = field(default_factory=Counter)

    def summary(self, seconds: float) -> RefusalSummary | None:
        unrecorded = sum(self.unrecorded.values()) + self.untracked
        if not unrecorded:
            return None
        top = dict(self.unrecorded.most_common(SUMMARY_ADDRESSES))
        return RefusalSummary(
            since=self.since, seconds=seconds, unrecorded=unrecorded,
            recorded=sum(self.recorded.values()), by_address=top,
            other_addresses=unrecorded - sum(top.values()), by_why=dict(self.by_why),
        )


class RefusalLedger:
    """Decide which anonymous refusals are recorded one by one; sum up the rest per window.

    No I/O: ``admit`` says whether to write the refusal's rows, ``take_summaries`` hands over
    the summaries of the windows that ended, for the caller to write. Thread-safe.
    """

    def __init__(self, *, per_address: int, per_minute: int,
                 window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_address = per_address
        self.per_window = per_minute
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._window = self._new_window()
        self._ended: list[RefusalSummary] = []

    def admit(self, address: str, why: str) -> bool:
        """Count one refusal; return True if its rows are to be written."""
        with self._lock:
            self._roll()
            window = self._window
            if (window.recorded[address] < self.per_address
                    and window.recorded.total() < self.per_window):
                window.recorded[address] += 1
                recorded = True
            else:
                if address in window.unrecorded or len(window.unrecorded) < TRACKED_ADDRESSES:
                    window.unrecorded[address] += 1
                else:
                    window.untracked += 1
                window.by_why[why] += 1
                recorded = False
        ANONYMOUS_REFUSALS.labels(why, "own_row" if recorded else "summary").inc()
        return recorded

    def take_summaries(self, *, end_window: bool = False) -> list[RefusalSummary]:
        """Return the summaries of the windows that ended (``end_window``: end this one too)."""
        with self._lock:
            self._roll(force=end_window)
            ended, self._ended = self._ended, []
            return ended

    def _roll(self, *, force: bool = False) -> None:
        now = self._clock()
        window = self._window
        if not force and now < window.started + self.window_seconds:
            return
        # Every refusal of the window came within its length: a late roll does not stretch it.
        summary = window.summary(round(min(now - window.started, self.window_seconds), 3))
        if summary is not None:
            self._ended.append(summary)
        self._window = self._new_window()

    def _new_window(self) -> _Window:
        return _Window(started=self._clock(), since=utcnow())


def recorded(request: Request, why: str) -> bool:
    """Count a refusal of a sender that proved no identity; say whether to write its rows.

    Decided once per request, so that its audit row and its rejected delivery row go together.
    """
    decided: bool | None = getattr(request.state, "refusal_recorded", None)
    if decided is None:
        ledger: RefusalLedger = request.app.state.runtime.refusals
        address = request.client.host if request.client is not None else "unknown"
        decided = ledger.admit(address, why)
        request.state.refusal_recorded = decided
    return decided


def write_summaries(ledger: RefusalLedger, sessions: sessionmaker[Session], *,
                    end_window: bool = False) -> None:
    """Append one audit row per summary of an ended window (``end_window``: end this one too).

    A summary the database cannot take is logged instead, so the count is never lost silently.
    """
    summaries = ledger.take_summaries(end_window=end_window)
    if not summaries:
        return
    try:
        with sessions.begin() as session:
            for summary in summaries:
                audit.record(session, actor="anonymous", verb=SUMMARY_VERB,
                             details=summary.details())
    except DBAPIError as exc:
        log.warning("could not record %d summaries of anonymous refusals (%s): %s",
                    len(summaries), type(exc).__name__,
                    json.dumps([summary.details() for summary in summaries]))


async def write_summaries_every_window(ledger: RefusalLedger,
                                       sessions: sessionmaker[Session]) -> None:
    """Write the summaries of ended windows, at most a window late, until cancelled."""
    while True:
        await asyncio.sleep(ledger.window_seconds)
        await run_in_threadpool(write_summaries, ledger, sessions)
