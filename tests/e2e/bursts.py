"""A harness for the seed's case at the pace AWS delivers it: one call per instance, one event
per request (tests/e2e/test_burst_*.py).

The account is the demo's (``riposte/demo_scenario.py``: 22 production and 2 staging instances,
their backups, a week of history in the trail's bucket); the attacker signs in from China, then
terminates every instance with its own ``TerminateInstances`` call, each delivered alone to
``/v1/webhooks/eventbridge`` as EventBridge delivers it — at the burst's gaps, out of order,
redelivered, with a staging instance early — and the shipped playbook judges it.

The API runs on a real database (SQLite and PostgreSQL) and AWS is a moto server. Time: the
burst's gaps (seconds to minutes) and the playbook's settle period (quiet 1m, at most 5m) pass
on the settle clock (``engine.store.types.settle_clock``), which the test moves on instead of
sleeping; between two deliveries the worker does whatever is due by then, so a run may start on
part of the burst exactly as it would in production when a gap is longer than the quiet period.
What is checked is what an on-call engineer would: the instances the run confirmed, the plan the
approvers were shown, and AWS after the approval — every production instance relaunched once,
nothing for the staging ones, the user contained.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from core.settings import Settings
from engine.store.types import settle_clock
from engine.worker import Worker
from riposte.demo_scenario import FAILED_SIGN_INS, Account
from riposte.demo_trail import console_sign_in, eventbridge_event, terminate_instances
from tests.aws_sandbox import AwsSandbox
from tests.e2e.test_seed_scenario import replacements, user_state

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

PLAYBOOK = "mass-instance-termination"
QUIET = 60.0  # the shipped playbook's settle: {quiet: 1m, at_most: 5m}
AT_MOST = 300.0
CONTAINED = {"denied": True, "keys": ["Inactive", "Inactive"], "password": False}


@dataclass(frozen=True)
class Call:
    """One TerminateInstances call of the burst, as its EventBridge event."""

    instance_id: str
    at: float  # seconds after the burst's first call (its event time)
    event: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """An event arriving at Riposte ``at`` seconds after the burst's first call."""

    at: float
    event: dict[str, Any]


def burst(account: Account, order: Sequence[str], gaps: Sequence[float]) -> list[Call]:
    """Terminate each instance of ``order`` with its own call (EC2 really terminates it).

    The calls are ``gaps`` apart in event time, from a moment just after the backups (which
    must predate the incident). The sign-ins that precede them are delivered by ``sign_in``.
    """
    assert len(gaps) == len(order) - 1
    ec2 = account.client("ec2")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    calls, offset = [], 0.0
    for index, instance_id in enumerate(order):
        offset += gaps[index - 1] if index else 0.0
        answer = ec2.terminate_instances(InstanceIds=[instance_id])
        record = terminate_instances(account.caller, start + timedelta(seconds=offset), answer,
                                     region=account.region, console=True)
        calls.append(Call(instance_id, offset, eventbridge_event(record)))
    return calls


