"""Deciding in the console: the same rules as the API (roles, the run's starter, the plan hash),
the person's name in the audit log, a changed plan refused and shown, rollback on request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.e2e.conftest import PostAlert, Tokens, WaitForRun
from tests.e2e.console_client import Element, console_client, page, signed_in

CONTAIN = """\
name: contain
description: Investigate, then contain once a human agrees
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: assess
    action: core.set
    with:
      values:
        findings:
          - {id: q1, question: "Was the call unusual?", answer: "yes", confidence: high,
             evidence: {calls: 20}}
        narrative: "{{ alert.principal.name }} terminated 20 instances."
        recommendation: ["disable {{ alert.principal.name }}"]
  - id: disable
    action: core.log
    with: {message: "disabling {{ alert.principal.name }}"}
    approval: {reason: disabling a user locks them out}
  - id: notify
    action: core.log
    with: {message: "done"}
"""

BY_HAND = """\
name: by-hand
steps:
  - id: act
    action: core.log
    with: {message: "acting"}
    approval: {reason: act}
"""

REVOKE = """\
name: revoke-keys
trigger:
  source: [generic]
  kind: [keys]
steps:
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: "{{ alert.principal.name }}"
    approval:
      reason: the user's keys leaked
"""


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("contain.yml", CONTAIN)
    write_playbook("by-hand.yml", BY_HAND)
    write_playbook("revoke.yml", REVOKE)


def waiting(browser: TestClient, tokens: Tokens, post_alert: PostAlert,
            wait_for_run: WaitForRun, **alert: Any) -> tuple[dict[str, Any], str]:
    """A run waiting for approval, and the id of its pending request."""
    [run_id] = post_alert(browser, tokens.as_ingest, **alert)["run_ids"]
    run = wait_for_run(browser, run_id, tokens.as_responder, "waiting_approval")
    [request] = [a["id"] for a in run["approvals"] if a["status"] == "pending"]
    return run, request


def decide(browser: TestClient, shown: Element, decision: str, reason: str,
           **overrides: str) -> Any:
    """Submit the approval page's form as a person would (``overrides``: forged fields)."""
    form = shown.get("decision-form")
    fields = {"csrf_token": form.field("csrf_token"), "plan_hash": form.field("plan_hash"),
              "reason": reason, "decision": decision, **overrides}
    return browser.post(form.attrs["action"], data={k: v for k, v in fields.items()
                                                    if v is not None},
                        follow_redirects=False)


