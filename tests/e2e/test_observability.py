"""The audit log read over HTTP (filters, paging, verification) and the Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

LOG_IT = """\
name: log-it
trigger:
  source: [generic]
steps:
  - id: note
    action: core.log
    with:
      message: "{{ alert.title }}"
"""


def test_metrics_show_runs_by_status_and_alerts_received(
    worker_client: TestClient,
    tokens: Tokens,
    post_alert: PostAlert,
    wait_for_run: WaitForRun,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("log-it.yml", LOG_IT)
    run_id = post_alert(worker_client, tokens.as_ingest)["run_ids"][0]
    wait_for_run(worker_client, run_id, tokens.as_responder, "succeeded")

    response = worker_client.get("/metrics", headers=tokens.as_responder)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'riposte_runs{status="succeeded"} 1.0' in lines
    assert 'riposte_runs{status="queued"} 0.0' in lines
    assert "riposte_approvals_pending 0.0" in lines
    assert any(line.startswith('riposte_alerts_received_total{outcome="accepted",source="generic"}')
               for line in lines)


def test_the_audit_log_is_filtered_and_paged_by_id(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    alerts = [post_alert(client, tokens.as_ingest, title=f"a{i}")["alert_id"] for i in range(3)]

    def page(**params: str | int) -> dict[str, Any]:
        response = client.get("/v1/audit", params=params, headers=tokens.as_admin)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    by_sensor = page(actor="sensor")["events"]
    assert [(e["verb"], e["alert_id"]) for e in by_sensor] == [
        ("alert.received", alert_id) for alert_id in alerts]
    first = page(actor="sensor", limit=2)
    assert [e["alert_id"] for e in first["events"]] == alerts[:2]
    assert first["next"] == f"/v1/audit?actor=sensor&limit=2&cursor={first['events'][-1]['id']}"
    rest = client.get(first["next"], headers=tokens.as_admin).json()
    assert [e["alert_id"] for e in rest["events"]] == alerts[2:]
    assert rest["next"] is None

    since = by_sensor[1]["at"].replace("Z", "+00:00")
    later = page(actor="sensor", since=since)["events"]
    assert [e["alert_id"] for e in later] == alerts[1:]
    assert page(alert_id=alerts[0])["events"][0]["verb"] == "alert.received"


def test_audit_query_mistakes_are_422(client: TestClient, tokens: Tokens) -> None:
    for query in ["limit=501", "limit=0", "cursor=-1", "after_id=3", "since=yesterday",
                  "since=2026-01-01T00:00:00", "until=0.5", "until=1700000000"]:
        response = client.get(f"/v1/audit?{query}", headers=tokens.as_admin)
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"].startswith("query.")