class Riposte:
    """The API (no worker thread) and one worker driven on the settle clock."""

    def __init__(self, client: TestClient, tokens: Tokens, sessions: SessionMaker[Session],
                 settings: Settings) -> None:
        self.client = client
        self.tokens = tokens
        self.worker = Worker(sessions=sessions, worker_id="burst-worker", settings=settings,
                             poll_seconds=0.1)
        self.now = 0.0  # seconds after the burst's first call, on the settle clock

    def sign_in(self, account: Account) -> None:
        """The attacker's failed sign-ins and the sign-in without MFA, from China."""
        moment = datetime.now(UTC).replace(microsecond=0)
        for index in range(FAILED_SIGN_INS + 1):
            record = console_sign_in(account.caller, moment + timedelta(seconds=index // 3),
                                     succeeded=index == FAILED_SIGN_INS)
            self.post([eventbridge_event(record)])

    def play(self, deliveries: Sequence[Delivery]) -> None:
        """Deliver each event at its time, letting the worker do what is due in between."""
        for delivery in sorted(deliveries, key=lambda d: d.at):
            self.until(delivery.at)
            self.post([delivery.event])

    def post(self, events: list[dict[str, Any]]) -> None:
        body: Any = events[0] if len(events) == 1 else events
        answer = self.client.post("/v1/webhooks/eventbridge", json=body,
                                  headers=self.tokens.as_ingest)
        assert answer.status_code in (200, 202), answer.text  # 200: a redelivery, counted

    def until(self, moment: float) -> None:
        """Move the settle clock on to ``moment`` and let the worker do everything due."""
        settle_clock.advance(max(0.0, moment - self.now))
        self.now = max(self.now, moment)
        while self.worker.work_once():
            pass

    def get(self, path: str) -> Any:
        answer = self.client.get(path, headers=self.tokens.as_responder)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def runs(self) -> list[dict[str, Any]]:
        """The mass-termination playbook's runs, oldest first, in full."""
        return self.runs_of(PLAYBOOK)

    def runs_of(self, playbook: str) -> list[dict[str, Any]]:
        """A playbook's runs, oldest first, in full."""
        listed = self.get("/v1/runs?limit=100")["runs"]
        return [self.get(f"/v1/runs/{r['id']}") for r in reversed(listed)
                if r["playbook"] == playbook]

    def waiting(self) -> dict[str, Any]:
        """The one run of the playbook waiting for approval."""
        [run] = [r for r in self.runs() if r["status"] == "waiting_approval"]
        return run

    def approve(self, run: dict[str, Any]) -> dict[str, Any]:
        """Another responder approves the run's pending request; return what it was shown."""
        [pending] = [a for a in run["approvals"] if a["status"] == "pending"]
        request: dict[str, Any] = self.get(f"/v1/approvals/{pending['id']}")
        decided = self.client.post(
            f"/v1/approvals/{pending['id']}/decision", headers=self.tokens.as_other_responder,
            json={"decision": "approve", "plan_hash": request["plan_hash"],
                  "reason": "contain and recover"})
        assert decided.status_code == 200, decided.text
        return request


@contextmanager
def serving(
    scenario_settings: Settings, tokens: Tokens, sessions: SessionMaker[Session]
) -> Iterator[Riposte]:
    """Riposte on the scenario's settings; the settle clock is the wall's again afterwards."""
    settle_clock.reset()
    try:
        with TestClient(create_app(scenario_settings)) as client:
            yield Riposte(client, tokens, sessions, scenario_settings)
    finally:
        settle_clock.reset()


def relaunch_calls(request: dict[str, Any]) -> list[str]:
    """The instances the approved plan relaunches (one RunInstances call each)."""
    [relaunch] = [sub for sub in request["plan"]["covers"] if sub["step"] == "relaunch"]
    return sorted(c["target"].removeprefix("replacement of ") for calls in relaunch["calls"]
                  for c in calls if c["operation"] == "RunInstances")


def assert_recovered_once(aws: AwsSandbox, account: Account) -> None:
    """Every production instance has exactly one replacement, no staging one has any."""
    relaunched = replacements(aws)
    assert sorted(relaunched) == sorted(account.fleet.production)
    tags = [
        {t["Key"]: t["Value"] for t in i.get("Tags") or []}
        for r in aws.client("ec2").describe_instances()["Reservations"] for i in r["Instances"]
    ]
    replaced = [t["riposte:replaces"] for t in tags if "riposte:replaces" in t]
    assert len(replaced) == len(set(replaced)) == len(account.fleet.production)
    assert user_state(aws) == CONTAINED


def staging_early(account: Account) -> list[str]:
    """The order of the calls: a staging instance second, the other one in the middle."""
    fleet = account.fleet
    production, staging = list(fleet.production), list(fleet.staging)
    return [production[0], staging[0], *production[1:12], staging[1], *production[12:]]

