"""The playbook JSON Schema explains itself: every property has a description, every action a
summary an editor shows beside its name."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from actions import registry
from engine.schema import playbook_schema


def undescribed(node: Any, path: str = "#") -> Iterator[str]:
    """Yield the path of every property declared without a description, anywhere in ``node``.

    The ``if`` of a conditional only tests a value (``action: {const: …}``); it declares
    nothing an editor shows, so it is not walked.
    """
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
                yield f"{path}/properties/{name}"
        for key, value in node.items():
            if key != "if":
                yield from undescribed(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from undescribed(value, f"{path}/{index}")


def test_the_walk_finds_a_property_without_a_description_at_any_depth() -> None:
    schema = {
        "properties": {"a": {"description": "A."}, "b": {}},
        "$defs": {"M": {"anyOf": [{"properties": {"c": {"description": " "}}}]}},
        "allOf": [{"if": {"properties": {"d": {"const": 1}}},
                   "then": {"properties": {"e": {"$ref": "#/$defs/M"}}}}],
    }
    assert list(undescribed(schema)) == [
        "#/properties/b",
        "#/$defs/M/anyOf/0/properties/c",
        "#/allOf/0/then/properties/e",
    ]


def test_every_property_of_the_playbook_schema_has_a_description() -> None:
    missing = list(undescribed(playbook_schema()))
    assert missing == [], (
        "add Field(description=...) for a playbook author (engine/spec.py or the action's input "
        f"model) to: {missing}"
    )


def test_every_action_name_carries_its_one_line_summary() -> None:
    action = playbook_schema()["$defs"]["Step"]["properties"]["action"]
    actions = registry.all_actions()
    assert action["enum"] == sorted(actions)
    first_lines = [(inspect.getdoc(actions[n]) or "").splitlines()[0] for n in action["enum"]]
    # Plain text for editors that show plain text: the docstring's line without code marks.
    assert action["enumDescriptions"] == [line.replace("`", "") for line in first_lines]
    assert action["markdownEnumDescriptions"] == [
        line.replace("``", "`") for line in first_lines
    ]
    at = action["enum"].index("aws.iam.disable_user")
    assert action["enumDescriptions"][at] == (
        "Disable an IAM user: deny everything, deactivate its keys, delete its console password."
    )
    at = action["enum"].index("aws.iam.revoke_role_sessions")
    assert action["markdownEnumDescriptions"][at].endswith("(`AWSRevokeOlderSessions`).")


def test_a_steps_parameters_say_which_action_they_belong_to() -> None:
    rules = playbook_schema()["$defs"]["Step"]["allOf"]
    by_action = {r["if"]["properties"]["action"]["const"]: r["then"] for r in rules}
    assert by_action["core.log"]["properties"]["with"] == {
        "$ref": "#/$defs/core.log",
        "description": "Parameters of core.log (docs/actions.md).",
    }
