"""Where the CloudTrail actions read events: LookupEvents, the trail's bucket, what was ingested.

``aws.cloudtrail.principal_history`` and ``aws.cloudtrail.find_callers`` read the same three
sources, each with a ``keep`` predicate saying which records they want, and describe what each
source read the same way:

- ``lookup_events``: CloudTrail's event history, one lookup attribute per query, within the
  process-wide rate limit (``cloudtrail_lookup``);
- ``s3``: the trail's log files in ``RIPOSTE_CLOUDTRAIL_BUCKET`` (``cloudtrail_s3``);
- ``ingested``: the CloudTrail events Riposte received itself (``cloudtrail_ingested``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from actions.aws.cloudtrail_ingested import IngestedReport, ingested_records
from actions.aws.cloudtrail_lookup import LookupReport, RateLimiter, lookup_events
from actions.aws.cloudtrail_records import Record, iso, text, unique_records
from actions.aws.cloudtrail_s3 import S3Report, logs_prefix, read_log_files, regions_with_logs
from actions.base import ActionContext, ActionError

SOURCES = ("lookup_events", "s3", "ingested")
Keep = Callable[[Record], bool]
# A LookupEvents query: the region, the lookup attribute and its value.
Query = tuple[str, str, str]


@dataclass(frozen=True)
class Scope:
    """Where and when one step reads CloudTrail: an account, a region and a window."""

    account: str | None
    region: str
    start: datetime
    end: datetime

    @classmethod
    def of(
        cls,
        ctx: ActionContext,
        *,
        account: str | None,
        region: str | None,
        start: datetime | None,
        end: datetime | None,
        span: timedelta,
    ) -> Scope:
        """The step's (else the alert's) account and region (else Riposte's own region), and
        a window ending at ``end`` (else now) that lasts ``span`` unless ``start`` is given."""
        alert = ctx.alert
        ends = end or datetime.now(UTC)
        starts = start or ends - span
        if starts >= ends:
            raise ActionError(
                "InvalidWindow",
                f"the window starts ({iso(starts)}) after it ends ({iso(ends)})",
                retryable=False,
            )
        return cls(
            account=account or text(alert.get("account")),
            region=region or text(alert.get("region")) or ctx.settings.aws_region,
            start=starts,
            end=ends,
        )


def chosen_sources(ctx: ActionContext, given: list[str] | None) -> list[str]:
    """The sources a step reads (``given``, else the settings'), once each, in order."""
    sources = given or ctx.settings.cloudtrail_sources
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ActionError(
            "InvalidSources",
            f"unknown CloudTrail sources {unknown} (known: {', '.join(SOURCES)})",
            retryable=False,
        )
    return list(dict.fromkeys(sources))


def read_lookup_events(
    ctx: ActionContext,
    *,
    account: str | None,
    queries: list[Query],
    start: datetime,
    end: datetime,
    keep: Keep,
    limiter: RateLimiter,
    max_events: int,
) -> tuple[list[Record], dict[str, Any]]:
    """Run each LookupEvents query over the window, in order, until ``max_events`` are read."""
    own = account or ctx.aws.own_account()
    report = LookupReport()
    for region, attribute, value in queries:
        if report.truncated:
            break
        lookup_events(
            ctx.aws.client("cloudtrail", account=account, region=region),
            attribute=attribute,
            value=value,
            start=start,
            end=end,
            limiter=limiter,
            key=(own, region),
            cancelled=ctx.cancelled,
            report=report,
            max_events=max_events,
        )
    kept = unique_records(r for r in report.records if keep(r))
    return kept, {
        "events": len(kept),
        "calls": report.calls,
        "waited_seconds": round(report.waited_seconds, 3),
        "truncated": report.truncated,
        "queries": report.queries,
    }


def read_trail_bucket(
    ctx: ActionContext,
    *,
    account: str | None,
    regions: list[str] | None,
    start: datetime,
    end: datetime,
    keep: Keep,
    max_events: int,
) -> tuple[list[Record], dict[str, Any]]:
    """Read the trail's log files of the window's days (``regions``; None: every one logged)."""
    settings = ctx.settings
    if not settings.cloudtrail_bucket:
        raise ActionError(
            "SourceUnavailable",
            "the s3 CloudTrail source needs RIPOSTE_CLOUDTRAIL_BUCKET (the trail's bucket)",
            retryable=False,
        )
    own = account or ctx.aws.own_account()
    client = ctx.aws.client("s3", account=settings.cloudtrail_bucket_account or account)
    base = logs_prefix(settings.cloudtrail_bucket_prefix, own)
    if regions is None:
        regions = regions_with_logs(client, bucket=settings.cloudtrail_bucket, base=base)
    report = S3Report()
    read_log_files(
        client,
        bucket=settings.cloudtrail_bucket,
        base=base,
        regions=regions,
        start=start,
        end=end,
        keep=keep,
        cancelled=ctx.cancelled,
        report=report,
        max_events=max_events,
    )
    return report.records, {
        "events": len(report.records),
        "bucket": settings.cloudtrail_bucket,
        "prefix": base,
        "regions": report.regions,
        "files_listed": report.files_listed,
        "files_read": report.files_read,
        "unreadable_files": report.unreadable_files,
        "truncated": report.truncated,
    }


def read_ingested(
    ctx: ActionContext,
    *,
    account: str | None,
    start: datetime,
    end: datetime,
    keep: Keep,
    max_events: int,
) -> tuple[list[Record], dict[str, Any]]:
    """Read the CloudTrail events Riposte ingested, through the run's database access."""
    sessions = ctx.run_env.sessions
    if sessions is None:
        raise ActionError(
            "SourceUnavailable",
            "the ingested CloudTrail source reads Riposte's database, and this run was "
            "given no access to it (RunEnv.sessions is not set)",
            retryable=False,
        )
    report = IngestedReport()
    with sessions() as session:
        ingested_records(
            session=session,
            account=account,
            start=start,
            end=end,
            keep=keep,
            report=report,
            max_events=max_events,
        )
    return report.records, {
        "events": len(report.records),
        "alerts_read": report.alerts_read,
        "truncated": report.truncated,
    }
