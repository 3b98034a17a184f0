"""The story of a run in the log and the metrics: steps, approvals, the run's end, time to contain.

A real worker on a real database (SQLite and PostgreSQL); the containment revokes a user's keys
on the moto server. The log is read as an operator's collector reads it: JSON lines.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.decisions import take_decision
from engine.store import approvals
from engine.store.models import ApprovalRequest
from engine.store.types import utcnow
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.integration.engine_helpers import drain, make_alert, queue, run_row, worker
from tests.json_log import lines
from tests.live_server import webhook_receiver

BLAME = """
name: blame
steps:
  - {id: describe, action: core.fail, with: {code: InstanceNotFound}, on_error: continue}
  - {id: isolate, action: core.fail, with: {code: UnauthorizedOperation}}
  - {id: never, action: core.log, with: {message: not reached}}
"""

FLAKY = """
name: flaky
steps:
  - id: lookup
    action: core.fail
    with: {code: Throttling, times: 2}
    retry: {attempts: 3, backoff: 0, on: [Throttling]}
"""

REVOKE = """
name: revoke-keys
steps:
  - id: look
    action: core.log
    with: {message: "looking at {{ alert.principal.name }}"}
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: "{{ alert.principal.name }}"
    approval:
      reason: deactivate the keys of a compromised user
"""

WAITING = """
name: waiting
steps:
  - id: note
    action: core.log
    with: {message: noted}
    approval:
      reason: a human looks first
      escalate_after: 10m
      escalate_to: ['{url}']
