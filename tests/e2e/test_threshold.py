"""Threshold triggers through the HTTP API: the seed's rule on CloudTrail records as they come.

Records are the seed's TerminateInstances record (tests/samples/seed_terminate_instances.json)
with their own eventID, eventTime, principal and instances.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.samples import load

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

T0 = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
ROBOMAN = "arn:aws:iam::0123456789:user/Development/Roboman1"
OTHER = "arn:aws:iam::0123456789:user/Development/Other"
CLOUDTRAIL = "/v1/webhooks/cloudtrail"

# The seed's rule with a count small enough to read: 5 terminations by one user within 5 min.
BURST = """\
name: mass-termination
trigger:
  source: [cloudtrail]
  event_name: [TerminateInstances, DeleteInstances]
  threshold: {count: 5, within: 5m, group_by: principal.arn}
steps:
  - id: record
    action: core.set
    with:
      values:
        events: "{{ alerts | length }}"
        instances: >-
          {{ alerts | map(attribute='resources') | sum(start=[])
             | map(attribute='id') | list }}
        by: "{{ alert.principal.arn }}"
"""

# The seed's rule itself: 20 production instances by one user within 5 minutes.
SEED_RULE = """\
name: seed-rule
trigger:
  event_name: [TerminateInstances, DeleteInstances]
  resources: {production: true}
  threshold: {count: 20, within: 5m, group_by: principal.arn, count_resources: true}
steps:
  - {id: note, action: core.log, with: {message: "{{ alerts | length }} events"}}
