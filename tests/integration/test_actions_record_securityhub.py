"""aws.securityhub.update_finding against the moto server.

moto 5 stores findings (BatchImportFindings) and returns them (GetFindings, filters ignored), but
has no BatchUpdateFindings. :class:`FindingUpdates` plays that one operation: a botocore
``before-call`` hook on the action's own Security Hub client answers it, applying the workflow
status and note to moto's copy of the finding, so every other call, and every state check, is
moto's. Partial failures (``UnprocessedFindings``) are played by botocore's Stubber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from actions import registry
from actions.base import ActionContext, ActionError, PlannedCall, RunEnv
from engine.alerts import RIPOSTE_UPDATED_BY, template_view, updated_by_riposte
from engine.normalize.securityhub import normalize_securityhub_finding
from tests.aws_sandbox import OTHER_ACCOUNT, OWN_ACCOUNT, REGION, Acted, AwsSandbox

ACTION = "aws.securityhub.update_finding"
FINDING_ID = (
    "arn:aws:securityhub:us-east-1:123456789012:finding/5e4b1a5c-0d1e-4f2a-9b3c-000000000001"
)


def product_arn(account: str = OWN_ACCOUNT) -> str:
    return f"arn:aws:securityhub:{REGION}:{account}:product/{account}/default"


def finding(
    *, account: str = OWN_ACCOUNT, status: str = "NEW", note: dict[str, str] | None = None
) -> dict[str, Any]:
    """An ASFF finding about an access key used from a Tor exit node."""
    body: dict[str, Any] = {
        "SchemaVersion": "2018-10-08",
        "Id": FINDING_ID,
        "ProductArn": product_arn(account),
        "GeneratorId": "guardduty",
        "AwsAccountId": account,
        "Region": REGION,
        "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-TorIPCaller"],
        "CreatedAt": "2024-05-01T10:00:00Z",
        "UpdatedAt": "2024-05-01T10:00:00Z",
        "Severity": {"Label": "HIGH", "Normalized": 70},
        "Title": "API called from a Tor exit node",
        "Description": "alice's key was used from a Tor exit node.",
        "Resources": [
            {
                "Type": "AwsIamAccessKey",
                "Id": "AWS::IAM::AccessKey:AKIAEXAMPLE",
                "Details": {"AwsIamAccessKey": {"PrincipalName": "alice"}},
            }
        ],
        "Workflow": {"Status": status},
    }
    if note is not None:
        body["Note"] = {**note, "UpdatedAt": "2024-05-01T11:00:00Z"}
    return body


def alert_of(body: dict[str, Any]) -> dict[str, Any]:
    """The run's alert as the worker builds it from this finding."""
    return template_view("alert-1", normalize_securityhub_finding(body))


