"""RIPOSTE_INGEST_THREADS: at most that many deliveries are parsed and stored at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import api.routes.alerts
from api.app import create_app
from core.settings import Settings
from tests.e2e.conftest import Tokens
from tests.live_server import serving

PARALLEL = 12


class Overlap:
    """Wraps the store function; counts how many calls run at the same time, at most."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # long enough for every request to be waiting by now
            return self.store(**kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> Overlap:
    watched = Overlap(api.routes.alerts.store_delivery)
    monkeypatch.setattr(api.routes.alerts, "store_delivery", watched)
    return watched


@pytest.fixture
def server(settings: Settings, tokens: Tokens) -> Iterator[str]:
    with serving(create_app(settings.model_copy(update={"ingest_threads": 3}))) as base_url:
        yield base_url


def test_deliveries_beyond_the_limit_wait_their_turn(
    server: str, tokens: Tokens, overlap: Overlap
) -> None:
    def deliver(n: int) -> int:
        with httpx.Client(base_url=server, timeout=30) as http:
            body = {"title": f"alert {n}", "severity": 10, "dedup_key": f"k-{n}"}
            return http.post("/v1/alerts", json=body, headers=tokens.as_ingest).status_code

    with ThreadPoolExecutor(PARALLEL) as pool:
        statuses = list(pool.map(deliver, range(PARALLEL)))
    assert statuses == [202] * PARALLEL
    assert overlap.most == 3
