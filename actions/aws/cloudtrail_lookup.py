"""Read CloudTrail's event history with ``LookupEvents``, within its rate limit.

``LookupEvents`` takes one lookup attribute per call, returns at most 50 events a page and
allows 2 requests per second per account and region. Every call waits its turn in a token
bucket per (account, region) shared by the whole process, so parallel steps and runs never
exceed the limit together; the wait watches the step's ``cancelled`` event.
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
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
        "StartTime": start,
        "EndTime": end,
        "MaxResults": PAGE_SIZE,
    }
    found = 0
    while True:
        if cancelled.is_set():
            raise ActionError("Cancelled", "cancelled while reading LookupEvents",
                              retryable=False)
        report.waited_seconds += limiter.acquire(key, cancelled)
        answer = client.lookup_events(**request)
        report.calls += 1
        for event in answer.get("Events", []):
            if len(report.records) >= max_events:
                report.truncated = True
                break
            report.records.append(record_of(event))
            found += 1
        token = answer.get("NextToken")
        if not token or report.truncated:
            break
        request["NextToken"] = token
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