"""

ALERT = make_alert(
    principal={"type": "IAMUser", "name": "mallory", "account": OWN_ACCOUNT}, account=OWN_ACCOUNT
)





def events(stream: io.StringIO, event: str, **match: Any) -> list[dict[str, Any]]:
    return [line for line in lines(stream) if line.get("event") == event
            and all(line.get(key) == value for key, value in match.items())]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_run_error_names_the_step_that_ended_it_not_an_earlier_step_that_may_fail(
    sessionmaker: sessionmaker[Session], json_log: io.StringIO
) -> None:
    run_id = queue(sessionmaker, BLAME)
    drain(worker(sessionmaker))

    run = run_row(sessionmaker, run_id)
    assert run.status == "failed"
    assert run.error == "isolate: UnauthorizedOperation: failure injected by core.fail"
    ids = {"run_id": run_id, "alert_id": run.alert_id}
    [started] = events(json_log, "step.started", step_id="describe", **ids)
    assert started["action"] == "core.fail"
    [tolerated] = events(json_log, "step.failed", step_id="describe", **ids)
    assert (tolerated["level"], tolerated["error_code"], tolerated["attempts"]) == (
        "warning", "InstanceNotFound", 1)
    assert "the run goes on" in tolerated["message"]
    [fatal] = events(json_log, "step.failed", step_id="isolate", **ids)
    assert (fatal["level"], fatal["error_code"]) == ("error", "UnauthorizedOperation")
    assert isinstance(fatal["duration_seconds"], float)
    [ended] = events(json_log, "run.failed", **ids)
    assert ended["level"] == "error"
    assert "isolate: UnauthorizedOperation" in ended["message"]
    assert ended["details"]["error"] == run.error
    assert events(json_log, "step.started", step_id="never") == []


def test_retries_and_the_outcome_carry_the_attempt_and_the_error_code(
    sessionmaker: sessionmaker[Session], json_log: io.StringIO
) -> None:
    run_id = queue(sessionmaker, FLAKY)
    drain(worker(sessionmaker))

    assert run_row(sessionmaker, run_id).status == "succeeded"
    retries = events(json_log, "step.retrying", run_id=run_id, step_id="lookup")
    assert [(r["level"], r["attempt"], r["error_code"]) for r in retries] == [
        ("warning", 1, "Throttling"), ("warning", 2, "Throttling")]
    [outcome] = events(json_log, "step.succeeded", run_id=run_id, step_id="lookup")
    assert (outcome["level"], outcome["attempts"], outcome["error_code"]) == ("info", 3, None)
    [ended] = events(json_log, "run.succeeded", run_id=run_id)
    assert ended["level"] == "info"


def test_an_approved_containment_is_logged_at_each_event_and_timed_by_playbook(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox, json_log: io.StringIO
) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    stages = ("queued", "started", "approval_requested", "approval_decided", "contained")
    before = {stage: sample("riposte_containment_stage_seconds_count", playbook="revoke-keys",
                            stage=stage) for stage in stages}
    contained_before = sample("riposte_time_to_contain_seconds_count", playbook="revoke-keys")

    # Queued by a trigger (as ``system``): a run that measures the response to its alert.
    run_id = queue(sessionmaker, REVOKE, alert=ALERT, started_by="system")
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    with sessionmaker() as session:
        request = session.execute(select(ApprovalRequest)).scalars().one()
    alert_id = run_row(sessionmaker, run_id).alert_id
    ids = {"run_id": run_id, "alert_id": alert_id, "step_id": "revoke"}
    [asked] = events(json_log, "approval.requested", **ids)
    assert asked["details"]["request"] == request.id
    assert events(json_log, "step.started", step_id="revoke") == []  # not before the decision

    with sessionmaker() as session:
        take_decision(session=session, sessions=sessionmaker, settings=aws.settings,
                      request_id=request.id, actor="alice", role="responder",
                      decision="approve", reason="confirmed", plan_hash=request.plan_hash)
    [decision] = events(json_log, "approval.approve", **ids)
    assert (decision["actor"], decision["details"]["reason"]) == ("alice", "confirmed")
    assert len(events(json_log, "approval.approved", **ids)) == 1
    drain(w)

    assert run_row(sessionmaker, run_id).status == "succeeded"
    listed = iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key, "Inactive")]
    assert len(events(json_log, "step.started", **ids)) == 1
    [done] = events(json_log, "step.succeeded", **ids)
    assert done["action"] == "aws.iam.revoke_access_keys"
    assert len(events(json_log, "run.succeeded", run_id=run_id, alert_id=alert_id)) == 1
    for stage in stages:
        assert sample("riposte_containment_stage_seconds_count", playbook="revoke-keys",
                      stage=stage) == before[stage] + 1, stage
    assert sample("riposte_time_to_contain_seconds_count",
                  playbook="revoke-keys") == contained_before + 1


def test_a_run_started_by_hand_or_in_a_dry_run_is_not_timed_as_containment(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    aws.client("iam").create_user(UserName="mallory")
    before = sample("riposte_containment_stage_seconds_count", playbook="revoke-keys",
                    stage="queued")
    queue(sessionmaker, REVOKE, alert=ALERT, started_by="alice")
    queue(sessionmaker, REVOKE, alert=ALERT, started_by="system", mode="dry_run")
    assert sample("riposte_containment_stage_seconds_count", playbook="revoke-keys",
                  stage="queued") == before


def test_escalated_superseded_and_expired_requests_are_each_logged(
    sessionmaker: sessionmaker[Session], json_log: io.StringIO
) -> None:
    with webhook_receiver() as (url, received):
        run_id = queue(sessionmaker, WAITING.replace("{url}", url))
        w = worker(sessionmaker)
        drain(w)
        with sessionmaker.begin() as session:  # as if ten minutes had passed
            session.execute(
                update(ApprovalRequest).values(escalate_at=utcnow() - timedelta(seconds=1)))
        w.housekeeping()
        assert len(received) == 1
    ids = {"run_id": run_id, "step_id": "note"}
    [escalated] = events(json_log, "approval.escalated", **ids)
    # Who was told: the webhook's host, never its path (the webhook's secret).
    assert escalated["details"]["notified"] == [urlsplit(url).netloc]

    with sessionmaker() as session:
        old = session.execute(select(ApprovalRequest)).scalars().one()
    with sessionmaker.begin() as session:
        new = approvals.supersede(session=session, request_id=old.id,
                                  plan={**old.plan, "moved": True}, actor="w1")
        new_id = new.id
    [superseded] = events(json_log, "approval.superseded", **ids)
    assert superseded["details"]["replaced_by"] == new_id

    with sessionmaker.begin() as session:  # as if the hour had passed
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == new_id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    w._last_housekeeping = 0.0
    w.housekeeping()
    [expired] = events(json_log, "approval.expired", **ids)
    assert expired["level"] == "warning"
    assert expired["details"]["request"] == new_id
    assert run_row(sessionmaker, run_id).status == "rejected"


def test_a_change_rolled_back_leaves_no_line(
    sessionmaker: sessionmaker[Session], json_log: io.StringIO
) -> None:
    run_id = queue(sessionmaker, FLAKY)
    with pytest.raises(RuntimeError), sessionmaker.begin() as session:
        audit.record(session, actor="alice", verb="run.cancelled", run_id=run_id)
        raise RuntimeError("the request failed before its commit")
    assert events(json_log, "run.cancelled") == []
    with sessionmaker.begin() as session:
        audit.record(session, actor="alice", verb="run.cancelled", run_id=run_id)
    [cancelled] = events(json_log, "run.cancelled", run_id=run_id)
    assert (cancelled["level"], cancelled["actor"]) == ("warning", "alice")
