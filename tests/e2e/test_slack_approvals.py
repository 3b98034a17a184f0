"""Approvals decided in Slack, end to end: the real app with a worker, a local fake of Slack's
Web API (tests/slack_fake.py) and interaction requests signed as Slack signs them.

The fake is a real HTTP server speaking the documented shapes of chat.postMessage,
chat.update, chat.postEphemeral, views.open and views.update; the app's slack_sdk client is
pointed at it by RIPOSTE_SLACK_API_URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from core.settings import Settings, SlackPerson
from engine.store.models import ApprovalRequest
from engine.store.types import utcnow
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.slack_fake import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    Message,
    button_press,
    fake_slack,
    modal_submission,
    signed_interaction,
)

if TYPE_CHECKING:
    from httpx import Response

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

INTERACTIONS = "/v1/webhooks/slack/interactions"
# The CI's time is short: what differs between the backends (the messages' table, the feed's
# lease and its reading of the audit log) is proved on both by the first two tests; the others
# run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CAROL, DAVE, SENSOR, STRANGER = "U0CAROL", "U0DAVE", "U0SENSOR", "U0STRANGER"

CONTAIN = """\
name: contain-in-slack
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: brief
    action: core.set
    with:
      values:
        user: "{{ alert.principal.name }}"
        narrative: "mallory's keys were used from a Tor exit node at 03:12. Nobody in the team
          uses Tor. This third sentence is left for the console."
        recommendation: ["Disable mallory and rotate the keys"]
        verdict: {unusual: true, reasons: [off_hours, tor_exit], severity: HIGH}
  - id: disable
    action: core.log
    with:
      message: "disabling {{ vars.user }}"
    approval:
      approvers: [token:carol, token:sensor]
      notify: ["slack:#secops"]
      escalate_after: 30m
      escalate_to: ["slack:#leads"]
      reason: disabling a user locks them out
  - id: after
    action: core.log
    with:
      message: "done with {{ vars.user }}"
"""

REVOKE = """\
name: revoke-in-slack
trigger:
  source: [generic]
  kind: [keys]
on_failure:
  notify: ["slack:#incidents"]
steps:
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: "{{ alert.principal.name }}"
    approval:
      notify: ["slack:#secops"]
      reason: the user's keys leaked
  - id: tell-the-owner
    action: core.fail
    when: "alert.title == 'leaked key, owner unreachable'"
    with:
      code: OwnerUnreachable
      message: the account owner's pager did not answer
