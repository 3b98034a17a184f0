"""``aws.cloudtrail.find_callers``: who made the calls an alarm counted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from actions.aws.cloudtrail import alert_event_time
from actions.aws.cloudtrail_caller_records import rank_callers
from actions.aws.cloudtrail_lookup import LIMITER
from actions.aws.cloudtrail_records import Record, iso, text, utc
from actions.aws.cloudtrail_sources import (
    Query,
    Scope,
    chosen_sources,
    read_ingested,
    read_lookup_events,
    read_sources,
    read_trail_bucket,
)
from actions.aws.target import AwsInput
from actions.base import Action, ActionContext
from actions.policy import NO_RESOURCE_LEVEL, TRAIL_BUCKET_LISTING, TRAIL_LOG_FILES
from actions.registry import register

EventName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
]


class FindCallersInput(AwsInput):
    event_names: list[EventName] = Field(
        default=["TerminateInstances"],
        min_length=1,
        max_length=10,
        description="The CloudTrail event names counted (what the alarm's metric filter matches).",
    )
    minutes: float = Field(
        default=10,
        gt=0,
        le=1440,
        description="Length of the window, ending at `end` (an alarm goes off just after the "
        "calls it counts).",
    )
    start: datetime | None = Field(default=None, description="Start of the window (UTC).")
    end: datetime | None = Field(
        default=None, description="End of the window; default: the alert's event time, else now."
    )
    minutes_after: float = Field(
        default=0,
        ge=0,
        le=1440,
        description="How far past `end` the window reaches, never beyond now: the calls of a "
        "burst that went on after the alarm went off (the trigger's settle lets them arrive).",
    )
    regions: list[str] | None = Field(
        default=None,
        max_length=20,
        description="Regions whose calls are read; default: the step's region with "
        "LookupEvents, every region with logs in the bucket with s3.",
    )
    sources: list[str] | None = Field(
        default=None,
        description="lookup_events, s3, ingested; default: RIPOSTE_CLOUDTRAIL_SOURCES.",
    )
    min_calls: int = Field(
        default=1, ge=1, le=100_000, description="Callers with fewer calls are left out."
    )
    max_events: int = Field(
        default=10_000, ge=1, le=100_000, description="Most events read from each source."
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)


@register
class FindCallers(Action[FindCallersInput]):
    """Find who made the CloudTrail calls an alarm counted, in a window, leading caller first.

    A CloudWatch alarm on a metric filter (e.g. twenty TerminateInstances within five minutes)
    names no caller. This reads the calls of ``event_names`` in the window (default: the ten
    minutes before the alert's event time, which for an alarm is its state change, just after
    the calls) from the sources of ``RIPOSTE_CLOUDTRAIL_SOURCES`` (or ``sources``), merged and
    counted once by eventID: ``lookup_events`` (LookupEvents by EventName, within its shared
    rate limit), ``s3`` (the trail's log files) and ``ingested`` (CloudTrail events Riposte
    received). A source that cannot be read is marked ``read: false`` with its ``error`` in
    ``sources`` and listed in ``failed``, and the others are used; when none can be read the
    step fails with ``SourcesUnreadable``.

    Callers are grouped by principal — a user, the root user, or a role for all its sessions
    (``sessions`` lists them) — and ranked by the instances their successful calls named, then
    by their number of calls. For each: ``arn``, ``name``, ``type`` (CloudTrail's), ``kind``
    (user, role, root, service, …), ``account``, ``calls``, ``failed_calls``,
    ``by_event_name``, ``first_call`` / ``last_call``, ``access_key_ids``, ``source_ips`` and
    ``user_agents`` (value, count, first and last seen), ``instance_ids`` and ``events``: the
    calls shaped like CloudTrail alerts (for ``investigation.assess``'s ``events``), their texts
    cleaned (a caller writes its user agent), at most 500 for the leading caller and 20 for the
    others (``events_listed``). ``top`` is the leading caller, or null when there is none.

    ```yaml
    - id: callers
      action: aws.cloudtrail.find_callers
      with:
        event_names: [TerminateInstances]
        minutes: 10
    ```
    """

    name = "aws.cloudtrail.find_callers"
    Input = FindCallersInput
    grants = (
        NO_RESOURCE_LEVEL.allow("cloudtrail:LookupEvents"),
        TRAIL_BUCKET_LISTING.allow("s3:ListBucket"),
        TRAIL_LOG_FILES.allow("s3:GetObject"),
    )

    def run(self, ctx: ActionContext, params: FindCallersInput) -> dict[str, Any]:
        sources = chosen_sources(ctx, params.sources)
        search = _Search(ctx, params)
        read = read_sources(sources, {
            "lookup_events": search.lookup_events,
            "s3": search.s3,
            "ingested": search.ingested,
        })
        ranked = rank_callers(
            read.records, start=search.start, end=search.end, min_calls=params.min_calls
        )
        callers = ranked.callers
        return {
            "window": {"start": iso(search.start), "end": iso(search.end)},
            "event_names": params.event_names,
            "events": ranked.events,
            "unreadable_records": ranked.unreadable,
            "callers": callers,
            "callers_below_min_calls": ranked.below_min_calls,
            "top": callers[0] if callers else None,
            "summary": _summary(callers, params, search, read.read, read.failed),
            **read.as_output(),
        }


class _Search:
    """The window and account of one step, and how each source is read for its event names."""

    def __init__(self, ctx: ActionContext, params: FindCallersInput) -> None:
        self.ctx = ctx
        self.params = params
        now = datetime.now(UTC)
        end = params.end or alert_event_time(ctx.alert) or now
        scope = Scope.of(
            ctx, account=params.account, region=params.region,
            start=params.start or end - timedelta(minutes=params.minutes),
            end=min(end + timedelta(minutes=params.minutes_after), max(now, end)),
            span=timedelta(minutes=params.minutes),
        )
        self.account, self.region = scope.account, scope.region
        self.start, self.end = scope.start, scope.end
        self.names = frozenset(params.event_names)

    def keep(self, record: Record) -> bool:
        return text(record.get("eventName")) in self.names

    def lookup_events(self) -> tuple[list[Record], dict[str, Any]]:
        """One LookupEvents query per region and event name (attribute EventName)."""
        queries: list[Query] = [
            (region, "EventName", name)
            for region in dict.fromkeys(self.params.regions or [self.region])
            for name in self.params.event_names
        ]
        return read_lookup_events(
            self.ctx,
            account=self.account,
            queries=queries,
            start=self.start,
            end=self.end,
            keep=self.keep,
            limiter=LIMITER,
            max_events=self.params.max_events,
        )

    def s3(self) -> tuple[list[Record], dict[str, Any]]:
        return read_trail_bucket(
            self.ctx,
            account=self.account,
            regions=self.params.regions,
            start=self.start,
            end=self.end,
            keep=self.keep,
            max_events=self.params.max_events,
        )

    def ingested(self) -> tuple[list[Record], dict[str, Any]]:
        return read_ingested(
            self.ctx,
            account=self.account,
            start=self.start,
            end=self.end,
            keep=self.keep,
            max_events=self.params.max_events,
        )


def _summary(
    callers: Sequence[Mapping[str, Any]],
    params: FindCallersInput,
    search: _Search,
    read: list[str],
    failed: Mapping[str, str],
) -> str:
    names = " or ".join(params.event_names)
    window = f"between {iso(search.start)} and {iso(search.end)}"
    where = f"in {', '.join(read)}" + (f" ({', '.join(failed)} unreadable)" if failed else "")
    if not callers:
        return f"no caller of {names} with at least {params.min_calls} call(s) {window} {where}"
    top = callers[0]
    return (
        f"{top['name'] or top['arn'] or 'an unnamed caller'} ({top['kind']}) made "
        f"{top['calls']} {names} call(s) naming {len(top['instance_ids'])} instance(s) "
        f"{window}, found {where}; {len(callers)} caller(s) in all"
    )
