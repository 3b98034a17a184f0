"""The normalized alert every source is turned into, and how playbook triggers match it."""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.spec import Trigger

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
    """One alert, whatever sent it: the fields playbooks match and read."""

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
    details: Any = None
    dedup_key: str | None = None


def trigger_matches(trigger: Trigger, alert: NormalizedAlert) -> bool:
    """Tell whether every field the trigger names matches the alert."""
    principal_type = alert.principal.type if alert.principal else None
    checks = [
        _one_of(trigger.source, alert.source),
        _one_of(trigger.kind, alert.kind),
        _one_of(trigger.account, alert.account),
        _one_of(trigger.region, alert.region),
        _one_of(trigger.principal_type, principal_type),
        trigger.type is None or fnmatch.fnmatchcase(alert.type, trigger.type),
    ]
    if trigger.severity_at_least is not None:
        floor = trigger.severity_at_least
        threshold = SEVERITY_OF_LABEL[floor] if isinstance(floor, str) else floor
        checks.append(alert.severity >= threshold)
    return all(checks)


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
