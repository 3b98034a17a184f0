"""POST /v1/alerts: what is stored, what it starts, and how bad input is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool
from starlette.types import Message

from api.app import create_app
from core.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, PostAlert, Tokens

ROOT_ACTIVITY = """\
name: root-activity
description: Log any high-severity alert about the root account
trigger:
  source: [generic]
  severity_at_least: HIGH
  principal_type: [Root]
steps:
  - id: note
    action: core.log
    with:
      message: "root activity: {{ alert.title }}"
"""


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("root-activity.yml", ROOT_ACTIVITY)


def test_an_alert_matching_a_playbook_is_stored_and_queues_a_run(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    answer = post_alert(client, tokens.as_ingest, title="ConsoleLogin by root",
                        severity="critical", principal={"type": "Root", "name": "root"})
    assert answer["duplicate"] is False
    assert len(answer["run_ids"]) == 1

    run = client.get(f"/v1/runs/{answer['run_ids'][0]}", headers=tokens.as_responder).json()
    assert (run["alert_id"], run["playbook"], run["status"]) == (
        answer["alert_id"], "root-activity", "queued")
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert alert["run_ids"] == answer["run_ids"]
    assert (alert["severity"], alert["severity_label"]) == (90, "CRITICAL")
    assert alert["principal"]["type"] == "Root"


def test_an_alert_matching_no_playbook_is_stored_without_runs(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    answer = post_alert(client, tokens.as_ingest, title="ConsoleLogin by root", severity=30,
                        principal={"type": "Root"})
    assert answer["run_ids"] == []
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert alert["run_ids"] == []
    assert (alert["severity"], alert["severity_label"]) == (30, "LOW")


def test_a_numeric_severity_gets_the_label_of_its_band(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    answer = post_alert(client, tokens.as_ingest, severity=75, principal={"type": "Root"})
    alert = client.get(f"/v1/alerts/{answer['alert_id']}", headers=tokens.as_responder).json()
    assert alert["severity_label"] == "HIGH"
    assert len(answer["run_ids"]) == 1


def test_a_repeat_with_the_same_dedup_key_counts_on_the_first_alert_and_starts_nothing(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    body = {"title": "root login", "severity": 95, "principal": {"type": "Root"},
            "dedup_key": "cloudtrail:event-1"}
    first = post_alert(client, tokens.as_ingest, **body)
    again = client.post("/v1/alerts", json=body, headers=tokens.as_ingest)
    assert again.status_code == 200
    assert again.json() == {"alert_id": first["alert_id"], "run_ids": [], "joined_run_ids": [],
                            "duplicate": True, "ignored": False}
    alert = client.get(f"/v1/alerts/{first['alert_id']}", headers=tokens.as_responder).json()
    assert alert["occurrences"] == 2
    assert alert["run_ids"] == first["run_ids"]


def test_an_alert_the_database_cannot_store_is_503_so_the_sender_retries(
    db_url: str, settings: Settings, tokens: Tokens, make_client: MakeClient
) -> None:
    # A real database that refuses writes: what a failover or a full disk looks like.
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        read_only = f"sqlite:///file:{url.database}?mode=ro&uri=true"
    else:
        read_only = db_url
        _set_read_only(db_url, True)
    try:
        with make_client(settings.model_copy(update={"database_url": read_only})) as client:
            response = client.post("/v1/alerts", json={"title": "t", "severity": 5},
                                   headers=tokens.as_ingest)
    finally:
        if url.get_backend_name() != "sqlite":
            _set_read_only(db_url, False)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "retry" in response.json()["detail"]
    with make_client(settings) as client:
        assert client.get("/v1/alerts", headers=tokens.as_admin).json()["alerts"] == []


def _set_read_only(db_url: str, read_only: bool) -> None:
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET default_transaction_read_only = off")
            name = connection.exec_driver_sql("SELECT current_database()").scalar_one()
            value = "on" if read_only else "off"
            connection.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
    finally:
        engine.dispose()


def test_alerts_are_listed_newest_first_with_paging(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    ids = [post_alert(client, tokens.as_ingest, title=f"a{i}")["alert_id"] for i in range(3)]
    first = client.get("/v1/alerts?limit=2", headers=tokens.as_responder).json()
    assert [a["id"] for a in first["alerts"]] == ids[::-1][:2]
    assert first["next"].startswith("/v1/alerts?limit=2&cursor=")
    post_alert(client, tokens.as_ingest, title="newer")  # a new alert moves no page
    rest = client.get(first["next"], headers=tokens.as_responder).json()
    assert [a["id"] for a in rest["alerts"]] == ids[:1]
    assert rest["next"] is None


def test_an_unknown_alert_is_404(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/v1/alerts/no-such-alert", headers=tokens.as_responder)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "urn:riposte:problem:not_found", "title": "Not Found",
                               "status": 404, "detail": "no alert 'no-such-alert'",
                               "code": "not_found"}


def test_malformed_json_is_400_saying_so(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/v1/alerts", content=b'{"title": "x", "severity": ',
                           headers={**tokens.as_ingest, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert response.json()["detail"].startswith("malformed JSON body: ")


def test_an_unknown_field_is_422_naming_it(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/v1/alerts", json={"title": "x", "severity": 5, "sevrity": 5},
                           headers=tokens.as_ingest)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"] == [{"field": "body.sevrity", "message": "unknown field"}]
    assert "body.sevrity" in body["detail"]


WRONG_VALUES: list[tuple[dict[str, object], str]] = [
    ({"title": "x", "severity": "urgent"}, "body.severity"),
    ({"title": "x", "severity": 101}, "body.severity"),
    ({"title": "x", "severity": True}, "body.severity"),
    ({"title": "x", "severity": [5]}, "body.severity"),
    ({"title": 12, "severity": 5}, "body.title"),
    ({"title": "", "severity": 5}, "body.title"),
    ({"severity": 5}, "body.title"),
    ({"title": "x", "severity": 5, "resources": [{"type": "AwsIamUser"}]},
     "body.resources.0.id"),
    ({"title": "x", "severity": 5, "principal": {"kind": "Root"}}, "body.principal.kind"),
    ({"title": "x\u0000y", "severity": 5}, "body.title"),
    ({"title": "x", "severity": 5, "details": {"k": "nul\u0000"}}, "body.details"),
    ({"title": "x", "severity": 5, "account": "1" * 33}, "body.account"),
]
# JSON that Python's encoder would not write, but a sender can.
WRONG_RAW_VALUES: list[tuple[bytes, str]] = [
    (b'{"title": "x", "severity": 5.5}', "body.severity"),
    (b'{"title": "\\ud800", "severity": 5}', "body.title"),
    (b'{"title": "x", "severity": 5, "details": {"n": NaN}}', "body.details"),
    (b'{"title": "x", "severity": 5, "details": ' + b"[" * 40 + b"]" * 40 + b"}", "body.details"),
]


def test_a_wrong_value_is_422_naming_the_field(client: TestClient, tokens: Tokens) -> None:
    json_headers = {**tokens.as_ingest, "Content-Type": "application/json"}
    for body, field in [*WRONG_VALUES, *WRONG_RAW_VALUES]:
        if isinstance(body, bytes):
            response = client.post("/v1/alerts", content=body, headers=json_headers)
        else:
            response = client.post("/v1/alerts", json=body, headers=tokens.as_ingest)
        assert response.status_code == 422, (body, response.text)
        assert field in [p["field"] for p in response.json()["errors"]], (body, response.text)
    assert client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"] == []


def test_a_body_that_is_not_a_json_object_is_refused(client: TestClient, tokens: Tokens) -> None:
    as_text = client.post("/v1/alerts", content=b'{"title": "x", "severity": 5}',
                          headers={**tokens.as_ingest, "Content-Type": "text/plain"})
    assert as_text.status_code == 415
    a_list = client.post("/v1/alerts", json=[1, 2], headers=tokens.as_ingest)
    assert a_list.status_code == 422


def test_a_body_over_the_limit_is_413_by_its_content_length(
    client: TestClient, tokens: Tokens
) -> None:
    body = b'{"title": "' + b"x" * (64 * 1024) + b'", "severity": 5}'
    response = client.post("/v1/alerts", content=body,
                           headers={**tokens.as_ingest, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_chunked_body_over_the_limit_is_413_as_it_streams(
    client: TestClient, tokens: Tokens
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'", "severity": 5}'

    response = client.post("/v1/alerts", content=chunks(),
                           headers={**tokens.as_ingest, "Content-Type": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_streamed_body_is_cut_off_at_the_limit_without_reading_the_rest(
    settings: Settings,
) -> None:
    # The test client gathers a streamed body before delivering it, so speak ASGI directly to
    # see how much of the stream the app consumes.
    app = create_app(settings)
    consumed = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal consumed
        consumed += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": consumed < 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/alerts", "raw_path": b"/v1/alerts", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {},
    }
    try:
        asyncio.run(app(scope, receive, send))
    finally:
        app.state.runtime.engine.dispose()
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert consumed == settings.max_body_bytes // 1024 + 1


def test_a_chunked_body_under_the_limit_is_accepted(client: TestClient, tokens: Tokens) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "chunked", '
        yield b'"severity": 5}'

    response = client.post("/v1/alerts", content=chunks(),
                           headers={**tokens.as_ingest, "Content-Type": "application/json"})
    assert response.status_code == 202, response.text


def test_every_delivery_is_recorded_even_refused_ones(client: TestClient, tokens: Tokens,
                                                      post_alert: PostAlert) -> None:
    from sqlalchemy import select

    from engine.store.models import Delivery

    post_alert(client, tokens.as_ingest, title="ok", severity="low", dedup_key="k1")
    repeat = client.post("/v1/alerts", json={"title": "ok", "severity": "low", "dedup_key": "k1"},
                         headers=tokens.as_ingest)
    assert repeat.status_code == 200
    client.post("/v1/alerts", content=b'{"title": ', headers={**tokens.as_ingest,
                "Content-Type": "application/json"})
    client.post("/v1/alerts", json={"title": "x", "severity": 5, "sevrity": 5},
                headers=tokens.as_ingest)
    with client.app.state.runtime.sessions() as session:  # type: ignore[attr-defined]
        rows = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
    assert [(d.outcome, d.reason.split(":")[0]) for d in rows] == [
        ("accepted", ""), ("duplicate", ""), ("rejected", "400"), ("rejected", "422"),
    ]
    assert rows[2].alert_id is None and rows[2].body_bytes == len(b'{"title": ')
    assert "sevrity" in rows[3].reason


def test_the_seed_artifacts_are_stored_as_fields_of_the_alert(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    posted = post_alert(
        client, tokens.as_ingest, title="TerminateInstances", event_time="2020-11-06T03:21:39",
        event_name="TerminateInstances", source_ip="180.163.251.231",
        user_agent="console.ec2.amazonaws.com", mfa_used=False,
    )
    shown = client.get(f"/v1/alerts/{posted['alert_id']}", headers=tokens.as_responder).json()

    # No offset means UTC.
    assert shown["event_time"] in ("2020-11-06T03:21:39Z", "2020-11-06T03:21:39+00:00")
    assert (shown["event_name"], shown["source_ip"], shown["user_agent"], shown["mfa_used"]) == (
        "TerminateInstances", "180.163.251.231", "console.ec2.amazonaws.com", False)
    assert shown["first_seen"] > "2024"  # received now, apart from when it happened


@pytest.mark.parametrize("event_time", ["9999-12-31T00:00:00Z", "1900-01-01T00:00:00Z", "soon"])
def test_an_event_time_no_event_could_have_is_refused(
    client: TestClient, tokens: Tokens, event_time: str
) -> None:
    body = {"title": "t", "severity": 1, "event_time": event_time}
    response = client.post("/v1/alerts", json=body, headers=tokens.as_ingest)
    assert response.status_code == 422, response.text
    assert "event_time" in response.text