"""

_sequence = iter(range(1, 1_000_000))


def record(minutes: float, *, arn: str = ROBOMAN, name: str = "TerminateInstances",
           instances: Sequence[str] | None = None) -> dict[str, Any]:
    """The seed's record at T0 + ``minutes``, with a fresh eventID."""
    number = next(_sequence)
    body: dict[str, Any] = copy.deepcopy(load("seed_terminate_instances")["Records"][0])
    body.update(eventID=f"evt-{number:06d}", eventName=name,
                eventTime=(T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    body["userIdentity"]["arn"] = arn
    items = [{"instanceId": i} for i in (instances or [f"i-{number:06d}"])]
    body["requestParameters"] = {"instancesSet": {"items": items}}
    body["responseElements"] = None
    return body


def deliver(client: TestClient, tokens: Tokens, *records: dict[str, Any]) -> list[dict[str, Any]]:
    """Post records one delivery each; every one must be accepted (202)."""
    answers = []
    for body in records:
        response = client.post(CLOUDTRAIL, json=body, headers=tokens.as_ingest)
        assert response.status_code == 202, response.text
        [answer] = response.json()["alerts"]
        answers.append(answer)
    return answers


def runs_of(client: TestClient, tokens: Tokens) -> list[dict[str, Any]]:
    listed = client.get("/v1/runs", headers=tokens.as_responder).json()["runs"]
    return [client.get(f"/v1/runs/{r['id']}", headers=tokens.as_responder).json()
            for r in reversed(listed)]


@pytest.fixture
def burst(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("burst.yml", BURST)


@pytest.mark.usefixtures("burst")
def test_the_event_that_reaches_the_count_fires_once_even_out_of_order(
    client: TestClient, tokens: Tokens
) -> None:
    # Event times 4, 1, 3, 0 min arrive first: four events, below the count.
    below = deliver(client, tokens, *(record(m) for m in (4, 1, 3, 0)))
    assert [(a["run_ids"], a["joined_run_ids"]) for a in below] == [([], [])] * 4
    assert runs_of(client, tokens) == []

    [fifth] = deliver(client, tokens, record(2))
    [run_id] = fifth["run_ids"]
    [run] = runs_of(client, tokens)
    assert run["id"] == run_id and run["alert_id"] == fifth["alert_id"]
    # Every event that made the count, in event time.
    assert run["alert_ids"] == [below[3]["alert_id"], below[1]["alert_id"], fifth["alert_id"],
                                below[2]["alert_id"], below[0]["alert_id"]]
    audit = client.get(f"/v1/audit?run_id={run_id}", headers=tokens.as_responder).json()
    [reached] = [e for e in audit["events"] if e["verb"] == "threshold.reached"]
    assert (reached["details"]["counted"], reached["details"]["count"]) == (5, 5)
    assert reached["details"]["window_start"] == T0.isoformat()


@pytest.mark.usefixtures("burst")
def test_later_events_of_the_burst_join_its_run_and_a_new_burst_fires_again(
    client: TestClient, tokens: Tokens
) -> None:
    first_burst = deliver(client, tokens, *(record(m) for m in (0, 1, 2, 3, 4)))
    [run_id] = first_burst[-1]["run_ids"]

    same_burst = deliver(client, tokens, record(4.5), record(5, name="DeleteInstances"))
    assert [(a["run_ids"], a["joined_run_ids"]) for a in same_burst] == [([], [run_id])] * 2

    # A quarter of an hour later the same user starts again: four events wait, the fifth fires.
    second_burst = deliver(client, tokens, *(record(m) for m in (15, 16, 17, 18, 19)))
    assert [a["run_ids"] for a in second_burst[:4]] == [[]] * 4
    [second_run] = second_burst[4]["run_ids"]
    assert second_run != run_id

    first, second = runs_of(client, tokens)
    assert len(first["alert_ids"]) == 7
    assert second["alert_ids"] == [a["alert_id"] for a in second_burst]


@pytest.mark.usefixtures("burst")
def test_each_user_is_counted_apart_and_other_calls_do_not_count(
    client: TestClient, tokens: Tokens
) -> None:
    mixed = [record(m, arn=OTHER if m % 2 else ROBOMAN) for m in range(8)]
    mixed += [record(0.5, name="StopInstances"), record(0.7, name="RunInstances")]
    answers = deliver(client, tokens, *mixed)

    assert all(a["run_ids"] == [] and a["joined_run_ids"] == [] for a in answers)
    assert runs_of(client, tokens) == []
    stored = client.get("/v1/alerts", headers=tokens.as_responder).json()["alerts"]
    assert len(stored) == len(mixed)  # below the threshold: stored, nothing started


@pytest.mark.usefixtures("burst")
def test_redelivered_events_are_counted_once(client: TestClient, tokens: Tokens) -> None:
    events = [record(m) for m in (0, 1, 2, 3)]
    deliver(client, tokens, *events)
    for body in events:
        repeat = client.post(CLOUDTRAIL, json=body, headers=tokens.as_ingest)
        assert repeat.status_code == 200 and repeat.json()["alerts"][0]["duplicate"]

    assert runs_of(client, tokens) == []


def test_the_fired_run_sees_the_events_in_its_templates(
    worker_client: TestClient, tokens: Tokens, wait_for_run: WaitForRun,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("burst.yml", BURST)
    answers = deliver(worker_client, tokens,
                      *(record(m, instances=[f"i-{m}a", f"i-{m}b"]) for m in range(5)))
    [run_id] = answers[-1]["run_ids"]

    run = wait_for_run(worker_client, run_id, tokens.as_responder, "succeeded")
    assert run["vars"] == {
        "events": 5,
        "instances": [f"i-{m}{x}" for m in range(5) for x in "ab"],
        "by": ROBOMAN,
    }


def instance(instance_id: str, **tags: str) -> dict[str, Any]:
    return {"type": "AwsEc2Instance", "id": instance_id, "tags": tags}


def terminate(minutes: float, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A generic alert body of a TerminateInstances call whose sender knew the tags."""
    return {
        "title": "TerminateInstances", "severity": 0, "source": "inventory", "kind": "api-call",
        "event_name": "TerminateInstances", "principal": {"arn": ROBOMAN},
        "event_time": (T0 + timedelta(minutes=minutes)).isoformat(), "resources": resources,
    }


def test_the_seed_rule_counts_distinct_instances_that_may_be_production(
    client: TestClient, tokens: Tokens, post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("seed-rule.yml", SEED_RULE)
    dev = [instance(f"i-dev{n}", Environment="dev") for n in range(30)]
    untagged = [instance(f"i-{n:02d}") for n in range(12)]
    tagged = [instance(f"i-prod{n}", Environment="production") for n in range(8)]

    # Thirty development instances: nothing counts, so the alert is stored and starts nothing.
    quiet = post_alert(client, tokens.as_ingest, **terminate(0, dev))
    assert (quiet["run_ids"], quiet["joined_run_ids"]) == ([], [])
    # One CloudTrail record with 12 instances (no tags: they may be production) ...
    [record_answer] = deliver(client, tokens, record(1, instances=[i["id"] for i in untagged]))
    # ... the same 12 again (counted once) plus 7 tagged production: 19 distinct, below 20.
    again = post_alert(client, tokens.as_ingest, **terminate(2, untagged + tagged[:7] + dev))
    assert again["run_ids"] == [] and record_answer["run_ids"] == []
    # The twentieth production instance fires.
    last = post_alert(client, tokens.as_ingest, **terminate(3, [tagged[7]]))

    [run_id] = last["run_ids"]
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert run["alert_ids"] == [record_answer["alert_id"], again["alert_id"], last["alert_id"]]
