"""The wire: pydantic models of what the API accepts and answers (not the storage models)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from engine.alerts import (
    SEVERITY_OF_LABEL,
    NormalizedAlert,
    Principal,
    Resource,
    SeverityLabel,
    severity_label,
)
from engine.playbooks import LoadedPlaybook, PlaybookProblem
from engine.store.models import Alert, ApprovalDecision, ApprovalRequest, Run, StepRecord

MAX_JSON_DEPTH = 32


def _storable_text(value: str) -> str:
    # Both databases refuse NUL and unpaired surrogates; refusing them here makes it a 422.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def _storable_json(value: Any) -> Any:
    _check_json(value, "", 0)
    return value


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels{where and ' at ' + where}")
    if isinstance(value, str):
        _located(_storable_text, value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers must be finite{where and ' at ' + where}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _located(_storable_text, key, f"{where}.{key}" if where else str(key))
            _check_json(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", depth + 1)


def _located(check: Callable[[str], str], value: str, where: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None


Text = Annotated[str, AfterValidator(_storable_text)]
JsonValue = Annotated[Any, AfterValidator(_storable_json)]


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        label = value.strip().upper()
        if label in SEVERITY_OF_LABEL:
            return label
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    raise ValueError(
        "severity must be an integer from 0 to 100 or one of "
        + ", ".join(SEVERITY_OF_LABEL)
    )


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """Answers are read from the storage rows' attributes (a copy: rows never leave the API)."""

    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------------------------------------
# Alerts


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
        Field(default_factory=dict)
    )


class AlertIn(RequestModel):
    """An alert from any tool, posted to the generic endpoint."""

    title: Annotated[Text, Field(min_length=1, max_length=1024)]
    severity: Annotated[
        int | SeverityLabel,
        BeforeValidator(_severity),
        Field(description="0-100, or a label: INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL."),
    ]
    source: Annotated[Text, Field(min_length=1, max_length=64)] = "generic"
    kind: Annotated[Text, Field(min_length=1, max_length=128)] = "generic"
    type: Annotated[Text, Field(max_length=256)] = ""
    account: Annotated[Text, Field(max_length=32)] | None = None
    region: Annotated[Text, Field(max_length=32)] | None = None
    principal: PrincipalIn | None = None
    resources: list[ResourceIn] = Field(default_factory=list, max_length=1000)
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
            details=self.details,
            dedup_key=self.dedup_key,
        )


class IngestOut(BaseModel):
    """The answer to an alert delivery: what was stored and which runs it started."""

    alert_id: str
    run_ids: list[str]
    duplicate: bool


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
    details: Any
    dedup_key: str | None
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    run_ids: list[str] | None = Field(
        default=None, description="The alert's runs (on the single-alert answer only)."
    )

    @classmethod
    def of(cls, alert: Alert, *, runs: Sequence[Run] | None = None) -> AlertOut:
        """Shape a stored alert, with the ids of its runs when given."""
        out = cls.model_validate(alert)
        out.run_ids = [run.id for run in runs] if runs is not None else None
        return out


class AlertList(BaseModel):
    alerts: list[AlertOut]


# ---------------------------------------------------------------------------------------------
# Runs


Mode = Literal["live", "dry_run"]


class RunIn(RequestModel):
    """Start a playbook on a stored alert by hand."""

    alert_id: Annotated[Text, Field(min_length=1, max_length=36)]
    playbook: Annotated[Text, Field(min_length=1, max_length=128)]
    mode: Mode = "live"


class StepOut(ResponseModel):
    """One execution of a step, from the run's journal."""

    step_id: str
    action: str
    status: str
    attempts: int
    params: Any
    output: Any
    error: dict[str, Any] | None
    worker: str
    started_at: datetime
    finished_at: datetime | None


class ApprovalRef(ResponseModel):
    """An approval request of a run, in brief."""

    id: str
    step_id: str
    status: str


class RunSummary(ResponseModel):
    """A run, without its journal."""

    id: str
    alert_id: str
    playbook: str
    playbook_hash: str
    mode: str
    status: str
    started_by: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return RunSummary.model_validate(run)


