"""Rolling back a run: its changes undone newest first, behind an approval, on the moto server."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.rollback import start_rollback
from engine.store import deciders
from engine.store.errors import Conflict, Forbidden
from engine.store.models import ApprovalRequest
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

CONTAIN = """
name: contain
steps:
  - id: revoke
    action: aws.iam.revoke_access_keys
    with:
      user: mallory
  - id: tell
    action: notify.webhook
    with:
      url: "{url}"
      text: keys revoked
"""
ALERT = make_alert(principal={"type": "IAMUser", "name": "mallory"}, account=OWN_ACCOUNT)


def _keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def test_a_rollback_undoes_only_what_the_run_changed_after_approval(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    active = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    dormant = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="mallory", AccessKeyId=dormant, Status="Inactive")
    w = worker(sessionmaker, settings=aws.settings)
    with webhook_receiver() as (url, received):
        run_id = queue(sessionmaker, CONTAIN.replace("{url}", url), alert=ALERT)
        drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert len(received) == 1
    assert _keys(aws) == {active: "Inactive", dormant: "Inactive"}

    with sessionmaker.begin() as session:
        rollback_id = start_rollback(session=session, run_id=run_id, actor="bob").id
    drain(w)
    assert run_row(sessionmaker, rollback_id).status == "waiting_approval"
    with sessionmaker() as session:
        request = session.execute(
            select(ApprovalRequest).where(ApprovalRequest.run_id == rollback_id)
        ).scalars().one()
    calls = request.plan["calls"][0]
    # Newest first: the message cannot be unsent, then the one key the run deactivated.
    assert [(c["operation"], c["target"]) for c in calls][0] == ("CannotUndo", "tell")
    assert [(c["operation"], c["params"].get("AccessKeyId"), c["params"].get("Status"))
            for c in calls[1:]] == [("UpdateAccessKey", active, "Active")]
    with sessionmaker.begin() as session, pytest.raises(Forbidden, match="started run"):
        deciders.decide(session=session, request_id=request.id, actor="bob", role="responder",
                         decision="approve", reason="mine", seen_plan_hash=request.plan_hash)
    with sessionmaker.begin() as session:
        deciders.decide(session=session, request_id=request.id, actor="alice",
                         role="responder", decision="approve", reason="false positive",
                         seen_plan_hash=request.plan_hash)
    drain(w)
    rollback = run_row(sessionmaker, rollback_id)
    assert rollback.status == "succeeded"
    assert rollback.alert_id == run_row(sessionmaker, run_id).alert_id
    assert _keys(aws) == {active: "Active", dormant: "Inactive"}
    verbs = audit_verbs(sessionmaker, rollback_id)
    assert verbs.index("approval.requested") < verbs.index("approval.approved")
    [record] = journal(sessionmaker, rollback_id)
    assert record.output["not_undone"] == ["tell: notify.webhook cannot be undone"]
    assert [u["step"] for u in record.output["undone"]] == ["revoke"]


def test_a_run_that_changed_nothing_undoable_cannot_be_rolled_back(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, "name: p\nsteps:\n  - {id: a, action: core.log, "
                   "with: {message: hi}}\n")
    with sessionmaker.begin() as session, pytest.raises(Conflict, match="queued"):
        start_rollback(session=session, run_id=run_id, actor="bob")
    drain(worker(sessionmaker))
    with sessionmaker.begin() as session, pytest.raises(Conflict, match="nothing that can be"):
        start_rollback(session=session, run_id=run_id, actor="bob")
