"""The normalized alert every source is turned into, and how playbook triggers match it."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.spec import ResourceFilter, Trigger

SeverityLabel = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
# Security Hub's normalized bands: the label is the band a 0-100 score falls in.
SEVERITY_BANDS: list[tuple[int, SeverityLabel]] = [
    (90, "CRITICAL"),
    (70, "HIGH"),
    (40, "MEDIUM"),
    (1, "LOW"),
    (0, "INFORMATIONAL"),
]
# A label given alone stands for the bottom of its band.
SEVERITY_OF_LABEL: dict[str, int] = {label: floor for floor, label in SEVERITY_BANDS}


def severity_label(score: int) -> SeverityLabel:
    """Return the label of a 0-100 severity score."""
    return next(label for floor, label in SEVERITY_BANDS if score >= floor)


# Event times outside these bounds are no real event's, and windows around them would not be
# representable: a normalizer drops them, the API refuses them.
EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(9000, 1, 1, tzinfo=UTC)


def event_time_in_range(value: datetime) -> datetime:
    """Return ``value`` in UTC (naive means UTC), or raise if no event could have that time."""
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not EARLIEST_EVENT <= moment < LATEST_EVENT:
        raise ValueError(f"event time {value.isoformat()} is not between 1970 and 9000")
    return moment


EventTime = Annotated[datetime, AfterValidator(event_time_in_range)]
# Settings.is_production: whether an instance (id, tags) is production.
ProductionCheck = Callable[[str, dict[str, str]], bool]


class Principal(BaseModel):
    """Who did it: an AWS identity as CloudTrail describes it."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = None
    name: str | None = None
    arn: str | None = None
    access_key_id: str | None = None
    account: str | None = None


class Resource(BaseModel):
    """What it was done to."""

    model_config = ConfigDict(extra="forbid")

    type: str
    id: str
    arn: str | None = None
    region: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class NormalizedAlert(BaseModel):
    """One alert, whatever sent it: the fields playbooks match and read.

    ``event_time`` is when the event happened as its source says (not when Riposte received
    it); ``event_name`` the API call, finding type or alarm name; ``mfa_used`` whether the
    sign-in or session used MFA (None: the payload does not say).
    """

    source: str
    kind: str
    type: str = ""
    title: str
    severity: int = Field(ge=0, le=100)
    severity_label: SeverityLabel
    account: str | None = None
    region: str | None = None
    principal: Principal | None = None
    resources: list[Resource] = Field(default_factory=list)
    event_time: EventTime | None = None
    event_name: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    mfa_used: bool | None = None
    details: Any = None
    dedup_key: str | None = None


def trigger_matches(
    trigger: Trigger, alert: NormalizedAlert, *, is_production: ProductionCheck | None
) -> bool:
    """Tell whether every field the trigger names matches the alert.

    ``is_production`` judges instances for a ``resources.production`` filter; None (no
    settings at hand) means nothing is known, so every instance may be production.
    """
    return all(passed for passed, _why in _trigger_checks(trigger, alert, is_production))


def trigger_mismatches(
    trigger: Trigger, alert: NormalizedAlert, *, is_production: ProductionCheck | None
) -> list[str]:
    """Say, for each field of the trigger the alert fails, what it wants and what it got.

    The same checks as ``trigger_matches``: an empty list means the trigger matches.
    """
    return [why() for passed, why in _trigger_checks(trigger, alert, is_production) if not passed]


# One check: whether it passed, and (asked only when it failed) why not, in a reader's words.
_Check = tuple[bool, Callable[[], str]]