class SecurityHubOnMoto:
    """Seeds and reads moto's findings, and answers BatchUpdateFindings (moto lacks it) on them."""

    def __init__(self, aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.aws = aws
        self.monkeypatch = monkeypatch
        self.requests: list[dict[str, Any]] = []
        self._clients: dict[str | None, Any] = {}

    def env(
        self, body: dict[str, Any] | None = None, *, mode: str = "live", run_id: str = "run-1"
    ) -> RunEnv:
        """A run on the alert made from ``body``, its Security Hub clients answering hub."""
        alert = alert_of(body) if body is not None else {}
        return self.attach(self.aws.env(mode=mode, alert=alert, run_id=run_id))

    def act(
        self,
        params: dict[str, Any],
        body: dict[str, Any] | None,
        *,
        mode: str = "live",
        run_id: str = "run-1",
        undo: dict[str, Any] | None = None,
    ) -> Acted:
        return self.aws.act(ACTION, params, env=self.env(body, mode=mode, run_id=run_id), undo=undo)

    def plan_undo(self, body: dict[str, Any], undo: dict[str, Any]) -> list[PlannedCall]:
        env = self.env(body, mode="dry_run")
        ctx = ActionContext(run_id=env.run_id, step_id="step", mode=env.mode, env=env)
        return registry.get(ACTION)().plan_undo(ctx, undo)

    def hub(self, account: str | None) -> Any:
        """A plain Security Hub client on moto in ``account`` (made once: clients are slow)."""
        if account not in self._clients:
            self._clients[account] = self.aws.client("securityhub", account=account)
        return self._clients[account]

    def seed(self, body: dict[str, Any]) -> None:
        answer = self.hub(body["AwsAccountId"]).batch_import_findings(Findings=[body])
        assert answer["FailedCount"] == 0, answer

    def current(self, account: str = OWN_ACCOUNT) -> dict[str, Any]:
        findings = self.hub(account).get_findings()["Findings"]
        return dict(next(f for f in findings if f["Id"] == FINDING_ID))

    def attach(self, env: RunEnv) -> RunEnv:
        make = env.aws.client

        def client(service: str, *, account: str | None = None, region: str | None = None) -> Any:
            made = make(service, account=account, region=region)
            if service == "securityhub":
                events = made.meta.events
                events.register("before-parameter-build.securityhub.BatchUpdateFindings", keep)
                # On the service-wide event, after the factory's own hook: the call is then
                # recorded as sent, as a real one would be.
                events.register("before-call.securityhub", partial(answer, account))
            return made

        def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["update_params"] = params

        def answer(
            account: str | None, model: Any, context: dict[str, Any], **_: Any
        ) -> tuple[AWSResponse, dict[str, Any]] | None:
            if model.name != "BatchUpdateFindings":
                return None  # every other operation is moto's
            return self.apply(account, context["update_params"])

        self.monkeypatch.setattr(env.aws, "client", client)
        return env

    def apply(
        self, account: str | None, params: dict[str, Any]
    ) -> tuple[AWSResponse, dict[str, Any]]:
        self.requests.append(params)
        securityhub = self.hub(account)
        stored = {f["Id"]: f for f in securityhub.get_findings()["Findings"]}
        processed, unprocessed = [], []
        for ident in params["FindingIdentifiers"]:
            body = stored.get(ident["Id"])
            if body is None or body["ProductArn"] != ident["ProductArn"]:
                unprocessed.append(
                    {
                        "FindingIdentifier": ident,
                        "ErrorCode": "FindingNotFound",
                        "ErrorMessage": "Finding Not Found",
                    }
                )
                continue
            if "Workflow" in params:
                body["Workflow"] = {"Status": params["Workflow"]["Status"]}
            if "Note" in params:
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                body["Note"] = {**params["Note"], "UpdatedAt": now}
            securityhub.batch_import_findings(Findings=[body])
            processed.append(ident)
        answer = {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}
        return AWSResponse("https://securityhub.test", 200, {}, None), answer


@pytest.fixture
def hub(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> SecurityHubOnMoto:
    return SecurityHubOnMoto(aws, monkeypatch)


WANTED = {"status": "NOTIFIED", "note": "Riposte disabled alice; her keys are inactive."}


def test_live_run_sets_status_and_note_and_ingest_would_ignore_it(hub: SecurityHubOnMoto) -> None:
    body = finding()
    hub.seed(body)
    dry = hub.act(WANTED, body, mode="dry_run")
    live = hub.act(WANTED, body)

    after = hub.current()
    assert after["Workflow"]["Status"] == "NOTIFIED"
    assert after["Note"]["Text"] == WANTED["note"]
    assert after["Note"]["UpdatedBy"] == f"{RIPOSTE_UPDATED_BY}/run-1"
    # The update Security Hub then sends back is recognised as Riposte's own.
    assert updated_by_riposte(normalize_securityhub_finding(after))

    assert [(c.operation, c.params) for c in live.mutations] == [
        (p.operation, p.params) for p in dry.output
    ]
    assert dry.output[0].params == {
        "FindingIdentifiers": [{"Id": FINDING_ID, "ProductArn": product_arn()}],
        "Workflow": {"Status": "NOTIFIED"},
        "Note": {"Text": WANTED["note"], "UpdatedBy": f"{RIPOSTE_UPDATED_BY}/run-1"},
    }
    assert live.output["changed"] == ["workflow status NEW -> NOTIFIED", "note added"]
    assert live.output["undo"]["status"] == {"before": "NEW", "after": "NOTIFIED"}
    assert live.output["undo"]["note"]["before"] is None


def test_second_run_changes_nothing(hub: SecurityHubOnMoto) -> None:
    body = finding()
    hub.seed(body)
    hub.act(WANTED, body)
    again = hub.act(WANTED, body, run_id="run-2")
    assert again.mutations == []
    assert again.output["changed"] == []
    assert again.output["undo"] is None
    assert again.output["result"].startswith("nothing to do")
    assert hub.current()["Note"]["UpdatedBy"] == f"{RIPOSTE_UPDATED_BY}/run-1"


def test_only_what_differs_is_sent(hub: SecurityHubOnMoto) -> None:
    body = finding(status="NOTIFIED")
    hub.seed(body)
    acted = hub.act(WANTED, body)
    assert [c.params for c in acted.mutations] == [
        {
            "FindingIdentifiers": [{"Id": FINDING_ID, "ProductArn": product_arn()}],
            "Note": {"Text": WANTED["note"], "UpdatedBy": f"{RIPOSTE_UPDATED_BY}/run-1"},
        }
    ]
    assert acted.output["already"] == ["workflow status is already NOTIFIED"]
    assert "status" not in acted.output["undo"]


def test_dry_run_changes_nothing_and_plans_the_update(hub: SecurityHubOnMoto) -> None:
    body = finding()
    hub.seed(body)
    dry = hub.act(WANTED, body, mode="dry_run")
    assert dry.mutations == []
    assert hub.requests == []
    assert [p.operation for p in dry.output] == ["BatchUpdateFindings"]
    assert hub.current()["Workflow"]["Status"] == "NEW"
    assert "Note" not in hub.current()


def test_undo_restores_the_previous_status_and_note(hub: SecurityHubOnMoto) -> None:
    earlier = {"Text": "looking into it", "UpdatedBy": "alice@example.com"}
    body = finding(status="NOTIFIED", note=earlier)
    hub.seed(body)
    wanted = {"status": "RESOLVED", "note": "contained by Riposte"}
    live = hub.act(wanted, body)
    assert hub.current()["Workflow"]["Status"] == "RESOLVED"
    undo = live.output["undo"]

    planned = hub.plan_undo(body, undo)
    undone = hub.act({}, body, undo=undo)
    assert [(c.operation, c.params) for c in undone.mutations] == [
        (p.operation, p.params) for p in planned
    ]

    after = hub.current()
    assert after["Workflow"]["Status"] == "NOTIFIED"
    assert after["Note"]["Text"] == "looking into it"
    # The restore is Riposte's own update, so ingest does not take it for a new fact.
    assert after["Note"]["UpdatedBy"].startswith(RIPOSTE_UPDATED_BY)
    assert undone.output["restored"] == [
        "workflow status RESOLVED -> NOTIFIED",
        "previous note text restored (UpdatedBy stays Riposte's)",
    ]
    again = hub.act({}, body, undo=undo)
    assert again.mutations == []
    assert again.output["restored"] == []
    assert again.output["already"] == [
        "workflow status is already NOTIFIED",
        "the note is already back",
    ]


def test_undo_of_a_first_note_says_plainly_that_it_cannot_be_deleted(
    hub: SecurityHubOnMoto,
) -> None:
    body = finding()
    hub.seed(body)
    live = hub.act(WANTED, body)
    undone = hub.act({}, body, undo=live.output["undo"])
    after = hub.current()
    assert after["Workflow"]["Status"] == "NEW"
    assert after["Note"]["Text"].startswith("Riposte run run-1 undid its update")
    assert "cannot delete a note" in after["Note"]["Text"]
    assert "cannot delete a note" in undone.output["restored"][1]


def test_undo_leaves_a_later_human_change_alone(hub: SecurityHubOnMoto) -> None:
    body = finding()
    hub.seed(body)
    live = hub.act(WANTED, body)
    by_human = hub.current()
    by_human["Workflow"] = {"Status": "RESOLVED"}  # an analyst closed it meanwhile
    hub.seed(by_human)
    undone = hub.act({}, body, undo=live.output["undo"])
    after = hub.current()
    assert after["Workflow"]["Status"] == "RESOLVED"
    assert after["Note"]["Text"].startswith("Riposte run run-1 undid")
    assert undone.output["left"] == [
        "workflow status is now RESOLVED, changed since Riposte set NOTIFIED: left as is"
    ]
    assert [set(c.params) for c in undone.mutations] == [{"FindingIdentifiers", "Note"}]


def test_an_update_lands_in_the_findings_account(hub: SecurityHubOnMoto) -> None:
    theirs, ours = finding(account=OTHER_ACCOUNT), finding()
    hub.seed(theirs)
    hub.seed(ours)
    acted = hub.act(WANTED, theirs)
    assert hub.current(OTHER_ACCOUNT)["Workflow"]["Status"] == "NOTIFIED"
    assert hub.current()["Workflow"]["Status"] == "NEW"
    assert acted.output["account"] == OTHER_ACCOUNT
    assert acted.output["undo"]["account"] == OTHER_ACCOUNT
    assumed = [c.params["RoleArn"] for c in acted.sent if c.operation == "AssumeRole"]
    assert assumed == [f"arn:aws:iam::{OTHER_ACCOUNT}:role/riposte-responder"]


def test_unprocessed_finding_is_a_step_error_naming_it(aws: AwsSandbox) -> None:
    """Security Hub refuses one finding of a batch; the emulator cannot, the Stubber plays it."""
    body = finding()
    env = aws.env(alert=alert_of(body))
    make = env.aws.client
    stubs: list[Stubber] = []

    def stubbed(service: str, *, account: str | None = None, region: str | None = None) -> Any:
        made = make(service, account=account, region=region)
        if service != "securityhub":
            return made
        stub = Stubber(made._client)
        stub.add_response("get_findings", {"Findings": [body]})
        ident = {"Id": FINDING_ID, "ProductArn": product_arn()}
        stub.add_response(
            "batch_update_findings",
            {
                "ProcessedFindings": [],
                "UnprocessedFindings": [
                    {
                        "FindingIdentifier": ident,
                        "ErrorCode": "ConcurrentUpdateError",
                        "ErrorMessage": "Concurrent finding updates detected",
                    }
                ],
            },
            expected_params={
                "FindingIdentifiers": [ident],
                "Workflow": {"Status": "NOTIFIED"},
                "Note": {"Text": WANTED["note"], "UpdatedBy": f"{RIPOSTE_UPDATED_BY}/run-1"},
            },
        )
        stub.activate()
        stubs.append(stub)
        return made

    env.aws.client = stubbed  # type: ignore[method-assign]
    with pytest.raises(ActionError) as failed:
        aws.act(ACTION, WANTED, env=env)
    assert failed.value.code == "ConcurrentUpdateError"
    assert failed.value.retryable
    assert FINDING_ID in failed.value.message
    assert "Concurrent finding updates detected" in failed.value.message
    stubs[0].assert_no_pending_responses()


def test_missing_finding_is_a_clear_error(hub: SecurityHubOnMoto) -> None:
    with pytest.raises(ActionError) as missing:
        hub.act(WANTED, finding())
    assert missing.value.code == "FindingNotFound"
    assert FINDING_ID in missing.value.message
    assert hub.requests == []


def test_an_alert_from_elsewhere_needs_the_finding_named(aws: AwsSandbox) -> None:
    env = aws.env(alert={"source": "guardduty", "details": {"extra": {"finding_id": "gd-1"}}})
    with pytest.raises(ActionError) as refused:
        aws.act(ACTION, WANTED, env=env)
    assert refused.value.code == "FindingNotGiven"
    with pytest.raises(ActionError) as empty:
        aws.act(ACTION, {"finding_id": "x", "product_arn": product_arn()}, env=env)
    assert empty.value.code == "InvalidParameters"


def test_explicit_identifiers_and_a_long_note(hub: SecurityHubOnMoto) -> None:
    hub.seed(finding())
    note = "line one\nline two\x1b[31m " + "x" * 600
    acted = hub.act({"finding_id": FINDING_ID, "product_arn": product_arn(), "note": note}, None)
    written = hub.current()["Note"]["Text"]
    assert len(written) == 512 and written.endswith("…")
    assert written.startswith("line one\nline two [31m x")  # the escape character is gone
    assert acted.output["note_truncated"] is True
