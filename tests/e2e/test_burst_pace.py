"""The seed's case at the pace AWS delivers it: one call per instance, one event per request.

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

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from engine.store.types import settle_clock
from engine.worker import Worker
from riposte.demo_scenario import FAILED_SIGN_INS, USER, Account, seed_account
from riposte.demo_trail import console_sign_in, eventbridge_event, terminate_instances
from riposte.settings import Settings
from tests.aws_sandbox import AwsSandbox
from tests.e2e.test_seed_scenario import (  # noqa: F401  (fixtures used by name)
    moto_endpoint,
    replacements,
    scenario_settings,
    user_state,
)

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
        """The playbook's runs, oldest first, in full."""
        listed = self.get("/v1/runs?limit=100")["runs"]
        return [self.get(f"/v1/runs/{r['id']}") for r in reversed(listed)
                if r["playbook"] == PLAYBOOK]

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


@pytest.fixture
def riposte(
    scenario_settings: Settings, tokens: Tokens, sessionmaker: SessionMaker[Session]  # noqa: F811
) -> Iterator[Riposte]:
    settle_clock.reset()
    try:
        with TestClient(create_app(scenario_settings)) as client:
            yield Riposte(client, tokens, sessionmaker, scenario_settings)
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


def test_a_burst_at_its_real_gaps_is_judged_whole_and_recovered_once(
    riposte: Riposte, aws: AwsSandbox
) -> None:
    """Calls 10 s apart, then a pause longer than the quiet period after the call that
    reaches the count: the run starts on 20 instances (two of them staging), judges them below
    threshold, and ends. The last calls start a follow-up run that judges all 24."""
    account = seed_account(aws.url)
    order = staging_early(account)
    gaps = [10.0] * (len(order) - 1)
    gaps[19] = 90.0  # after the 20th call, the one that completes the count
    calls = burst(account, order, gaps)
    riposte.sign_in(account)
    riposte.play([Delivery(c.at + 3.0, c.event) for c in calls])
    riposte.until(calls[-1].at + 3.0 + AT_MOST)

    runs = riposte.runs()
    first, follow_up = runs[0], runs[-1]
    assert first["status"] == "succeeded" and len(first["alert_ids"]) == 20
    assert len(first["vars"]["terminated_production"]) == 18  # judged on part of the burst
    assert follow_up["follows"] == first["id"] and follow_up["status"] == "waiting_approval"
    assert len(follow_up["alert_ids"]) == len(order)
    assert sorted(follow_up["vars"]["terminated_production"]) == sorted(
        account.fleet.production)
    request = riposte.approve(follow_up)
    assert relaunch_calls(request) == sorted(account.fleet.production)
    riposte.until(riposte.now + 1)
    assert riposte.get(f"/v1/runs/{follow_up['id']}")["status"] == "succeeded"
    assert_recovered_once(aws, account)


def test_a_burst_that_grows_while_approval_is_asked_supersedes_the_request(
    riposte: Riposte, aws: AwsSandbox
) -> None:
    """22 calls (20 production), a pause, then the last 2 production instances: the run had
    asked approval for 20; the request is superseded and the new one shows what was added."""
    account = seed_account(aws.url)
    order = staging_early(account)
    gaps = [5.0] * (len(order) - 1)
    gaps[21] = 100.0
    calls = burst(account, order, gaps)
    riposte.sign_in(account)
    riposte.play([Delivery(c.at + 2.0, c.event) for c in calls[:22]])
    riposte.until(calls[21].at + 2.0 + QUIET + 1)
    [run] = riposte.runs()
    assert run["status"] == "waiting_approval"
    [shown] = run["approvals"]
    first_request = riposte.get(f"/v1/approvals/{shown['id']}")
    assert len(relaunch_calls(first_request)) == 20

    riposte.play([Delivery(c.at + 2.0, c.event) for c in calls[22:]])
    riposte.until(calls[-1].at + 2.0 + QUIET + 1)
    [run] = riposte.runs()  # the same run, judged again: no second run
    assert run["round"] == 2 and len(run["alert_ids"]) == len(order)
    assert riposte.get(f"/v1/approvals/{shown['id']}")["status"] == "superseded"
    request = riposte.approve(run)
    widened = request["plan"]["widened"]
    assert widened["replaces"] == shown["id"]
    added = sorted(c.removeprefix("ec2:RunInstances on replacement of ")
                   for c in widened["added"] if c.startswith("ec2:RunInstances"))
    assert added == sorted(account.fleet.production[-2:])
    assert relaunch_calls(request) == sorted(account.fleet.production)
    riposte.until(riposte.now + 1)
    assert riposte.get(f"/v1/runs/{run['id']}")["status"] == "succeeded"
    assert_recovered_once(aws, account)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_burst_delivered_out_of_order_and_redelivered_is_judged_whole(
    riposte: Riposte, aws: AwsSandbox, seed: int
) -> None:
    """Each call's event arrives 1 s to 3 min after it, in whatever order that makes, and a
    third of them twice; whatever runs started on part of it, one run asks for all 22."""
    account = seed_account(aws.url)
    shuffle = random.Random(seed)
    order = staging_early(account)
    calls = burst(account, order, [shuffle.uniform(1.0, 20.0) for _ in order[1:]])
    deliveries = [Delivery(c.at + shuffle.uniform(1.0, 180.0), c.event) for c in calls]
    deliveries += [Delivery(d.at + shuffle.uniform(1.0, 120.0), d.event)
                   for d in shuffle.sample(deliveries, len(deliveries) // 3)]
    riposte.sign_in(account)
    riposte.play(deliveries)
    riposte.until(max(d.at for d in deliveries) + AT_MOST)

    run = riposte.waiting()
    assert len(run["alert_ids"]) == len(order)  # redeliveries are no new alerts
    assert sorted(run["vars"]["terminated_production"]) == sorted(account.fleet.production)
    request = riposte.approve(run)
    assert relaunch_calls(request) == sorted(account.fleet.production)
    riposte.until(riposte.now + 1)
    assert_recovered_once(aws, account)


def test_a_burst_posted_as_fast_as_possible_and_in_one_array_is_judged_whole(
    riposte: Riposte, aws: AwsSandbox
) -> None:
    """All 24 events at once, one request each, then the same again as one array (the
    redelivery of a whole batch): one run, one request for all 22, recovered once."""
    account = seed_account(aws.url)
    calls = burst(account, staging_early(account), [1.0] * 23)
    riposte.sign_in(account)
    riposte.play([Delivery(0.0, c.event) for c in calls])
    riposte.post([c.event for c in calls])
    riposte.until(QUIET + 1)

    [run] = riposte.runs()
    assert run["status"] == "waiting_approval" and run["round"] == 1
    request = riposte.approve(run)
    assert relaunch_calls(request) == sorted(account.fleet.production)
    riposte.until(riposte.now + 1)
    assert_recovered_once(aws, account)


def test_calls_arriving_after_the_approval_start_a_follow_up_for_what_is_left(
    riposte: Riposte, aws: AwsSandbox
) -> None:
    """The run is approved and acts on 21 production instances; the last call arrives after
    that. The first run never acts beyond what was approved; a follow-up run asks for the
    one instance left, and only it."""
    account = seed_account(aws.url)
    order = staging_early(account)
    calls = burst(account, order, [5.0] * (len(order) - 1))
    riposte.sign_in(account)
    riposte.play([Delivery(c.at + 2.0, c.event) for c in calls[:-1]])
    riposte.until(calls[-2].at + 2.0 + QUIET + 1)
    first = riposte.waiting()
    assert len(relaunch_calls(riposte.approve(first))) == 21
    riposte.until(riposte.now + 1)
    first = riposte.get(f"/v1/runs/{first['id']}")
    assert first["status"] == "succeeded"
    assert len(replacements(aws)) == 21

    late = calls[-1]
    riposte.play([Delivery(riposte.now + 30, late.event)])
    riposte.until(riposte.now + QUIET + 1)
    follow_up = riposte.waiting()
    assert follow_up["follows"] == first["id"]
    assert len(follow_up["alert_ids"]) == len(order)
    request = riposte.approve(follow_up)
    assert relaunch_calls(request) == [late.instance_id]  # only what is left
    riposte.until(riposte.now + 1)
    assert riposte.get(f"/v1/runs/{follow_up['id']}")["status"] == "succeeded"
    assert_recovered_once(aws, account)
    assert USER in follow_up["narrative"]
