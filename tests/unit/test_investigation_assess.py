"""The analyst's questions answered from evidence (investigation.assess), with no AWS and no I/O.

The seed case: Roboman1 works 09:00-17:00 UTC from an office in the United States for a week;
at 03:02 UTC nine sign-ins fail from an address in China, one succeeds without MFA, an admin
attaches AdministratorAccess to the user, then ten TerminateInstances calls end 20 production
instances between 03:21:39 and 03:23:54. The normal case: the same user terminates the same
instances at 14:15 from the office, signed in with MFA.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actions.aws.cloudtrail_history import summarize
from actions.aws.cloudtrail_records import PrincipalRef
from actions.base import ActionContext, RunEnv
from actions.investigation.actions import Assess, AssessInput
from actions.investigation.artifacts import extract
from actions.investigation.assess import assess
from actions.investigation.catalogue import QUESTIONS
from actions.investigation.sources import Sources
from engine.alerts import template_view
from engine.normalize.cloudtrail import normalize_cloudtrail_record
from tests import cloudtrail_samples as ct

INSTANCES = [f"i-0prod{n:02d}" for n in range(20)]
NORMAL_TIME = datetime(2020, 11, 6, 14, 15, 0, tzinfo=UTC)
OWNER = "platform-team@example.com"
ACCOUNTS = {ct.ACCOUNT: {"name": "prod-apps", "environment": "production", "owner": OWNER}}
GEO = {
    ct.NIGHT_IP: {"ip": ct.NIGHT_IP, "scope": "public", "owner": "unknown",
                  "country": {"iso_code": "CN", "name": "China"},
                  "asn": {"number": 4812, "organization": "CHINANET-SH-AP China Telecom"}},
    ct.OFFICE_IP: {"ip": ct.OFFICE_IP, "scope": "public", "owner": "unknown",
                   "country": {"iso_code": "US", "name": "United States"},
                   "asn": {"number": 7922, "organization": "COMCAST-7922"}},
}


def terminations(start: datetime, *, ip: str, agent: str, mfa: bool) -> list[dict[str, Any]]:
    """Ten TerminateInstances calls, 15 s apart, two instances each: the 20 instances."""
    records = []
    for n in range(10):
        pair = INSTANCES[2 * n: 2 * n + 2]
        identity = ct.user_identity()
        identity["sessionContext"] = {"attributes": {"mfaAuthenticated": str(mfa).lower()}}
        records.append(ct.record(
            start + timedelta(seconds=15 * n), "TerminateInstances", ip=ip, agent=agent,
            identity=identity,
            request={"instancesSet": {"items": [{"instanceId": i} for i in pair]}},
            response={"instancesSet": {"items": [
                {"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"},
                 "previousState": {"code": 16, "name": "running"}} for i in pair]}},
        ))
    return records


def history_of(records: list[dict[str, Any]], event_time: datetime) -> dict[str, Any]:
    """What aws.cloudtrail.principal_history answers for these records (as JSON)."""
    start = event_time - timedelta(days=7)
    summary = summarize(records, principal=PrincipalRef.parse(ct.USER_ARN), start=start,
                        end=event_time, alert_time=event_time, resource_ids=INSTANCES)
    window = {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "end": event_time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    output: dict[str, Any] = json.loads(json.dumps(
        {"principal": {"arn": ct.USER_ARN}, "window": window, "sources": {}, **summary}))
    return output


def described_principal(*, mfa_device: bool) -> dict[str, Any]:
    """What aws.iam.describe_principal answers for Roboman1."""
    return {
        "type": "user", "name": ct.USER, "arn": ct.USER_ARN, "account": ct.ACCOUNT,
        "created": "2019-03-01T00:00:00+00:00",
        "groups": [{"name": "Developers", "arn": "arn:aws:iam::123456789012:group/Developers",
                    "attached_policies": [{"name": "AmazonEC2FullAccess",
                                           "arn": "arn:aws:iam::aws:policy/AmazonEC2FullAccess"}],
                    "inline_policies": []}],
        "attached_policies": [], "inline_policies": [],
        "access_keys": [{"id": "AKIAEXAMPLEROBOMAN1", "status": "Active"}],
        "mfa_enabled": mfa_device, "console_password": {"exists": True},
        "recent_changes": [], "recent_days": 30,
    }


def described_instances() -> dict[str, Any]:
    """What aws.ec2.describe_instances answers: 20 production backends launched on 1 September."""
    return {
        "instances": [
            {"instance_id": i, "state": "terminated", "launch_time": "2020-09-01T10:00:00+00:00",
             "production": True, "instance_type": "m5.large",
             "tags": {"Name": f"orders-api-{n}", "Application": "orders-api",
                      "Environment": "production"},
             "launched_from": {"image_id": "ami-0abc", "name": "orders-api-2020-08"},
             "images": [{"image_id": f"ami-0bak{n:02d}", "state": "available",
                         "created": "2020-11-05T02:00:00+00:00"}],
             "snapshots": []}
            for n, i in enumerate(INSTANCES)
        ],
        "not_found": [], "production": INSTANCES, "terminated": INSTANCES,
    }


def alerts_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [template_view(f"alert-{n}", normalize_cloudtrail_record(r))
            for n, r in enumerate(records)]


def seed_sources(**changes: Any) -> Sources:
    """The seed case with every input a playbook gives."""
    attack = terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT, mfa=False)
    alerts = alerts_of(attack)
    sources = Sources(
        artifacts=extract(alerts[0], alerts),
        history=history_of([*ct.seeded_history()[:-1], *attack], ct.ALERT_TIME),
        principal=described_principal(mfa_device=False),
        instances=described_instances(),
        geo=GEO,
        accounts=ACCOUNTS,
    )
    return replace(sources, **changes)


def normal_sources(**changes: Any) -> Sources:
    """The same user terminating the same instances in its usual way."""
    work = terminations(NORMAL_TIME, ip=ct.OFFICE_IP, agent=ct.OFFICE_AGENT, mfa=True)
    sign_in = ct.console_login(NORMAL_TIME.replace(hour=9, minute=2), success=True, mfa=True,
                               ip=ct.OFFICE_IP)
    alerts = alerts_of(work)
    sources = Sources(
        artifacts=extract(alerts[0], alerts),
        history=history_of([*ct.daytime_week(NORMAL_TIME), sign_in, *work], NORMAL_TIME),
        principal=described_principal(mfa_device=True),
        instances=described_instances(),
        geo=GEO,
        accounts=ACCOUNTS,
    )
    return replace(sources, **changes)


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in result["findings"]}


def test_the_artifacts_of_step_2_come_from_the_triggering_events() -> None:
    artifacts = assess(seed_sources())["artifacts"]

    assert artifacts["event_time"] == "2020-11-06T03:21:39Z"
    assert artifacts["last_event_time"] == "2020-11-06T03:23:54Z"
    assert artifacts["event_names"] == {"TerminateInstances": 10}
    assert artifacts["source_ips"] == {ct.NIGHT_IP: 10}
    assert (artifacts["user_name"], artifacts["arn"]) == (ct.USER, ct.USER_ARN)
    assert artifacts["account"] == ct.ACCOUNT
    assert artifacts["instance_ids"] == INSTANCES
    assert artifacts["state_changes"][0] == {
        "instance_id": INSTANCES[0], "previous": "running", "current": "shutting-down"}


def test_the_seed_case_is_unusual_for_each_reason_the_analyst_found() -> None:
    verdict = assess(seed_sources())["verdict"]

    assert verdict["unusual"] is True
    assert set(verdict["reasons"]) == {
        "event_time.off_hours", "source_ip.location", "principal.mfa",
        "principal.sign_in_failures", "principal.recent_changes",
    }
    assert verdict["severity"] == "CRITICAL"
    assert (verdict["principal_kind"], verdict["principal"]) == ("user", ct.USER)


def test_off_hours_is_judged_against_the_usual_window_and_says_what_it_is_based_on() -> None:
    finding = by_id(assess(seed_sources()))["event_time.off_hours"]

    assert finding["evidence"]["usual_window"] == "09:00-17:00 UTC"
    assert finding["evidence"]["outside"] is True
    assert finding["evidence"]["hour"] == 3
    assert finding["evidence"]["window_days"] == 7
    # The week's 56 calls; the night's 10 sign-ins 19 minutes before are its lead-up.
    assert finding["evidence"]["based_on_events"] == 56
    assert finding["evidence"]["lead_up_left_out"] == {"events": 10,
                                                       "start": "2020-11-06T02:21:39Z"}
    assert "03:21:39" in finding["answer"] and "56 events" in finding["answer"]
    assert "its 10 calls from 2020-11-06 02:21:39 UTC on are the event's own lead-up" in (
        finding["answer"])
    assert finding["signal"] == "unusual" and finding["confidence"] == "high"


def test_the_instances_were_terminated_not_stopped_and_never_before() -> None:
    found = by_id(assess(seed_sources()))

    outcome = found["event_name.terminated_or_stopped"]["evidence"]
    assert outcome["outcome"] == "terminated"
    assert outcome["terminated_instances"] == 20
    assert outcome["state_changes"] == {"running -> shutting-down": 20}
    assert outcome["current_states"] == {"terminated": 20}
    cadence = found["event_name.cadence"]["evidence"]["by_event_name"]["TerminateInstances"]
    assert cadence["before_event"] == 0
    assert found["instances.stopped_before"]["evidence"]["stopped_or_terminated"] == {}
    assert found["instances.launched"]["evidence"]["earliest"] == "2020-09-01T10:00:00Z"


def test_the_address_is_new_and_outside_the_countries_the_user_comes_from() -> None:
    found = by_id(assess(seed_sources()))

    location = found["source_ip.location"]
    assert location["evidence"]["addresses"][0]["country"] == {"iso_code": "CN", "name": "China"}
    assert location["evidence"]["usual_countries"] == ["US"]
    assert location["evidence"]["baseline_addresses"] == [
        {"ip": ct.OFFICE_IP, "country": {"iso_code": "US", "name": "United States"}}]
    assert location["signal"] == "unusual"
    first = found["source_ip.first_seen"]["evidence"]["values"][0]
    assert (first["first_seen"], first["minutes_before_event"], first["new"]) == (
        "2020-11-06T03:02:10Z", 19, True)


def test_failed_sign_ins_no_mfa_and_a_fresh_policy_are_each_a_finding() -> None:
    found = by_id(assess(seed_sources()))

    failures = found["principal.sign_in_failures"]["evidence"]
    assert (failures["failures"], failures["first_failure"], failures["last_failure"]) == (
        9, "2020-11-06T03:02:10Z", "2020-11-06T03:02:18Z")
    assert failures["success_after_failures"]["time"] == "2020-11-06T03:02:23Z"
    mfa = found["principal.mfa"]["evidence"]
    assert (mfa["mfa_used"], mfa["events_without_mfa"], mfa["mfa_device"]) == (False, 10, False)
    changes = found["principal.recent_changes"]["evidence"]["cloudtrail_changes"]
    assert changes[0]["event_name"] == "AttachUserPolicy"
    assert changes[0]["details"]["policyArn"] == "arn:aws:iam::aws:policy/AdministratorAccess"


def test_what_the_user_may_do_and_what_the_instances_and_account_are() -> None:
    found = by_id(assess(seed_sources()))

    access = found["principal.access"]["evidence"]
    assert access["groups"] == ["Developers"]
    assert access["policies_through_groups"] == ["AmazonEC2FullAccess"]
    assert access["active_access_keys"] == ["AKIAEXAMPLEROBOMAN1"]
    work = found["instances.workload"]["evidence"]
    assert (work["production"], work["workloads"], work["images"]) == (
        20, ["orders-api"], ["orders-api-2020-08"])
    assert found["instances.recovery"]["evidence"]["recoverable"] == 20
    assert found["account.purpose"]["evidence"] == {
        "account": ct.ACCOUNT, "listed": True, "name": "prod-apps",
        "environment": "production", "owner": OWNER}


def test_an_account_missing_from_the_registry_is_an_unknown_account() -> None:
    finding = by_id(assess(seed_sources(accounts={})))["account.purpose"]

    assert finding["answer"].startswith("Unknown account: 123456789012")
    assert finding["evidence"]["listed"] is False and finding["confidence"] == "low"


def test_the_normal_history_is_not_unusual_and_rates_low() -> None:
    result = assess(normal_sources())

    assert result["verdict"]["unusual"] is False
    assert result["verdict"]["reasons"] == []
    assert result["verdict"]["severity"] == "LOW"
    assert {"event_time.off_hours", "source_ip.location", "principal.mfa",
            "principal.sign_in_failures"} <= set(result["verdict"]["normal"])


def test_no_earlier_activity_is_no_baseline_and_is_treated_as_unusual() -> None:
    attack = terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT, mfa=True)
    result = assess(seed_sources(history=history_of(attack, ct.ALERT_TIME)))

    assert result["verdict"]["baseline"] == "missing"
    assert result["verdict"]["unusual"] is True
    assert by_id(result)["event_time.off_hours"]["evidence"]["usual_window"] is None


def test_missing_inputs_become_open_questions_that_say_which_input() -> None:
    result = assess(seed_sources(history=None, principal=None, instances=None, geo={},
                                 geo_error="the geolocation database is unavailable"))

    why = {q["id"]: q["why_not_answered"] for q in result["open_questions"]}
    assert "aws.cloudtrail.principal_history" in why["event_time.off_hours"]
    assert "aws.iam.describe_principal" in why["principal.access"]
    assert "aws.ec2.describe_instances" in why["instances.launched"]
    assert "geolocation database is unavailable" in why["source_ip.location"]
    assert "manager" in why["principal.authorised"] and OWNER in why["principal.authorised"]
    assert "OSINT" in why["source_ip.reputation"] or "threat" in why["source_ip.reputation"]


@settings(max_examples=40, deadline=None)
@given(
    history=st.booleans(), principal=st.booleans(), instances=st.booleans(), geo=st.booleans(),
    normal=st.booleans(),
)
def test_every_question_is_answered_or_left_open_never_dropped(
    history: bool, principal: bool, instances: bool, geo: bool, normal: bool
) -> None:
    base = normal_sources() if normal else seed_sources()
    result = assess(replace(
        base,
        history=base.history if history else None,
        principal=base.principal if principal else None,
        instances=base.instances if instances else None,
        geo=base.geo if geo else {},
    ))

    ids = [f["id"] for f in result["findings"]] + [q["id"] for q in result["open_questions"]]
    assert sorted(ids) == sorted(QUESTIONS)
    for finding in result["findings"]:
        assert finding["confidence"] in ("high", "medium", "low")
        assert finding["answer"] and isinstance(finding["evidence"], dict)
    assert set(result["verdict"]["reasons"]) <= {f["id"] for f in result["findings"]}
    json.dumps(result)  # stored in the run's context: plain JSON


def test_a_stop_is_not_a_termination_and_a_role_is_contained_as_a_role() -> None:
    record = ct.record(ct.ALERT_TIME, "StopInstances", identity={
        "type": "AssumedRole", "arn": f"arn:aws:sts::{ct.ACCOUNT}:assumed-role/deployer/ci-42",
        "accountId": ct.ACCOUNT,
        "sessionContext": {"sessionIssuer": {"userName": "deployer"}}},
        request={"instancesSet": {"items": [{"instanceId": INSTANCES[0]}]}})
    [alert] = alerts_of([record])
    result = assess(Sources(artifacts=extract(alert)))

    outcome = by_id(result)["event_name.terminated_or_stopped"]["evidence"]
    assert (outcome["outcome"], outcome["stopped_instances"]) == ("stopped", 1)
    assert result["verdict"]["destructive"] is False
    assert result["verdict"]["principal_kind"] == "role"


def test_alert_text_reaches_findings_as_plain_text() -> None:
    [alert] = alerts_of([ct.record(ct.ALERT_TIME, "TerminateInstances",
                                   agent="evil\x1b[31m{{ 7*7 }}\u202egpj.exe\n",
                                   request={"instancesSet": {"items": [{"instanceId": "i-1"}]}})])
    result = assess(Sources(artifacts=extract(alert)))

    shown = json.dumps(result["artifacts"]["user_agents"], ensure_ascii=False)
    assert "\x1b" not in shown and "\u202e" not in shown and "\n" not in shown
    assert "{{ 7*7 }}" in shown  # data, never rendered


def test_the_action_reads_the_run_alert_and_sets_the_run_variables() -> None:
    base = seed_sources()
    alerts = alerts_of(terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT,
                                    mfa=False))
    env = RunEnv(run_id="run-1", mode="live", alert=alerts[0])
    ctx = ActionContext(run_id="run-1", step_id="assess", mode="live", env=env)
    env.settings = env.settings.model_copy(update={"accounts": {}})
    output = Assess().run(ctx, AssessInput(
        alerts=alerts, history=base.history, principal=base.principal,
        instances=base.instances, usual_countries=["US"], geolocate=False))

    assert set(ctx.vars_update) == {"findings", "open_questions", "verdict"}
    assert ctx.vars_update["verdict"] == output["verdict"]
    assert len(output["artifacts"]["instance_ids"]) == 20
    assert {q["id"] for q in output["open_questions"]} >= {"source_ip.location"}


def test_the_action_places_addresses_with_the_offline_geolocation_data() -> None:
    alerts = alerts_of(terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT,
                                    mfa=False))
    env = RunEnv(run_id="run-1", mode="live", alert=alerts[0])
    ctx = ActionContext(run_id="run-1", step_id="assess", mode="live", env=env)
    output = Assess().run(ctx, AssessInput(alerts=alerts, usual_countries=["US"]))

    location = by_id(output)["source_ip.location"]["evidence"]
    assert location["addresses"][0]["country"]["iso_code"] == "CN"
    assert location["outside"] is True and location["usual_basis"] == "configured"


def test_instance_history_not_asked_for_is_an_open_question_saying_so() -> None:
    base = seed_sources()
    history = {**(base.history or {}), "resources": {}}
    result = assess(replace(base, history=history))

    why = {q["id"]: q["why_not_answered"] for q in result["open_questions"]}
    for question in ("instances.touched_before", "instances.stopped_before",
                     "instances.recent_changes"):
        assert "`resources` parameter" in why[question]


def test_the_principal_kind_comes_from_iam_when_the_alert_names_none() -> None:
    alert = {"id": "alarm-1", "source": "cloudwatch", "title": "TerminateInstances burst",
             "event_time": "2020-11-06T03:25:00Z", "event_name": "mass-termination"}
    result = assess(Sources(artifacts=extract(alert), principal={"type": "role",
                                                                 "name": "deployer"}))

    assert (result["verdict"]["principal_kind"], result["verdict"]["principal"]) == (
        "role", "deployer")


def test_the_events_own_lead_up_is_no_precedent_for_its_hour() -> None:
    finding = by_id(assess(seed_sources()))["event_time.seen_at_this_hour"]

    # The night's ten sign-ins, 19 minutes before the terminations, are not a precedent.
    assert finding["answer"] == (
        "No: none of its 56 calls in the 7 days before was between 03:00 and 04:00 UTC (its 10 "
        "calls from 2020-11-06 02:21:39 UTC on are the event's own lead-up and are not counted).")
    assert finding["evidence"]["events_at_this_hour"] == 0
    assert finding["evidence"]["lead_up_left_out"] == {"events": 10,
                                                       "start": "2020-11-06T02:21:39Z"}


def test_calls_at_this_hour_on_earlier_days_are_a_precedent() -> None:
    earlier = [ct.record(ct.ALERT_TIME - timedelta(days=d, minutes=10)) for d in (2, 3, 4)]
    attack = terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT, mfa=False)
    history = history_of([*ct.seeded_history()[:-1], *earlier, *attack], ct.ALERT_TIME)
    finding = by_id(assess(seed_sources(history=history)))["event_time.seen_at_this_hour"]

    assert finding["answer"].startswith(
        "Yes: 3 of its 59 calls in the 7 days before were between 03:00 and 04:00 UTC on 3 days "
        "(its 10 calls from")
    assert finding["evidence"]["active_days_at_this_hour"] == 3


def test_a_short_history_is_not_stretched_to_the_events_hour_by_its_lead_up() -> None:
    # Four daytime calls in the week: with the night's ten sign-ins as one more active hour,
    # 90 % of five active hours would have had to include 03:00, and the attack looked usual.
    days = [ct.record(ct.ALERT_TIME.replace(hour=10, minute=15) - timedelta(days=d))
            for d in (1, 2, 3, 4)]
    night = [r for r in ct.seeded_history() if r["eventName"] == "ConsoleLogin"]
    attack = terminations(ct.ALERT_TIME, ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT, mfa=False)
    history = history_of([*days, *night, *attack], ct.ALERT_TIME)
    finding = by_id(assess(seed_sources(history=history)))["event_time.off_hours"]

    assert finding["evidence"]["usual_window"] == "10:00-11:00 UTC"
    assert finding["evidence"]["outside"] is True
    assert finding["signal"] == "notable"  # four active hours: too few to call it unusual
    assert finding["evidence"]["based_on_events"] == 4
    assert "its 10 calls from 2020-11-06 02:21:39 UTC on are the event's own lead-up" in (
        finding["answer"])
