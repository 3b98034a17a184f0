"""Every error is an RFC 9457 problem (type, title, status, detail, code); nothing unexpected
leaks out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from api.app import create_app
from core.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, Tokens


def test_an_unexpected_exception_is_a_bare_500_and_its_traceback_goes_to_the_log(
    settings: Settings, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    def explode() -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    app.add_api_route("/explode", explode)
    with make_client(app) as client, caplog.at_level(logging.ERROR, logger="riposte.api"):
        response = client.get("/explode")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "urn:riposte:problem:internal_error",
                               "title": "Internal Server Error", "status": 500,
                               "detail": "internal error; it has been logged",
                               "code": "internal_error"}
    assert "hunter2" not in response.text
    [record] = [r for r in caplog.records if r.exc_info]
    assert "GET /explode" in record.getMessage()


def test_an_unknown_path_and_a_wrong_method_are_json_errors(client: TestClient) -> None:
    missing = client.get("/v2/anything")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert missing.json()["detail"] == "no such endpoint: GET /v2/anything"
    wrong = client.delete("/v1/alerts")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    # Every method of the path, though GET and POST are two routes.
    assert wrong.headers["allow"] == "GET, HEAD, POST"


def test_bad_paging_is_422_naming_the_parameter(client: TestClient, tokens: Tokens) -> None:
    for query in ["limit=abc", "limit=0", "limit=501", "cursor=not-a-run-id",
                  "cursor=", "offset=10", "after_id=3", "limit=5&limit=6"]:
        response = client.get(f"/v1/runs?{query}", headers=tokens.as_responder)
        assert response.status_code == 422, query
        name = query.split("=")[0]
        assert response.json()["errors"][0]["field"] == f"query.{name}"


def test_a_nul_character_in_an_id_is_422_on_every_backend(
    client: TestClient, tokens: Tokens
) -> None:
    # PostgreSQL cannot even compare a string holding NUL; refusing it up front keeps the
    # answer the same everywhere (and never a 500).
    for path, field in [("/v1/runs/a%00b", "path.run_id"),
                        ("/v1/alerts/a%00b", "path.alert_id"),
                        ("/v1/approvals/a%00b", "path.request_id"),
                        ("/v1/runs?alert_id=a%00b", "query.alert_id"),
                        ("/v1/audit?actor=a%00b", "query.actor")]:
        response = client.get(path, headers=tokens.as_responder)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == field


def test_a_content_length_that_is_not_a_number_is_400(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post("/v1/alerts", content=b"{}",
                           headers={**tokens.as_ingest, "Content-Length": "ten"})
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]
