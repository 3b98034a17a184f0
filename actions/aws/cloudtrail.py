"""``aws.cloudtrail.principal_history``: what a principal usually does, and what is new."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, field_validator

from actions.aws.cloudtrail_history import DEFAULT_COVERAGE, LEAD_UP, summarize
from actions.aws.cloudtrail_lookup import LIMITER
from actions.aws.cloudtrail_records import PrincipalRef, Record, iso, relevant, utc
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
from actions.base import Action, ActionContext, ActionError
from actions.policy import NO_RESOURCE_LEVEL, TRAIL_BUCKET_LISTING, TRAIL_LOG_FILES
from actions.registry import register

# IAM and console sign-in events are global: CloudTrail records them in the partition's first
# region (us-east-1 in the commercial partition).
GLOBAL_REGIONS = {"us-gov-": "us-gov-west-1", "cn-": "cn-north-1"}
GLOBAL_REGION = "us-east-1"


def global_region(region: str) -> str:
    """Where CloudTrail records global (IAM, sign-in) events in ``region``'s partition."""
    for prefix, where in GLOBAL_REGIONS.items():
        if region.startswith(prefix):
            return where
    return GLOBAL_REGION


class PrincipalHistoryInput(AwsInput):
    principal: str | None = Field(
        default=None,
        description="ARN, user name or access key id; default: the alert's principal.",
    )
    days: float = Field(
        default=7, gt=0, le=90, description="Length of the window, ending at `end`."
    )
    start: datetime | None = Field(default=None, description="Start of the window (UTC).")
    end: datetime | None = Field(
        default=None, description="End of the window; default: the alert's event time, else now."
    )
    event_time: datetime | None = Field(
        default=None,
        description="The moment judged against the working hours; default: the alert's.",
    )
    resources: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Resource ids whose events to count (any caller); default: the alert's "
        "EC2 instances. Looked up in the step's region.",
    )
    regions: list[str] | None = Field(
        default=None,
        description="Regions read for the principal's calls (us-east-1, where IAM and sign-in "
        "events are, always is); default: the "
        "step's region with LookupEvents, every region with logs in the bucket with s3.",
    )
    sources: list[str] | None = Field(
        default=None,
        description="lookup_events, s3, ingested; default: RIPOSTE_CLOUDTRAIL_SOURCES.",
    )
    coverage: float = Field(
        default=DEFAULT_COVERAGE,
        ge=0.5,
        le=1.0,
        description="Share of the principal's calls the working hours must hold.",
    )
    lead_up_hours: float = Field(
        default=LEAD_UP.total_seconds() / 3600,
        ge=0,
        le=24,
        description="Hours before `event_time` whose calls are the event's own lead-up (an "
        "intruder signing in first), left out of the baseline of hours; 0: none.",
    )
    max_events: int = Field(
        default=20_000, ge=1, le=500_000, description="Most events read from each source."
    )

    @field_validator("start", "end", "event_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)


@register
class PrincipalHistory(Action[PrincipalHistoryInput]):
    """Summarize a principal's CloudTrail history before the alert: hours, addresses, changes.

    Over a window (default: the 7 days before the alert's event time) it gives the principal's
    activity by hour of the day and its usual working hours (the smallest span holding 90 % of
    its calls before the alert, leaving out those of the ``lead_up_hours`` just before it: the
    event's own lead-up, counted apart in ``lead_up``), whether the alert's event falls outside
    them, its source addresses, user agents, regions and event names with counts and first/last
    seen (and whether each was seen before the alert), its console sign-ins (success or failure,
    MFA or not), IAM changes made to it (policies, access keys, password, MFA), and every event
    on the given resources (e.g. earlier stops or terminations of these instances), by event
    name.

    Events come from the sources in ``RIPOSTE_CLOUDTRAIL_SOURCES`` (or ``sources``), merged
    and counted once by eventID: ``lookup_events`` (CloudTrail's event history, 2 requests/s
    per account and region, shared by the process), ``s3`` (the trail's log files in
    ``RIPOSTE_CLOUDTRAIL_BUCKET``), ``ingested`` (CloudTrail events Riposte received).
    LookupEvents selects an IAM user's calls by user name and a session's by its session name
    or access key id; it cannot select every session of a role: use ``s3`` or ``ingested``.

    A source that cannot be read (``ingested`` in a rehearsal, which has no database; a bucket
    that answers AccessDenied; LookupEvents throttled past the retries) leaves the history to
    the others: ``sources`` says of each source whether it was read (``read: true`` and what it
    read) or why not (``read: false`` and the ``error``), ``read`` lists those read and
    ``failed`` the others with why; ``investigation.assess`` repeats it in the findings drawn
    from the history. When none can be read the step fails with ``SourcesUnreadable``.

    ```yaml
    - id: history
      action: aws.cloudtrail.principal_history
      with:
        days: 7
        resources: [i-0123456789abcdef0]
    ```
    """

    name = "aws.cloudtrail.principal_history"
    Input = PrincipalHistoryInput
    grants = (
        NO_RESOURCE_LEVEL.allow("cloudtrail:LookupEvents"),
        TRAIL_BUCKET_LISTING.allow("s3:ListBucket"),
        TRAIL_LOG_FILES.allow("s3:GetObject"),
    )

    def run(self, ctx: ActionContext, params: PrincipalHistoryInput) -> dict[str, Any]:
        sources = chosen_sources(ctx, params.sources)
        history = _History(ctx, params)
        read = read_sources(sources, {
            "lookup_events": history.lookup_events,
            "s3": history.s3,
            "ingested": history.ingested,
        })
        summary = summarize(
            read.records,
            principal=history.principal,
            start=history.start,
            end=history.end,
            alert_time=history.alert_time,
            resource_ids=history.resource_ids,
            coverage=params.coverage,
            lead_up=timedelta(hours=params.lead_up_hours),
        )
        return {
            "principal": history.principal.describe(),
            "window": {"start": iso(history.start), "end": iso(history.end)},
            **read.as_output(),
            **summary,
        }


class _History:
    """The window, principal and targets of one step, and how each source reads them."""

    def __init__(self, ctx: ActionContext, params: PrincipalHistoryInput) -> None:
        self.ctx = ctx
        self.params = params
        alert = ctx.alert
        self.alert_time = params.event_time or alert_event_time(alert)
        scope = Scope.of(
            ctx, account=params.account, region=params.region, start=params.start,
            end=params.end or self.alert_time, span=timedelta(days=params.days),
        )
        self.account, self.region = scope.account, scope.region
        self.start, self.end = scope.start, scope.end
        self.principal = _principal(params.principal, alert, self.account)
        self.resource_ids = (
            params.resources if params.resources is not None else _alert_instances(alert)
        )

    def _with_global(self, regions: list[str]) -> list[str]:
        return list(dict.fromkeys([*regions, global_region(self.region)]))

    def keep(self, record: Record) -> bool:
        return relevant(record, self.principal, self.resource_ids)

    def lookup_events(self) -> tuple[list[Record], dict[str, Any]]:
        """Query LookupEvents: the principal's calls, changes to it, events on the resources."""
        principal_regions = self._with_global(self.params.regions or [self.region])
        iam_region = global_region(self.region)
        queries: list[Query] = []
        username, key_id = self.principal.lookup_username, self.principal.access_key_id
        for region in principal_regions:
            if username:
                queries.append((region, "Username", username))
            elif key_id:
                queries.append((region, "AccessKeyId", key_id))
        if self.principal.name and self.principal.type != "Root":
            queries.append((iam_region, "ResourceName", self.principal.name))
        queries += [(self.region, "ResourceName", rid) for rid in self.resource_ids]
        kept, described = read_lookup_events(
            self.ctx, account=self.account, queries=queries, start=self.start, end=self.end,
            keep=self.keep, limiter=LIMITER, max_events=self.params.max_events,
        )
        if not username and not key_id:
            described["note"] = (
                "LookupEvents cannot select every session of a role: its calls need the s3 or "
                "ingested source"
            )
        return kept, described

    def s3(self) -> tuple[list[Record], dict[str, Any]]:
        """Read the trail's log files for the window's days."""
        regions = self._with_global(self.params.regions) if self.params.regions else None
        return read_trail_bucket(
            self.ctx, account=self.account, regions=regions, start=self.start, end=self.end,
            keep=self.keep, max_events=self.params.max_events,
        )

    def ingested(self) -> tuple[list[Record], dict[str, Any]]:
        """Read the CloudTrail events Riposte ingested, through the run's database access."""
        return read_ingested(
            self.ctx, account=self.account, start=self.start, end=self.end, keep=self.keep,
            max_events=self.params.max_events,
        )


def alert_event_time(alert: Mapping[str, Any]) -> datetime | None:
    """When the alert's event happened: ``event_time`` (or ``time``, or ``details.event_time``)."""
    details = alert.get("details")
    candidates = [alert.get("event_time"), alert.get("time")]
    if isinstance(details, dict):
        candidates.append(details.get("event_time"))
    for value in candidates:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str) and value.strip():
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                continue
        else:
            continue
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return None


def _principal(given: str | None, alert: Mapping[str, Any], account: str | None) -> PrincipalRef:
    ref = PrincipalRef.parse(given) if given else PrincipalRef.from_alert(alert.get("principal"))
    if ref is None:
        raise ActionError(
            "NoPrincipal",
            "no principal given in with.principal and the alert names none",
            retryable=False,
        )
    if ref.account is None and account is not None and not ref.access_key_id:
        ref = replace(ref, account=account)
    return ref


def _alert_instances(alert: Mapping[str, Any]) -> list[str]:
    resources = alert.get("resources")
    if not isinstance(resources, list):
        return []
    ids = [
        r.get("id") for r in resources
        if isinstance(r, dict) and r.get("type") == "AwsEc2Instance"
    ]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))[:50]
