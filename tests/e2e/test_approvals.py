"""Approvals end to end: the run waits, a human sees the exact plan, decides, the run goes on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

CONTAIN_USER = """\
name: contain-user
description: Disable a user once a human agrees
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: enrich
    action: core.set
    with:
      values:
        user: "{{ alert.principal.name }}"
  - id: disable
    action: core.log
    with:
      message: "disabling {{ vars.user }}"
    approval:
      reason: disabling a user locks them out
  - id: notify
    action: core.log
    with:
      message: "done with {{ vars.user }}"
"""

LEADS_ONLY = """\
name: leads-only
description: Started by hand; only the token named lead may approve
steps:
  - id: act
    action: core.log
    with:
      message: "acting on {{ alert.title }}"
    approval:
      approvers: [token:lead]
"""


TWO_KEYS = """\
name: two-keys
description: Started by hand; two of alice, bob, lead or any admin must approve
steps:
  - id: act
    action: core.log
    with:
      message: "acting on {{ alert.title }}"
    approval:
      required: 2
      approvers: [token:alice, token:bob, token:lead, role:admin]
"""


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("contain-user.yml", CONTAIN_USER)
    write_playbook("leads-only.yml", LEADS_ONLY)
    write_playbook("two-keys.yml", TWO_KEYS)


def _waiting_run(
    client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> dict[str, Any]:
    alert = post_alert(client, tokens.as_ingest, kind="iam", title="keys used from Tor",
                       principal={"type": "IAMUser", "name": "mallory"})
    [run_id] = alert["run_ids"]
    return wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")


def test_an_approved_step_runs_and_the_run_succeeds_with_every_step_journaled_and_audited(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    run = _waiting_run(client, tokens, post_alert, wait_for_run)
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [("enrich", "succeeded")]
    [ref] = run["approvals"]
    assert (ref["step_id"], ref["status"]) == ("disable", "pending")

    pending = client.get("/v1/approvals?status=pending", headers=tokens.as_responder).json()
    assert [a["id"] for a in pending["approvals"]] == [ref["id"]]
    request = client.get(f"/v1/approvals/{ref['id']}", headers=tokens.as_responder).json()
    assert request["plan"]["action"] == "core.log"
    assert request["plan"]["params"] == {"message": "disabling mallory"}
    assert request["plan"]["reason"] == "disabling a user locks them out"
    assert (request["required"], request["decisions"]) == (1, [])
    assert request["expires_at"] > request["created_at"]

    decided = client.post(
        f"/v1/approvals/{ref['id']}/decision",
        json={"decision": "approve", "reason": "confirmed with the user's manager",
              "plan_hash": request["plan_hash"]},
        headers=tokens.as_responder,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert [(d["actor"], d["decision"]) for d in decided.json()["decisions"]] == [
        ("alice", "approve")]

    run = wait_for_run(client, run["id"], tokens.as_responder, "succeeded")
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [
        ("enrich", "succeeded"), ("disable", "succeeded"), ("notify", "succeeded")]
    assert run["steps"][1]["output"] == {"message": "disabling mallory"}
    assert run["approvals"] == [{"id": ref["id"], "step_id": "disable", "status": "approved"}]

    events = client.get(f"/v1/audit?run_id={run['id']}", headers=tokens.as_admin).json()
    verbs = [e["verb"] for e in events["events"]]
    assert verbs == [
        "run.queued", "step.succeeded", "approval.requested", "approval.approve",
        "approval.approved", "step.succeeded", "step.succeeded", "run.succeeded",
    ]
    by_alert = client.get(f"/v1/audit?alert_id={run['alert_id']}", headers=tokens.as_admin)
    assert by_alert.json()["events"][0]["verb"] == "alert.received"
    chain = client.get("/v1/audit/verify", headers=tokens.as_responder)
    assert chain.status_code == 200
    assert chain.json()["ok"] is True
    assert chain.json()["first_broken_id"] is None
    assert chain.json()["checked"] >= len(verbs)


def test_a_rejected_step_never_runs_and_a_second_decision_is_409(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    run = _waiting_run(client, tokens, post_alert, wait_for_run)
    request_id = run["approvals"][0]["id"]

    plan_hash = client.get(f"/v1/approvals/{request_id}",
                           headers=tokens.as_responder).json()["plan_hash"]
    rejected = client.post(f"/v1/approvals/{request_id}/decision",
                           json={"decision": "reject", "reason": "false positive",
                                 "plan_hash": plan_hash},
                           headers=tokens.as_responder)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"

    run = wait_for_run(client, run["id"], tokens.as_responder, "rejected")
    assert [s["step_id"] for s in run["steps"]] == ["enrich"]
    assert run["approvals"][0]["status"] == "rejected"

    again = client.post(f"/v1/approvals/{request_id}/decision",
                        json={"decision": "approve", "reason": "changed my mind",
                              "plan_hash": plan_hash},
                        headers=tokens.as_other_responder)
    assert again.status_code == 409
    assert "rejected" in again.json()["detail"]
    pending = client.get("/v1/approvals?status=pending", headers=tokens.as_responder).json()
    assert pending["approvals"] == []


def test_whoever_started_the_run_cannot_approve_it(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    alert = post_alert(client, tokens.as_ingest, kind="other",
                       principal={"type": "IAMUser", "name": "eve"})
    started = client.post("/v1/runs", json={"alert_id": alert["alert_id"],
                                            "playbook": "contain-user"},
                          headers=tokens.as_responder)
    run = wait_for_run(client, started.json()["id"], tokens.as_responder, "waiting_approval")
    request_id = run["approvals"][0]["id"]

    mine = client.get("/v1/approvals?status=pending", headers=tokens.as_responder).json()
    assert mine["approvals"] == []
    theirs = client.get("/v1/approvals?status=pending", headers=tokens.as_other_responder)
    assert [a["id"] for a in theirs.json()["approvals"]] == [request_id]

    plan_hash = client.get(f"/v1/approvals/{request_id}",
                           headers=tokens.as_other_responder).json()["plan_hash"]
    refused = client.post(f"/v1/approvals/{request_id}/decision",
                          json={"decision": "approve", "reason": "looks fine",
                                "plan_hash": plan_hash},
                          headers=tokens.as_responder)
    assert refused.status_code == 403
    assert "alice" in refused.json()["detail"]
    assert client.get(f"/v1/runs/{run['id']}",
                      headers=tokens.as_responder).json()["status"] == "waiting_approval"

    approved = client.post(f"/v1/approvals/{request_id}/decision",
                           json={"decision": "approve", "reason": "second pair of eyes",
                                 "plan_hash": plan_hash},
                           headers=tokens.as_other_responder)
    assert approved.status_code == 200
    wait_for_run(client, run["id"], tokens.as_responder, "succeeded")


def test_only_the_named_approvers_may_decide(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    alert = post_alert(client, tokens.as_ingest)
    started = client.post("/v1/runs", json={"alert_id": alert["alert_id"],
                                            "playbook": "leads-only"},
                          headers=tokens.as_admin)
    run = wait_for_run(client, started.json()["id"], tokens.as_admin, "waiting_approval")
    request_id = run["approvals"][0]["id"]

    assert client.get("/v1/approvals?status=pending",
                      headers=tokens.as_responder).json()["approvals"] == []
    everything = client.get("/v1/approvals", headers=tokens.as_responder).json()["approvals"]
    assert [a["id"] for a in everything] == [request_id]
    plan_hash = client.get(f"/v1/approvals/{request_id}",
                           headers=tokens.as_responder).json()["plan_hash"]
    refused = client.post(f"/v1/approvals/{request_id}/decision",
                          json={"decision": "approve", "reason": "ok", "plan_hash": plan_hash},
                          headers=tokens.as_responder)
    assert refused.status_code == 403
    assert "not an approver" in refused.json()["detail"]
    audited = client.get(f"/v1/audit?run_id={run['id']}", headers=tokens.as_admin).json()
    [refusal] = [e for e in audited["events"] if e["verb"] == "approval.refused"]
    assert refusal["actor"] == "alice"
    assert refusal["details"]["reason"].startswith("approve: 'alice' is not an approver")


def test_a_decision_on_a_plan_it_did_not_see_is_409(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    run = _waiting_run(worker_client, tokens, post_alert, wait_for_run)
    request_id = run["approvals"][0]["id"]
    response = worker_client.post(
        f"/v1/approvals/{request_id}/decision",
        json={"decision": "approve", "reason": "ok", "plan_hash": "0" * 64},
        headers=tokens.as_responder,
    )
    assert response.status_code == 409
    assert "plan hash" in response.json()["detail"]


def test_a_request_says_who_else_may_decide_and_how_many_approvals_it_still_needs(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    alert = post_alert(client, tokens.as_ingest)
    started = client.post("/v1/runs", json={"alert_id": alert["alert_id"],
                                            "playbook": "two-keys"},
                          headers=tokens.as_admin)
    run = wait_for_run(client, started.json()["id"], tokens.as_admin, "waiting_approval")
    request_id = run["approvals"][0]["id"]

    request = client.get(f"/v1/approvals/{request_id}", headers=tokens.as_responder).json()
    assert request["approvals_needed"] == 2
    assert request["deciders"] == {
        "summary": "alice, bob, lead or any admin token except root (started the run)",
        "anyone": False,
        "approvers": ["token:alice", "token:bob", "token:lead", "role:admin"],
        "excluded": [{"name": "root", "why": "started the run"}],
        "closed": None,
    }

    first = client.post(f"/v1/approvals/{request_id}/decision",
                        json={"decision": "approve", "reason": "saw the CloudTrail record",
                              "plan_hash": request["plan_hash"]},
                        headers=tokens.as_responder)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["approvals_needed"]) == ("pending", 1)
    request = client.get(f"/v1/approvals/{request_id}", headers=tokens.as_other_responder).json()
    assert [(d["actor"], d["decision"]) for d in request["decisions"]] == [("alice", "approve")]
    assert request["approvals_needed"] == 1
    assert request["deciders"]["approvers"] == ["token:bob", "token:lead", "role:admin"]
    assert request["deciders"]["excluded"] == [
        {"name": "root", "why": "started the run"},
        {"name": "alice", "why": "already decided: approve"},
    ]
    assert request["deciders"]["summary"] == (
        "bob, lead or any admin token except root (started the run), "
        "alice (already decided: approve)"
    )
    # The pending list is what the caller may still decide: no longer alice's, still bob's.
    assert client.get("/v1/approvals?status=pending",
                      headers=tokens.as_responder).json()["approvals"] == []
    theirs = client.get("/v1/approvals?status=pending", headers=tokens.as_other_responder)
    assert [a["id"] for a in theirs.json()["approvals"]] == [request_id]

    second = client.post(f"/v1/approvals/{request_id}/decision",
                         json={"decision": "approve", "reason": "agreed",
                               "plan_hash": request["plan_hash"]},
                         headers=tokens.as_other_responder)
    assert second.status_code == 200, second.text
    settled = second.json()
    assert (settled["status"], settled["approvals_needed"]) == ("approved", 0)
    assert settled["deciders"]["summary"] == "nobody: the request is approved"
    assert settled["deciders"]["closed"] == "the request is approved"
    assert settled["deciders"]["approvers"] == []
    wait_for_run(client, run["id"], tokens.as_admin, "succeeded")


def test_a_request_naming_no_approvers_may_be_decided_by_any_responder_but_the_starter(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    alert = post_alert(client, tokens.as_ingest, kind="other",
                       principal={"type": "IAMUser", "name": "eve"})
    started = client.post("/v1/runs", json={"alert_id": alert["alert_id"],
                                            "playbook": "contain-user"},
                          headers=tokens.as_responder)
    run = wait_for_run(client, started.json()["id"], tokens.as_responder, "waiting_approval")
    request = client.get(f"/v1/approvals/{run['approvals'][0]['id']}",
                         headers=tokens.as_other_responder).json()
    assert request["approvals_needed"] == 1
    assert request["deciders"] == {
        "summary": "any responder or admin token except alice (started the run)",
        "anyone": True,
        "approvers": [],
        "excluded": [{"name": "alice", "why": "started the run"}],
        "closed": None,
    }


def test_a_decision_without_the_plan_hash_is_422_naming_it(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post("/v1/approvals/any/decision",
                           json={"decision": "approve", "reason": "trust me"},
                           headers=tokens.as_responder)
    assert response.status_code == 422
    assert "body.plan_hash" in response.json()["detail"]


def test_a_malformed_decision_is_422(client: TestClient, tokens: Tokens) -> None:
    seen = "ab" * 32
    for body, field in [
        ({"decision": "approve", "plan_hash": seen}, "body.reason"),
        ({"decision": "approve", "reason": "", "plan_hash": seen}, "body.reason"),
        ({"decision": "approve", "reason": "x" * 2001, "plan_hash": seen}, "body.reason"),
        ({"decision": "approve", "reason": "nul \u0000", "plan_hash": seen}, "body.reason"),
        ({"decision": "maybe", "reason": "x", "plan_hash": seen}, "body.decision"),
        ({"decision": "approve", "reason": "x", "plan_hash": seen, "by": "me"}, "body.by"),
        ({"decision": "approve", "reason": "x"}, "body.plan_hash"),
        ({"decision": "approve", "reason": "x", "plan_hash": None}, "body.plan_hash"),
        ({"decision": "approve", "reason": "x", "plan_hash": "abc"}, "body.plan_hash"),
        ({"decision": "approve", "reason": "x", "plan_hash": "AB" * 32}, "body.plan_hash"),
    ]:
        response = client.post("/v1/approvals/any/decision", json=body,
                               headers=tokens.as_responder)
        assert response.status_code == 422, body
        assert field in [p["field"] for p in response.json()["errors"]], body


def test_a_decision_on_an_unknown_request_is_404(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/v1/approvals/nope/decision",
                           json={"decision": "approve", "reason": "x", "plan_hash": "0" * 64},
                           headers=tokens.as_responder)
    assert response.status_code == 404
    assert client.get("/v1/approvals/nope", headers=tokens.as_responder).status_code == 404


def test_a_run_waiting_for_approval_can_be_cancelled(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    run = _waiting_run(worker_client, tokens, post_alert, wait_for_run)
    cancelled = worker_client.post(f"/v1/runs/{run['id']}/cancel", headers=tokens.as_responder)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert [s["step_id"] for s in cancelled.json()["steps"]] == ["enrich"]
