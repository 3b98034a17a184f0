"""Concurrent redeliveries through a real server: one alert, one run, every delivery counted.

With a playbook whose trigger matches, each delivery is one transaction; with none, a new alert
is stored by one self-committing statement (PostgreSQL) and a repeat falls back to the
transaction: both must count every delivery once and keep the audit chain whole.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from core.settings import Settings
from engine import audit
from engine.store.models import Alert, AuditEvent, Delivery, Run
from tests.e2e.conftest import Tokens
from tests.live_server import serving

PARALLEL = 50
PLAYBOOK = """
name: on-every-alert
trigger: {source: [generic]}
steps:
  - {id: note, action: core.log, with: {message: "{{ alert.title }}"}}
"""


@pytest.fixture(params=[True, False], ids=["playbook", "no-playbook"])
def triggered(request: pytest.FixtureRequest) -> bool:
    """Whether a playbook's trigger matches the alert (it then queues one run)."""
    return bool(request.param)


@pytest.fixture
def server(
    settings: Settings, write_playbook: Callable[[str, str], Path], triggered: bool
) -> Iterator[str]:
    if triggered:
        write_playbook("every.yml", PLAYBOOK)
    with serving(create_app(settings)) as base_url:
        yield base_url


def test_fifty_parallel_redeliveries_make_one_alert_and_one_run_at_most(
    server: str, tokens: Tokens, sessionmaker: sessionmaker[Session], triggered: bool
) -> None:
    body = {"title": "same message", "severity": "high", "dedup_key": "sns:msg-0001"}
    barrier = threading.Barrier(PARALLEL)

    def deliver(_: int) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=30) as http:
            barrier.wait()
            return http.post("/v1/alerts", json=body, headers=tokens.as_ingest)

    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(deliver, range(PARALLEL)))
    assert Counter(a.status_code for a in answers) == {202: 1, 200: PARALLEL - 1}
    assert len({a.json()["alert_id"] for a in answers}) == 1
    with sessionmaker() as session:
        alerts = session.execute(select(Alert)).scalars().all()
        runs = session.execute(select(Run)).scalars().all()
        deliveries = Counter(session.execute(select(Delivery.outcome)).scalars())
    assert [(a.dedup_key, a.occurrences) for a in alerts] == [("sns:msg-0001", PARALLEL)]
    assert len(runs) == (1 if triggered else 0)
    assert deliveries == {"accepted": 1, "duplicate": PARALLEL - 1}
    with sessionmaker() as session:
        verbs = Counter(session.execute(select(AuditEvent.verb)).scalars())
        assert audit.verify(session).ok
    assert (verbs["alert.received"], verbs["alert.repeated"]) == (1, PARALLEL - 1)
