"""POST /v1/webhooks/sns: signed messages exactly as SNS posts them (text/plain JSON).

Messages are shaped like AWS's documented examples (tests/sns_keys) and signed with a throwaway
certificate pinned in RIPOSTE_SNS_CERT_DIR under the name of its SNS certificate URL. A valid
signature proves only that SNS sent a message to someone: every message type must also come
from a topic in RIPOSTE_SNS_TOPICS and be current (its signed Timestamp), or it is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from api.app import create_app
from core.settings import Settings
from tests import sns_keys
from tests.samples import load

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens

SNS = "/v1/webhooks/sns"
OTHER_TOPIC = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
# The topic of issue 12's probe: anyone's own, subscribed to an endpoint of theirs.
ATTACKER_TOPIC = "arn:aws:sns:us-east-1:999999999999:attacker-topic"
# The topic of the CloudWatch alarm sample (a delivery AWS made), allowed like ours.
SAMPLE_TOPIC = "arn:aws:sns:us-east-1:147946154733:Martin-lambda-test"
KINDS = ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
GUARDDUTY_PLAYBOOK = """\
name: guardduty-finding
trigger:
  source: [guardduty]
steps:
  - id: note
    action: core.log
    with:
      message: "{{ alert.title }}"
"""


@pytest.fixture
def sns_settings(settings: Settings, tmp_path: Path) -> Settings:
    cert_dir = tmp_path / "sns-certs"
    cert_dir.mkdir()
    (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(sns_keys.default_identity().certificate_pem)
    return settings.model_copy(update={
        "sns_cert_dir": cert_dir,
        "sns_topics": ["arn:aws:sns:us-east-1:123456789012:riposte-*", SAMPLE_TOPIC]})


@pytest.fixture
def visited() -> list[str]:
    """The SubscribeURLs the app visited (recorded instead of requested)."""
    return []


@pytest.fixture
def sns_client(
    sns_settings: Settings, tokens: Tokens, visited: list[str], make_client: MakeClient
) -> Iterator[TestClient]:
    app = create_app(sns_settings, confirm_subscription=visited.append)
    with make_client(app) as client:
        yield client


def _post(client: TestClient, message: dict[str, Any], *, kind: str | None = None,
          **kwargs: Any) -> Any:
    headers = {"Content-Type": "text/plain; charset=UTF-8",
               "x-amz-sns-message-type": kind or message["Type"]}
    return client.post(SNS, content=json.dumps(message), headers=headers, **kwargs)


def _deliveries(client: TestClient, tokens: Tokens) -> list[dict[str, Any]]:
    response = client.get("/v1/deliveries", headers=tokens.as_admin)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


def _audit_verbs(client: TestClient, tokens: Tokens) -> list[str]:
    events = client.get("/v1/audit", headers=tokens.as_responder).json()["events"]
    return [event["verb"] for event in events]


def test_a_signed_notification_is_stored_and_a_redelivery_is_a_repeat(
    sns_client: TestClient, tokens: Tokens
) -> None:
    message = sns_keys.sign(sns_keys.notification())
    first = _post(sns_client, message)
    assert first.status_code == 202, first.text
    [answer] = first.json()["alerts"]
    alert = sns_client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert alert["dedup_key"] == f"sns:{message['MessageId']}"
    assert alert["account"] == "123456789012"

    again = _post(sns_client, message)
    assert again.status_code == 200
    assert again.json()["alerts"][0] == {**answer, "duplicate": True}


def test_a_signed_cloudwatch_alarm_notification_becomes_a_cloudwatch_alert(
    sns_client: TestClient, tokens: Tokens
) -> None:
    # The sample's own signature is AWS's; re-sign it with the pinned test certificate.
    sample = load("sns_cloudwatch_alarm_redshift")
    fields = {k: v for k, v in sample.items()
              if k not in ("Signature", "SignatureVersion", "SigningCertURL")}
    fields["Timestamp"] = sns_keys.sns_timestamp()  # as if delivered now: 2015's is a replay
    response = _post(sns_client, sns_keys.sign(fields, version="1"))
    assert response.status_code == 202, response.text
    alert_id = response.json()["alerts"][0]["alert_id"]
    alert = sns_client.get(f"/v1/alerts/{alert_id}", headers=tokens.as_responder).json()
    assert alert["source"] == "cloudwatch"


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda m: {**m, "Message": m["Message"] + "!"}, id="message-changed"),
    pytest.param(lambda m: sns_keys.sign(sns_keys.notification(), sns_keys.other_identity()),
                 id="wrong-key"),
    pytest.param(lambda m: {**m, "SigningCertURL": "https://evil.example.com/cert.pem"},
                 id="certificate-off-sns"),
])
def test_a_tampered_notification_is_refused_403_and_recorded_rejected(
    sns_client: TestClient, tokens: Tokens, tamper: Any
) -> None:
    message = tamper(sns_keys.sign(sns_keys.notification()))
    response = _post(sns_client, message)
    assert response.status_code == 403, response.text
    assert "SNS signature refused" in response.json()["detail"]
    assert sns_client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"] == []
    [row] = _deliveries(sns_client, tokens)
    assert (row["outcome"], row["source"]) == ("rejected", "sns")
    assert row["reason"].startswith("403: SNS signature refused")


def test_a_subscription_to_an_allowed_topic_is_confirmed_once(
    sns_client: TestClient, tokens: Tokens, visited: list[str]
) -> None:
    message = sns_keys.sign(sns_keys.confirmation())
    response = _post(sns_client, message)
    assert response.status_code == 200, response.text
    assert visited == [message["SubscribeURL"]]
    [row] = _deliveries(sns_client, tokens)
    assert (row["outcome"], row["alert_id"]) == ("accepted", None)
    assert "sns.subscription_confirmed" in _audit_verbs(sns_client, tokens)


def test_a_subscription_to_another_topic_is_refused_without_a_visit(
    sns_client: TestClient, tokens: Tokens, visited: list[str]
) -> None:
    response = _post(sns_client, sns_keys.sign(sns_keys.confirmation(TopicArn=OTHER_TOPIC)))
    assert response.status_code == 403
    assert "RIPOSTE_SNS_TOPICS" in response.json()["detail"]
    assert visited == []
    [row] = _deliveries(sns_client, tokens)
    assert row["outcome"] == "rejected" and OTHER_TOPIC in row["reason"]
    assert "sns.subscription_refused" in _audit_verbs(sns_client, tokens)


def test_a_replayed_subscription_to_another_topic_is_recorded_at_a_bounded_rate(
    sns_client: TestClient, tokens: Tokens, visited: list[str], sns_settings: Settings
) -> None:
    """A stranger's SubscriptionConfirmation is signed by AWS and can be posted again and
    again: each is refused, but only the first few from one address are written down (the
    bound every refusal of an unproven sender has, RIPOSTE_ANONYMOUS_REFUSALS_PER_ADDRESS)."""
    message = sns_keys.sign(sns_keys.confirmation(TopicArn=OTHER_TOPIC))
    for _ in range(40):
        assert _post(sns_client, message).status_code == 403
    assert visited == []
    refused = [v for v in _audit_verbs(sns_client, tokens) if v == "sns.subscription_refused"]
    limit = sns_settings.anonymous_refusals_per_address
    assert 1 <= len(refused) <= limit < 40
    assert len(_deliveries(sns_client, tokens)) <= limit


def test_a_subscribe_url_off_the_sns_host_is_never_visited(
    sns_client: TestClient, tokens: Tokens, visited: list[str]
) -> None:
    message = sns_keys.sign(sns_keys.confirmation(SubscribeURL="https://example.com/confirm"))
    response = _post(sns_client, message)
    assert response.status_code == 403
    assert visited == []


def test_an_unsubscribe_confirmation_is_recorded_and_nothing_is_visited(
    sns_client: TestClient, tokens: Tokens, visited: list[str]
) -> None:
    response = _post(sns_client, sns_keys.sign(sns_keys.confirmation("UnsubscribeConfirmation")))
    assert response.status_code == 200, response.text
    assert visited == []
    assert [r["outcome"] for r in _deliveries(sns_client, tokens)] == ["accepted"]
    assert "sns.unsubscribe_confirmed" in _audit_verbs(sns_client, tokens)


@pytest.mark.parametrize(("content", "kind", "fragment"), [
    pytest.param("{", "Notification", "not JSON", id="truncated"),
    pytest.param("[]", "Notification", "JSON object", id="not-an-object"),
    pytest.param(json.dumps({"Type": "Notification"}), "Notification", "missing",
                 id="missing-fields"),
    pytest.param(json.dumps(sns_keys.sign(sns_keys.notification())), "SubscriptionConfirmation",
                 "does not match", id="header-mismatch"),
    pytest.param(json.dumps(sns_keys.sign(sns_keys.notification())), None, "does not match",
                 id="header-missing"),
])
def test_a_malformed_sns_body_is_400_and_recorded(
    sns_client: TestClient, tokens: Tokens, content: str, kind: str | None, fragment: str
) -> None:
    headers = {"Content-Type": "text/plain; charset=UTF-8"}
    if kind is not None:
        headers["x-amz-sns-message-type"] = kind
    response = sns_client.post(SNS, content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]
    [row] = _deliveries(sns_client, tokens)
    assert row["outcome"] == "rejected" and row["reason"].startswith("400")


def test_basic_auth_is_required_when_configured(
    sns_settings: Settings, tokens: Tokens, visited: list[str], make_client: MakeClient
) -> None:
    secured = sns_settings.model_copy(update={"sns_basic_auth": SecretStr("sns:s3cret-pass")})
    message = sns_keys.sign(sns_keys.notification())
    with make_client(create_app(secured, confirm_subscription=visited.append)) as client:
        missing = _post(client, message)
        wrong = _post(client, message, auth=("sns", "guess"))
        right = _post(client, message, auth=("sns", "s3cret-pass"))
        reasons = [r["reason"] for r in _deliveries(client, tokens)]
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 202)
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert not any("s3cret" in reason for reason in reasons)


# -- who may send, and when: the allow-list and the age of a message ----------------------------


def _message(kind: str, **fields: Any) -> dict[str, Any]:
    """The signed message of a kind, with these fields changed before signing."""
    if kind == "Notification":
        return sns_keys.sign(sns_keys.notification(**fields))
    return sns_keys.sign(sns_keys.confirmation(kind, **fields))


def _alerts_and_runs(client: TestClient, tokens: Tokens) -> tuple[list[Any], list[Any]]:
    alerts = client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"]
    runs = client.get("/v1/runs", headers=tokens.as_responder).json()["runs"]
    return alerts, runs


def _assert_refused(
    client: TestClient, tokens: Tokens, visited: list[str], response: Any, *fragments: str
) -> None:
    """403 saying why; nothing stored, started or visited; one rejected delivery with why."""
    assert response.status_code == 403, response.text
    message = response.json()["detail"]
    for fragment in fragments:
        assert fragment in message, message
    assert _alerts_and_runs(client, tokens) == ([], [])
    assert visited == []
    [row] = _deliveries(client, tokens)
    assert (row["outcome"], row["source"]) == ("rejected", "sns")
    assert row["reason"].startswith("403: ")
    for fragment in fragments:
        assert fragment in row["reason"]


def test_a_guardduty_event_signed_for_an_attackers_topic_is_refused_and_starts_no_run(
    write_playbook: Callable[[str, str], Path], sns_client: TestClient, tokens: Tokens,
    visited: list[str],
) -> None:
    write_playbook("guardduty-finding.yml", GUARDDUTY_PLAYBOOK)
    event = json.dumps(load("guardduty_ec2_ssh_brute_force"))
    # Issue 12's probe: a message SNS really signed, for a topic anyone can create, from 2015.
    forged = _post(sns_client, _message("Notification", TopicArn=ATTACKER_TOPIC, Message=event,
                                        Timestamp="2015-05-26T07:49:42.590Z"))
    _assert_refused(sns_client, tokens, visited, forged,
                    f"SNS Notification refused: topic '{ATTACKER_TOPIC}' is not allowed by "
                    "RIPOSTE_SNS_TOPICS")

    # The same event from our own topic, now, starts the playbook: the topic made the refusal.
    ours = _post(sns_client, _message("Notification", Message=event))
    assert ours.status_code == 202, ours.text
    assert len(ours.json()["alerts"][0]["run_ids"]) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_type_from_a_topic_not_allowed_is_refused_403_and_recorded(
    sns_client: TestClient, tokens: Tokens, visited: list[str], kind: str
) -> None:
    response = _post(sns_client, _message(kind, TopicArn=ATTACKER_TOPIC))
    _assert_refused(sns_client, tokens, visited, response,
                    f"topic '{ATTACKER_TOPIC}' is not allowed by RIPOSTE_SNS_TOPICS")


def _stamp(moment: datetime) -> str:
    return sns_keys.sns_timestamp(moment)


REPLAYS = [
    pytest.param(lambda now: "2015-05-26T07:49:42.590Z", "old, older than "
                 "RIPOSTE_SNS_MAX_AGE_SECONDS (4500 s) allows", id="from-2015"),
    pytest.param(lambda now: _stamp(now - timedelta(minutes=80)), "80 min old", id="80-min-old"),
    pytest.param(lambda now: _stamp(now + timedelta(minutes=6)), "in the future", id="6-min-ahead"),
    pytest.param(lambda now: _stamp(now + timedelta(days=400)), "in the future", id="next-year"),
]


@pytest.mark.parametrize(("timestamp", "fragment"), REPLAYS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_message_too_old_or_from_the_future_is_refused_as_a_replay(
    sns_client: TestClient, tokens: Tokens, visited: list[str], kind: str,
    timestamp: Callable[[datetime], str], fragment: str,
) -> None:
    stamp = timestamp(datetime.now(UTC))
    response = _post(sns_client, _message(kind, Timestamp=stamp))
    _assert_refused(sns_client, tokens, visited, response,
                    f"SNS {kind} refused as a replay: its Timestamp {stamp} is ", fragment)


def test_the_age_limit_is_a_setting_and_a_message_within_it_is_accepted(
    sns_settings: Settings, tokens: Tokens, visited: list[str], make_client: MakeClient
) -> None:
    ten_minutes = sns_settings.model_copy(update={"sns_max_age_seconds": 600.0})
    now = datetime.now(UTC)
    with make_client(create_app(ten_minutes, confirm_subscription=visited.append)) as client:
        stale = _post(client, _message("Notification",
                                       Timestamp=_stamp(now - timedelta(minutes=11))))
        late = _post(client, _message("Notification", MessageId="late-but-retried",
                                      Timestamp=_stamp(now - timedelta(minutes=9))))
        ahead = _post(client, _message("Notification", MessageId="clock-ahead",
                                       Timestamp=_stamp(now + timedelta(minutes=4))))
    assert (stale.status_code, late.status_code, ahead.status_code) == (403, 202, 202)
    assert "RIPOSTE_SNS_MAX_AGE_SECONDS (600 s)" in stale.json()["detail"]


@pytest.mark.parametrize("kind", KINDS)
def test_with_no_allow_list_every_message_is_refused_naming_the_setting(
    sns_settings: Settings, tokens: Tokens, visited: list[str], make_client: MakeClient,
    kind: str,
) -> None:
    unset = sns_settings.model_copy(update={"sns_topics": []})
    with make_client(create_app(unset, confirm_subscription=visited.append)) as client:
        response = _post(client, _message(kind))
        _assert_refused(client, tokens, visited, response,
                        "RIPOSTE_SNS_TOPICS is empty, so no topic is allowed; set it to the "
                        "TopicArn globs of the topics that send to Riposte")
