"""The seed's case at the pace AWS delivers it: one call per instance, one event per request.

The account is the demo's (``riposte/demo_scenario.py``: 22 production and 2 staging instances,
their backups, a week of history in the trail's bucket); the attacker signs in from China, then
terminates every instance with its own ``TerminateInstances`` call, each delivered alone to
``/v1/webhooks/eventbridge`` as EventBridge delivers it, and the shipped playbook judges it.
Time passes on the settle clock (tests/e2e/bursts.py says how); what is checked is the
instances the run confirmed, the plan the approvers were shown, and AWS after the approval.

Here the two ways a run meets the rest of its burst, on SQLite and PostgreSQL (the row
locks between an alert joining and the worker matter on both): a run that ended on part of
it, and a run that asked approval for part of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from core.settings import Settings
from riposte.demo_scenario import seed_account
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
    moto_endpoint,
    replacements,
    scenario_settings,
    user_state,
)
from tests.live_server import webhook_receiver

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens


@pytest.fixture
def riposte(
    scenario_settings: Settings, tokens: Tokens, sessionmaker: SessionMaker[Session]  # noqa: F811
) -> Iterator[Riposte]:
    with serving(scenario_settings, tokens, sessionmaker) as serves:
        yield serves

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
    scenario_settings: Settings,  # noqa: F811
    tokens: Tokens,
    sessionmaker: SessionMaker[Session],
    aws: AwsSandbox,
) -> None:
    """22 calls (20 production), a pause, then the last 2 production instances: the run had
    asked approval for 20; the request is superseded and the new one, and the notice the
    approvers get, show what was added."""
    with webhook_receiver() as (url, notices), serving(
        scenario_settings.model_copy(update={"approval_notify": [url]}), tokens, sessionmaker
    ) as riposte:
        grown(riposte, aws, notices)


def grown(riposte: Riposte, aws: AwsSandbox, notices: list[dict[str, Any]]) -> None:
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
    [first_notice, second_notice] = [str(n["text"]) for n in notices]
    assert "Replaces request" not in first_notice
    assert (f"Replaces request {shown['id']}: the run judged its burst again with the alerts "
            "that arrived since; ") in second_notice
    for instance_id in account.fleet.production[-2:]:
        assert f"ec2:RunInstances on replacement of {instance_id}" in second_notice
    riposte.until(riposte.now + 1)
    assert riposte.get(f"/v1/runs/{run['id']}")["status"] == "succeeded"
    assert_recovered_once(aws, account)

