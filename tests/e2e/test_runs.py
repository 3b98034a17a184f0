"""Runs by hand: start (live or dry run), read, filter, cancel; unknown things are 404."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

BY_HAND = """\
name: by-hand
description: Started by a responder only (no trigger)
vars:
  team: security
steps:
  - id: greet
    action: core.log
    with:
      message: "looking at {{ alert.title }} for {{ vars.team }}"
  - id: remember
    action: core.set
    with:
      values:
        seen: "{{ steps.greet.output.message }}"
"""


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("by-hand.yml", BY_HAND)


def test_a_responder_starts_a_run_and_the_worker_finishes_it(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    alert = post_alert(worker_client, tokens.as_ingest, title="odd login")
    assert alert["run_ids"] == []  # no trigger: nothing starts by itself

    response = worker_client.post(
        "/v1/runs", json={"alert_id": alert["alert_id"], "playbook": "by-hand"},
        headers=tokens.as_responder,
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert (started["mode"], started["started_by"], started["status"]) == ("live", "alice",
                                                                           "queued")
    assert started["alert_ids"] == [alert["alert_id"]]
    run = wait_for_run(worker_client, started["id"], tokens.as_responder, "succeeded")
    assert run["alert_ids"] == [alert["alert_id"]]
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [
        ("greet", "succeeded"), ("remember", "succeeded")]
    assert run["steps"][0]["params"] == {"message": "looking at odd login for security"}
    assert run["vars"] == {"team": "security", "seen": "looking at odd login for security"}
    assert run["finished_at"] is not None


def test_a_dry_run_is_accepted_and_recorded_as_such(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    alert = post_alert(worker_client, tokens.as_ingest)
    response = worker_client.post(
        "/v1/runs",
        json={"alert_id": alert["alert_id"], "playbook": "by-hand", "mode": "dry_run"},
        headers=tokens.as_admin,
    )
    assert response.status_code == 201, response.text
    run = wait_for_run(worker_client, response.json()["id"], tokens.as_admin, "succeeded")
    assert run["mode"] == "dry_run"
    queued = worker_client.get(f"/v1/audit?run_id={run['id']}", headers=tokens.as_admin).json()
    assert [e["details"]["mode"] for e in queued["events"] if e["verb"] == "run.queued"] == [
        "dry_run"]


def test_an_unknown_mode_is_422(client: TestClient, tokens: Tokens, post_alert: PostAlert) -> None:
    alert = post_alert(client, tokens.as_ingest)
    response = client.post(
        "/v1/runs", json={"alert_id": alert["alert_id"], "playbook": "by-hand", "mode": "fast"},
        headers=tokens.as_responder,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.mode"


def test_starting_an_unknown_playbook_is_404_naming_it(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    alert = post_alert(client, tokens.as_ingest)
    response = client.post("/v1/runs", json={"alert_id": alert["alert_id"], "playbook": "nope"},
                           headers=tokens.as_responder)
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


def test_starting_on_an_unknown_alert_is_404_naming_it(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post("/v1/runs", json={"alert_id": "no-alert", "playbook": "by-hand"},
                           headers=tokens.as_responder)
    assert response.status_code == 404
    assert "'no-alert'" in response.json()["detail"]
    assert client.get("/v1/runs", headers=tokens.as_responder).json()["runs"] == []


def test_an_unknown_run_is_404(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/v1/runs/01000000-0000-7000-8000-000000000000",
                          headers=tokens.as_responder)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    cancel = client.post("/v1/runs/nope/cancel", headers=tokens.as_responder)
    assert cancel.status_code == 404


def test_runs_are_filtered_by_status_and_alert(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    first, second = (post_alert(client, tokens.as_ingest)["alert_id"] for _ in range(2))
    ids = {}
    for alert_id in (first, second):
        response = client.post("/v1/runs", json={"alert_id": alert_id, "playbook": "by-hand"},
                               headers=tokens.as_responder)
        ids[alert_id] = response.json()["id"]
    client.post(f"/v1/runs/{ids[second]}/cancel", headers=tokens.as_responder)

    def listed(query: str) -> list[str]:
        answer = client.get(f"/v1/runs?{query}", headers=tokens.as_responder)
        assert answer.status_code == 200, answer.text
        return [run["id"] for run in answer.json()["runs"]]

    assert listed("") == [ids[second], ids[first]]
    assert listed("status=queued") == [ids[first]]
    assert listed("status=cancelled") == [ids[second]]
    assert listed(f"alert_id={second}") == [ids[second]]
    assert listed(f"limit=1&cursor={ids[second]}") == [ids[first]]
    page = client.get("/v1/runs?status=queued&limit=1", headers=tokens.as_responder).json()
    assert page["next"] is None  # the one queued run is the last page
    page = client.get("/v1/runs?limit=1", headers=tokens.as_responder).json()
    assert page["next"] == f"/v1/runs?limit=1&cursor={ids[second]}"
    unknown = client.get("/v1/runs?status=done", headers=tokens.as_responder)
    assert unknown.status_code == 422
    assert "waiting_approval" in unknown.json()["detail"]


def test_a_queued_run_is_cancelled_once_and_then_409(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    alert = post_alert(client, tokens.as_ingest)
    run_id = client.post("/v1/runs", json={"alert_id": alert["alert_id"], "playbook": "by-hand"},
                         headers=tokens.as_responder).json()["id"]

    cancelled = client.post(f"/v1/runs/{run_id}/cancel", headers=tokens.as_other_responder)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None

    again = client.post(f"/v1/runs/{run_id}/cancel", headers=tokens.as_responder)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "cancelled" in again.json()["detail"]
    events = client.get(f"/v1/audit?run_id={run_id}", headers=tokens.as_admin).json()["events"]
    assert [(e["verb"], e["actor"]) for e in events] == [("run.queued", "alice"),
                                                         ("run.cancelled", "bob")]


def test_rollback_answers_409_until_the_run_ended_and_when_nothing_can_be_undone(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    """The whole rollback (plan, approval, undo in AWS) is in tests/integration/test_rollback.py;
    here the HTTP answers: 404, 409 with the reason, and nothing queued by a refusal."""
    assert worker_client.post("/v1/runs/0190c3e0-0000-7000-8000-000000000000/rollback",
                              headers=tokens.as_responder).status_code == 404
    alert = post_alert(worker_client, tokens.as_ingest, title="odd login")
    started = worker_client.post(
        "/v1/runs", json={"alert_id": alert["alert_id"], "playbook": "by-hand"},
        headers=tokens.as_responder,
    ).json()
    wait_for_run(worker_client, started["id"], tokens.as_responder, "succeeded")
    refused = worker_client.post(f"/v1/runs/{started['id']}/rollback",
                                 headers=tokens.as_responder)
    assert refused.status_code == 409
    assert "has nothing that can be undone" in refused.json()["detail"]
    runs = worker_client.get("/v1/runs", headers=tokens.as_responder).json()["runs"]
    assert [run["id"] for run in runs] == [started["id"]]
    assert worker_client.post(f"/v1/runs/{started['id']}/rollback",
                              headers=tokens.as_ingest).status_code == 403