class RunOut(RunSummary):
    """A run with its context, its journal and its approval requests."""

    vars: dict[str, Any]
    steps: list[StepOut]
    approvals: list[ApprovalRef]

    @classmethod
    def detailed(cls, run: Run, *, journal: Sequence[StepRecord]) -> RunOut:
        """Shape a run; its approval requests are read from its state."""
        approvals = [
            ApprovalRef(id=step["approval"]["request"], step_id=step_id,
                        status=step["approval"]["status"])
            for step_id, step in run.state.get("steps", {}).items()
            if step.get("approval")
        ]
        return cls(
            **RunSummary.of(run).model_dump(),
            vars=run.state.get("vars", {}),
            steps=[StepOut.model_validate(record) for record in journal],
            approvals=approvals,
        )


class RunList(BaseModel):
    runs: list[RunSummary]


# ---------------------------------------------------------------------------------------------
# Approvals


class DecisionIn(RequestModel):
    """One approver's answer."""

    decision: Literal["approve", "reject"]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]
    plan_hash: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="The plan hash the approver saw; refused if the plan changed."
    )


class DecisionOut(ResponseModel):
    actor: str
    decision: str
    reason: str
    plan_hash: str
    created_at: datetime


class ApprovalSummary(ResponseModel):
    """An approval request without its plan."""

    id: str
    run_id: str
    step_id: str
    status: str
    plan_hash: str
    required: int
    approvers: list[str]
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, request: ApprovalRequest) -> ApprovalSummary:
        return ApprovalSummary.model_validate(request)


class ApprovalOut(ApprovalSummary):
    """An approval request, the exact plan it approves, and the decisions so far."""

    plan: dict[str, Any]
    decisions: list[DecisionOut]

    @classmethod
    def detailed(
        cls, request: ApprovalRequest, *, decisions: Sequence[ApprovalDecision]
    ) -> ApprovalOut:
        return cls(
            **ApprovalSummary.of(request).model_dump(),
            plan=request.plan,
            decisions=[DecisionOut.model_validate(d) for d in decisions],
        )


class ApprovalList(BaseModel):
    approvals: list[ApprovalSummary]


# ---------------------------------------------------------------------------------------------
# Playbooks


class StepBrief(BaseModel):
    id: str
    action: str
    approval: dict[str, Any] | None


class PlaybookOut(BaseModel):
    """A loaded playbook: its name, trigger and steps."""

    name: str
    description: str
    hash: str
    file: str
    trigger: dict[str, Any] | None
    steps: list[StepBrief]

    @classmethod
    def summary_fields(cls, playbook: LoadedPlaybook) -> dict[str, Any]:
        spec = playbook.spec
        return {
            "name": spec.name,
            "description": spec.description,
            "hash": playbook.hash,
            "file": Path(playbook.file).name,
            "trigger": spec.trigger.model_dump(mode="json") if spec.trigger else None,
            "steps": [
                StepBrief(
                    id=step.id,
                    action=step.action,
                    approval=step.approval.model_dump(mode="json") if step.approval else None,
                )
                for step in spec.steps
            ],
        }

    @classmethod
    def of(cls, playbook: LoadedPlaybook) -> PlaybookOut:
        return cls(**cls.summary_fields(playbook))


class PlaybookDetail(PlaybookOut):
    """A loaded playbook with the YAML text runs started now would pin."""

    text: str

    @classmethod
    def detailed(cls, playbook: LoadedPlaybook) -> PlaybookDetail:
        return cls(**cls.summary_fields(playbook), text=playbook.text)


class ProblemOut(BaseModel):
    file: str
    line: int | None
    step: str | None
    message: str

    @classmethod
    def of(cls, problem: PlaybookProblem, *, directory: Path) -> ProblemOut:
        path = Path(problem.file)
        shown = path.name if path.parent == directory else problem.file
        return cls(file=shown, line=problem.line, step=problem.step, message=problem.message)


class PlaybookList(BaseModel):
    playbooks: list[PlaybookOut]
    problems: list[ProblemOut]


# ---------------------------------------------------------------------------------------------
# Audit


class AuditEventOut(ResponseModel):
    id: int
    at: datetime
    actor: str
    verb: str
    alert_id: str | None
    run_id: str | None
    step_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after_id: int | None = Field(
        description="Pass as after_id for the next page; null when this page is the last."
    )


class ChainReportOut(ResponseModel):
    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str | None


# ---------------------------------------------------------------------------------------------
# Health


class Status(BaseModel):
    status: str