def api(browser: TestClient, tokens: Tokens, path: str) -> Any:
    answer = browser.get(path, headers=tokens.as_admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_approval_in_the_console_resumes_the_run_and_is_audited_as_the_person(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    with console_client(create_app(settings, in_process_workers=1)) as browser:
        run, request_id = waiting(browser, tokens, post_alert, wait_for_run, kind="iam",
                                  title="20 instances terminated",
                                  principal={"type": "IAMUser", "name": "Roboman1"})
        signed_in(browser, tokens.other_responder)
        inbox = page(browser.get("/ui/"))
        [item] = inbox.get("pending-approvals").by_class("approval-item")
        shown = page(browser.get(item.by_class("approval-link")[0].attrs["href"]))
        expected = api(browser, tokens, f"/v1/approvals/{request_id}")

        decided = decide(browser, shown, "approve", "confirmed with Roboman1's manager")
        after = page(browser.get(decided.headers["location"]))
        finished = wait_for_run(browser, run["id"], tokens.as_responder, "succeeded")
        run_page = page(browser.get(f"/ui/runs/{run['id']}"))
        events = api(browser, tokens, f"/v1/audit?run_id={run['id']}")["events"]

    assert "you may decide" in item.text and "Roboman1" in item.text
    assert "disable (core.log)" in item.by_class("what")[0].text
    assert shown.get("plan-hash").text == expected["plan_hash"]
    assert shown.get("decision-form").field("plan_hash") == expected["plan_hash"]
    assert [s.attrs["data-step"] for s in shown.by_class("plan-step")] == ["disable"]
    assert decided.status_code == 303
    assert decided.headers["location"] == f"/ui/approvals/{request_id}#outcome"
    # After the decision: who decided, and what happens next.
    assert after.get("approval").attrs["data-status"] == "approved"
    [decision] = after.by_class("decision")
    assert (decision.attrs["data-actor"], decision.attrs["data-decision"]) == ("bob", "approve")
    assert "confirmed with Roboman1's manager" in decision.text
    assert "the run resumes and step disable runs" in after.get("next").text
    assert after.by_id("decision-form") is None
    # The run went on, as after an API approval; the audit names the person, never "console".
    assert [(s["step_id"], s["status"]) for s in finished["steps"]] == [
        ("assess", "succeeded"), ("disable", "succeeded"), ("notify", "succeeded")]
    approvals = [(e["verb"], e["actor"]) for e in events if e["verb"].startswith("approval.")]
    assert ("approval.approve", "bob") in approvals and ("approval.approved", "bob") in approvals
    assert not [e for e in events if e["actor"] == "console"]
    # The run page tells the whole story.
    assert run_page.get("run").by_class("run-status")[0].text == "succeeded"
    assert run_page.get("findings").by_class("finding-question")[0].text.startswith(
        "Was the call unusual?")
    assert "Roboman1 terminated 20 instances." in run_page.get("narrative").text
    assert [s.attrs["data-step-id"] for s in run_page.get("steps").by_class("step")] == [
        "assess", "disable", "notify"]
    verbs = [e.by_class("mono")[0].text for e in run_page.get("audit-events").by_class(
        "audit-event")]
    assert len(verbs) == len(events)
    assert run_page.by_id("rollback") is None  # core.log changed nothing to undo


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_decision_without_the_page_s_csrf_token_or_a_reason_decides_nothing(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    with console_client(create_app(settings, in_process_workers=1)) as browser:
        _, request_id = waiting(browser, tokens, post_alert, wait_for_run, kind="iam",
                                title="keys used", principal={"name": "mallory"})
        signed_in(browser, tokens.other_responder)
        shown = page(browser.get(f"/ui/approvals/{request_id}"))

        missing = decide(browser, shown, "approve", "go", csrf_token=None)  # type: ignore[arg-type]
        wrong = decide(browser, shown, "approve", "go", csrf_token="x" * 43)
        no_reason = decide(browser, shown, "approve", "   ")
        request = api(browser, tokens, f"/v1/approvals/{request_id}")

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "Nothing was done" in page(wrong).get("error").text
    assert no_reason.status_code == 422
    assert "give a reason" in page(no_reason).get("message").text
    assert page(no_reason).by_id("decision-form") is not None  # the form is still there
    assert (request["status"], request["decisions"]) == ("pending", [])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_run_s_starter_cannot_approve_it_in_the_console_either(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    with console_client(create_app(settings, in_process_workers=1)) as browser:
        alert = post_alert(browser, tokens.as_ingest, kind="manual", title="by hand")
        started = browser.post("/v1/runs", headers=tokens.as_responder,
                               json={"alert_id": alert["alert_id"], "playbook": "by-hand"})
        run = wait_for_run(browser, started.json()["id"], tokens.as_responder,
                           "waiting_approval")
        [request_id] = [a["id"] for a in run["approvals"]]
        signed_in(browser, tokens.responder)  # alice, who started it
        shown = page(browser.get(f"/ui/approvals/{request_id}"))
        plan_hash = api(browser, tokens, f"/v1/approvals/{request_id}")["plan_hash"]
        csrf = shown.get("sign-out-form").field("csrf_token")
        forged = browser.post(f"/ui/approvals/{request_id}/decision", follow_redirects=False,
                              data={"csrf_token": csrf, "plan_hash": plan_hash,
                                    "decision": "approve", "reason": "mine"})
        request = api(browser, tokens, f"/v1/approvals/{request_id}")
        refusals = api(browser, tokens, "/v1/audit?actor=alice")["events"]

    assert shown.by_id("approve") is None and shown.by_id("decision-form") is None
    assert "'alice' started run" in shown.get("cannot-decide").text
    assert forged.status_code == 403
    assert "Not decided: 'alice' started run" in page(forged).get("message").text
    assert (request["status"], request["decisions"]) == ("pending", [])
    assert [e["verb"] for e in refusals if e["verb"] == "approval.refused"] == [
        "approval.refused"]


def _keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_plan_that_changed_while_the_page_was_open_is_refused_and_the_new_plan_shown(
    settings: Settings, aws: AwsSandbox, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    first = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    aws_settings = aws.settings.model_dump(include={"aws_endpoint_url", "aws_region",
                                                    "aws_retry_seconds", "responder_role"})
    app = create_app(settings.model_copy(update=aws_settings), in_process_workers=1)
    with console_client(app) as browser:
        run, request_id = waiting(browser, tokens, post_alert, wait_for_run, kind="keys",
                                  title="leaked key", account=OWN_ACCOUNT,
                                  principal={"type": "IAMUser", "name": "mallory"})
        signed_in(browser, tokens.other_responder)
        shown = page(browser.get(f"/ui/approvals/{request_id}"))
        # The attacker makes a second key while the approver reads the page.
        second = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]

        refused = decide(browser, shown, "approve", "contain mallory")
        keys_after_refusal = _keys(aws)
        again = page(refused)
        approved = decide(browser, again, "approve", "contain mallory, both keys")
        wait_for_run(browser, run["id"], tokens.as_responder, "succeeded")
        offered = page(browser.get(f"/ui/runs/{run['id']}"))
        confirm = page(browser.get(offered.get("rollback").attrs["href"]))
        rolled = browser.post(confirm.get("rollback-form").attrs["action"], follow_redirects=False,
                              data={"csrf_token": confirm.get("rollback-form").field(
                                  "csrf_token")})
        rollback_run = page(browser.get(rolled.headers["location"]))

    assert [t.text for t in shown.get("plan").by_class("call-target")] == ["user/mallory"]
    assert first in shown.get("plan").by_class("call-params")[0].text
    assert refused.status_code == 409
    assert "changed since it was shown" in again.get("message").text
    assert "now also: iam:UpdateAccessKey" in again.get("plan-changes").text
    new_id = again.get("approval").attrs["data-request-id"]
    assert new_id != request_id
    new_hash = again.get("plan-hash").text
    assert new_hash != shown.get("plan-hash").text
    assert again.get("decision-form").field("plan_hash") == new_hash
    assert again.get("decision-form").attrs["action"] == f"/ui/approvals/{new_id}/decision"
    # Both calls target the user: what tells them apart is shown beside the target.
    assert sorted(k.text for k in again.get("plan").by_class("call-key")) == sorted(
        [f"· AccessKeyId={first}", f"· AccessKeyId={second}"])
    [group] = again.get("plan").by_class("call-group")
    assert group.attrs["data-operation"] == "iam:UpdateAccessKey" and "× 2" in group.text
    assert keys_after_refusal == {first: "Active", second: "Active"}  # nothing approved
    assert approved.status_code == 303
    assert _keys(aws) == {first: "Inactive", second: "Inactive"}
    # Rollback, where the API offers it: behind a confirmation, asking approval of its own.
    assert [e.text for e in confirm.get("undoable").by_class("undo-entry")][0].startswith(
        "revoke")
    assert rolled.status_code == 303
    assert rollback_run.get("run").attrs["data-run-id"] != run["id"]
    assert "Run of rollback-revoke-keys" in rollback_run.get("run").by_tag("h1")[0].text
