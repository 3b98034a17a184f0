"""Read CloudTrail's event history with ``LookupEvents``, within its rate limit.

``LookupEvents`` takes one lookup attribute per call, returns at most 50 events a page and
allows 2 requests per second per account and region. Every call waits its turn in a token
bucket per (account, region) shared by the whole process, so parallel steps and runs never
exceed the limit together; the wait watches the step's ``cancelled`` event.

botocore's paginator reads the pages; the bucket stays ours on purpose: botocore's retry modes
act after a throttle, and its ``adaptive`` mode paces one client only, while a run makes one
client per step and region and many runs share the account's limit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actions.aws.clients import Client
from actions.aws.cloudtrail_records import Record
from actions.base import ActionError

REQUESTS_PER_SECOND = 2.0
PAGE_SIZE = 50
# A wait that returns True when it was cut short (the step was cancelled).
Sleep = Callable[[threading.Event, float], bool]


def _wait(cancelled: threading.Event, seconds: float) -> bool:
    return cancelled.wait(seconds)


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, ``burst`` at once; thread-safe.

    A request takes a token even when none is left, and then waits until the bucket has
    refilled its debt: requests are served in the order they asked, at the rate, never faster.
    """

    def __init__(
        self,
        rate: float = REQUESTS_PER_SECOND,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = _wait,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # tokens, when

    def delay(self, key: tuple[str, str]) -> float:
        """Take a token for ``key``; return how long to wait before using it."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate) - 1.0
            self._buckets[key] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / self.rate

    def acquire(self, key: tuple[str, str], cancelled: threading.Event) -> float:
        """Wait for a token for ``key``; return the seconds waited. Raises ``Cancelled``."""
        pause = self.delay(key)
        if pause > 0 and self._sleep(cancelled, pause):
            raise ActionError("Cancelled", "cancelled while waiting for LookupEvents' rate limit",
                              retryable=False)
        return pause


# One bucket per account and region for the whole process.
LIMITER = RateLimiter()


@dataclass
class LookupReport:
    """What the LookupEvents queries read: records, calls made, time waited, truncation."""

    records: list[Record] = field(default_factory=list)
    calls: int = 0
    waited_seconds: float = 0.0
    truncated: bool = False
    queries: list[dict[str, Any]] = field(default_factory=list)


def lookup_events(
    client: Client,
    *,
    attribute: str,
    value: str,
    start: datetime,
    end: datetime,
    limiter: RateLimiter,
    key: tuple[str, str],
    cancelled: threading.Event,
    report: LookupReport,
    max_events: int,
) -> None:
    """Read every event of ``[start, end]`` whose ``attribute`` is ``value``, page by page.

    Stops when ``report`` holds ``max_events`` records (and says it is truncated).
    """

    def take_turn() -> None:
        # botocore's paginator asks for the next page only when iterated on, through this hook:
        # every page request, the first included, waits its turn in the shared bucket.
        if cancelled.is_set():
            raise ActionError("Cancelled", "cancelled while reading LookupEvents",
                              retryable=False)
        report.waited_seconds += limiter.acquire(key, cancelled)

    pages = client.get_paginator("lookup_events", before_each_page=take_turn).paginate(
        LookupAttributes=[{"AttributeKey": attribute, "AttributeValue": value}],
        StartTime=start,
        EndTime=end,
        # MaxItems cuts the last page short and stops asking for more once the report is full.
        PaginationConfig={"PageSize": PAGE_SIZE, "MaxItems": max_events - len(report.records)},
    )
    found = 0
    for page in pages:
        report.calls += 1
        for event in page.get("Events", []):
            report.records.append(record_of(event))
            found += 1
    # A resume token means the limit, not the history, ended the reading.
    report.truncated = pages.resume_token is not None
    report.queries.append(
        {"region": key[1], "attribute": attribute, "value": value, "events": found}
    )


def record_of(event: dict[str, Any]) -> Record:
    """The CloudTrail record of a LookupEvents event (its ``CloudTrailEvent`` JSON).

    When that JSON is missing or unreadable, a record is made from the event's own fields.
    """
    written = event.get("CloudTrailEvent")
    if isinstance(written, str):
        try:
            parsed = json.loads(written)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    moment = event.get("EventTime")
    return {
        "eventID": event.get("EventId"),
        "eventName": event.get("EventName"),
        "eventSource": event.get("EventSource"),
        "eventTime": moment.isoformat() if isinstance(moment, datetime) else None,
        "userIdentity": {"userName": event.get("Username"),
                         "accessKeyId": event.get("AccessKeyId")},
        "resources": [
            {"ARN": r.get("ResourceName"), "type": r.get("ResourceType")}
            for r in event.get("Resources", [])
            if isinstance(r, dict)
        ],
    }
