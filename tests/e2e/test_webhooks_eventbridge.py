"""POST /v1/webhooks/eventbridge and /v1/webhooks/cloudtrail, and GET /v1/deliveries.

Samples (tests/samples, each file names its origin): GuardDuty and CloudWatch alarm events from
the AWS documentation's EventBridge examples; the seed's CloudTrail log file with its
TerminateInstances record; a console sign-in record from the CloudTrail user guide.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.settings import Settings
from tests.samples import load

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens

EVENTBRIDGE = "/v1/webhooks/eventbridge"
CLOUDTRAIL = "/v1/webhooks/cloudtrail"
API_KEY_HEADER = "x-riposte-api-key"

MASS_TERMINATION = """\
name: mass-termination
trigger:
  source: [cloudtrail]
  type: "TerminateInstances"
steps:
  - id: note
    action: core.log
    with:
      message: "{{ alert.title }}"
"""


def _post(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    # An API destination sends JSON; the content type is not something to rely on.
    return client.post(path, content=json.dumps(body), headers=headers)


def _deliveries(client: TestClient, tokens: Tokens, **params: str) -> list[dict[str, Any]]:
    response = client.get("/v1/deliveries", params=params, headers=tokens.as_admin)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


def test_one_eventbridge_event_with_the_api_key_header_is_stored(
    client: TestClient, tokens: Tokens
) -> None:
    event = load("guardduty_ec2_ssh_brute_force")
    response = _post(client, EVENTBRIDGE, event, {API_KEY_HEADER: tokens.ingest})
    assert response.status_code == 202, response.text
    [answer] = response.json()["alerts"]
    assert answer["duplicate"] is False and answer["run_ids"] == []
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert (alert["source"], alert["type"]) == (
        "guardduty", "UnauthorizedAccess:EC2/SSHBruteForce")
    assert alert["account"] == event["account"]


def test_an_array_of_events_with_a_bearer_token_stores_one_alert_each(
    client: TestClient, tokens: Tokens
) -> None:
    events = [load("guardduty_ec2_ssh_brute_force"), load("cloudwatch_alarm_single_metric")]
    response = _post(client, EVENTBRIDGE, events, tokens.as_ingest)
    assert response.status_code == 202, response.text
    answers = response.json()["alerts"]
    sources = [client.get(f"/v1/alerts/{a['alert_id']}", headers=tokens.as_responder)
               .json()["source"] for a in answers]
    assert sources == ["guardduty", "cloudwatch"]


def test_a_redelivered_event_answers_200_with_the_same_alert_and_stores_nothing_new(
    client: TestClient, tokens: Tokens
) -> None:
    event = load("cloudwatch_alarm_single_metric")
    first = _post(client, EVENTBRIDGE, event, {API_KEY_HEADER: tokens.ingest})
    again = _post(client, EVENTBRIDGE, event, {API_KEY_HEADER: tokens.ingest})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["alerts"] == [
        {"alert_id": first.json()["alerts"][0]["alert_id"], "run_ids": [], "joined_run_ids": [],
         "duplicate": True, "ignored": False}
    ]
    alerts = client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"]
    assert [a["occurrences"] for a in alerts] == [2]


@pytest.mark.parametrize("headers", [
    pytest.param({API_KEY_HEADER: "rip_not-a-token"}, id="wrong-api-key"),
    pytest.param({}, id="no-credentials"),
])
def test_a_webhook_without_a_valid_token_is_refused_and_recorded(
    client: TestClient, tokens: Tokens, headers: dict[str, str]
) -> None:
    response = _post(client, EVENTBRIDGE, load("guardduty_ec2_ssh_brute_force"), headers)
    assert response.status_code == 401
    assert API_KEY_HEADER in response.json()["detail"]
    assert client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"] == []
    [row] = _deliveries(client, tokens)
    assert (row["outcome"], row["source"]) == ("rejected", "eventbridge")
    assert row["reason"].startswith("401: authentication required")


def test_a_responder_token_may_not_post_events(client: TestClient, tokens: Tokens) -> None:
    response = _post(client, EVENTBRIDGE, load("guardduty_ec2_ssh_brute_force"),
                     {API_KEY_HEADER: tokens.responder})
    assert response.status_code == 403


def test_the_api_key_header_name_is_configurable(
    settings: Settings, tokens: Tokens, make_client: MakeClient
) -> None:
    custom = settings.model_copy(update={"eventbridge_api_key_header": "x-eventbridge-key"})
    with make_client(custom) as custom_client:
        event = load("guardduty_ec2_ssh_brute_force")
        ok = _post(custom_client, EVENTBRIDGE, event, {"x-eventbridge-key": tokens.ingest})
        refused = _post(custom_client, EVENTBRIDGE, event, {API_KEY_HEADER: tokens.ingest})
    assert (ok.status_code, refused.status_code) == (202, 401)


def test_the_seed_cloudtrail_file_queues_the_mass_termination_playbook(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("mass-termination.yml", MASS_TERMINATION)
    response = _post(client, CLOUDTRAIL, load("seed_terminate_instances"), tokens.as_ingest)
    assert response.status_code == 202, response.text
    [answer] = response.json()["alerts"]
    [run_id] = answer["run_ids"]
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert (run["playbook"], run["status"]) == ("mass-termination", "queued")
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert (alert["source"], alert["type"], alert["principal"]["name"]) == (
        "cloudtrail", "TerminateInstances", "Roboman1")


def test_a_bare_cloudtrail_record_is_stored(client: TestClient, tokens: Tokens) -> None:
    record = load("cloudtrail_signin_root_no_mfa")
    response = _post(client, CLOUDTRAIL, record, {API_KEY_HEADER: tokens.ingest})
    assert response.status_code == 202, response.text
    [answer] = response.json()["alerts"]
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert (alert["type"], alert["principal"]["type"]) == ("ConsoleLogin", "Root")
    assert alert["dedup_key"] == f"cloudtrail:{record['eventID']}"


@pytest.mark.parametrize(("path", "body", "status", "fragment"), [
    pytest.param(EVENTBRIDGE, b'{"detail-type": ', 400, "position 16", id="eventbridge-truncated"),
    pytest.param(CLOUDTRAIL, b"", 400, "position 0", id="cloudtrail-empty"),
    pytest.param(EVENTBRIDGE, b'{"a": NaN}', 400, "NaN", id="nan"),
    pytest.param(EVENTBRIDGE, b"\xff\xfe{", 400, "malformed JSON", id="not-utf8"),
    pytest.param(EVENTBRIDGE, b'{"hello": 1}', 422, "not an EventBridge event", id="not-an-event"),
    pytest.param(EVENTBRIDGE, b"[1]", 422, "event [0]", id="array-of-numbers"),
    pytest.param(EVENTBRIDGE, b"[]", 422, "no event", id="empty-array"),
    pytest.param(CLOUDTRAIL, b'{"Records": 3}', 422, "Records", id="records-not-array"),
])
def test_a_bad_body_is_a_4xx_naming_the_problem_and_is_recorded(
    client: TestClient, tokens: Tokens, path: str, body: bytes, status: int, fragment: str
) -> None:
    response = client.post(path, content=body, headers=tokens.as_ingest)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    [row] = _deliveries(client, tokens)
    assert row["outcome"] == "rejected" and row["reason"].startswith(str(status))
    assert row["source"] == path.rsplit("/", 1)[-1] and row["body_bytes"] == len(body)


def test_deliveries_list_every_outcome_newest_first_for_admins_only(
    client: TestClient, tokens: Tokens
) -> None:
    event = load("guardduty_ec2_ssh_brute_force")
    _post(client, EVENTBRIDGE, event, tokens.as_ingest)
    _post(client, EVENTBRIDGE, event, tokens.as_ingest)
    client.post(CLOUDTRAIL, content=b"{", headers=tokens.as_ingest)

    rows = _deliveries(client, tokens)
    assert [(r["outcome"], r["source"], r["endpoint"]) for r in rows] == [
        ("rejected", "cloudtrail", CLOUDTRAIL),
        ("duplicate", "guardduty", EVENTBRIDGE),
        ("accepted", "guardduty", EVENTBRIDGE),
    ]
    assert rows[0]["reason"].startswith("400: malformed JSON body")
    assert rows[1]["alert_id"] == rows[2]["alert_id"] is not None
    assert [r["outcome"] for r in _deliveries(client, tokens, outcome="duplicate")] == [
        "duplicate"]
    first = client.get("/v1/deliveries?limit=1", headers=tokens.as_admin).json()
    assert [r["outcome"] for r in first["deliveries"]] == ["rejected"]
    second = client.get(first["next"], headers=tokens.as_admin).json()
    assert [r["outcome"] for r in second["deliveries"]] == ["duplicate"]
    assert client.get("/v1/deliveries", headers=tokens.as_responder).status_code == 403


def test_one_bad_event_in_an_array_stores_none_of_them(client: TestClient, tokens: Tokens) -> None:
    events = [load("guardduty_ec2_ssh_brute_force"), "not an event"]
    response = _post(client, EVENTBRIDGE, events, tokens.as_ingest)
    assert response.status_code == 422
    assert "event [1]" in response.json()["detail"]
    assert client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"] == []


def test_the_openapi_document_lists_the_webhooks(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {EVENTBRIDGE, CLOUDTRAIL, "/v1/webhooks/sns", "/v1/deliveries"} <= set(paths)


def test_a_finding_riposte_itself_last_updated_is_ignored_not_acted_on(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    """Sample: the user guide's Findings - Imported envelope with the two ASR findings; the
    first carries the Note Riposte writes when it updates a finding, the second another's."""
    write_playbook("any-finding.yml", "name: any-finding\ntrigger: {source: [securityhub]}\n"
                   "steps:\n  - {id: note, action: core.log, with: {message: x}}\n")
    event = load("securityhub_event_imported_envelope")
    ours, theirs = load("securityhub_finding_afsbp_ec2_2"), load("securityhub_finding_afsbp_iam_8")
    ours["Note"] = {"Text": "contained by run r-1", "UpdatedBy": "riposte",
                    "UpdatedAt": "2026-11-27T20:00:00Z"}
    theirs["Note"] = {"Text": "looking", "UpdatedBy": "analyst",
                      "UpdatedAt": "2026-11-27T20:00:00Z"}
    event["detail"]["findings"] = [ours, theirs]
    response = _post(client, EVENTBRIDGE, event, tokens.as_ingest)
    assert response.status_code == 202, response.text
    ignored, stored = response.json()["alerts"]
    assert ignored == {"alert_id": None, "run_ids": [], "joined_run_ids": [], "duplicate": False,
                       "ignored": True}
    assert stored["ignored"] is False and len(stored["run_ids"]) == 1
    outcomes = sorted(d["outcome"] for d in _deliveries(client, tokens))
    assert outcomes == ["accepted", "ignored"]

    event["detail"]["findings"] = [ours]
    again = _post(client, EVENTBRIDGE, event, tokens.as_ingest)
    assert again.status_code == 200 and again.json()["alerts"][0]["ignored"] is True
    listed = client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"]
    assert len(listed) == 1
