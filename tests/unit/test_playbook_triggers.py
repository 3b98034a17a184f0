"""A playbook's triggers: one mapping or a list of them, read as one list; the first that
matches an alert handles it; each keeps its own threshold count; the wiring routes each."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jsonschema
import pytest

from engine.alerts import NormalizedAlert, matching_trigger
from engine.playbooks import PlaybookInvalid, parse_playbook
from engine.schema import playbook_schema
from engine.spec import Threshold, Trigger
from engine.triggers import threshold_group
from engine.wiring.routing import wiring_of

STEPS = "steps:\n  - {id: note, action: core.log, with: {message: hi}}\n"


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook(text)
    return [(p.line, p.message) for p in caught.value.problems]


def alert(**fields: Any) -> NormalizedAlert:
    base: dict[str, Any] = {"source": "generic", "kind": "iam", "title": "t", "severity": 50,
                            "severity_label": "MEDIUM"}
    return NormalizedAlert.model_validate({**base, **fields})


def test_one_trigger_written_as_a_mapping_is_a_list_of_one() -> None:
    loaded = parse_playbook("name: p\ntrigger:\n  source: [guardduty]\n" + STEPS)
    assert [t.source for t in loaded.spec.triggers] == [["guardduty"]]


def test_a_list_of_triggers_loads_in_the_order_written() -> None:
    loaded = parse_playbook(
        "name: p\ntrigger:\n  - source: [guardduty]\n    correlate: {by: type, within: 1h}\n"
        "  - source: [cloudwatch]\n    settle: {quiet: 2m, at_most: 2m}\n" + STEPS
    )
    first, second = loaded.spec.triggers
    assert first.source == ["guardduty"] and first.correlate is not None
    assert second.source == ["cloudwatch"] and second.settle is not None
    assert second.settle.quiet == 120.0 and first.settle is None


@pytest.mark.parametrize("written", ["", "trigger:\n", "trigger: null\n", "trigger: []\n"],
                         ids=["absent", "empty", "null", "empty-list"])
def test_no_trigger_means_started_by_hand_only(written: str) -> None:
    assert parse_playbook("name: p\n" + written + STEPS).spec.triggers == []


def test_a_trigger_neither_mapping_nor_list_is_refused_on_its_line() -> None:
    assert problems("name: p\ntrigger: guardduty\n" + STEPS) == [
        (2, "trigger: a trigger is a mapping (source, kind, type, …) or a list of them, not "
            "'guardduty'")]


@pytest.mark.parametrize(("text", "line"), [
    ("trigger:\n  threshold:\n    count: 0\n    within: 5m\n", 4),
    ("trigger:\n  - source: [x]\n  - threshold:\n      count: 0\n      within: 5m\n", 5),
], ids=["mapping", "second-of-a-list"])
def test_a_bad_field_names_its_line_in_either_form(text: str, line: int) -> None:
    [(found, message)] = problems("name: p\n" + text + STEPS)
    assert found == line and "count" in message, message


def test_each_trigger_is_checked_on_its_own_and_named_by_its_line() -> None:
    found = problems(
        "name: p\ntrigger:\n  - correlate: {by: [user], within: 1h}\n"
        "  - correlate: {by: type, within: 1h}\n    threshold: {count: 2, within: 1m}\n" + STEPS
    )
    assert [line for line, _ in found] == [3, 5]
    assert found[0][1].startswith("correlate.by: unknown alert field 'user'")
    assert found[1][1] == "a trigger either correlates or counts to a threshold, not both"


def test_the_first_trigger_an_alert_matches_handles_it() -> None:
    triggers = [Trigger(kind=["iam"]), Trigger(source=["generic"]), Trigger(kind=["ec2"])]
    iam = matching_trigger(triggers, alert(kind="iam"), is_production=None)
    ec2 = matching_trigger(triggers, alert(kind="ec2"), is_production=None)
    assert iam is not None and (iam.index, iam.trigger) == (0, triggers[0])
    assert ec2 is not None and ec2.index == 1  # the second matches before the third
    assert matching_trigger(triggers, alert(source="guardduty", kind="s3"),
                            is_production=None) is None
    assert matching_trigger([], alert(), is_production=None) is None


def test_each_threshold_trigger_counts_in_groups_of_its_own() -> None:
    threshold = Threshold(count=2, within=60, group_by=["principal.arn"])
    one = alert(principal={"arn": "arn:aws:iam::111122223333:user/m"})
    assert threshold_group(threshold, one, trigger=0) != threshold_group(threshold, one, trigger=1)
    # The first trigger keeps the key every group had before a playbook could have several
    # (runs and counted events stored then go on): this digest is that key's definition.
    before = json.dumps(["threshold", {"principal.arn": "arn:aws:iam::111122223333:user/m"}],
                        sort_keys=True, separators=(",", ":"))
    assert threshold_group(threshold, one) == hashlib.sha256(before.encode()).hexdigest()


@pytest.mark.parametrize(("trigger", "valid"), [
    ({"source": ["guardduty"]}, True),
    ([{"source": ["guardduty"]}, {"source": ["securityhub"], "kind": ["finding"]}], True),
    (None, True),
    ("guardduty", False),
    ([{"sorce": ["guardduty"]}], False),
], ids=["mapping", "list", "null", "scalar", "unknown-key-in-list"])
def test_the_json_schema_takes_one_trigger_or_a_list(trigger: Any, valid: bool) -> None:
    playbook = {"name": "p", "trigger": trigger,
                "steps": [{"id": "a", "action": "core.log", "with": {"message": "hi"}}]}
    errors = list(jsonschema.Draft202012Validator(playbook_schema()).iter_errors(playbook))
    assert (errors == []) is valid, errors


def test_the_wiring_routes_every_trigger_of_a_playbook_once_per_pattern() -> None:
    loaded = parse_playbook(
        "name: both\nvars: {event_names: [TerminateInstances]}\ntrigger:\n"
        "  - {source: [guardduty], type: 'Recon:*'}\n"
        "  - {source: [guardduty], type: 'Recon:*', severity_at_least: 0}\n"
        "  - {source: [cloudwatch], kind: [alarm], type: '*instance-termination*'}\n"
        "  - {source: [generic]}\n" + STEPS
    )
    wiring = wiring_of([loaded.spec])
    [rule] = wiring.rules  # the first two need one pattern: one rule, naming the playbook once
    assert rule.playbooks == ["both"]
    [alarm] = wiring.alarms
    assert alarm.playbooks == ("both",) and "instance-termination" in alarm.alarm_name
    assert wiring.alarm_playbooks == ["both"]
    assert [note.split(":")[0] for note in wiring.notes] == ["playbook both trigger 4"]
