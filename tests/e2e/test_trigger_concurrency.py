"""Triggers under concurrent deliveries to two API replicas sharing one database.

Each replica is its own app (own engine, own connection pool) behind its own uvicorn server, as
two `riposte serve` processes would be; the senders post at once, half to each.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from core.settings import Settings
from engine.store.models import Alert, Run, RunAlert
from tests.e2e.conftest import Tokens
from tests.live_server import serving

T0 = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
PER_GROUP = 12
COUNT = 10

PLAYBOOKS = {
    "burst.yml": f"""
name: burst
trigger:
  kind: [terminate]
  threshold: {{count: {COUNT}, within: 5m, group_by: principal.arn}}
steps:
  - {{id: note, action: core.log, with: {{message: "{{{{ alerts | length }}}}"}}}}
""",
    "fold.yml": """
name: fold
trigger:
  kind: [finding]
  correlate: {by: [principal.arn, type], within: 1h}
steps:
  - {id: note, action: core.log, with: {message: "{{ alerts | length }}"}}
""",
}


@pytest.fixture
def replicas(
    settings: Settings, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> Iterator[list[str]]:
    for name, text in PLAYBOOKS.items():
        write_playbook(name, text)
    with ExitStack() as stack:
        urls = [stack.enter_context(serving(create_app(settings))) for _ in range(2)]
        for url in urls:
            # FastAPI builds a route's dependencies on its first request, inside a
            # warnings.catch_warnings() that is not thread-safe; under pytest's warnings-as-errors
            # parallel first requests can turn its ignored warning into a 500. Build them first.
            warm = httpx.post(f"{url}/v1/alerts", json={}, headers=tokens.as_ingest)
            assert warm.status_code == 422
        yield urls


def post_all(replicas: list[str], tokens: Tokens, bodies: list[dict[str, Any]]) -> list[int]:
    """Post every body at once from its own thread, alternating replicas; return the statuses."""
    barrier = threading.Barrier(len(bodies))

    def send(index: int) -> int:
        with httpx.Client(base_url=replicas[index % len(replicas)], timeout=60) as http:
            barrier.wait()
            response = http.post("/v1/alerts", json=bodies[index], headers=tokens.as_ingest)
            return response.status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, range(len(bodies))))


def runs_with_alerts(sessions: sessionmaker[Session]) -> dict[str, list[Alert]]:
    with sessions() as session:
        rows = session.execute(
            select(Run.id, Alert).join(RunAlert, RunAlert.run_id == Run.id)
            .join(Alert, Alert.id == RunAlert.alert_id)
        ).all()
    found: dict[str, list[Alert]] = {}
    for run_id, alert in rows:
        found.setdefault(run_id, []).append(alert)
    return found


def test_parallel_events_fire_exactly_one_run_per_group_and_window(
    replicas: list[str], tokens: Tokens, sessionmaker: sessionmaker[Session]
) -> None:
    users = ["arn:aws:iam::0123456789:user/a", "arn:aws:iam::0123456789:user/b"]
    bodies = [
        {"title": "TerminateInstances", "severity": 0, "kind": "terminate",
         "principal": {"arn": user}, "event_time": (T0 + timedelta(seconds=n)).isoformat()}
        for n in range(PER_GROUP) for user in users
    ]

    assert Counter(post_all(replicas, tokens, bodies)) == {202: len(bodies)}

    runs = runs_with_alerts(sessionmaker)
    groups = sorted(
        sorted({(a.principal or {}).get("arn") for a in alerts}) for alerts in runs.values()
    )
    assert groups == [[users[0]], [users[1]]]  # one run per user, each of one user's events
    # Each run holds at least the count; events that arrived after it fired joined it, or (if
    # earlier in event time than its window) wait in their own, still below the count.
    assert all(COUNT <= len(alerts) <= PER_GROUP for alerts in runs.values())


def test_parallel_related_alerts_end_in_one_run(
    replicas: list[str], tokens: Tokens, sessionmaker: sessionmaker[Session]
) -> None:
    bodies = [
        {"title": "Tor", "severity": "high", "kind": "finding", "type": "Recon:IAMUser/TorIP",
         "principal": {"arn": "arn:aws:iam::0123456789:user/mallory"},
         "event_time": (T0 + timedelta(minutes=n)).isoformat()}
        for n in range(16)
    ]

    assert Counter(post_all(replicas, tokens, bodies)) == {202: len(bodies)}

    runs = runs_with_alerts(sessionmaker)
    assert [len(alerts) for alerts in runs.values()] == [len(bodies)]
    with sessionmaker() as session:
        assert len(session.execute(select(Run.id)).all()) == 1
