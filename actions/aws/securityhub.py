"""Record the response on the Security Hub finding: its workflow status and a note."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from actions.aws.clients import Client
from actions.aws.target import AwsInput
from actions.base import Action, ActionContext, ActionError, PlannedCall
from actions.notify import plain_block
from actions.policy import Scope
from actions.registry import register
from engine.alerts import RIPOSTE_UPDATED_BY

WorkflowStatus = Literal["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"]
NOTE_LIMIT = 512  # Security Hub's limit on a note's text
UPDATED_BY_LIMIT = 128
# UnprocessedFindings codes that clear up by themselves; the others need a change of input.
RETRYABLE_FAILURES = ("ConcurrentUpdateError", "InternalFailure")


class UpdateFindingInput(AwsInput):
    status: WorkflowStatus | None = Field(
        default=None, description="Workflow status to set: NEW, NOTIFIED, RESOLVED, SUPPRESSED."
    )
    note: str | None = Field(
        default=None,
        description="Note to write (plain text, cut to 512 characters); UpdatedBy names Riposte "
        "and the run.",
    )
    finding_id: str | None = Field(
        default=None, description="The finding's Id; default: the Security Hub alert's finding."
    )
    product_arn: str | None = Field(
        default=None,
        description="The finding's ProductArn; default: the Security Hub alert's finding.",
    )


@register
class UpdateFinding(Action[UpdateFindingInput]):
    """Set a Security Hub finding's workflow status and note (BatchUpdateFindings).

    The finding (Id and ProductArn) defaults to the run's alert when it came from Security
    Hub; it is updated in the alert's account and region. The note's ``UpdatedBy`` is
    ``riposte/<run id>``: ingest ignores the finding update Riposte itself causes. The current
    status and note are read first (GetFindings); only what differs is sent, and the previous
    values are kept for undo. A finding Security Hub leaves unprocessed is a step error with
    AWS's code (``ConcurrentUpdateError`` and ``InternalFailure`` are retryable).

    Undo puts back the previous status and note text where they still hold what Riposte set
    (a later human change is left alone). Security Hub cannot delete a note: when the finding
    had none, undo replaces Riposte's note with one saying the update was undone; a restored
    note keeps Riposte's ``UpdatedBy``, so the restore is not mistaken for a new fact.
    Security Hub may take minutes to show an update; a re-run in that window re-sends the
    same values, which changes nothing.

    ```yaml
    - id: mark-notified
      action: aws.securityhub.update_finding
      with:
        status: NOTIFIED
        note: "Riposte disabled {{ alert.principal.name }}; keys deactivated."
    ```
    """

    name = "aws.securityhub.update_finding"
    Input = UpdateFindingInput
    grants = (
        Scope(
            "SecurityHubFindingsOfTheAccount",
            "findings are read and updated through the account's hub (findings have no ARN "
            "IAM authorises on)",
            ("arn:{partition}:securityhub:{region}:{account}:hub/default",),
        ).allow("securityhub:GetFindings", "securityhub:BatchUpdateFindings"),
    )
    mutating = True
    reversible = True

    def plan(self, ctx: ActionContext, params: UpdateFindingInput) -> list[PlannedCall]:
        _, call, _ = _prepare(ctx, params)
        return [call] if call else []

    def run(self, ctx: ActionContext, params: UpdateFindingInput) -> dict[str, Any]:
        securityhub, call, output = _prepare(ctx, params)
        if call is not None:
            _update(securityhub, call)
        return output

    def plan_undo(self, ctx: ActionContext, undo: dict[str, Any]) -> list[PlannedCall]:
        _, call, _ = _prepare_undo(ctx, undo)
        return [call] if call else []

    def undo(self, ctx: ActionContext, undo: dict[str, Any]) -> dict[str, Any]:
        securityhub, call, output = _prepare_undo(ctx, undo)
        if call is not None:
            _update(securityhub, call)
        return output


def updated_by(ctx: ActionContext) -> str:
    """The note's UpdatedBy: Riposte's mark (ingest skips it), then the run id."""
    return f"{RIPOSTE_UPDATED_BY}/{ctx.run_id}"[:UPDATED_BY_LIMIT]


def _prepare(
    ctx: ActionContext, params: UpdateFindingInput
) -> tuple[Client, PlannedCall | None, dict[str, Any]]:
    """Read the finding; return the update that brings it to the wanted state, and the output."""
    if params.status is None and params.note is None:
        raise ActionError(
            "InvalidParameters", "give a workflow status, a note, or both", retryable=False
        )
    note = plain_block(params.note, NOTE_LIMIT) if params.note is not None else None
    truncated = note is not None and len(plain_block(params.note or "", 10**6)) > NOTE_LIMIT
    if note is not None and not note.strip():
        raise ActionError("InvalidParameters", "the note is empty", retryable=False)
    account = params.account or ctx.alert.get("account") or ctx.aws.own_account()
    region = params.region or ctx.alert.get("region") or ctx.settings.aws_region
    securityhub = ctx.aws.client("securityhub", account=account, region=region)
    ref = _finding_ref(ctx, params)
    finding = _read_finding(securityhub, ref, account=account, region=region)
    status_now, note_now = _status(finding), _note(finding)

    request: dict[str, Any] = {"FindingIdentifiers": [ref]}
    undo: dict[str, Any] = {"account": account, "region": region, "finding": ref}
    changed: list[str] = []
    already: list[str] = []
    if params.status is not None and params.status == status_now:
        already.append(f"workflow status is already {status_now}")
    elif params.status is not None:
        request["Workflow"] = {"Status": params.status}
        undo["status"] = {"before": status_now, "after": params.status}
        changed.append(f"workflow status {status_now} -> {params.status}")
    if note is not None and note == note_now.get("Text"):
        already.append("the note already says this")
    elif note is not None:
        request["Note"] = {"Text": note, "UpdatedBy": updated_by(ctx)}
        undo["note"] = {"before": note_now or None, "after": note}
        if not note_now:  # what undo writes instead, since a note cannot be deleted
            undo["note"]["if_none_before"] = (
                f"Riposte run {ctx.run_id} undid its update of this finding; Security Hub "
                "cannot delete a note, so this text replaces Riposte's note."
            )
        changed.append("note written" if note_now else "note added")
    output = {
        "finding_id": ref["Id"],
        "product_arn": ref["ProductArn"],
        "account": account,
        "region": region,
        "workflow_status": {"before": status_now, "after": params.status or status_now},
        "note": {"before": note_now.get("Text"), "after": note or note_now.get("Text")},
        "note_truncated": truncated,
        "changed": changed,
        "already": already,
        "result": "updated" if changed else "nothing to do: " + "; ".join(already),
        "undo": undo if changed else None,
    }
    call = _call(request, ref) if changed else None
    return securityhub, call, output


def _prepare_undo(
    ctx: ActionContext, undo: Mapping[str, Any]
) -> tuple[Client, PlannedCall | None, dict[str, Any]]:
    """Read the finding; return the update that puts back what Riposte changed, and the output."""
    account, region, ref = undo["account"], undo["region"], dict(undo["finding"])
    securityhub = ctx.aws.client("securityhub", account=account, region=region)
    finding = _read_finding(securityhub, ref, account=account, region=region)
    request: dict[str, Any] = {"FindingIdentifiers": [ref]}
    restored: list[str] = []
    already: list[str] = []
    left: list[str] = []
    status = undo.get("status")
    if status:
        now = _status(finding)
        if now == status["after"]:
            request["Workflow"] = {"Status": status["before"]}
            restored.append(f"workflow status {now} -> {status['before']}")
        elif now == status["before"]:
            already.append(f"workflow status is already {now}")
        else:
            left.append(
                f"workflow status is now {now}, changed since Riposte set {status['after']}: "
                "left as is"
            )
    note = undo.get("note")
    if note:
        now_text = _note(finding).get("Text")
        back = note["before"]["Text"] if note.get("before") else note["if_none_before"]
        if now_text == note["after"]:
            request["Note"] = {"Text": back, "UpdatedBy": updated_by(ctx)}
            restored.append(
                "previous note text restored (UpdatedBy stays Riposte's)"
                if note.get("before")
                else "Riposte's note replaced by a line saying it was undone: Security Hub "
                "cannot delete a note"
            )
        elif now_text == back:
            already.append("the note is already back")
        else:
            left.append("the note was changed since Riposte wrote it: left as is")
    output = {
        "finding_id": ref["Id"],
        "product_arn": ref["ProductArn"],
        "account": account,
        "region": region,
        "restored": restored,
        "already": already,
        "left": left,
    }
    return securityhub, (_call(request, ref) if restored else None), output


def _call(request: dict[str, Any], ref: Mapping[str, str]) -> PlannedCall:
    return PlannedCall(
        service="securityhub", operation="BatchUpdateFindings", params=request, target=ref["Id"]
    )


def _update(securityhub: Client, call: PlannedCall) -> None:
    """Send the update; a finding Security Hub did not process is a step error."""
    answer = securityhub.batch_update_findings(**call.params)
    for failure in answer.get("UnprocessedFindings") or []:
        finding = failure.get("FindingIdentifier") or {}
        code = str(failure.get("ErrorCode") or "UnprocessedFinding")
        raise ActionError(
            code,
            f"Security Hub did not update finding {finding.get('Id')} "
            f"({finding.get('ProductArn')}): {failure.get('ErrorMessage') or code}",
            retryable=code in RETRYABLE_FAILURES,
        )


def _finding_ref(ctx: ActionContext, params: UpdateFindingInput) -> dict[str, str]:
    """The finding's Id and ProductArn: from the input, else from a Security Hub alert."""
    extra: Mapping[str, Any] = {}
    details = ctx.alert.get("details")
    if ctx.alert.get("source") == "securityhub" and isinstance(details, Mapping):
        found = details.get("extra")
        extra = found if isinstance(found, Mapping) else {}
    finding_id = params.finding_id or extra.get("finding_id")
    product_arn = params.product_arn or extra.get("product_arn")
    if not finding_id or not product_arn:
        raise ActionError(
            "FindingNotGiven",
            "no Security Hub finding to update: the alert is not a Security Hub finding; give "
            "finding_id and product_arn",
            retryable=False,
        )
    return {"Id": str(finding_id), "ProductArn": str(product_arn)}


def _read_finding(
    securityhub: Client, ref: Mapping[str, str], *, account: str, region: str
) -> dict[str, Any]:
    """The finding as Security Hub has it now; ``FindingNotFound`` if it has none."""
    filters = {
        "Id": [{"Value": ref["Id"], "Comparison": "EQUALS"}],
        "ProductArn": [{"Value": ref["ProductArn"], "Comparison": "EQUALS"}],
    }
    pages = securityhub.get_paginator("get_findings").paginate(
        Filters=filters, PaginationConfig={"PageSize": 100}
    )
    for page in pages:  # the next page is asked for only while the finding is not found
        for finding in page.get("Findings", []):
            # Matched here as well: an emulator may ignore the filters.
            if finding.get("Id") == ref["Id"] and finding.get("ProductArn") == ref["ProductArn"]:
                return dict(finding)
    raise ActionError(
        "FindingNotFound",
        f"Security Hub has no finding {ref['Id']} ({ref['ProductArn']}) in account "
        f"{account}, region {region}",
        retryable=False,
    )


def _status(finding: Mapping[str, Any]) -> str:
    # A finding without Workflow predates it; Security Hub treats it as NEW.
    workflow = finding.get("Workflow") or {}
    return str(workflow.get("Status") or "NEW")


def _note(finding: Mapping[str, Any]) -> dict[str, str]:
    note = finding.get("Note") or {}
    return {key: note[key] for key in ("Text", "UpdatedBy") if note.get(key)}
