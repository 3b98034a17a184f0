"""Playbooks with several triggers, through the HTTP API: one run per alert, each trigger's own
threshold, related alerts folded whichever trigger took them, and every path of the shipped
playbooks that merged a near-copy (GuardDuty and Security Hub; CloudTrail and an alarm)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.app import create_app
from core.settings import Settings
from tests import cloudtrail_samples as ct
from tests import sns_keys
from tests.alarm_samples import alarm_message, alarm_notification
from tests.e2e.console_client import console_client, page, signed_in
from tests.integration.test_wiring_templates import sample_events

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, PostAlert, Tokens

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVENTBRIDGE = "/v1/webhooks/eventbridge"

# Both triggers take an IAM alert; the second takes any other generic alert too.
OVERLAPPING = """\
name: overlapping
trigger:
  - {source: [generic], kind: [iam]}
  - {source: [generic]}
steps:
  - {id: note, action: core.log, with: {message: "{{ alert.title }}"}}
"""

# Two thresholds of two each: counted together, one event of each kind would fire.
TWO_COUNTS = """\
name: two-counts
trigger:
  - {source: [generic], kind: [stop], threshold: {count: 2, within: 5m}}
  - {source: [generic], kind: [delete], threshold: {count: 2, within: 5m}}
steps:
  - {id: note, action: core.log, with: {message: "{{ alerts | length }}"}}
"""

# The same case from two sources, correlated on the same field.
TWO_SOURCES = """\
name: two-sources
trigger:
  - {source: [guardduty], correlate: {by: principal.arn, within: 1h}}
  - {source: [securityhub], correlate: {by: principal.arn, within: 1h}}
steps:
  - {id: look, action: core.log, approval: {reason: look first}, with: {message: go}}
