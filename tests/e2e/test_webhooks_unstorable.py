"""Values no database stores as sent, on every ingest endpoint: a 4xx that names them, recorded.

A lone UTF-16 surrogate (``"\\ud800"``) is valid JSON syntax but no Unicode character: neither
SQLite nor PostgreSQL can store it (a 500 before), and replacing it would alter the evidence, so
the delivery is refused with a 422 naming where it is; so is a NUL, which PostgreSQL refuses and
SQLite would have stored. An integer too long for Python's JSON parser (more than 4,300 digits;
a 500 from the SNS endpoint before, without authentication), NaN, Infinity and numbers beyond a
double are refused with a 400; in an SNS ``Message`` they make it plain text, kept as sent.
Nesting deeper than 64 levels is refused: a payload nested 255 levels used to be stored and then
break every listing of alerts. Each refusal is a rejected delivery with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.app import create_app
from core.settings import Settings
from tests import sns_keys
from tests.samples import load

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens

EVENTBRIDGE = "/v1/webhooks/eventbridge"
CLOUDTRAIL = "/v1/webhooks/cloudtrail"
SNS = "/v1/webhooks/sns"
ALERTS = "/v1/alerts"
SURROGATE = "\ud800"
AS_JSON = {"Content-Type": "application/json"}
# Where a surrogate goes in the seed's TerminateInstances record (path, as the 422 names it).
RECORD_FIELDS = [
    ("eventName",),
    ("userAgent",),
    ("sourceIPAddress",),
    ("eventID",),
    ("awsRegion",),
    ("userIdentity", "userName"),
    ("userIdentity", "arn"),
    ("userIdentity", "accountId"),
    ("requestParameters", "instancesSet", "items", 0, "instanceId"),
    ("responseElements", "instancesSet", "items", 1, "currentState", "name"),
]


@pytest.fixture
def hostile_client(
    settings: Settings, tokens: Tokens, make_client: MakeClient, tmp_path: Path
) -> Iterator[TestClient]:
    cert_dir = tmp_path / "sns-certs"
    cert_dir.mkdir()
    (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(sns_keys.default_identity().certificate_pem)
    app = create_app(settings.model_copy(update={"sns_cert_dir": cert_dir,
                                                 "sns_topics": [sns_keys.TOPIC_ARN]}),
                     confirm_subscription=lambda url: None)
    with make_client(app) as client:
        yield client


def _record() -> dict[str, Any]:
    record: dict[str, Any] = load("seed_terminate_instances")["Records"][0]
    record["eventID"] = "3f8f5c2e-0c6b-4d9a-9d0e-6a2f5f6d1c11"
    return record


def _with_text(document: Any, path: tuple[str | int, ...], text: str) -> Any:
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = text
    return document


def _post_record(
    client: TestClient, tokens: Tokens, endpoint: str, record: dict[str, Any] | str
) -> tuple[Any, str]:
    """Deliver a CloudTrail record (or its JSON text) as each endpoint receives one; return the
    answer and where the record is in the delivery (the path a message names)."""
    text = record if isinstance(record, str) else json.dumps(record)
    if endpoint == "cloudtrail":
        body = '{"Records": [' + text + "]}"
        return client.post(CLOUDTRAIL, content=body, headers=tokens.as_ingest), "Records[0]"
    if endpoint == "eventbridge":
        body = ('{"version": "0", "id": "6f2b1c1e-1d6e-4c1b-8f5e-2a1d3c4b5a69", '
                '"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", '
                '"account": "0123456789", "time": "2020-11-06T03:21:39Z", '
                '"region": "us-east-2", "resources": [], "detail": ' + text + "}")
        return client.post(EVENTBRIDGE, content=body, headers=tokens.as_ingest), "detail"
    return _post_sns(client, json.dumps(_sns_notification(text))), "Message"


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _generic_alert_with(raw: str) -> str:
    """A /v1/alerts body whose details hold ``raw`` JSON text."""
    return '{"title": "t", "severity": 50, "details": {"n": ' + raw + "}}"


def _sns_notification(message: str) -> dict[str, Any]:
    return sns_keys.sign(sns_keys.notification(Message=message))


def _post_sns(client: TestClient, content: str) -> Any:
    headers = {"Content-Type": "text/plain; charset=UTF-8",
               "x-amz-sns-message-type": "Notification"}
    return client.post(SNS, content=content, headers=headers)


def _stored(client: TestClient, tokens: Tokens) -> tuple[list[Any], list[dict[str, Any]]]:
    alerts = client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"]
    deliveries = client.get("/v1/deliveries", headers=tokens.as_admin).json()["deliveries"]
    return alerts, deliveries


def _assert_refused_and_recorded(
    client: TestClient, tokens: Tokens, response: Any, status: int, *fragments: str
) -> None:
    assert response.status_code == status, response.text
    message = response.json()["detail"]
    for fragment in fragments:
        assert fragment in message, message
    alerts, deliveries = _stored(client, tokens)
    assert alerts == []
    [row] = deliveries
    assert row["outcome"] == "rejected"
    assert row["reason"] == f"{status}: {message}"


@pytest.mark.parametrize("path", RECORD_FIELDS, ids=_dotted)
@pytest.mark.parametrize("endpoint", ["cloudtrail", "eventbridge", "sns"])
def test_a_lone_surrogate_in_a_record_is_refused_422_naming_the_field(
    hostile_client: TestClient, tokens: Tokens, endpoint: str, path: tuple[str | int, ...]
) -> None:
    record = _with_text(_record(), path, f"x{SURROGATE}y")
    response, where = _post_record(hostile_client, tokens, endpoint, record)
    _assert_refused_and_recorded(hostile_client, tokens, response, 422, "surrogate",
                                 f"{where}{_dotted(path)}")


@pytest.mark.parametrize("path", RECORD_FIELDS[:3], ids=_dotted)
@pytest.mark.parametrize("endpoint", ["cloudtrail", "eventbridge", "sns"])
def test_a_nul_in_a_record_is_refused_422_on_every_database(
    hostile_client: TestClient, tokens: Tokens, endpoint: str, path: tuple[str | int, ...]
) -> None:
    # SQLite stores a NUL, PostgreSQL does not (text nor jsonb): both refuse it alike.
    record = _with_text(_record(), path, "x\x00y")
    response, where = _post_record(hostile_client, tokens, endpoint, record)
    _assert_refused_and_recorded(hostile_client, tokens, response, 422, "NUL",
                                 f"{where}{_dotted(path)}")


def test_a_lone_surrogate_in_a_key_is_refused_naming_the_key(
    hostile_client: TestClient, tokens: Tokens
) -> None:
    record = _record()
    record["requestParameters"][f"k{SURROGATE}"] = "v"
    response = hostile_client.post(CLOUDTRAIL, content=json.dumps(record),
                                   headers=tokens.as_ingest)
    _assert_refused_and_recorded(hostile_client, tokens, response, 422,
                                 "a key in requestParameters holds a lone UTF-16 surrogate")


def test_a_lone_surrogate_sent_as_raw_bytes_is_refused_too(
    hostile_client: TestClient, tokens: Tokens
) -> None:
    # The UTF-8 encoding of U+D800 (ED A0 80) is not UTF-8, but Python's json.loads decodes
    # bytes with "surrogatepass" and lets it through.
    body = json.dumps(_record(), ensure_ascii=False).encode().replace(
        b"Roboman1", b"Robo\xed\xa0\x80man1", 1)
    response = hostile_client.post(CLOUDTRAIL, content=body, headers=tokens.as_ingest)
    _assert_refused_and_recorded(hostile_client, tokens, response, 400,
                                 "malformed JSON body: not UTF-8")


def test_a_surrogate_pair_is_a_character_and_is_stored(
    hostile_client: TestClient, tokens: Tokens
) -> None:
    record = _record()
    record["userAgent"] = "agent \U0001f525"  # json.dumps writes it as "\ud83d\udd25"
    response = hostile_client.post(CLOUDTRAIL, content=json.dumps(record),
                                   headers=tokens.as_ingest)
    assert response.status_code == 202, response.text


def test_a_lone_surrogate_in_a_generic_alert_is_refused_422_and_recorded(
    hostile_client: TestClient, tokens: Tokens
) -> None:
    body = {"title": "t", "severity": 50, "user_agent": SURROGATE}
    response = hostile_client.post(ALERTS, content=json.dumps(body),
                                   headers={**tokens.as_ingest, **AS_JSON})
    _assert_refused_and_recorded(hostile_client, tokens, response, 422, "user_agent",
                                 "surrogates")


HUGE = "9" * 5000


@pytest.mark.parametrize("body", [
    pytest.param('{"Type": "Notification", "MessageId": ' + HUGE + "}", id="huge-integer"),
    pytest.param('{"Type": "Notification", "MessageId": -' + HUGE + "}", id="huge-negative"),
])
def test_an_sns_body_with_a_huge_integer_is_400_without_authentication(
    hostile_client: TestClient, tokens: Tokens, body: str
) -> None:
    response = _post_sns(hostile_client, body)
    _assert_refused_and_recorded(hostile_client, tokens, response, 400, "not JSON",
                                 "digits")


NUMBERS = [HUGE, "NaN", "Infinity", "-Infinity", "1e400"]


@pytest.mark.parametrize("value", NUMBERS)
@pytest.mark.parametrize("endpoint", ["cloudtrail", "eventbridge", "alerts"])
def test_numbers_no_database_stores_are_refused_400_and_recorded(
    hostile_client: TestClient, tokens: Tokens, endpoint: str, value: str
) -> None:
    if endpoint == "alerts":
        response = hostile_client.post(ALERTS, content=_generic_alert_with(value),
                                       headers={**tokens.as_ingest, **AS_JSON})
    else:
        record = json.dumps(_record()).replace('"code": 32', f'"code": {value}', 1)
        assert value in record
        response, _ = _post_record(hostile_client, tokens, endpoint, record)
    if endpoint == "alerts" and value != HUGE:  # JSON to Python's parser; the model refuses it
        _assert_refused_and_recorded(hostile_client, tokens, response, 422,
                                     "body.details: numbers must be finite at n")
        return
    fragment = "digits" if value == HUGE else ("beyond the range" if value == "1e400"
                                               else f"{value} is not a JSON value")
    _assert_refused_and_recorded(hostile_client, tokens, response, 400, "malformed JSON body",
                                 fragment)


@pytest.mark.parametrize("value", NUMBERS)
def test_an_sns_message_with_such_numbers_is_kept_as_the_text_it_is(
    hostile_client: TestClient, tokens: Tokens, value: str
) -> None:
    # A Message that is not JSON as Riposte reads it is a text notification, stored verbatim.
    text = json.dumps(_record()).replace('"code": 32', f'"code": {value}', 1)
    response = _post_sns(hostile_client, json.dumps(_sns_notification(text)))
    assert response.status_code == 202, response.text
    [answer] = response.json()["alerts"]
    alert = hostile_client.get(f"/v1/alerts/{answer['alert_id']}",
                               headers=tokens.as_responder).json()
    assert alert["source"] == "sns"
    assert alert["details"]["extra"]["message"] == text


@pytest.mark.parametrize("depth", [40, 200, 900, 5000])
@pytest.mark.parametrize("endpoint", ["cloudtrail", "eventbridge", "alerts", "sns"])
def test_deep_nesting_is_stored_or_refused_4xx_and_recorded(
    hostile_client: TestClient, tokens: Tokens, endpoint: str, depth: int
) -> None:
    nested = "[" * depth + "1" + "]" * depth
    if endpoint == "alerts":
        response = hostile_client.post(ALERTS, content=_generic_alert_with(nested),
                                       headers={**tokens.as_ingest, **AS_JSON})
    else:
        record = json.dumps(_record()).replace('"code": 32', f'"code": {nested}', 1)
        response, _ = _post_record(hostile_client, tokens, endpoint, record)
    assert response.status_code < 500, response.text
    # Whatever was stored can be read back (pydantic refuses to write 255 levels and more).
    alerts, deliveries = _stored(hostile_client, tokens)
    [row] = deliveries
    if response.status_code >= 400:
        assert alerts == [] and row["outcome"] == "rejected"
        assert row["reason"] == f"{response.status_code}: {response.json()['detail']}"
    else:
        assert len(alerts) == 1 and row["outcome"] == "accepted"