"""


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with fake_slack() as server:
        yield server


@pytest.fixture
def slack_settings(settings: Settings, slack: FakeSlack,
                   write_playbook: Callable[[str, str], Path]) -> Settings:
    write_playbook("contain.yml", CONTAIN)
    write_playbook("revoke.yml", REVOKE)
    people = {CAROL: SlackPerson(name="carol", role="responder"),
              "dave@example.com": SlackPerson(name="dave", role="responder"),
              SENSOR: SlackPerson(name="sensor", role="responder")}
    slack.emails[DAVE] = "Dave@Example.com"
    return settings.model_copy(update={
        "slack_bot_token": SecretStr(BOT_TOKEN), "slack_signing_secret": SecretStr(SIGNING_SECRET),
        "slack_api_url": slack.url, "slack_people": people,
        "public_url": "https://riposte.example",
    })


@pytest.fixture
def slack_client(slack_settings: Settings, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(create_app(slack_settings, in_process_workers=1)) as client:
        yield client


def _sessions(client: TestClient) -> SessionMaker[Session]:
    app = client.app
    assert isinstance(app, FastAPI)
    sessions: SessionMaker[Session] = app.state.runtime.sessions
    return sessions


def _interact(client: TestClient, payload: dict[str, Any], **signing: Any) -> Response:
    body, headers = signed_interaction(payload, **signing)
    response: Response = client.post(INTERACTIONS, content=body, headers=headers)
    return response


def _waiting(client: TestClient, tokens: Tokens, post_alert: PostAlert,
             wait_for_run: WaitForRun, slack: FakeSlack, **alert: Any) -> tuple[str, Message]:
    fields = {"kind": "iam", "title": "keys used from Tor",
              "principal": {"type": "IAMUser", "name": "mallory"}, **alert}
    [run_id] = post_alert(client, tokens.as_ingest, **fields)["run_ids"]
    wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
    [message] = slack.wait_for(lambda: slack.posted_in("#secops"), said="the approval message")
    return run_id, message


def _request_of(client: TestClient, tokens: Tokens, run_id: str) -> dict[str, Any]:
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    request_id = run["approvals"][-1]["id"]
    answer: dict[str, Any] = client.get(f"/v1/approvals/{request_id}",
                                        headers=tokens.as_responder).json()
    return answer


def _audit(client: TestClient, tokens: Tokens, **query: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get("/v1/audit", params=query,
                                              headers=tokens.as_responder).json()["events"]
    return events


def _settled(slack: FakeSlack, message: Message, headline: str) -> Message:
    """Wait until ``message`` shows ``headline`` and has no button left."""
    def shown() -> Message | None:
        now = slack.message(message.channel, message.ts)
        return now if now.header().startswith(headline) and not now.buttons() else None
    return slack.wait_for(shown, said=f"the message shows {headline!r} without buttons")


def test_approving_in_slack_runs_the_step_as_the_mapped_person(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    request = _request_of(slack_client, tokens, run_id)
    # What an approver reads before deciding, and what the buttons carry.
    assert message.header() == "Approval needed: disable (contain-in-slack)"
    read = message.all_text()
    assert "keys used from Tor" in read and "*Verdict:* unusual (off_hours, tor_exit)" in read
    assert "Nobody in the team uses Tor." in read and "third sentence" not in read
    assert "Disable mallory and rotate the keys" in read and "min left" in read
    assert f"--plan-hash {request['plan_hash']}" in read
    assert f"https://riposte.example/ui/approvals/{request['id']}" in read
    assert message.button_values() == [{"request": request["id"],
                                        "plan_hash": request["plan_hash"]}] * 2

    pressed = _interact(slack_client, button_press(message, user=CAROL))
    assert pressed.status_code == 200, pressed.text
    [opened] = slack.calls_to("views.open")
    assert opened["view"]["submit"]["text"] == "Approve"
    submitted = _interact(slack_client, modal_submission(opened["view"], user=CAROL,
                                                         reason="confirmed with mallory's lead"))
    assert submitted.status_code == 200 and submitted.content == b""

    run = wait_for_run(slack_client, run_id, tokens.as_responder, "succeeded")
    assert [step["step_id"] for step in run["steps"]] == ["brief", "disable", "after"]
    [approved] = [e for e in _audit(slack_client, tokens, run_id=run_id)
                  if e["verb"] == "approval.approve"]
    assert approved["actor"] == "carol"
    assert approved["details"]["reason"] == "confirmed with mallory's lead"
    [via] = [e for e in _audit(slack_client, tokens, run_id=run_id)
             if e["verb"] == "approval.decided_in_slack"]
    assert via["actor"] == "carol" and via["details"]["slack_user"] == CAROL
    settled = _settled(slack, message, "Approved")
    assert "carol approved: confirmed with mallory" in settled.all_text()
    [outcome] = slack.wait_for(lambda: slack.posted_in("#secops", replies=True),
                               said="the outcome in the approval's thread")
    assert outcome.thread_ts == message.ts and "succeeded" in outcome.text


@SQLITE_ONLY
def test_rejecting_in_slack_ends_the_run(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    _interact(slack_client, button_press(message, user=DAVE, approve=False))
    # dave is mapped by e-mail (any case), and is not an approver of this request.
    request_id = message.button_values()[0]["request"]
    assert slack.ephemerals_to(DAVE) == [
        f"Not decided: 'dave' is not an approver of request {request_id}."]
    _interact(slack_client, button_press(message, user=CAROL, approve=False))
    [opened] = slack.calls_to("views.open")
    assert opened["view"]["submit"]["text"] == "Reject"
    _interact(slack_client, modal_submission(opened["view"], user=CAROL, reason="a pentest"))

    run = wait_for_run(slack_client, run_id, tokens.as_responder, "rejected")
    assert [step["step_id"] for step in run["steps"]] == ["brief"]
    assert "carol rejected: a pentest" in _settled(slack, message, "Rejected").all_text()


@SQLITE_ONLY
def test_unsigned_badly_signed_or_stale_interactions_are_refused_and_change_nothing(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    payload = button_press(message, user=CAROL)
    body, headers = signed_interaction(payload)

    unsigned = slack_client.post(INTERACTIONS, content=body, headers={
        "Content-Type": headers["Content-Type"]})
    badly = _interact(slack_client, payload, secret="not-the-signing-secret")
    stale = _interact(slack_client, payload, timestamp=int(time.time()) - 6 * 60)
    tampered = slack_client.post(
        INTERACTIONS, content=body.replace("riposte.approve", "riposte.reject"), headers=headers)

    assert unsigned.status_code == 401
    assert [r.status_code for r in (badly, stale, tampered)] == [403, 403, 403]
    assert "5 minutes" in stale.json()["detail"]
    assert "does not verify" in badly.json()["detail"]
    assert slack.calls_to("views.open") == [] and slack.calls_to("chat.postEphemeral") == []
    assert _request_of(slack_client, tokens, run_id)["status"] == "pending"
    refusals = [e for e in _audit(slack_client, tokens, actor="anonymous")
                if e["verb"] == "auth.refused"]
    assert len(refusals) == 4
    assert all(e["details"]["path"] == INTERACTIONS for e in refusals)


@SQLITE_ONLY
def test_an_unmapped_user_or_whoever_sent_the_alert_is_refused_privately_and_audited(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    _interact(slack_client, button_press(message, user=STRANGER))
    _interact(slack_client, button_press(message, user=SENSOR))

    [unmapped] = slack.ephemerals_to(STRANGER)
    assert unmapped.startswith(f"Not decided: Slack user {STRANGER} is not mapped to a Riposte "
                               "identity (RIPOSTE_SLACK_PEOPLE)")
    [deliverer] = slack.ephemerals_to(SENSOR)
    assert "'sensor' delivered an alert of run" in deliverer
    assert slack.calls_to("views.open") == []
    refused = [e for e in _audit(slack_client, tokens, run_id=run_id)
               if e["verb"] == "approval.refused"]
    assert [(e["actor"], "Slack" in e["details"]["reason"]) for e in refused] == [
        (f"slack:{STRANGER}", True), ("sensor", True)]
    assert _request_of(slack_client, tokens, run_id)["decisions"] == []


def test_a_decision_through_the_api_updates_the_slack_message(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    request = _request_of(slack_client, tokens, run_id)
    with _sessions(slack_client).begin() as session:  # carol's token, too
        from engine.store.tokens import create_token
        carol = create_token(session=session, name="carol", role="responder")
    decided = slack_client.post(
        f"/v1/approvals/{request['id']}/decision", headers=tokens.bearer(carol),
        json={"decision": "approve", "plan_hash": request["plan_hash"], "reason": "from the CLI"})
    assert decided.status_code == 200, decided.text

    settled = _settled(slack, message, "Approved")
    assert "carol approved: from the CLI" in settled.all_text()
    wait_for_run(slack_client, run_id, tokens.as_responder, "succeeded")


@SQLITE_ONLY
def test_a_cancelled_run_closes_its_messages_and_says_so_in_the_approvals_thread(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    cancelled = slack_client.post(f"/v1/runs/{run_id}/cancel", headers=tokens.as_responder)
    assert cancelled.status_code == 200, cancelled.text

    _settled(slack, message, "Closed: the run was cancelled")
    # No on_failure and no RIPOSTE_FAILURE_NOTIFY: the approvals' targets are told, here in
    # the thread of the approval's message rather than in a second message.
    [told] = slack.wait_for(lambda: slack.posted_in("#secops", replies=True),
                            said="the cancellation in the approval's thread")
    assert told.thread_ts == message.ts
    assert told.text == f"Riposte: run {run_id} (contain-in-slack) was CANCELLED by alice"
    assert "Nothing was changed in AWS" in told.all_text()
    assert len(slack.posted_in("#secops")) == 1


@SQLITE_ONLY
def test_escalated_then_expired_requests_show_it_in_every_message(
    slack_client: TestClient, slack: FakeSlack, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun,
) -> None:
    run_id, message = _waiting(slack_client, tokens, post_alert, wait_for_run, slack)
    sessions = _sessions(slack_client)
    with sessions.begin() as session:  # as if half an hour had passed
        session.execute(update(ApprovalRequest).values(escalate_at=utcnow()))

    [asked] = slack.wait_for(lambda: slack.posted_in("#leads"), said="the escalation")
    assert asked.header() == "ESCALATED: approval needed: disable (contain-in-slack)"
    assert len(asked.buttons()) == 2  # the escalation group decides now
    first = _settled(slack, message, "Escalated, still waiting")
    assert "decide in the escalation message or in the console" in first.all_text()

    with sessions.begin() as session:  # and then the hour
        session.execute(update(ApprovalRequest).values(expires_at=utcnow()))
    wait_for_run(slack_client, run_id, tokens.as_responder, "rejected")
    for shown in (message, asked):
        assert "Nobody decided before" in _settled(slack, shown, "Expired").all_text()


# ---------------------------------------------------------------------------------------------
# Plans that move, and a run that fails during containment (AWS on the moto server)


@pytest.fixture
def aws_slack_client(slack_settings: Settings, aws: AwsSandbox, tokens: Tokens
                     ) -> Iterator[TestClient]:
    aws_settings = aws.settings.model_dump(include={"aws_endpoint_url", "aws_region",
                                                    "aws_retry_seconds", "responder_role"})
    settings = slack_settings.model_copy(update=aws_settings)
    with TestClient(create_app(settings, in_process_workers=1)) as client:
        yield client


def _leaked(aws: AwsSandbox) -> str:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    key: str = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    return key


def _keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


@SQLITE_ONLY
def test_a_plan_changed_between_post_and_click_is_not_approved(
    aws_slack_client: TestClient, slack: FakeSlack, aws: AwsSandbox, tokens: Tokens,
    post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    client = aws_slack_client
    first = _leaked(aws)
    run_id, message = _waiting(client, tokens, post_alert, wait_for_run, slack, kind="keys",
                               title="leaked key", account=OWN_ACCOUNT)
    shown = message.button_values()[0]
    # The attacker makes a second key after the message was posted, before anyone clicks.
    second = aws.client("iam").create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]

    _interact(client, button_press(message, user=CAROL))
    [opened] = slack.calls_to("views.open")
    # The modal opened at once; the plan, made again meanwhile, moved: the modal and the
    # message say so, and the message now carries the new request and plan with fresh buttons.
    [notice] = slack.calls_to("views.update")
    assert "The plan changed" in notice["view"]["title"]["text"]
    replaced = slack.message(message.channel, message.ts)
    [new] = {tuple(v.items()) for v in replaced.button_values()}
    new_request, new_hash = dict(new)["request"], dict(new)["plan_hash"]
    assert new_request != shown["request"] and new_hash != shown["plan_hash"]
    assert "The plan changed since this message was posted" in replaced.all_text()
    assert "iam:UpdateAccessKey × 2" in replaced.all_text()
    # The old modal, submitted anyway, approves nothing.
    _interact(client, modal_submission(opened["view"], user=CAROL, reason="go"))
    assert slack.ephemerals_to(CAROL)[-1].startswith("Not decided: approval request "
                                                     f"{shown['request']} is already superseded")
    old = client.get(f"/v1/approvals/{shown['request']}", headers=tokens.as_responder).json()
    assert old["status"] == "superseded" and old["decisions"] == []
    assert _request_of(client, tokens, run_id)["status"] == "pending"
    assert _keys(aws) == {first: "Active", second: "Active"}
    refused = [e["details"]["reason"] for e in _audit(client, tokens, run_id=run_id)
               if e["verb"] == "approval.refused"]
    assert any("changed since it was shown" in reason for reason in refused)


@SQLITE_ONLY
def test_a_request_superseded_through_the_api_is_posted_again(
    aws_slack_client: TestClient, slack: FakeSlack, aws: AwsSandbox, tokens: Tokens,
    post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    client = aws_slack_client
    _leaked(aws)
    run_id, message = _waiting(client, tokens, post_alert, wait_for_run, slack, kind="keys",
                               title="leaked key", account=OWN_ACCOUNT)
    shown = message.button_values()[0]
    aws.client("iam").create_access_key(UserName="mallory")
    refused = client.post(f"/v1/approvals/{shown['request']}/decision",
                          headers=tokens.as_responder,
                          json={"decision": "approve", "plan_hash": shown["plan_hash"],
                                "reason": "go"})
    assert refused.status_code == 409

    again = slack.wait_for(lambda: slack.posted_in("#secops")[1:],
                           said="the new request posted again")
    [posted] = again
    new = _request_of(client, tokens, run_id)
    assert posted.button_values()[0] == {"request": new["id"], "plan_hash": new["plan_hash"]}
    assert f"Replaces request {shown['request']}" in posted.all_text()
    assert "now also: iam:UpdateAccessKey" in posted.all_text()
    superseded = _settled(slack, message, "Superseded")
    assert f"Replaced by request {new['id']}" in superseded.all_text()


@SQLITE_ONLY
def test_a_run_failing_during_containment_posts_its_failure(
    aws_slack_client: TestClient, slack: FakeSlack, aws: AwsSandbox, tokens: Tokens,
    post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    client = aws_slack_client
    key = _leaked(aws)
    run_id, message = _waiting(client, tokens, post_alert, wait_for_run, slack, kind="keys",
                               title="leaked key, owner unreachable", account=OWN_ACCOUNT)
    _interact(client, button_press(message, user=CAROL))
    [opened] = slack.calls_to("views.open")
    _interact(client, modal_submission(opened["view"], user=CAROL, reason="contain now"))
    wait_for_run(client, run_id, tokens.as_responder, "failed")
    assert _keys(aws) == {key: "Inactive"}

    [failure] = slack.wait_for(lambda: slack.posted_in("#incidents"),
                               said="the failure in the playbook's on_failure channel")
    read = failure.all_text()
    assert failure.text == (f"Riposte: run {run_id} (revoke-in-slack) FAILED during "
                            "containment")
    assert "Failed at step tell-the-owner (core.fail): OwnerUnreachable" in read
    assert "revoke (aws.iam.revoke_access_keys)" in read and "may be incomplete" in read
    [in_thread] = slack.wait_for(lambda: slack.posted_in("#secops", replies=True),
                                 said="the failure in the approval's thread")
    assert in_thread.thread_ts == message.ts and "FAILED" in in_thread.text
    [told] = [e for e in _audit(client, tokens, run_id=run_id)
              if e["verb"] == "run.failure_notified"]
    assert told["details"]["notified"] == ["slack:#incidents", "slack:#secops (thread)"]
