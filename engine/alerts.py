"""The normalized alert every source is turned into, and how playbook triggers match it."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
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
    principal_type = alert.principal.type if alert.principal else None
    checks = [
        _one_of(trigger.source, alert.source),
        _one_of(trigger.kind, alert.kind),
        _one_of(trigger.event_name, alert.event_name),
        _one_of(trigger.account, alert.account),
        _one_of(trigger.region, alert.region),
        _one_of(trigger.principal_type, principal_type),
        trigger.type is None or fnmatch.fnmatchcase(alert.type, trigger.type),
    ]
    if trigger.severity_at_least is not None:
        floor = trigger.severity_at_least
        threshold = SEVERITY_OF_LABEL[floor] if isinstance(floor, str) else floor
        checks.append(alert.severity >= threshold)
    if trigger.resources is not None:
        checks.append(bool(matching_resources(trigger.resources, alert, is_production)))
    return all(checks)


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
