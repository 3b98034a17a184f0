"""An anonymous flood is counted whole but recorded at a bounded rate.

Thousands of requests that prove no identity — no token, a made-up token, a made-up API key on
a webhook, a body that is not an SNS message — from one address and then from many: every one
is refused and counted in /metrics, yet the audit log (never pruned) and the deliveries table
grow by at most RIPOSTE_ANONYMOUS_REFUSALS_PER_MINUTE rows a minute plus one summary row, and
the summary accounts for every refusal that has no row of its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from core.settings import Settings
from engine.store.models import AuditEvent, Delivery
from tests.e2e.conftest import TestClient

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

FROM_ONE_ADDRESS = 1600
OTHER_ADDRESSES = 20
FROM_EACH_OTHER = 20
METRIC = "riposte_anonymous_refusals_total"
WINDOW_SECONDS = 60.0


def _refuse(client: TestClient, n: int) -> int:
    """Send the n-th anonymous request (four kinds in turn); return its status."""
    kind = n % 4
    if kind == 0:
        return client.get("/v1/runs").status_code
    if kind == 1:
        return client.post("/v1/alerts", json={"title": "x", "severity": 1},
                           headers={"Authorization": f"Bearer rip_made-up-{n}"}).status_code
    if kind == 2:
        return client.post("/v1/webhooks/eventbridge", content=b'{"source": "x"}',
                           headers={"x-riposte-api-key": f"rip_made-up-{n}"}).status_code
    return client.post("/v1/webhooks/sns", content=b"not an SNS message",
                       headers={"x-amz-sns-message-type": "Notification"}).status_code


def _refusals_counted(client: TestClient, tokens: Tokens) -> float:
    text = client.get("/metrics", headers=tokens.as_responder).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(METRIC + "{"))


def _rows(sessionmaker: SessionMaker[Session]) -> dict[str, Any]:
    with sessionmaker() as session:
        return {
            "audit": session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            "deliveries": session.execute(
                select(func.count()).select_from(Delivery)).scalar_one(),
            "refused": session.execute(select(AuditEvent.details).where(
                AuditEvent.verb == "auth.refused")).scalars().all(),
            "summaries": session.execute(select(AuditEvent.details).where(
                AuditEvent.verb == "auth.refusals_summarized")).scalars().all(),
        }


def test_an_anonymous_flood_is_counted_whole_and_adds_a_bounded_number_of_rows(
    settings: Settings, tokens: Tokens, sessionmaker: SessionMaker[Session]
) -> None:
    before = _rows(sessionmaker)
    app = create_app(settings)
    started = time.monotonic()
    with TestClient(app) as client:
        counted_before = _refusals_counted(client, tokens)
        statuses = [_refuse(client, n) for n in range(FROM_ONE_ADDRESS)]
        for a in range(OTHER_ADDRESSES):
            other = TestClient(app, client=(f"198.51.100.{a + 1}", 40000))
            statuses += [_refuse(other, n) for n in range(FROM_EACH_OTHER)]
        counted = _refusals_counted(client, tokens) - counted_before
    # Leaving the client stops the app, which sums up the minute still open.
    elapsed = time.monotonic() - started
    after = _rows(sessionmaker)

    total = FROM_ONE_ADDRESS + OTHER_ADDRESSES * FROM_EACH_OTHER
    assert sorted(set(statuses)) == [400, 401]
    assert counted == total

    windows = 1 + int(elapsed // WINDOW_SECONDS)  # 1 unless this machine is very slow
    per_minute = settings.anonymous_refusals_per_minute
    per_address = settings.anonymous_refusals_per_address
    own_rows = len(after["refused"]) - len(before["refused"])
    summaries = after["summaries"][len(before["summaries"]):]
    assert 1 <= len(summaries) <= windows
    assert own_rows <= per_minute * windows
    assert after["audit"] - before["audit"] == own_rows + len(summaries)
    assert after["deliveries"] - before["deliveries"] <= per_minute * windows
    by_address: dict[str, int] = {}
    for details in after["refused"]:
        by_address[details["address"]] = by_address.get(details["address"], 0) + 1
    assert max(by_address.values()) <= per_address * windows
    assert len(by_address) > 1  # the one busy address did not take every row

    # Every refusal is in a row of its own or in a summary, never lost.
    assert sum(s["recorded"] + s["unrecorded"] for s in summaries) == total
    busiest = max(summaries, key=lambda s: s["unrecorded"])
    assert max(busiest["by_address"], key=busiest["by_address"].get) == "testclient"
    assert set(busiest["by_why"]) <= {"missing", "not_live", "sns_unproven"}