def _trigger_checks(
    trigger: Trigger, alert: NormalizedAlert, is_production: ProductionCheck | None
) -> Iterator[_Check]:
    """Yield the trigger's checks in its fields' order, lazily: ``all`` stops at a failure."""
    principal_type = alert.principal.type if alert.principal else None
    listed: list[tuple[str, list[str], str, str | None]] = [
        ("source", trigger.source, "source", alert.source),
        ("kind", trigger.kind, "kind", alert.kind),
        ("event_name", trigger.event_name, "event name", alert.event_name),
        ("account", trigger.account, "account", alert.account),
        ("region", trigger.region, "region", alert.region),
        ("principal_type", trigger.principal_type, "principal type", principal_type),
    ]
    for field, allowed, what, value in listed:
        yield _one_of(allowed, value), _wants_one_of(field, allowed, what, value)
    if trigger.type is not None:
        pattern = trigger.type
        yield fnmatch.fnmatchcase(alert.type, pattern), lambda: (
            f"trigger.type: wants a type matching {pattern!r}, the alert's type is "
            f"{alert.type!r}"
        )
    if trigger.severity_at_least is not None:
        floor = trigger.severity_at_least
        threshold = SEVERITY_OF_LABEL[floor] if isinstance(floor, str) else floor
        yield alert.severity >= threshold, lambda: (
            f"trigger.severity_at_least: wants {floor} ({threshold}) or more, the alert's "
            f"severity is {alert.severity} ({alert.severity_label})"
        )
    if trigger.resources is not None:
        wanted = trigger.resources
        yield bool(matching_resources(wanted, alert, is_production)), lambda: (
            _resources_mismatch(wanted, alert)
        )


def _wants_one_of(
    field: str, allowed: list[str], what: str, value: str | None
) -> Callable[[], str]:
    def why() -> str:
        got = f"is {value!r}" if value is not None else "is not known"
        return f"trigger.{field}: wants [{', '.join(allowed)}], the alert's {what} {got}"

    return why


def _resources_mismatch(wanted: ResourceFilter, alert: NormalizedAlert) -> str:
    kinds = f" of type [{', '.join(wanted.type)}]" if wanted.type else ""
    production = " that may be production" if wanted.production else ""
    named = ", ".join(f"{r.type} {r.id}" for r in alert.resources[:5])
    more = f" and {len(alert.resources) - 5} more" if len(alert.resources) > 5 else ""
    got = f"the alert names {named}{more}, none of which counts" if named else (
        "the alert names no resource"
    )
    return f"trigger.resources: wants a resource{kinds}{production}, {got}"


@dataclass(frozen=True)
class MatchedTrigger:
    """The trigger of a playbook that handles an alert, and its place in the playbook's list."""

    index: int
    trigger: Trigger


def matching_trigger(
    triggers: Sequence[Trigger], alert: NormalizedAlert, *, is_production: ProductionCheck | None
) -> MatchedTrigger | None:
    """Return the first of a playbook's triggers that matches the alert, or None.

    Only the first counts: an alert two triggers of one playbook match starts (or joins, or is
    counted towards) one run of it, never two.
    """
    for index, trigger in enumerate(triggers):
        if trigger_matches(trigger, alert, is_production=is_production):
            return MatchedTrigger(index, trigger)
    return None


def matching_resources(
    wanted: ResourceFilter, alert: NormalizedAlert, is_production: ProductionCheck | None
) -> list[Resource]:
    """Return the alert's resources that pass the filter, in the alert's order."""
    return [
        resource
        for resource in alert.resources
        if _one_of(wanted.type, resource.type)
        and (not wanted.production or _may_be_production(resource, is_production))
    ]


def _may_be_production(resource: Resource, is_production: ProductionCheck | None) -> bool:
    if resource.type != "AwsEc2Instance":
        return False
    # No tags on the alert means they are unknown (CloudTrail never carries them): counting the
    # instance may over-fire, which the playbook's own lookup corrects; skipping it could miss
    # production.
    if is_production is None or not resource.tags:
        return True
    return is_production(resource.id, resource.tags)


def _one_of(allowed: list[str], value: str | None) -> bool:
    return not allowed or (value is not None and value in allowed)


# What Riposte writes as Note.UpdatedBy when it updates a Security Hub finding.
RIPOSTE_UPDATED_BY = "riposte"


def updated_by_riposte(alert: NormalizedAlert) -> bool:
    """Tell whether a Security Hub finding was last updated by Riposte itself (not a new fact)."""
    if alert.source != "securityhub" or not isinstance(alert.details, dict):
        return False
    extra = alert.details.get("extra")
    updated_by = extra.get("note_updated_by") if isinstance(extra, dict) else None
    return isinstance(updated_by, str) and updated_by.strip().lower().startswith(
        RIPOSTE_UPDATED_BY
    )


def template_view(alert_id: str, alert: NormalizedAlert) -> dict[str, Any]:
    """Return the alert as playbook templates see it (``alert.principal.name`` …)."""
    return {"id": alert_id, **alert.model_dump(mode="json")}
