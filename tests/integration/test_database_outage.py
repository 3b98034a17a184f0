"""The database goes away under load: senders get 503 and retry, nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from api.app import create_app
from core.settings import Settings
from engine.store import db
from engine.store.db import make_engine, make_sessionmaker
from engine.store.migrate import upgrade
from engine.store.models import Alert
from engine.store.tokens import create_token
from tests.integration.throwaway_postgres import ThrowawayPostgres, throwaway_postgres
from tests.live_server import serving


@pytest.fixture
def database() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as server:
        upgrade(server.url)
        yield server


def test_every_acknowledged_alert_survives_a_database_restart(
    database: ThrowawayPostgres, tmp_path: Path
) -> None:
    engine = make_engine(database.url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        token = create_token(session=session, name="sensor", role="ingest")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    app = create_app(Settings(database_url=database.url, playbook_dir=playbooks))
    acknowledged: list[str] = []
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    with serving(app) as base:
        def sender() -> None:
            with httpx.Client(base_url=base, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    key = f"outage-{threading.get_ident()}-{n}"
                    answer = http.post("/v1/alerts", json={"title": key, "severity": 10,
                                                           "dedup_key": key})
                    statuses[answer.status_code] += 1
                    if answer.status_code in (200, 202):
                        acknowledged.append(key)
                    elif answer.status_code == 503:
                        assert answer.headers["Retry-After"]
                        time.sleep(0.05)

        senders = [threading.Thread(target=sender) for _ in range(4)]
        try:
            for t in senders:
                t.start()
            time.sleep(1.5)
            database.stop()
            outage_started = len(acknowledged)
            time.sleep(1.5)
            database.start()
            deadline = time.monotonic() + 30
            while len(acknowledged) < outage_started + 50:  # recovered, without a restart of ours
                assert time.monotonic() < deadline, f"no recovery: {statuses}"
                time.sleep(0.1)
        finally:
            stop.set()
            for t in senders:
                t.join(timeout=30)
    assert statuses[503] > 0, f"the outage was not seen: {statuses}"
    assert set(statuses) <= {202, 503}, statuses
    with sessions() as session:
        stored = set(session.execute(select(Alert.dedup_key)).scalars())
    assert set(acknowledged) <= stored
    assert len(acknowledged) == len(set(acknowledged))
    engine.dispose()


def test_a_connection_idle_across_a_restart_is_replaced_before_use(
    database: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Busy connections are not pinged (the test above: a dead one fails its request with 503);
    # one idle for a while is, so a worker polling every few seconds survives a restart.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = make_engine(database.url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            before = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        database.stop()
        database.start()
        time.sleep(0.3)
        with engine.connect() as connection:
            after = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert after != before
        # A connection back in use sooner is trusted: no ping, the dead one fails its statement.
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 60.0)
        database.stop()
        database.start()
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
