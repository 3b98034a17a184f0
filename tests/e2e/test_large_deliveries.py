"""Large deliveries: a cap on events per delivery (413), CloudTrail files still fit, and a
delivery interrupted between its batches is whole once its sender delivers it again.

How a large delivery is split into transactions, and that none holds the audit chain for long,
is proven in tests/integration/test_ingest_batches.py and measured by bench/ingest_lock.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from engine.store.alerts import ALERTS_PER_TRANSACTION
from tests.samples import load

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens

EVENTBRIDGE = "/v1/webhooks/eventbridge"
CLOUDTRAIL = "/v1/webhooks/cloudtrail"
API_KEY_HEADER = "x-riposte-api-key"
LIMIT = 20


def _events(count: int, *, keyless_every: int = 0) -> list[dict[str, Any]]:
    """Tiny EventBridge events of an unknown detail-type (one generic alert each)."""
    events = []
    for n in range(count):
        event_ = {"source": "acme.sensor", "detail-type": "Probe", "detail": {"n": n}}
        if not keyless_every or n % keyless_every:
            event_["id"] = f"event-{n}"
        events.append(event_)
    return events


def _records(count: int) -> dict[str, Any]:
    """A CloudTrail log file of ``count`` copies of a real sign-in record, each its own event."""
    record = load("cloudtrail_signin_iam_user_no_mfa")["Records"][0]
    records = []
    for n in range(count):
        copied = copy.deepcopy(record)
        copied["eventID"] = f"{n:08d}-98f8-4744-bd45-10a395ab61cb"
        records.append(copied)
    return {"Records": records}


def _body(document: Any) -> bytes:
    # As CloudTrail writes its log files and EventBridge posts: compact JSON.
    return json.dumps(document, separators=(",", ":")).encode()


def _alerts(client: TestClient, tokens: Tokens) -> list[dict[str, Any]]:
    response = client.get("/v1/alerts", params={"limit": 500}, headers=tokens.as_responder)
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


@pytest.fixture
def capped(settings: Settings, tokens: Tokens, make_client: MakeClient) -> Iterator[TestClient]:
    with make_client(settings.model_copy(update={"max_events_per_delivery": LIMIT})) as client:
        yield client


@pytest.mark.parametrize(("path", "document"), [
    pytest.param(EVENTBRIDGE, _events(LIMIT + 1), id="eventbridge-array"),
    pytest.param(CLOUDTRAIL, _records(LIMIT + 1), id="cloudtrail-file"),
])
def test_a_delivery_of_more_events_than_the_limit_is_413_naming_the_setting(
    capped: TestClient, tokens: Tokens, path: str, document: Any
) -> None:
    response = capped.post(path, content=_body(document), headers={API_KEY_HEADER: tokens.ingest})
    assert response.status_code == 413, response.text
    answer = response.json()
    assert answer["code"] == "too_many_events"
    assert f"{LIMIT + 1} events" in answer["detail"]
    assert "RIPOSTE_MAX_EVENTS_PER_DELIVERY" in answer["detail"]
    assert _alerts(capped, tokens) == []
    [row] = capped.get("/v1/deliveries", headers=tokens.as_admin).json()["deliveries"]
    assert row["outcome"] == "rejected" and row["reason"].startswith("413")


def test_findings_of_one_event_count_as_events(capped: TestClient, tokens: Tokens) -> None:
    event_ = load("securityhub_event_imported_envelope")
    finding = load("securityhub_finding_afsbp_ec2_2")
    event_["detail"]["findings"] = [
        {**copy.deepcopy(finding), "Id": f"{finding['Id']}-{n}"} for n in range(LIMIT + 1)
    ]
    response = capped.post(EVENTBRIDGE, content=_body(event_),
                           headers={API_KEY_HEADER: tokens.ingest})
    assert response.status_code == 413, response.text
    assert _alerts(capped, tokens) == []


def test_a_delivery_of_exactly_the_limit_is_stored(capped: TestClient, tokens: Tokens) -> None:
    response = capped.post(EVENTBRIDGE, content=_body(_events(LIMIT)),
                           headers={API_KEY_HEADER: tokens.ingest})
    assert response.status_code == 202, response.text
    assert len(_alerts(capped, tokens)) == LIMIT


def test_a_cloudtrail_log_file_as_large_as_the_body_limit_fits_the_default_cap(
    db_url: str, playbook_dir: Path, tokens: Tokens, make_client: MakeClient
) -> None:
    # Default settings: the largest body they admit, filled with the smallest real record.
    settings = Settings(database_url=db_url, playbook_dir=playbook_dir)
    # Every copy has the same size (eventIDs of one length), joined by commas.
    record = len(_body(_records(1)["Records"][0]))
    count = (settings.max_body_bytes - len(_body({"Records": []})) + 1) // (record + 1)
    assert len(_body(_records(count))) <= settings.max_body_bytes < len(_body(_records(count + 1)))
    with make_client(settings) as client:
        response = client.post(CLOUDTRAIL, content=_body(_records(count)),
                               headers={API_KEY_HEADER: tokens.ingest})
        assert response.status_code == 202, response.text
        assert len(response.json()["alerts"]) == count
    assert count > ALERTS_PER_TRANSACTION  # it was stored in several transactions


@contextmanager
def _database_fails_at_alert(engine: Engine, number: int) -> Iterator[None]:
    """Fail the statement that would store the ``number``-th alert, as a lost database would."""
    inserted = 0

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserted
        if statement.lstrip().upper().startswith(("INSERT INTO ALERTS", "WITH STORED AS")):
            inserted += 1
            if inserted == number:
                raise OperationalError(statement, None, ConnectionError("connection lost"))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_delivery_interrupted_between_batches_is_503_and_whole_once_delivered_again(
    client: TestClient, tokens: Tokens
) -> None:
    total = 2 * ALERTS_PER_TRANSACTION + 10
    # Every third event has no id, so no key of its own: the body's digest and place key it.
    body = _body(_events(total, keyless_every=3))
    headers = {API_KEY_HEADER: tokens.ingest}
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    with _database_fails_at_alert(runtime.engine, ALERTS_PER_TRANSACTION + 1):
        failed = client.post(EVENTBRIDGE, content=body, headers=headers)
    assert failed.status_code == 503, failed.text
    assert "retry" in failed.json()["detail"]
    assert failed.headers["retry-after"]

    again = client.post(EVENTBRIDGE, content=body, headers=headers)
    assert again.status_code == 202, again.text
    alerts = _alerts(client, tokens)
    # Each event stored once; those the first attempt committed (its first batch) are found
    # again by their key and counted as repeats, never stored twice.
    assert sorted(a["details"]["raw"]["detail"]["n"] for a in alerts) == list(range(total))
    repeated = [a for a in alerts if a["occurrences"] == 2]
    assert len(repeated) == ALERTS_PER_TRANSACTION
    assert {a["occurrences"] for a in alerts} == {1, 2}
    verify = client.get("/v1/audit/verify", headers=tokens.as_admin).json()
    assert verify["ok"], verify
