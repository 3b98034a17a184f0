"""Read CloudTrail log files from a trail's S3 bucket, only the days a window covers.

A trail delivers ``[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz``, each a gzip JSON
``{"Records": [...]}``. The folder's date and the name's time are when the file was written,
which is after its events: so a file written before the window starts holds none of its events,
and the listing covers the window's days plus ``DELIVERY_GRACE`` after its end (CloudTrail
delivers within about 5 minutes on average, AWS says; an hour leaves room for delays).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from actions.aws.clients import Client
from actions.aws.cloudtrail_records import Record, event_time
from actions.base import ActionError

DELIVERY_GRACE = timedelta(hours=1)
WRITTEN_AT = re.compile(r"_(\d{8}T\d{4}Z)_[^/]*\.json\.gz$")


@dataclass
class S3Report:
    """What was read from the bucket: records kept, files read, files that could not be read."""

    records: list[Record] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    files_listed: int = 0
    files_read: int = 0
    unreadable_files: list[str] = field(default_factory=list)
    truncated: bool = False


def logs_prefix(prefix: str, account: str) -> str:
    """The key prefix of an account's logs: ``[prefix/]AWSLogs/<account>/CloudTrail/``."""
    head = prefix.strip("/")
    return f"{head + '/' if head else ''}AWSLogs/{account}/CloudTrail/"


def days(start: datetime, end: datetime) -> list[date]:
    """The UTC days from ``start`` to ``end`` plus the delivery grace, in order."""
    first, last = start.astimezone(UTC).date(), (end + DELIVERY_GRACE).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def written_at(key: str) -> datetime | None:
    """When a log file was written, from its name (None: not a CloudTrail log file name)."""
    found = WRITTEN_AT.search(key)
    if found is None:
        return None
    return datetime.strptime(found[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def may_hold(key: str, start: datetime, end: datetime) -> bool:
    """Whether a log file can hold events of ``[start, end]``, judged by its name."""
    written = written_at(key)
    if written is None:
        return key.endswith(".json.gz")
    # The name keeps the minute only: a file stamped 10:05 may hold an event of 10:05:59.
    return start - timedelta(minutes=1) < written <= end + DELIVERY_GRACE


def regions_with_logs(client: Client, *, bucket: str, base: str) -> list[str]:
    """The regions the bucket holds logs for (the folders under ``base``)."""
    regions: list[str] = []
    listing = client.get_paginator("list_objects_v2")
    for page in listing.paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            regions.append(str(common["Prefix"])[len(base):].strip("/"))
    return sorted(r for r in regions if r)


def read_log_files(
    client: Client,
    *,
    bucket: str,
    base: str,
    regions: list[str],
    start: datetime,
    end: datetime,
    keep: Callable[[Record], bool],
    cancelled: threading.Event,
    report: S3Report,
    max_events: int,
) -> None:
    """Read the log files of ``regions`` written during the window; keep records ``keep`` likes.

    A file that is not gzip JSON with a ``Records`` array is listed as unreadable, not fatal:
    one damaged file must not hide the rest of the history.
    """
    report.regions = regions
    # Pages are asked for one at a time as the loop needs them: a full report stops the listing.
    listing = client.get_paginator("list_objects_v2")
    for region in regions:
        for day in days(start, end):
            prefix = f"{base}{region}/{day:%Y/%m/%d}/"
            for page in listing.paginate(Bucket=bucket, Prefix=prefix):
                for listed in page.get("Contents", []):
                    key = str(listed["Key"])
                    report.files_listed += 1
                    if not may_hold(key, start, end):
                        continue
                    if cancelled.is_set():
                        raise ActionError("Cancelled", "cancelled while reading CloudTrail logs",
                                          retryable=False)
                    records = _records(client, bucket, key)
                    if records is None:
                        report.unreadable_files.append(key)
                        continue
                    report.files_read += 1
                    for record in records:
                        moment = event_time(record)
                        if moment is None or not start <= moment <= end or not keep(record):
                            continue
                        if len(report.records) >= max_events:
                            report.truncated = True
                            return
                        report.records.append(record)


def _records(client: Client, bucket: str, key: str) -> list[Record] | None:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        parsed = json.loads(gzip.decompress(body))
    except (OSError, EOFError, zlib.error, ValueError):
        return None
    records = parsed.get("Records") if isinstance(parsed, dict) else None
    if not isinstance(records, list):
        return None
    return [record for record in records if isinstance(record, dict)]

