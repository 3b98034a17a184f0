"""``engine.replay.bursts`` groups alerts into runs as the store does, without a database.

The oracle is the store itself: the same alerts, ingested one by one with the shipped
playbooks, start runs; each run's alerts must be the ones the replay groups together.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine.alerts import NormalizedAlert
from engine.normalize import normalize_eventbridge
from engine.normalize.files import in_time_order, read_alert_file
from engine.playbooks import load_all
from engine.replay import plan_runs
from engine.store.alerts import ingest_alert
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Run
from engine.store.runs import run_alerts
from riposte.plan_cli import generic_alert
from tests.integration.test_wiring_templates import sample_events
from tests.replay import PLAYBOOKS, SEED
from tests.replay.record import guardduty_finding
from tests.samples import SAMPLES

Groups = dict[str, set[frozenset[str]]]


def findings() -> list[NormalizedAlert]:
    """GuardDuty findings on two keys: two on one within the hour, one on it hours later."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    events = []
    for number, (key, later) in enumerate([("AKIAONE", 0), ("AKIATWO", 5), ("AKIAONE", 20),
                                           ("AKIAONE", 300)]):
        event: dict[str, Any] = copy.deepcopy(
            guardduty_finding(key, start + timedelta(minutes=later))
        )
        event["detail"]["id"] = f"finding-{number}"
        events.append(event)
    return [alert for event in events for alert in normalize_eventbridge(event)]


def imported_copy() -> list[NormalizedAlert]:
    """A GuardDuty finding and, minutes later, Security Hub's import of it: two triggers of
    ``compromised-credentials`` take them, and the store folds them into one run."""
    events = sample_events()
    copy_ = events["securityhub-key-ttp"]
    copy_["detail"]["findings"][0]["UpdatedAt"] = "2024-03-01T10:05:00Z"
    return [alert for event in (events["guardduty-key-unauthorized"], copy_)
            for alert in normalize_eventbridge(event)]


def alerts() -> list[NormalizedAlert]:
    files = [*sorted(SEED.glob("*.json")), SAMPLES / "seed_terminate_instances.json"]
    read = [a for path in files for a in read_alert_file(path, generic=generic_alert)]
    return in_time_order([*read, *findings(), *imported_copy()])


def by_replay(alerts: list[NormalizedAlert]) -> Groups:
    playbooks, _problems = load_all([PLAYBOOKS])
    groups: Groups = {}
    for name, playbook in playbooks.items():
        plan = plan_runs(playbook.spec.triggers, alerts, is_production=None)
        groups[name] = {frozenset(str(alerts[i].dedup_key) for i in run.alerts)
                        for run in plan.runs}
    return {name: runs for name, runs in groups.items() if runs}


def by_store(url: str, alerts: list[NormalizedAlert]) -> Groups:
    playbooks, _problems = load_all([PLAYBOOKS])
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        for alert in alerts:
            with sessions.begin() as session:
                ingest_alert(session=session, alert=alert, playbooks=playbooks,
                             endpoint="/v1/webhooks/eventbridge", body_sha256="0" * 64,
                             body_bytes=len(json.dumps(alert.model_dump(mode="json"))),
                             actor="test")
        groups: Groups = {}
        with sessions() as session:
            for run in session.execute(select(Run)).scalars():
                members = frozenset(str(a.dedup_key) for a in run_alerts(session, run.id))
                groups.setdefault(run.playbook, set()).add(members)
        return groups
    finally:
        engine.dispose()


def test_the_replay_groups_alerts_into_the_runs_the_store_makes(db_url: str) -> None:
    given = alerts()

    replayed = by_replay(given)

    assert replayed == by_store(db_url, given)
    # What the corpus holds: the seed's burst is one run of both its calls; the findings on
    # one key within the hour are one run, the other key's and the late one their own; the
    # GuardDuty finding and Security Hub's copy of it, taken by two triggers, are one run.
    [burst] = replayed["mass-instance-termination"]
    assert len(burst) == 2
    assert sorted(map(len, replayed["compromised-credentials"])) == [1, 1, 1, 2, 2]


def test_a_burst_short_of_its_threshold_starts_no_run() -> None:
    [one] = read_alert_file(sorted(SEED.glob("*-terminateinstances.json"))[0],
                            generic=generic_alert)
    playbooks, _problems = load_all([PLAYBOOKS])
    spec = playbooks["mass-instance-termination"].spec

    plan = plan_runs(spec.triggers, [one], is_production=None)

    assert plan.runs == []
    [handling] = plan.handling
    assert handling.outcome == "counted"
    assert handling.reasons == [f"counted: {len(one.resources)} of 20 within 5m so far"]
