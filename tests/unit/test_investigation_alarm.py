"""A CloudWatch alarm is investigated as an alarm, and the calls it counted as the events.

The alarm of tests/alarm_samples goes off three minutes after Roboman1's burst of 22
terminations (``burst_night``); aws.cloudtrail.find_callers ranks the night's callers
(``rank_callers``, pure) and its leading caller's calls are given to investigation.assess as
``events``. No AWS, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from actions.aws.cloudtrail_caller_records import rank_callers
from actions.base import ActionContext, RunEnv
from actions.investigation.actions import Assess, AssessInput
from actions.investigation.artifacts import extract
from actions.investigation.assess import assess
from actions.investigation.narrative import narrate
from actions.investigation.sources import Sources
from tests import cloudtrail_samples as ct
from tests.alarm_samples import ALARM, ALARM_TIME, INSTANCES, METRIC, alarm_alert, burst_night
from tests.unit.test_investigation_assess import by_id, history_of, seed_sources
from tests.unit.test_investigation_narrative import numbers

ALERT = alarm_alert(ALARM_TIME, account=ct.ACCOUNT, region="us-east-2")


def leading_calls() -> list[dict[str, Any]]:
    """The leading caller's calls, as find_callers lists them (through JSON, as a step output)."""
    counted = [r for r in burst_night() if r["eventName"] == "TerminateInstances"]
    ranked = rank_callers(counted, start=ALARM_TIME - timedelta(minutes=10), end=ALARM_TIME)
    events: list[dict[str, Any]] = json.loads(json.dumps(ranked.callers[0]["events"]))
    return events


def written(result: dict[str, Any]) -> dict[str, Any]:
    return narrate(result["findings"], result["open_questions"], result["verdict"])


def test_an_alarm_alone_is_told_as_an_alarm_not_as_a_call() -> None:
    result = assess(Sources(artifacts=extract(ALERT)))
    out = written(result)

    what = by_id(result)["event.what_happened"]
    assert what["answer"] == (
        f"The CloudWatch alarm {ALARM} went into ALARM on 6 November 2020 at 03:24:39 UTC "
        f"(metric {METRIC}, alarming at or above 20); an alarm names no caller, and no call it "
        "counted was given."
    )
    assert what["evidence"]["events"] == 0
    assert what["evidence"]["alarms"][0]["threshold"] == 20.0
    assert out["narrative"].startswith(
        f"The CloudWatch alarm {ALARM} went into ALARM on 6 November 2020 at 03:24:39 UTC "
        f"(metric {METRIC}, alarming at or above 20). An alarm names no caller: who made the "
        "calls it counted is not known from it."
    )
    assert "call(s)" not in out["narrative"] and "making" not in out["narrative"]
    assert result["artifacts"]["event_names"] == {}
    # The alarm's own rating stands; nothing says an instance was terminated.
    assert result["verdict"]["severity"] == "HIGH"
    assert result["verdict"]["destructive"] is False
    assert "event_name.terminated_or_stopped" in {q["id"] for q in result["open_questions"]}


def test_the_calls_the_alarm_counted_are_the_events_and_their_caller_the_principal() -> None:
    events = leading_calls()
    history = history_of([*ct.seeded_history()[:-1], *burst_night()], ct.ALERT_TIME)
    sources = replace(seed_sources(), artifacts=extract(ALERT, [ALERT], events), history=history)
    result = assess(sources)

    artifacts = result["artifacts"]
    assert (artifacts["user_name"], artifacts["arn"], artifacts["principal_kind"]) == (
        ct.USER,
        ct.USER_ARN,
        "user",
    )
    assert artifacts["event_names"] == {"TerminateInstances": 2}
    assert artifacts["events_found_in_cloudtrail"] == 2
    assert artifacts["instance_ids"] == INSTANCES
    assert [a["name"] for a in artifacts["alarms"]] == [ALARM]
    found = by_id(result)
    assert found["event.what_happened"]["answer"].startswith(
        f"The CloudWatch alarm {ALARM} went into ALARM on 6 November 2020 at 03:24:39 UTC "
        f"(metric {METRIC}, alarming at or above 20); CloudTrail shows {ct.USER} (user) made 2 "
        "TerminateInstances calls naming 22 instances (20 production), between 2020-11-06 "
        f"03:21:39 UTC and 2020-11-06 03:21:52 UTC, from {ct.NIGHT_IP}"
    )
    assert found["event_name.terminated_or_stopped"]["evidence"]["outcome"] == "terminated"
    assert found["event_time.off_hours"]["evidence"]["outside"] is True
    assert result["verdict"]["unusual"] is True and result["verdict"]["destructive"] is True
    assert result["verdict"]["principal"] == ct.USER

    out = written(result)
    assert out["narrative"].startswith(
        f"The CloudWatch alarm {ALARM} went into ALARM on 6 November 2020 at 03:24:39 UTC "
        f"(metric {METRIC}, alarming at or above 20). On 6 November 2020 between 03:21:39 UTC "
        f"and 03:21:52 UTC, CloudTrail recorded the user {ct.USER} terminating 22 instances, 20 "
        "of them production, in the AWS account 123456789012, region us-east-2."
    )
    assert f"{ALARM} call" not in out["narrative"]
    assert out["recommendation"][0].startswith(
        f"We recommend temporarily disabling the user {ct.USER}"
    )
    held = {f["id"]: f for f in result["findings"]}
    for sentence in out["sentences"]:
        if sentence["part"] == "narrative":
            assert numbers(sentence["text"]) <= numbers(
                json.dumps([held[i] for i in sentence["findings"]])
            ), sentence


def test_an_event_also_delivered_as_an_alert_counts_once() -> None:
    events = leading_calls()
    delivered = {**events[0], "id": "alert-7"}  # the same CloudTrail event, as the run's alert
    artifacts = extract(delivered, [delivered], events)

    assert artifacts.event_names == {"TerminateInstances": 2}
    assert artifacts.found_events == 1


def test_the_action_takes_the_events_and_the_alarm_from_the_run() -> None:
    env = RunEnv(run_id="run-1", mode="live", alert=ALERT)
    env.settings = env.settings.model_copy(update={"accounts": {}})
    ctx = ActionContext(run_id="run-1", step_id="assess", mode="live", env=env)

    output = Assess().run(ctx, AssessInput(events=leading_calls(), geolocate=False))

    assert output["verdict"]["principal"] == ct.USER
    assert output["verdict"]["principal_kind"] == "user"
    assert output["artifacts"]["event_names"] == {"TerminateInstances": 2}
    assert output["artifacts"]["alarms"][0]["state"] == "ALARM"
