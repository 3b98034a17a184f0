"""Probes: liveness without a token, readiness that follows the database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient


def test_healthz_answers_ok_without_a_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_and_ingest_answer_503_with_retry_after_when_the_database_is_unreachable(
    tmp_path: Path, make_client: MakeClient
) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'riposte.db'}"
    with make_client(Settings(database_url=unreachable, playbook_dir=tmp_path)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == "unavailable"

        alert = client.post("/v1/alerts", json={"title": "t", "severity": 10},
                            headers={"Authorization": "Bearer rip_whatever"})
        assert alert.status_code == 503
        assert int(alert.headers["Retry-After"]) > 0
        assert alert.json()["code"] == "unavailable"


def test_openapi_document_is_served(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/v1/alerts", "/v1/runs", "/v1/approvals/{request_id}/decision"} <= set(paths)
    assert client.get("/docs").status_code == 200
