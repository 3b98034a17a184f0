"""Who may approve, through the HTTP API: whoever delivered an alert of a run counts as its starter,
and a token named like a role is not that role.

An admin token may post alerts. A run an alert starts is "system"'s, so before, the admin who
posted the alert could approve the containment it asked for: one person, both halves of the
separation of duties. Now whoever delivered the alert that started the run, or any alert that
joined it later, may not decide it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from engine.playbooks import text_hash
from engine.store.models import ApiToken, ApprovalRequest, Run
from engine.store.tokens import token_hash

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from tests.e2e.conftest import MakeClient, PostAlert, Tokens, WaitForRun

CONTAIN = """\
name: contain-on-alert
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: contain
    action: core.log
    with: {message: "containing {{ alert.principal.name }}"}
    approval:
      reason: it locks a user out
      approvers: [role:responder, role:admin]
"""

# Related alerts (same principal) fold into one run; its first step waits for a human.
FOLD = """\
name: fold-and-contain
trigger:
  source: [guardduty]
  correlate: {by: principal.arn, within: 1h}
steps:
  - id: contain
    action: core.log
    with: {message: "{{ alerts | length }} alert(s)"}
    approval: {reason: look first, approvers: [role:responder, role:admin]}
"""

ADMINS_ONLY = """\
name: admins-only
description: Started by hand; only admin tokens may approve
steps:
  - id: act
    action: core.log
    with: {message: "acting on {{ alert.title }}"}
    approval:
      approvers: [role:admin]
