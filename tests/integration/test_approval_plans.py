"""Approvals bound to the exact AWS plan, implicit approval on timeout, notices and escalation.

A real worker on a real database, AWS actions against the moto server, and notices received by
a real HTTP server standing in for a Slack-compatible webhook.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.store import deciders
from engine.store.models import ApprovalRequest, AuditEvent
from engine.store.types import utcnow
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.integration.engine_helpers import (
    audit_verbs,
    drain,
    journal,
    make_alert,
    queue,
    run_row,
    worker,
)
from tests.live_server import webhook_receiver

REVOKE = """
name: revoke-keys
steps:
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: "{{ alert.principal.name }}"
    approval:
      required: 1
      reason: deactivate the keys of a compromised user
      {extra}
"""


def playbook(**extra: str) -> str:
    return REVOKE.replace("{extra}", "\n      ".join(f"{k}: {v}" for k, v in extra.items()))


ALERT = make_alert(
    principal={"type": "IAMUser", "name": "mallory", "account": OWN_ACCOUNT}, account=OWN_ACCOUNT
)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with webhook_receiver() as receiver:
        yield receiver


def _seed_user(aws: AwsSandbox, keys: int = 2) -> list[str]:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    return [iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
            for _ in range(keys)]


def _key_states(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def _request(sessions: sessionmaker[Session]) -> ApprovalRequest:
    with sessions() as session:
        query = select(ApprovalRequest).where(ApprovalRequest.status == "pending")
        return session.execute(query).scalars().one()


def _approve(sessions: sessionmaker[Session], request: ApprovalRequest) -> None:
    with sessions.begin() as session:
        deciders.decide(session=session, request_id=request.id, actor="alice",
                         role="responder", decision="approve", reason="confirmed",
                         seen_plan_hash=request.plan_hash)


def test_the_request_shows_the_exact_calls_and_the_step_runs_them(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    keys = _seed_user(aws)
    run_id = queue(sessionmaker, playbook(), alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    request = _request(sessionmaker)
    calls = request.plan["calls"]
    assert sorted((c["operation"], c["params"]["AccessKeyId"], c["params"]["Status"])
                  for c in calls[0]) == sorted(("UpdateAccessKey", k, "Inactive") for k in keys)
    assert _key_states(aws) == dict.fromkeys(keys, "Active")  # nothing happened yet
    _approve(sessionmaker, request)
    drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert _key_states(aws) == dict.fromkeys(keys, "Inactive")


def test_a_step_whose_plan_moved_after_approval_fails_instead_of_doing_something_else(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    keys = _seed_user(aws, keys=1)
    run_id = queue(sessionmaker, playbook(), alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    request = _request(sessionmaker)
    _approve(sessionmaker, request)
    # Between the approval and the step, the user gets a new key the approvers never saw.
    new_key = aws.client("iam").create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    drain(w)
    run = run_row(sessionmaker, run_id)
    assert run.status == "failed"
    [record] = [r for r in journal(sessionmaker, run_id) if r.step_id == "revoke"]
    assert record.error["code"] == "PlanChanged"
    assert "live state moved since the approval" in record.error["message"]
    assert "iam:UpdateAccessKey" in record.error["message"]
    assert _key_states(aws) == {**dict.fromkeys(keys, "Active"), new_key: "Active"}


def test_a_step_that_cannot_be_planned_fails_without_asking_anyone(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    run_id = queue(sessionmaker, playbook(), alert=ALERT)  # no such user in AWS
    drain(worker(sessionmaker, settings=aws.settings))
    assert run_row(sessionmaker, run_id).status == "failed"
    with sessionmaker() as session:
        assert session.execute(select(ApprovalRequest)).scalars().all() == []
    [record] = journal(sessionmaker, run_id)
    assert record.error["code"] == "NoSuchUser"
    assert "mallory" in record.error["message"]


def test_on_timeout_approve_runs_the_step_and_the_audit_says_it_was_implicit(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    keys = _seed_user(aws, keys=1)
    run_id = queue(sessionmaker, playbook(on_timeout="approve"), alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    with sessionmaker.begin() as session:  # as if the hour had passed
        session.execute(update(ApprovalRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    w.housekeeping()
    drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert _key_states(aws) == {keys[0]: "Inactive"}
    with sessionmaker() as session:
        approved = session.execute(
            select(AuditEvent).where(AuditEvent.verb == "approval.approved")
        ).scalars().one()
    assert approved.details["implicit"] is True
    assert approved.actor == "w1"


def test_approvers_are_notified_with_the_plan_hash_and_how_to_decide(
    sessionmaker: sessionmaker[Session],
    aws: AwsSandbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    _seed_user(aws, keys=1)
    settings = aws.settings.model_copy(
        update={"approval_notify": [url], "public_url": "https://riposte.example"}
    )
    run_id = queue(sessionmaker, playbook(), alert=ALERT)
    drain(worker(sessionmaker, settings=settings))
    request = _request(sessionmaker)
    [message] = received
    text = message["text"]
    assert "approval needed for revoke (revoke-keys)" in text
    assert "iam:UpdateAccessKey" in text
    assert request.plan_hash in text
    assert f"riposte approvals approve {request.id} --plan-hash {request.plan_hash}" in text
    assert f"https://riposte.example/ui/approvals/{request.id}" in text
    with sessionmaker() as session:
        notified = session.execute(
            select(AuditEvent).where(AuditEvent.verb == "approval.notified")
        ).scalars().one()
    assert notified.run_id == run_id
    assert notified.details["notified"] == ["127.0.0.1:" + url.split(":")[2].split("/")[0]]
    assert url not in str(notified.details)  # a webhook URL is a secret: only its host


def test_an_unreachable_notifier_is_audited_and_the_request_stays_open(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    _seed_user(aws, keys=1)
    settings = aws.settings.model_copy(update={"approval_notify": ["http://127.0.0.1:9/hook"]})
    queue(sessionmaker, playbook(), alert=ALERT)
    drain(worker(sessionmaker, settings=settings))
    request = _request(sessionmaker)
    with sessionmaker() as session:
        notified = session.execute(
            select(AuditEvent).where(AuditEvent.verb == "approval.notified")
        ).scalars().one()
    assert notified.details["notified"] == []
    assert notified.details["failed"][0].startswith("127.0.0.1:9: ")
    assert request.status == "pending"


def test_an_undecided_request_is_escalated_once_by_the_worker(
    sessionmaker: sessionmaker[Session],
    aws: AwsSandbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    _seed_user(aws, keys=1)
    run_id = queue(
        sessionmaker, playbook(escalate_after="10m", escalate_to=f"['{url}']"), alert=ALERT
    )
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    w.housekeeping()
    assert received == []  # not yet due
    with sessionmaker.begin() as session:  # as if ten minutes had passed
        session.execute(
            update(ApprovalRequest).values(escalate_at=utcnow() - timedelta(seconds=1))
        )
    w._last_housekeeping = 0.0
    w.housekeeping()
    w._last_housekeeping = 0.0
    w.housekeeping()  # a second pass (or another worker) does not page again
    [message] = received
    assert "ESCALATED" in message["text"]
    assert _request(sessionmaker).escalated_at is not None
    assert audit_verbs(sessionmaker, run_id).count("approval.escalated") == 1
