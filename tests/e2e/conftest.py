"""End-to-end fixtures: an app on a fresh database (SQLite and PostgreSQL), tokens of each role,
playbooks written into a temporary directory, and a way to wait for a run's status."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from core.settings import Settings
from engine.store.models import ApiToken
from engine.store.tokens import create_token
from engine.store.types import utcnow

with warnings.catch_warnings():
    # Starlette prefers httpx2 and warns when it falls back to httpx; both drive the app alike.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Tokens:
    """One live token per role, a second responder, and dead ones (revoked, expired)."""

    ingest: str
    responder: str
    other_responder: str
    admin: str
    expired: str
    revoked: str

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def as_ingest(self) -> dict[str, str]:
        return self.bearer(self.ingest)

    @property
    def as_responder(self) -> dict[str, str]:
        return self.bearer(self.responder)

    @property
    def as_other_responder(self) -> dict[str, str]:
        return self.bearer(self.other_responder)

    @property
    def as_admin(self) -> dict[str, str]:
        return self.bearer(self.admin)


@pytest.fixture
def tokens(sessionmaker: SessionMaker[Session]) -> Tokens:
    """Create the tokens through the store, as `riposte token create` does."""
    with sessionmaker.begin() as session:
        made = {
            name: create_token(session=session, name=name, role=role)
            for name, role in [("sensor", "ingest"), ("alice", "responder"),
                               ("bob", "responder"), ("root", "admin")]
        }
        expired = create_token(session=session, name="old", role="admin",
                               expires_at=utcnow() - timedelta(seconds=1))
        revoked = create_token(session=session, name="gone", role="admin")
    with sessionmaker.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.name == "gone").values(revoked_at=utcnow()))
    return Tokens(ingest=made["sensor"], responder=made["alice"], other_responder=made["bob"],
                  admin=made["root"], expired=expired, revoked=revoked)


@pytest.fixture
def playbook_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    return directory


@pytest.fixture
def write_playbook(playbook_dir: Path) -> Callable[[str, str], Path]:
    """Write a playbook file (YAML text) into the app's playbook directory."""

    def write(file_name: str, text: str) -> Path:
        path = playbook_dir / file_name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def settings(db_url: str, playbook_dir: Path) -> Settings:
    return Settings(
        database_url=db_url,
        playbook_dir=playbook_dir,
        max_body_bytes=64 * 1024,
        worker_poll_seconds=0.5,
        lease_seconds=30.0,
    )


MakeClient = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client() -> MakeClient:
    """Return ``make(settings or app, workers=0)``: a client whose app runs its lifespan while
    used (enter it with ``with``)."""

    def make(
        target: Settings | FastAPI, *, workers: int = 0
    ) -> AbstractContextManager[TestClient]:
        app = target if isinstance(target, FastAPI) else create_app(
            target, in_process_workers=workers)
        return TestClient(app)

    return make


@pytest.fixture
def client(settings: Settings, tokens: Tokens) -> Iterator[TestClient]:
    """A client of an app with no worker: runs stay queued."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def worker_client(settings: Settings, tokens: Tokens) -> Iterator[TestClient]:
    """A client of an app running one in-process worker (the lifespan starts and stops it)."""
    with TestClient(create_app(settings, in_process_workers=1)) as test_client:
        yield test_client


WaitForRun = Callable[..., dict[str, Any]]
PostAlert = Callable[..., dict[str, Any]]


@pytest.fixture
def wait_for_run() -> WaitForRun:
    """Return ``wait(client, run_id, headers, *statuses)``, polling with a deadline."""
    return _wait_for_run


@pytest.fixture
def post_alert() -> PostAlert:
    """Return ``post(client, headers, **fields)`` for an alert that must be accepted (202)."""
    return _post_alert


def _wait_for_run(
    client: TestClient, run_id: str, headers: dict[str, str], *statuses: str
) -> dict[str, Any]:
    """Poll a run until it reaches one of ``statuses``; fail with its last state otherwise."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = client.get(f"/v1/runs/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']}, not {statuses}: {run}")
        time.sleep(0.05)


def _post_alert(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Post a generic alert that must be accepted; return the answer."""
    body = {"title": "suspicious API call", "severity": 50, **fields}
    response = client.post("/v1/alerts", json=body, headers=headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer
