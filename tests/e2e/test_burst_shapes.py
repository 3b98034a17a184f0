"""The seed's case at the pace AWS delivers it: one call per instance, one event per request.

The account is the demo's (``riposte/demo_scenario.py``: 22 production and 2 staging instances,
their backups, a week of history in the trail's bucket); the attacker signs in from China, then
terminates every instance with its own ``TerminateInstances`` call, each delivered alone to
``/v1/webhooks/eventbridge`` as EventBridge delivers it, and the shipped playbook judges it.
Time passes on the settle clock (tests/e2e/bursts.py says how); what is checked is the
instances the run confirmed, the plan the approvers were shown, and AWS after the approval.

Here the deliveries in every shape (out of order, redelivered, as fast as possible, in one
array, after the approval) and the credentials playbook, on SQLite: tests/e2e/test_burst_pace.py
runs the rejudging itself on PostgreSQL too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from core.settings import Settings
from riposte.demo_scenario import USER, seed_account
from tests.aws_sandbox import AwsSandbox
from tests.e2e.bursts import (
    AT_MOST,
    QUIET,
    Delivery,
    Riposte,
    assert_recovered_once,
    burst,
    relaunch_calls,
    serving,
    staging_early,
)
from tests.e2e.test_seed_scenario import (  # noqa: F401  (fixtures used by name)
    guardduty_finding,
    moto_endpoint,
    replacements,
    scenario_settings,
    user_state,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only (see the module's docstring)."""
    return sqlite_url


@pytest.fixture
def riposte(
    scenario_settings: Settings, tokens: Tokens, sessionmaker: SessionMaker[Session]  # noqa: F811
) -> Iterator[Riposte]:
    with serving(scenario_settings, tokens, sessionmaker) as serves:
        yield serves

@pytest.mark.parametrize("seed", [1, 2])
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


def test_a_finding_that_joins_the_credentials_run_while_approval_is_asked_is_judged_too(
    riposte: Riposte, aws: AwsSandbox
) -> None:
    """compromised-credentials correlates GuardDuty findings on one key: a second finding
    arriving while the first run asks approval starts it over on both, and the approvers are
    asked again, on a request that says which one it replaces."""
    account = seed_account(aws.url, fleet=False)
    key = account.access_keys[0]
    riposte.post([guardduty_finding(key)])
    riposte.until(1)
    [run] = riposte.runs_of("compromised-credentials")
    assert run["status"] == "waiting_approval" and len(run["alert_ids"]) == 1
    [shown] = run["approvals"]

    riposte.post([guardduty_finding(key)])
    riposte.until(2)
    [run] = riposte.runs_of("compromised-credentials")  # the same run, judged again
    assert run["status"] == "waiting_approval"
    assert run["round"] == 2 and len(run["alert_ids"]) == 2
    assert riposte.get(f"/v1/approvals/{shown['id']}")["status"] == "superseded"
    request = riposte.approve(run)
    assert request["plan"]["widened"]["replaces"] == shown["id"]
    riposte.until(3)
    assert riposte.get(f"/v1/runs/{run['id']}")["status"] == "succeeded"
    assert user_state(aws) == {"denied": True, "keys": ["Inactive", "Inactive"],
                               "password": True}
