"""Wire models: alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, WithJsonSchema

from api.schemas.common import (
    EVENT_TIME_SCHEMA,
    JsonValue,
    Page,
    RequestModel,
    ResponseModel,
    Text,
    event_time_text,
)
from engine.alerts import (
    SEVERITY_OF_LABEL,
    EventTime,
    NormalizedAlert,
    Principal,
    Resource,
    SeverityLabel,
    severity_label,
)
from engine.store.alerts import IngestResult
from engine.store.models import Alert, Run


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        label = value.strip().upper()
        if label in SEVERITY_OF_LABEL:
            return label
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # 37.0 is an integer to JSON Schema, and so here
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    raise ValueError(
        "severity must be an integer from 0 to 100 or one of "
        + ", ".join(SEVERITY_OF_LABEL)
    )


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


# What _severity takes, said in the schema as the server reads it.
_SEVERITY_SCHEMA = {"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": 100},
    {"type": "string",
     "pattern": rf"^\s*({'|'.join(_any_case(label) for label in SEVERITY_OF_LABEL)})\s*$"},
]}


def _keys_hold_no_nul(schema: dict[str, Any]) -> None:
    # pydantic spells the keys' pattern as patternProperties, which lets other keys through.
    patterns = schema.pop("patternProperties", {})
    for pattern, value in patterns.items():
        schema["additionalProperties"] = value
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}


class PrincipalIn(RequestModel):
    """Who did it."""

    type: Annotated[Text, Field(max_length=128)] | None = None
    name: Annotated[Text, Field(max_length=512)] | None = None
    arn: Annotated[Text, Field(max_length=2048)] | None = None
    access_key_id: Annotated[Text, Field(max_length=128)] | None = None
    account: Annotated[Text, Field(max_length=32)] | None = None


class ResourceIn(RequestModel):
    """What it was done to."""

    type: Annotated[Text, Field(min_length=1, max_length=256)]
    id: Annotated[Text, Field(min_length=1, max_length=2048)]
    arn: Annotated[Text, Field(max_length=2048)] | None = None
    region: Annotated[Text, Field(max_length=32)] | None = None
    tags: dict[Annotated[Text, Field(max_length=256)], Annotated[Text, Field(max_length=1024)]] = (
        Field(default_factory=dict, json_schema_extra=_keys_hold_no_nul)
    )


class AlertIn(RequestModel):
    """An alert from any tool, posted to the generic endpoint."""

    title: Annotated[Text, Field(min_length=1, max_length=1024)]
    severity: Annotated[
        int | SeverityLabel,
        BeforeValidator(_severity),
        WithJsonSchema(_SEVERITY_SCHEMA),
        Field(description="0-100, or a label: INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL "
              "(any case)."),
    ]
    source: Annotated[Text, Field(min_length=1, max_length=64)] = "generic"
    kind: Annotated[Text, Field(min_length=1, max_length=128)] = "generic"
    type: Annotated[Text, Field(max_length=256)] = ""
    account: Annotated[Text, Field(max_length=32)] | None = None
    region: Annotated[Text, Field(max_length=32)] | None = None
    principal: PrincipalIn | None = None
    resources: list[ResourceIn] = Field(default_factory=list, max_length=1000)
    event_time: Annotated[EventTime, BeforeValidator(event_time_text),
                          EVENT_TIME_SCHEMA] | None = Field(
        default=None,
        description="When the event happened (ISO 8601; no offset means UTC); correlation and "
        "threshold windows use it. Unset: the time Riposte receives the alert.",
    )
    event_name: Annotated[Text, Field(max_length=256)] | None = None
    source_ip: Annotated[Text, Field(max_length=256)] | None = None
    user_agent: Annotated[Text, Field(max_length=4096)] | None = None
    mfa_used: StrictBool | None = None
    details: JsonValue = None
    dedup_key: Annotated[Text, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="A repeat of the same key counts on the first alert."
    )

    def normalized(self) -> NormalizedAlert:
        """Return the alert as the engine sees it; a label alone stands for its band's floor."""
        if isinstance(self.severity, str):
            score, label = SEVERITY_OF_LABEL[self.severity], self.severity
        else:
            score, label = self.severity, severity_label(self.severity)
        return NormalizedAlert(
            source=self.source,
            kind=self.kind,
            type=self.type,
            title=self.title,
            severity=score,
            severity_label=label,
            account=self.account,
            region=self.region,
            principal=Principal(**self.principal.model_dump()) if self.principal else None,
            resources=[Resource(**r.model_dump()) for r in self.resources],
            event_time=self.event_time,
            event_name=self.event_name,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            mfa_used=self.mfa_used,
            details=self.details,
            dedup_key=self.dedup_key,
        )


class IngestOut(BaseModel):
    """The answer to an alert delivery: what was stored and which runs it started or joined.

    ``joined_run_ids``: runs the alert joined instead of starting one (the open run of a
    correlating playbook, or the run a threshold fired for its window). An alert that a
    threshold only counted has neither. ``ignored``: a Security Hub finding whose last update
    was Riposte's own; nothing stored.
    """

    alert_id: str | None
    run_ids: list[str]
    joined_run_ids: list[str] = Field(default_factory=list)
    duplicate: bool
    ignored: bool = False

    @classmethod
    def of(cls, result: IngestResult) -> IngestOut:
        """Shape the outcome of one stored alert."""
        return cls(alert_id=result.alert_id, run_ids=result.run_ids,
                   joined_run_ids=result.joined_run_ids, duplicate=result.duplicate,
                   ignored=result.ignored)


class AlertOut(ResponseModel):
    """One stored alert."""

    id: str
    source: str
    kind: str
    type: str
    title: str
    severity: int
    severity_label: str
    account: str | None
    region: str | None
    principal: dict[str, Any] | None
    resources: list[dict[str, Any]]
    event_time: datetime | None
    event_name: str | None
    source_ip: str | None
    user_agent: str | None
    mfa_used: bool | None
    details: Any
    dedup_key: str | None
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    run_ids: list[str] | None = Field(
        default=None,
        description="The runs that see the alert, started or joined (single-alert answer only).",
    )

    @classmethod
    def of(cls, alert: Alert, *, runs: Sequence[Run] | None = None) -> AlertOut:
        """Shape a stored alert, with the ids of its runs when given."""
        out = cls.model_validate(alert)
        out.run_ids = [run.id for run in runs] if runs is not None else None
        return out


class AlertList(Page):
    alerts: list[AlertOut]


class WebhookOut(BaseModel):
    """The answer to a webhook delivery: one entry per alert it held, in order."""

    alerts: list[IngestOut]


class DeliveryOut(ResponseModel):
    """One recorded delivery: accepted, duplicate or rejected, and why."""

    id: str
    received_at: datetime
    endpoint: str
    source: str
    outcome: str
    reason: str
    alert_id: str | None
    body_sha256: str
    body_bytes: int


class DeliveryList(Page):
    deliveries: list[DeliveryOut]
