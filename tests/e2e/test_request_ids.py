"""Every request has an id, answered in X-Request-ID and on every log line it causes; every
refusal is logged (without the credential) and counted by why."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY

from tests.json_log import lines

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import Tokens

NEW_ID = re.compile(r"[0-9a-f]{32}")
BOGUS_TOKEN = "rip_" + "n0t-a-real-token-but-shaped-like-one"





def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("riposte_http_refused_total", {"reason": reason}) or 0.0


def deliveries_refused() -> float:
    return REGISTRY.get_sample_value("riposte_alerts_received_total",
                                     {"source": "generic", "outcome": "refused"}) or 0.0


def test_a_sane_request_id_is_kept_and_answered(client: TestClient) -> None:
    for given in ["abc-123", "Root=1-67891233-abcdef012345678912345678", "a" * 128]:
        answer = client.get("/healthz", headers={"X-Request-ID": given})
        assert answer.headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "has spaces", "semi;colon", "a" * 129, "<script>",
                                   "line\tbreak"])
def test_an_unfit_request_id_is_replaced_by_a_new_one(client: TestClient, given: str) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": given})
    assert NEW_ID.fullmatch(answer.headers["X-Request-ID"])


def test_a_request_without_an_id_gets_a_new_one_each_time(client: TestClient) -> None:
    first, second = (client.get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second)
    assert first != second


LOG_IT = """\
name: log-it
trigger:
  source: [generic]
steps:
  - {id: note, action: core.log, with: {message: "{{ alert.title }}"}}
"""


def test_every_line_a_request_causes_carries_its_id(
    client: TestClient, tokens: Tokens, json_log: io.StringIO,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("log-it.yml", LOG_IT)
    answer = client.post("/v1/alerts", headers={**tokens.as_ingest, "X-Request-ID": "trace-42"},
                         json={"title": "disk full", "severity": 50})
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-ID"] == "trace-42"
    [run_id] = answer.json()["run_ids"]
    caused = [line for line in lines(json_log) if line.get("request_id") == "trace-42"]
    # The ingest's line about the alert, and the run it queued (engine.event_log).
    assert {line["logger"] for line in caused} >= {"riposte.api", "riposte.events"}
    [queued] = [line for line in caused if line.get("event") == "run.queued"]
    assert (queued["run_id"], queued["alert_id"]) == (run_id, answer.json()["alert_id"])
    assert all(line.get("request_id") == "trace-42" for line in lines(json_log)
               if line.get("alert_id") == answer.json()["alert_id"])


def test_refusals_are_counted_by_reason_and_logged_without_the_credential(
    client: TestClient, tokens: Tokens, json_log: io.StringIO
) -> None:
    reasons = ["unauthenticated", "forbidden", "invalid", "too_large", "malformed"]
    before = {reason: refused(reason) for reason in reasons}
    deliveries_before = deliveries_refused()

    bogus = {"Authorization": f"Bearer {BOGUS_TOKEN}", "X-Request-ID": "refused-1"}
    assert client.post("/v1/alerts", headers=bogus, json={"title": "x"}).status_code == 401
    assert client.get("/v1/runs", headers=tokens.as_ingest).status_code == 403
    assert client.get("/v1/audit?limit=0", headers=tokens.as_admin).status_code == 422
    big = b'{"title": "' + b"x" * (70 * 1024) + b'"}'
    assert client.post("/v1/alerts", headers={**tokens.as_ingest,
                                              "Content-Type": "application/json"},
                       content=big).status_code == 413
    assert client.post("/v1/alerts", headers={**tokens.as_ingest,
                                              "Content-Type": "application/json"},
                       content=b'{"title": ').status_code == 400

    assert {reason: refused(reason) - before[reason] for reason in reasons} == dict.fromkeys(
        reasons, 1.0)
    assert deliveries_refused() == deliveries_before + 3  # the 401, the 413 and the 400
    warnings = [line for line in lines(json_log) if line.get("event") == "http.refused"]
    assert [(w["status"], w["level"]) for w in warnings] == [
        (401, "warning"), (403, "warning"), (422, "warning"), (413, "warning"), (400, "warning")]
    [unauthenticated] = [w for w in warnings if w["status"] == 401]
    assert unauthenticated["request_id"] == "refused-1"
    assert (unauthenticated["method"], unauthenticated["route"]) == ("POST", "/v1/alerts")
    assert "token unknown, revoked or expired" in unauthenticated["message"]
    assert "limit" in [w for w in warnings if w["status"] == 422][0]["message"]
    assert BOGUS_TOKEN not in json_log.getvalue()
    assert tokens.ingest not in json_log.getvalue()
