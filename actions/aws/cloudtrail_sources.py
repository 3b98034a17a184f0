"""Where the CloudTrail actions read events: LookupEvents, the trail's bucket, what was ingested.

``aws.cloudtrail.principal_history`` and ``aws.cloudtrail.find_callers`` read the same three
sources, each with a ``keep`` predicate saying which records they want, and describe what each
source read the same way:

- ``lookup_events``: CloudTrail's event history, one lookup attribute per query, within the
  process-wide rate limit (``cloudtrail_lookup``);
- ``s3``: the trail's log files in ``RIPOSTE_CLOUDTRAIL_BUCKET`` (``cloudtrail_s3``);
- ``ingested``: the CloudTrail events Riposte received itself (``cloudtrail_ingested``).

A source that cannot be read (no bucket or database configured, AccessDenied, NoSuchBucket,
throttling past the retries, …) does not discard what the others read (:func:`read_sources`):
the step goes on with their events, and its output says which source was not read and why,
so that whoever reads the answer knows it may be incomplete. Only when no source can be read
does the step fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError

from actions.aws.cloudtrail_ingested import IngestedReport, ingested_records
from actions.aws.cloudtrail_lookup import LookupReport, RateLimiter, lookup_events
from actions.aws.cloudtrail_records import Record, iso, text, unique_records
from actions.aws.cloudtrail_s3 import S3Report, logs_prefix, read_log_files, regions_with_logs
from actions.base import ActionContext, ActionError

SOURCES = ("lookup_events", "s3", "ingested")
Keep = Callable[[Record], bool]
# A LookupEvents query: the region, the lookup attribute and its value.
Query = tuple[str, str, str]
# Reads one source: its records, and a report of what it read.
Reader = Callable[[], tuple[list[Record], dict[str, Any]]]


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


@dataclass
class SourcesRead:
    """What a step's sources gave: the records of those read, and how each source went.

    ``sources`` holds every source in the order read: ``{"read": true, "events": …}`` and the
    rest of that source's report, or ``{"read": false, "error": {"code": …, "message": …}}``.
    """

    records: list[Record] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def read(self) -> list[str]:
        """The sources read, in order."""
        return [name for name, report in self.sources.items() if report["read"]]

    @property
    def failed(self) -> dict[str, str]:
        """Each source not read, with why: ``"SourceUnavailable: …"``."""
        return {
            name: f"{report['error']['code']}: {report['error']['message']}"
            for name, report in self.sources.items() if not report["read"]
        }

    def as_output(self) -> dict[str, Any]:
        """The step output's ``sources``, ``read`` and ``failed``."""
        return {"sources": self.sources, "read": self.read, "failed": self.failed}


def read_sources(sources: list[str], readers: Mapping[str, Reader]) -> SourcesRead:
    """Read each source in turn; one that fails is reported and the others are still read.

    Only an action's own errors (an AWS error answer, a source not configured) mark a source
    unread; a cancellation stops the step, and any other exception is a bug and propagates.
    Raises ``SourcesUnreadable``, naming each source and why, when none could be read.
    """
    result = SourcesRead()
    errors: list[ActionError] = []
    for source in sources:
        try:
            found, report = readers[source]()
        except ActionError as exc:
            if exc.code == "Cancelled":
                raise
            errors.append(exc)
            result.sources[source] = {
                "read": False, "error": {"code": exc.code, "message": exc.message}
            }
            continue
        result.records.extend(found)
        result.sources[source] = {"read": True, **report}
    if not result.read:
        raise ActionError(
            "SourcesUnreadable",
            "no CloudTrail source could be read: "
            + "; ".join(f"{source}: {why}" for source, why in result.failed.items()),
            retryable=any(exc.retryable for exc in errors),
        )
    return result


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
            "the ingested CloudTrail source reads Riposte's database, and this run has no "
            "access to one (a rehearsal by `riposte plan` runs without a database; "
            "RunEnv.sessions is not set)",
            retryable=False,
        )
    report = IngestedReport()
    try:
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
    except DBAPIError as exc:  # the database is down or refuses: the other sources still count
        reason = " ".join(str(exc.orig or exc).split())[:200]
        raise ActionError(
            "SourceUnavailable",
            f"the ingested CloudTrail source could not read Riposte's database: {reason}",
        ) from exc
    return report.records, {
        "events": len(report.records),
        "alerts_read": report.alerts_read,
        "truncated": report.truncated,
    }
