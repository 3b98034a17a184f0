"""The narrative and the recommendation (investigation.narrate) say only what the findings hold."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actions.base import ActionContext
from actions.investigation.actions import Narrate, NarrateInput
from actions.investigation.artifacts import extract
from actions.investigation.assess import assess
from actions.investigation.narrative import narrate
from actions.investigation.sources import Sources
from tests import cloudtrail_samples as ct
from tests.unit.test_investigation_assess import OWNER, normal_sources, seed_sources

SEED = assess(seed_sources())
NORMAL = assess(normal_sources())


def written(result: dict[str, Any]) -> dict[str, Any]:
    return narrate(result["findings"], result["open_questions"], result["verdict"])


def numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d+", text)}


def test_the_seed_narrative_tells_what_happened_when_by_whom_from_where() -> None:
    narrative = written(SEED)["narrative"]

    assert narrative.startswith(
        "On 6 November 2020 between 03:21:39 UTC and 03:23:54 UTC, AWS CloudTrail alerted to "
        "the user Roboman1 terminating 20 production instances in the AWS account 123456789012"
    )
    assert "typically occurred between 09:00 and 17:00 UTC" in narrative
    assert "occurred at 03:21:39 UTC, which is not within the normal working hours" in narrative
    assert "9 failed console sign-ins between 03:02:10 UTC and 03:02:18 UTC before a " \
           "successful sign-in at 03:02:23 UTC" in narrative
    assert "MFA was not used" in narrative
    assert f"The source IP ({ct.NIGHT_IP}) is located in China" in narrative
    assert "outside the expected geographical region for Roboman1" in narrative
    assert "United States" in narrative
    assert "AdministratorAccess" in narrative
    assert "prod-apps, a production account owned by platform-team@example.com" in narrative
    assert "This activity is unusual for Roboman1" in narrative
    assert "data destruction" in narrative


def test_the_seed_recommendation_disables_revokes_relaunches_and_names_the_owner() -> None:
    recommendation = written(SEED)["recommendation"]

    assert recommendation[0].startswith("We recommend temporarily disabling the user Roboman1")
    assert f"until the account owner ({OWNER}) confirms" in recommendation[0]
    assert "terminate these 20 instances" in recommendation[0]
    assert any("launch replacement EC2 instances" in r and "20 of the 20" in r
               for r in recommendation)
    assert any("Revoke the existing access keys of Roboman1 (AKIAEXAMPLEROBOMAN1)" in r
               for r in recommendation)
    assert "manager" in recommendation[-1] and "threat intelligence" in recommendation[-1]


def test_the_normal_history_says_it_matches_the_usual_pattern_and_disables_no_one() -> None:
    out = written(NORMAL)
    narrative, recommendation = out["narrative"], " ".join(out["recommendation"])

    assert "The activity matches Roboman1's usual pattern" in narrative
    assert "within its usual working hours" in narrative and "with MFA" in narrative
    assert "unusual for" not in narrative
    assert recommendation.startswith("No containment is recommended")
    assert f"Confirm with the account owner ({OWNER})" in recommendation
    for word in ("disabl", "revok", "revoke", "replacement"):
        assert word not in recommendation.lower()


@pytest.mark.parametrize("result", [SEED, NORMAL], ids=["seed", "normal"])
def test_every_sentence_names_the_findings_it_was_written_from(result: dict[str, Any]) -> None:
    out = written(result)
    found = {f["id"]: f for f in result["findings"]}
    narrative = [s for s in out["sentences"] if s["part"] == "narrative"]

    assert " ".join(s["text"] for s in narrative) == " ".join(out["narrative"].split())
    assert [s["text"] for s in out["sentences"] if s["part"] == "recommendation"] == \
        out["recommendation"]
    for sentence in narrative:
        assert sentence["findings"], sentence["text"]
        assert set(sentence["findings"]) <= set(found), sentence
        # Each number a sentence states is in the findings it names.
        held = numbers(json.dumps([found[i] for i in sentence["findings"]]))
        assert numbers(sentence["text"]) <= held, sentence


def _subset(result: dict[str, Any], keep: list[bool]) -> dict[str, Any]:
    kept = [f for f, k in zip(result["findings"], keep, strict=False) if k]
    ids = {f["id"] for f in kept}
    verdict = copy.deepcopy(result["verdict"])
    for key in ("reasons", "notable", "normal"):
        verdict[key] = [i for i in verdict[key] if i in ids]
    return {"findings": kept, "open_questions": result["open_questions"], "verdict": verdict}


@settings(max_examples=150, deadline=None)
@given(normal=st.booleans(), keep=st.lists(st.booleans(), min_size=25, max_size=25),
       blank=st.lists(st.booleans(), min_size=25, max_size=25))
def test_with_findings_missing_the_narrative_states_only_what_the_findings_hold(
    normal: bool, keep: list[bool], blank: list[bool]
) -> None:
    given_ = _subset(NORMAL if normal else SEED, keep)
    # Some findings also lose their evidence values, as a partial enrichment would give them.
    for finding, empty in zip(given_["findings"], blank, strict=False):
        if empty:
            finding["evidence"] = dict.fromkeys(finding["evidence"])
    ids = {f["id"] for f in given_["findings"]}
    out = narrate(given_["findings"], given_["open_questions"], given_["verdict"])
    text = out["narrative"] + " " + " ".join(out["recommendation"])

    assert numbers(text) <= numbers(json.dumps(given_["findings"]))
    location = {f["id"]: f for f in given_["findings"]}.get("source_ip.location")
    if location is None or not location["evidence"].get("addresses"):
        assert "China" not in text and "United States" not in text
    if not ids & {"source_ip.location", "source_ip.first_seen"}:
        assert ct.NIGHT_IP not in out["narrative"] and ct.OFFICE_IP not in out["narrative"]
    if "principal.mfa" not in ids:
        assert "MFA" not in out["narrative"]
    if "principal.sign_in_failures" not in ids:
        assert "failed console sign-in" not in out["narrative"]
    if "event.what_happened" not in ids:
        assert "Roboman1" not in out["narrative"] or ids & {
            "principal.access", "event_time.off_hours"} or out["narrative"] == ""
    if "account.purpose" not in ids:
        assert OWNER not in text and "prod-apps" not in text
    if not given_["verdict"]["unusual"]:
        assert "disabl" not in text.lower()
    for sentence in out["sentences"]:
        assert set(sentence["findings"]) <= ids | {q["id"] for q in given_["open_questions"]}


def test_nothing_given_writes_nothing_but_the_open_questions() -> None:
    out = narrate([], [], {})

    assert out["narrative"] == ""
    assert out["recommendation"][0].startswith("No containment is recommended") or \
        out["recommendation"] == []


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20))
@settings(max_examples=100, deadline=None)
def test_malformed_findings_never_break_the_narrative(junk: Any) -> None:
    broken = [{"id": i, "evidence": junk, "signal": junk} for i in
              ("event.what_happened", "event_time.off_hours", "source_ip.location",
               "principal.mfa", "instances.workload", "account.purpose")]
    # The findings of the seed, each evidence value replaced by the junk.
    spoiled = [{**f, "evidence": dict.fromkeys(f["evidence"], junk)} for f in SEED["findings"]]
    out = narrate([*broken, junk], [junk], {"unusual": junk, "reasons": junk})
    again = narrate(spoiled, SEED["open_questions"], {**SEED["verdict"], "normal": junk})

    assert isinstance(again["narrative"], str)

    assert isinstance(out["narrative"], str) and isinstance(out["recommendation"], list)


def test_control_characters_are_stripped_and_templates_stay_text() -> None:
    result = copy.deepcopy(SEED)
    what = next(f for f in result["findings"] if f["id"] == "event.what_happened")
    what["evidence"]["principal"] = "Robo\x1b[2Jman1{{ 7*7 }}\u202e\u0000"
    out = written(result)
    text = out["narrative"] + " ".join(out["recommendation"])

    assert "\x1b" not in text and "\u202e" not in text and "\x00" not in text
    assert "Robo[2Jman1{{ 7*7 }}" in text and "49" not in text


def test_the_action_sets_the_narrative_and_the_recommendation_for_approvers() -> None:
    ctx = ActionContext(run_id="run-1", step_id="narrate", mode="dry_run")
    output = Narrate().run(ctx, NarrateInput(**{
        k: SEED[k] for k in ("findings", "open_questions", "verdict")}))

    assert ctx.vars_update == {"narrative": output["narrative"],
                               "recommendation": output["recommendation"]}
    assert output["sentences"]


def test_a_guardduty_finding_is_told_as_a_finding_about_the_principal() -> None:
    alert = {
        "id": "gd-1", "source": "guardduty", "kind": "finding",
        "title": "API GetCallerIdentity was invoked from a known malicious IP address.",
        "account": ct.ACCOUNT, "region": "us-east-1",
        "principal": {"type": "IAMUser", "name": "ci-bot", "access_key_id": "AKIAEXAMPLECIBOT"},
        "event_time": "2020-11-06T03:21:39Z",
        "event_name": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
        "source_ip": ct.NIGHT_IP, "resources": [], "details": {},
        "severity": 70, "severity_label": "HIGH",
    }
    result = assess(Sources(artifacts=extract(alert)))
    out = written(result)

    assert out["narrative"].startswith(
        "On 6 November 2020 at 03:21:39 UTC, Amazon GuardDuty reported a finding (API "
        "GetCallerIdentity was invoked from a known malicious IP address.) about the user "
        "ci-bot in the AWS account 123456789012, region us-east-1.")
    assert result["verdict"]["principal_kind"] == "user"
    # GuardDuty's own rating (HIGH) is not lowered by the missing history.
    assert result["verdict"]["severity"] == "HIGH"
    assert out["recommendation"][0].startswith("We recommend temporarily disabling the user "
                                               "ci-bot")
    assert "relaunch" not in " ".join(out["recommendation"]).lower()


def test_an_alert_from_an_unnamed_source_is_said_to_flag_the_principal() -> None:
    alert = {"id": "g-1", "source": "generic", "title": "odd", "event_time":
             "2020-11-06T03:21:39Z", "event_name": "TerminateInstances",
             "principal": {"type": "IAMUser", "name": "Roboman1"},
             "resources": [{"type": "AwsEc2Instance", "id": "i-1"}]}
    out = written(assess(Sources(artifacts=extract(alert))))

    assert out["narrative"].startswith(
        "On 6 November 2020 at 03:21:39 UTC, an alert flagged the user Roboman1 terminating "
        "1 instance.")