"""

# A token named "admin" of role responder, as `riposte token create` allowed before names were
# reserved: it may still exist in a database, so it is written straight into the table.
IMPOSTOR = "rip_impostor-named-admin-0123456789abcdef"


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("contain.yml", CONTAIN)
    write_playbook("fold.yml", FOLD)


@pytest.fixture
def impostor(sessionmaker: SessionMaker[Session]) -> dict[str, str]:
    with sessionmaker.begin() as session:
        session.add(ApiToken(name="admin", role="responder", token_hash=token_hash(IMPOSTOR)))
    return {"Authorization": f"Bearer {IMPOSTOR}"}


def decide(
    client: TestClient, request_id: str, headers: dict[str, str], decision: str = "approve"
) -> Any:
    plan_hash = client.get(f"/v1/approvals/{request_id}", headers=headers).json()["plan_hash"]
    return client.post(f"/v1/approvals/{request_id}/decision",
                       json={"decision": decision, "reason": "checked", "plan_hash": plan_hash},
                       headers=headers)


def pending_ids(client: TestClient, headers: dict[str, str]) -> list[str]:
    answer = client.get("/v1/approvals?status=pending", headers=headers)
    return [request["id"] for request in answer.json()["approvals"]]


def finding(title: str) -> dict[str, Any]:
    return {"source": "guardduty", "kind": "finding", "type": "Recon:IAMUser/TorIP",
            "title": title, "severity": "high",
            "principal": {"type": "IAMUser", "name": "mallory",
                          "arn": "arn:aws:iam::111122223333:user/mallory"}}


def test_an_admin_that_posts_the_alert_cannot_approve_the_run_it_starts(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    alert = post_alert(client, tokens.as_admin, kind="iam", title="keys used from Tor",
                       principal={"type": "IAMUser", "name": "mallory"})
    [run_id] = alert["run_ids"]
    run = wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
    assert run["started_by"] == "system"
    request_id = run["approvals"][0]["id"]

    refused = decide(client, request_id, tokens.as_admin)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"].startswith(
        f"'root' delivered an alert of run {run_id} and cannot approve it")
    rejected = decide(client, request_id, tokens.as_admin, "reject")
    assert rejected.status_code == 403  # nor settle it the other way
    assert pending_ids(client, tokens.as_admin) == []
    request = client.get(f"/v1/approvals/{request_id}", headers=tokens.as_responder).json()
    excluded = request["deciders"]["excluded"]
    assert {"name": "root", "why": "delivered an alert of the run"} in excluded
    assert "root (delivered an alert of the run)" in request["deciders"]["summary"]
    assert client.get(f"/v1/runs/{run_id}",
                      headers=tokens.as_responder).json()["status"] == "waiting_approval"

    assert pending_ids(client, tokens.as_responder) == [request_id]
    approved = decide(client, request_id, tokens.as_responder)
    assert approved.status_code == 200, approved.text
    wait_for_run(client, run_id, tokens.as_responder, "succeeded")


def test_whoever_delivered_an_alert_that_joined_the_run_cannot_approve_it(
    client: TestClient, make_client: MakeClient, settings: Settings, tokens: Tokens,
    post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    first = post_alert(client, tokens.as_ingest, **finding("first sighting"))
    [run_id] = first["run_ids"]
    joined = post_alert(client, tokens.as_admin, **finding("seen again"))
    assert joined["joined_run_ids"] == [run_id]

    with make_client(settings, workers=1) as worker_client:
        run = wait_for_run(worker_client, run_id, tokens.as_responder, "waiting_approval")
        request_id = run["approvals"][0]["id"]
        refused = decide(worker_client, request_id, tokens.as_admin)
        assert refused.status_code == 403, refused.text
        assert "'root' delivered an alert of run" in refused.json()["detail"]
        assert decide(worker_client, request_id, tokens.as_responder).status_code == 200
        wait_for_run(worker_client, run_id, tokens.as_responder, "succeeded")


@pytest.mark.parametrize("stored", ["role:admin", "admin"], ids=["explicit", "stored-bare"])
def test_a_token_named_admin_is_not_an_admin(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
    write_playbook: Callable[[str, str], Path], sessionmaker: SessionMaker[Session],
    impostor: dict[str, str], stored: str,
) -> None:
    """``role:admin`` admits admin tokens only; so does a bare ``admin`` an older Riposte stored."""
    client = worker_client
    write_playbook("admins-only.yml", ADMINS_ONLY)
    alert = post_alert(client, tokens.as_ingest)
    started = client.post("/v1/runs", json={"alert_id": alert["alert_id"],
                                            "playbook": "admins-only"},
                          headers=tokens.as_responder)
    run = wait_for_run(client, started.json()["id"], tokens.as_responder, "waiting_approval")
    request_id = run["approvals"][0]["id"]
    with sessionmaker.begin() as session:  # as an older Riposte stored it
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == request_id)
                        .values(approvers=[stored]))

    assert pending_ids(client, impostor) == []
    refused = decide(client, request_id, impostor)
    assert refused.status_code == 403, refused.text
    assert "'admin' is not an approver" in refused.json()["detail"]
    request = client.get(f"/v1/approvals/{request_id}", headers=tokens.as_responder).json()
    assert request["deciders"]["summary"] == "any admin token except alice (started the run)"
    assert request["deciders"]["approvers"] == ["role:admin"]

    approved = decide(client, request_id, tokens.as_admin)
    assert approved.status_code == 200, approved.text
    wait_for_run(client, run["id"], tokens.as_responder, "succeeded")


def test_a_run_that_pinned_bare_approvers_before_they_were_refused_still_asks_and_goes_on(
    client: TestClient, make_client: MakeClient, settings: Settings, tokens: Tokens,
    post_alert: PostAlert, wait_for_run: WaitForRun, sessionmaker: SessionMaker[Session],
    impostor: dict[str, str],
) -> None:
    """A run queued by an older Riposte pinned its playbook text with ``approvers: [admin]``:
    the worker still loads it, reads ``admin`` as the role, and the run completes."""
    alert = post_alert(client, tokens.as_ingest, kind="iam",
                       principal={"type": "IAMUser", "name": "mallory"})
    [run_id] = alert["run_ids"]
    old_text = CONTAIN.replace("[role:responder, role:admin]", "[admin]")
    with sessionmaker.begin() as session:
        session.execute(update(Run).where(Run.id == run_id)
                        .values(playbook_text=old_text, playbook_hash=text_hash(old_text)))

    with make_client(settings, workers=1) as worker_client:
        run = wait_for_run(worker_client, run_id, tokens.as_responder, "waiting_approval")
        request_id = run["approvals"][0]["id"]
        request = worker_client.get(f"/v1/approvals/{request_id}",
                                    headers=tokens.as_responder).json()
        assert request["approvers"] == ["role:admin"]
        assert decide(worker_client, request_id, impostor).status_code == 403
        assert decide(worker_client, request_id, tokens.as_admin).status_code == 200
        run = wait_for_run(worker_client, run_id, tokens.as_responder, "succeeded")
    assert run["steps"][0]["output"] == {"message": "containing mallory"}
