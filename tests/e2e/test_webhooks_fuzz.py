"""Random JSON, mutated real payloads and hostile JSON text to every ingest endpoint.

Never a 5xx; a refusal is a 4xx recorded as a rejected delivery with the message it answered.
Hostile text (tests/hostile_json): lone surrogates and NULs, numbers of 5,000 digits or beyond
a double, NaN/Infinity, nesting deeper than any parser's limit, each somewhere in a real sample.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from core.settings import Settings
from tests import sns_keys
from tests.hostile_json import hostile_texts
from tests.samples import load, names

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON_ENDPOINTS = ["/v1/alerts", "/v1/webhooks/eventbridge", "/v1/webhooks/cloudtrail"]
SNS = "/v1/webhooks/sns"
SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8",
               "x-amz-sns-message-type": "Notification"}
# /v1/alerts reads only a body declared JSON (415 otherwise); the webhooks read any body.
AS_JSON = {"Content-Type": "application/json"}

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=25,
)


@st.composite
def mutated_samples(draw: st.DrawFn) -> Any:
    """A published sample with one value replaced or one key removed, somewhere inside."""
    document = copy.deepcopy(load(draw(st.sampled_from(names()))))
    node = document
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict)
                   else st.integers(0, len(node) - 1))
        child = node[key]
        if not isinstance(child, dict | list) or not child:
            break
        node = child
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(json_values)
    elif isinstance(node, list) and node:
        node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
    return document


@pytest.fixture
def fuzz_client(settings: Settings, tokens: Tokens, make_client: MakeClient,
                tmp_path: Path) -> Iterator[TestClient]:
    cert_dir = tmp_path / "sns-certs"
    cert_dir.mkdir()
    (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(sns_keys.default_identity().certificate_pem)
    # Every refusal is recorded: the anonymous ones (SNS bodies refused before their signature
    # proved them) are recorded at a bounded rate, high enough here for every example.
    app = create_app(settings.model_copy(update={
        "sns_cert_dir": cert_dir, "sns_topics": [sns_keys.TOPIC_ARN],
        "anonymous_refusals_per_address": 10_000, "anonymous_refusals_per_minute": 10_000,
    }), confirm_subscription=lambda url: None)
    with make_client(app) as client:
        yield client


@FUZZ
@given(endpoint=st.sampled_from(JSON_ENDPOINTS), body=json_values | mutated_samples())
def test_json_endpoints_never_answer_5xx(
    fuzz_client: TestClient, tokens: Tokens, endpoint: str, body: Any
) -> None:
    answer = fuzz_client.post(endpoint, content=json.dumps(body),
                              headers={**tokens.as_ingest, **AS_JSON})
    assert answer.status_code < 500, answer.text
    expected = "code" if answer.status_code >= 400 else (
        "alert_id" if endpoint == "/v1/alerts" else "alerts")
    assert expected in answer.json()


@FUZZ
@given(message=json_values | mutated_samples(), subject=st.none() | st.text(max_size=40),
       raw=json_values)
def test_signed_sns_notifications_never_answer_5xx(
    fuzz_client: TestClient, message: Any, subject: str | None, raw: Any
) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    signed = sns_keys.sign(sns_keys.notification(Message=text, Subject=subject))
    answer = fuzz_client.post(SNS, content=json.dumps(signed), headers=SNS_HEADERS)
    assert answer.status_code < 500, answer.text
    garbage = fuzz_client.post(SNS, content=json.dumps(raw), headers=SNS_HEADERS)
    assert 400 <= garbage.status_code < 500, garbage.text


@FUZZ
@given(endpoint=st.sampled_from([*JSON_ENDPOINTS, "sns-message", "sns-envelope"]),
       text=hostile_texts)
def test_hostile_json_on_every_endpoint_is_stored_or_a_recorded_4xx(
    fuzz_client: TestClient, tokens: Tokens, endpoint: str, text: str
) -> None:
    if endpoint == "sns-message":  # the text is the Message SNS signed
        body = json.dumps(sns_keys.sign(sns_keys.notification(Message=text)))
        answer = fuzz_client.post(SNS, content=body, headers=SNS_HEADERS)
    elif endpoint == "sns-envelope":  # the text is a field SNS does not sign
        signed = json.dumps(sns_keys.sign(sns_keys.notification()))
        body = signed[:-1] + f', "Extra": {text}}}'
        answer = fuzz_client.post(SNS, content=body, headers=SNS_HEADERS)
    else:
        body = text
        answer = fuzz_client.post(endpoint, content=body, headers={**tokens.as_ingest, **AS_JSON})
    assert answer.status_code < 500, answer.text
    if answer.status_code < 400:
        return
    digest = hashlib.sha256(body.encode()).hexdigest()
    rows = fuzz_client.get("/v1/deliveries", params={"outcome": "rejected", "limit": "500"},
                           headers=tokens.as_admin).json()["deliveries"]
    reasons = {row["reason"] for row in rows if row["body_sha256"] == digest}
    assert f"{answer.status_code}: {answer.json()['detail']}" in reasons