"""


def generic(kind: str, minutes: float = 0, **fields: Any) -> dict[str, Any]:
    return {"source": "generic", "kind": kind, "title": f"{kind} at {minutes}", "severity": 50,
            "event_time": (T0 + timedelta(minutes=minutes)).isoformat(), **fields}


def queued_trigger(client: TestClient, tokens: Tokens, alert_id: str) -> Any:
    """The trigger the audit log says started a run on the alert (its place in the list)."""
    events = client.get(f"/v1/audit?alert_id={alert_id}", headers=tokens.as_responder).json()
    [queued] = [e for e in events["events"] if e["verb"] == "run.queued"]
    return queued["details"]["trigger"]


def test_an_alert_two_triggers_match_starts_one_run_by_the_first(
    client: TestClient, tokens: Tokens, post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("overlapping.yml", OVERLAPPING)
    both = post_alert(client, tokens.as_ingest, **generic("iam"))
    second_only = post_alert(client, tokens.as_ingest, **generic("ec2"))

    assert len(both["run_ids"]) == 1 and len(second_only["run_ids"]) == 1
    assert queued_trigger(client, tokens, both["alert_id"]) == 0
    assert queued_trigger(client, tokens, second_only["alert_id"]) == 1
    listed = client.get("/v1/playbooks", headers=tokens.as_responder).json()
    [book] = listed["playbooks"]
    assert [t["kind"] for t in book["triggers"]] == [["iam"], []]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_console_shows_each_trigger_of_a_playbook(
    settings: Settings, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("overlapping.yml", OVERLAPPING)
    write_playbook("by-hand.yml", "name: by-hand\n" + OVERLAPPING.split("\n", 4)[4])
    with console_client(create_app(settings)) as browser:
        signed_in(browser, tokens.responder)
        shown = page(browser.get("/ui/playbooks"))

    items = {e.attrs["data-playbook"]: e for e in shown.get("playbooks").by_class("playbook")}
    summaries = [e.text for e in items["overlapping"].by_tag("summary")]
    assert [s for s in summaries if s.startswith("Trigger")] == [
        "Trigger 1 of 2", "Trigger 2 of 2"]
    assert "no trigger: started by hand only" in items["by-hand"].text


def test_each_threshold_trigger_counts_its_own_events(
    client: TestClient, tokens: Tokens, post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("two-counts.yml", TWO_COUNTS)
    first_stop = post_alert(client, tokens.as_ingest, **generic("stop", 0))
    delete = post_alert(client, tokens.as_ingest, **generic("delete", 1))
    assert first_stop["run_ids"] == delete["run_ids"] == []  # one of each: neither count is 2

    second_stop = post_alert(client, tokens.as_ingest, **generic("stop", 2))
    [run_id] = second_stop["run_ids"]
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert sorted(run["alert_ids"]) == sorted([first_stop["alert_id"], second_stop["alert_id"]])
    assert queued_trigger(client, tokens, second_stop["alert_id"]) == 0


def test_related_alerts_taken_by_two_triggers_fold_into_one_run(
    client: TestClient, tokens: Tokens, post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("two-sources.yml", TWO_SOURCES)
    mallory = {"type": "IAMUser", "name": "mallory", "arn": "arn:aws:iam::111122223333:user/m"}
    guardduty = post_alert(client, tokens.as_ingest, source="guardduty", kind="finding",
                           title="key misused", severity="high", principal=mallory,
                           event_time=T0.isoformat())
    securityhub = post_alert(client, tokens.as_ingest, source="securityhub", kind="finding",
                             title="the same, imported", severity="high", principal=mallory,
                             event_time=(T0 + timedelta(minutes=5)).isoformat())

    [run_id] = guardduty["run_ids"]
    assert (securityhub["run_ids"], securityhub["joined_run_ids"]) == ([], [run_id])
    audit = client.get(f"/v1/audit?alert_id={securityhub['alert_id']}",
                       headers=tokens.as_responder).json()["events"]
    [joined] = [e for e in audit if e["verb"] == "alert.correlated"]
    assert (joined["run_id"], joined["details"]["trigger"]) == (run_id, 1)


# ---------------------------------------------------------------------------------------------
# The shipped playbooks: every path of the near-copies they replaced still starts them


@pytest.fixture
def shipped(write_playbook: Callable[[str, str], Path]) -> None:
    for path in sorted(SHIPPED.glob("*.yml")):
        write_playbook(path.name, path.read_text(encoding="utf-8"))


def post_event(client: TestClient, tokens: Tokens, event: dict[str, Any]) -> dict[str, Any]:
    response = client.post(EVENTBRIDGE, json=event, headers=tokens.as_ingest)
    assert response.status_code == 202, response.text
    [alert] = response.json()["alerts"]
    return dict(alert)


def run_of(client: TestClient, tokens: Tokens, alert: dict[str, Any]) -> dict[str, Any]:
    [run_id] = alert["run_ids"]
    return dict(client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json())


@pytest.mark.usefixtures("shipped")
@pytest.mark.parametrize(("sample", "trigger"), [
    ("guardduty-key-unauthorized", 0), ("guardduty-key-credential-access", 0),
    ("securityhub-key-ttp", 1)])
def test_guardduty_and_security_hub_findings_start_compromised_credentials(
    client: TestClient, tokens: Tokens, sample: str, trigger: int
) -> None:
    alert = post_event(client, tokens, sample_events()[sample])
    assert run_of(client, tokens, alert)["playbook"] == "compromised-credentials"
    assert queued_trigger(client, tokens, alert["alert_id"]) == trigger


@pytest.mark.usefixtures("shipped")
def test_security_hub_importing_a_guardduty_finding_joins_its_run(
    client: TestClient, tokens: Tokens
) -> None:
    """GuardDuty's finding and Security Hub's copy of it name one key: one run judges both."""
    events = sample_events()
    guardduty = post_event(client, tokens, events["guardduty-key-unauthorized"])
    copy = events["securityhub-key-ttp"]
    [finding] = copy["detail"]["findings"]
    finding["UpdatedAt"] = "2024-03-01T10:05:00Z"  # imported minutes after GuardDuty's update
    imported = post_event(client, tokens, copy)
    assert (imported["run_ids"], imported["joined_run_ids"]) == ([], guardduty["run_ids"])


@pytest.mark.usefixtures("shipped")
def test_a_cloudtrail_burst_starts_mass_instance_termination_by_its_count(
    client: TestClient, tokens: Tokens
) -> None:
    ids = [f"i-0burst{n:02d}" for n in range(20)]
    record = ct.record(
        ct.ALERT_TIME, "TerminateInstances",
        request={"instancesSet": {"items": [{"instanceId": i} for i in ids]}},
        response={"instancesSet": {"items": [
            {"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"},
             "previousState": {"code": 16, "name": "running"}} for i in ids]}},
    )
    event = {"version": "0", "id": "burst-1", "detail-type": "AWS API Call via CloudTrail",
             "source": "aws.ec2", "account": ct.ACCOUNT, "time": "2020-11-06T03:21:39Z",
             "region": record["awsRegion"], "resources": [], "detail": record}
    alert = post_event(client, tokens, event)
    assert run_of(client, tokens, alert)["playbook"] == "mass-instance-termination"
    assert queued_trigger(client, tokens, alert["alert_id"]) == 0


@pytest.fixture
def sns_client(settings: Settings, tmp_path: Path, tokens: Tokens,
               make_client: MakeClient) -> Iterator[TestClient]:
    cert_dir = tmp_path / "sns-certs"
    cert_dir.mkdir()
    (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(sns_keys.default_identity().certificate_pem)
    signed = settings.model_copy(update={"sns_cert_dir": cert_dir,
                                         "sns_topics": [sns_keys.TOPIC_ARN]})
    with make_client(signed) as client:
        yield client


@pytest.mark.usefixtures("shipped")
def test_a_cloudwatch_alarm_starts_mass_instance_termination(
    sns_client: TestClient, tokens: Tokens
) -> None:
    message = alarm_message(datetime.now(UTC), account=ct.ACCOUNT, region="us-east-1")
    response = sns_client.post(
        "/v1/webhooks/sns", content=json.dumps(sns_keys.sign(alarm_notification(message))),
        headers={"Content-Type": "text/plain; charset=UTF-8",
                 "x-amz-sns-message-type": "Notification"},
    )
    assert response.status_code == 202, response.text
    [alert] = response.json()["alerts"]
    assert run_of(sns_client, tokens, alert)["playbook"] == "mass-instance-termination"
    assert queued_trigger(sns_client, tokens, alert["alert_id"]) == 1
