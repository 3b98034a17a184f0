"""Correlation windows through the HTTP API: related alerts join the open run and it sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MALLORY = "arn:aws:iam::111122223333:user/mallory"

FOLD = """\
name: fold-findings
trigger:
  source: [guardduty]
  correlate:
    by: [principal.arn, type]
    within: 1h
steps:
  - id: look
    action: core.log
    with: {message: "{{ alerts | length }} alert(s) of {{ alert.principal.arn }}"}
"""

# The first step waits for a human, so alerts can join before the rest runs.
FOLD_AND_REPORT = """\
name: fold-and-report
trigger:
  source: [guardduty]
  correlate: {by: principal.arn, within: 1h}
steps:
  - id: go
    action: core.log
    approval: {reason: look first}
    with: {message: go}
  - id: report
    action: core.set
    with:
      values:
        first: "{{ alert.source_ip }}"
        ips: "{{ alerts | map(attribute='source_ip') | list }}"
        ids: "{{ alerts | map(attribute='id') | list }}"
"""


def finding(minutes: float, *, arn: str | None = MALLORY, type_: str = "Recon:IAMUser/TorIP",
            ip: str = "198.51.100.7") -> dict[str, Any]:
    """A GuardDuty-like generic alert body at T0 + ``minutes`` (event time)."""
    return {
        "source": "guardduty", "kind": "finding", "type": type_, "title": f"{type_} by mallory",
        "severity": "high", "principal": {"type": "IAMUser", "name": "mallory", "arn": arn},
        "event_time": (T0 + timedelta(minutes=minutes)).isoformat(), "source_ip": ip,
    }


@pytest.fixture
def fold(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("fold.yml", FOLD)


@pytest.mark.usefixtures("fold")
def test_related_alerts_join_the_open_run_which_lists_them(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    first = post_alert(client, tokens.as_ingest, **finding(0))
    [run_id] = first["run_ids"]
    late = post_alert(client, tokens.as_ingest, **finding(50))
    early = post_alert(client, tokens.as_ingest, **finding(-30))  # delivered out of order

    for joined in (late, early):
        assert (joined["run_ids"], joined["joined_run_ids"]) == ([], [run_id])
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert run["alert_id"] == first["alert_id"]
    # In event time, not arrival order.
    assert run["alert_ids"] == [early["alert_id"], first["alert_id"], late["alert_id"]]
    shown = client.get(f"/v1/alerts/{late['alert_id']}", headers=tokens.as_responder).json()
    assert shown["run_ids"] == [run_id]
    listed = client.get(f"/v1/runs?alert_id={late['alert_id']}", headers=tokens.as_responder)
    assert [r["id"] for r in listed.json()["runs"]] == [run_id]
    audit = client.get(f"/v1/audit?alert_id={late['alert_id']}",
                       headers=tokens.as_responder).json()["events"]
    correlated = [e for e in audit if e["verb"] == "alert.correlated"]
    assert [(e["run_id"], e["details"]["playbook"]) for e in correlated] == [
        (run_id, "fold-findings")]


@pytest.mark.usefixtures("fold")
@pytest.mark.parametrize(
    "other",
    [
        finding(10, type_="UnauthorizedAccess:IAMUser/MaliciousIPCaller"),
        finding(10, arn="arn:aws:iam::111122223333:user/alice"),
        finding(61),
        finding(-61),
    ],
    ids=["other-type", "other-principal", "after-the-window", "before-the-window"],
)
def test_an_alert_outside_the_key_or_the_window_starts_its_own_run(
    client: TestClient, tokens: Tokens, post_alert: PostAlert, other: dict[str, Any]
) -> None:
    first = post_alert(client, tokens.as_ingest, **finding(0))
    second = post_alert(client, tokens.as_ingest, **other)

    assert second["joined_run_ids"] == []
    assert len(second["run_ids"]) == 1 and second["run_ids"] != first["run_ids"]
    run = client.get(f"/v1/runs/{first['run_ids'][0]}", headers=tokens.as_responder).json()
    assert run["alert_ids"] == [first["alert_id"]]


@pytest.mark.usefixtures("fold")
def test_an_alert_does_not_join_a_run_that_has_ended(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    first = post_alert(client, tokens.as_ingest, **finding(0))
    [run_id] = first["run_ids"]
    cancelled = client.post(f"/v1/runs/{run_id}/cancel", headers=tokens.as_responder)
    assert cancelled.status_code == 200, cancelled.text

    second = post_alert(client, tokens.as_ingest, **finding(5))

    assert second["joined_run_ids"] == [] and len(second["run_ids"]) == 1
    assert second["run_ids"] != [run_id]


@pytest.mark.usefixtures("fold")
def test_alerts_lacking_a_key_field_are_not_folded_together(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    answers = [post_alert(client, tokens.as_ingest, **finding(m, arn=None)) for m in (0, 1)]

    assert [len(a["run_ids"]) for a in answers] == [1, 1]
    assert answers[0]["run_ids"] != answers[1]["run_ids"]


def test_a_run_sees_the_alerts_that_joined_it_while_it_waited(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("fold-and-report.yml", FOLD_AND_REPORT)
    client = worker_client
    first = post_alert(client, tokens.as_ingest, **finding(5, ip="198.51.100.7"))
    [run_id] = first["run_ids"]
    run = wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
    [shown] = run["approvals"]
    joined = post_alert(client, tokens.as_ingest, **finding(1, ip="203.0.113.9"))
    assert joined["joined_run_ids"] == [run_id]

    # The request shown before the alert joined judged one alert of two: it is superseded, and
    # a decision on it is refused. The run starts over on both and asks again.
    request = client.get(f"/v1/approvals/{shown['id']}", headers=tokens.as_responder).json()
    assert request["status"] == "superseded"
    refused = client.post(
        f"/v1/approvals/{shown['id']}/decision",
        json={"decision": "approve", "reason": "go", "plan_hash": request["plan_hash"]},
        headers=tokens.as_responder,
    )
    assert refused.status_code == 409 and "superseded" in refused.json()["detail"]
    run = wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
    [ref] = [a for a in run["approvals"] if a["id"] != shown["id"]]
    request = client.get(f"/v1/approvals/{ref['id']}", headers=tokens.as_responder).json()
    assert request["plan"]["widened"]["replaces"] == shown["id"]
    decided = client.post(
        f"/v1/approvals/{ref['id']}/decision",
        json={"decision": "approve", "reason": "go", "plan_hash": request["plan_hash"]},
        headers=tokens.as_responder,
    )
    assert decided.status_code == 200, decided.text
    run = wait_for_run(client, run_id, tokens.as_responder, "succeeded")

    assert run["vars"] == {
        "first": "198.51.100.7",
        "ips": ["203.0.113.9", "198.51.100.7"],
        "ids": [joined["alert_id"], first["alert_id"]],
    }
