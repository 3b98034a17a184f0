"""The generated JSON Schema matches the loader, is up to date, and the README covers settings."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from actions import registry
from core.settings import Settings
from engine.playbooks import parse_playbook, playbook_files
from engine.replay.differences import load_expectations
from engine.schema import playbook_schema, render_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "playbooks" / "schema.json"
SHIPPED = playbook_files([ROOT / "playbooks"])


class Yaml12Loader(yaml.SafeLoader):
    """Read YAML as editors (YAML 1.2) do: ``on:`` is a key, not the boolean true."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def document(text: str) -> Any:
    return yaml.load(textwrap.dedent(text), Loader=Yaml12Loader)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = playbook_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, instance: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(instance)]


def one_step(step: str) -> Any:
    return document("name: p\nsteps:\n" + textwrap.indent(textwrap.dedent(step), "  "))


def test_schema_json_is_the_generated_schema() -> None:
    assert SCHEMA_FILE.is_file(), "playbooks/schema.json is missing: run `make schema`"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "playbooks/schema.json is stale: run `make schema`"
    )


def test_the_schema_text_is_stable_and_says_how_to_regenerate_it() -> None:
    text = render_schema()
    assert text == render_schema()
    assert text.endswith("}\n")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "make schema" in schema["$comment"]
    assert "yaml-language-server: $schema=" in schema["$comment"]


def test_the_step_action_is_an_enum_of_the_registered_actions() -> None:
    action = playbook_schema()["$defs"]["Step"]["properties"]["action"]
    assert action["enum"] == sorted(registry.all_actions())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_playbook_satisfies_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schema.json"), (
        f"{path.name} should point editors at the schema on its first line"
    )
    assert errors(validator, document(text)) == []


def test_there_is_a_shipped_playbook() -> None:
    assert SHIPPED


@pytest.mark.parametrize("name", sorted(registry.all_actions()))
def test_every_docstring_example_satisfies_the_schema(
    validator: jsonschema.Draft202012Validator, name: str
) -> None:
    doc = textwrap.dedent(registry.all_actions()[name].__doc__ or "")
    match = re.search(r"```yaml\n(?P<body>.*?)```", doc, re.S)
    assert match
    assert errors(validator, one_step(match["body"])) == []


def test_an_unknown_action_is_rejected(validator: jsonschema.Draft202012Validator) -> None:
    found = errors(validator, one_step("- {id: a, action: core.logg, with: {message: hi}}"))
    assert any("'core.logg' is not one of" in e for e in found)


def test_an_unknown_step_field_is_rejected(validator: jsonschema.Draft202012Validator) -> None:
    step = "- {id: a, action: core.log, with: {message: hi}, retyr: 3}"
    found = errors(validator, one_step(step))
    assert any("'retyr' was unexpected" in e for e in found)


def test_parameters_are_checked_against_the_steps_action(
    validator: jsonschema.Draft202012Validator,
) -> None:
    assert errors(validator, one_step("- {id: a, action: core.sleep, with: {seconds: 5}}")) == []
    assert errors(validator, one_step("- {id: a, action: core.sleep, with: {seconds: soon}}"))
    assert errors(validator, one_step("- {id: a, action: core.sleep, with: {message: hi}}"))
    assert errors(validator, one_step("- {id: a, action: core.log, with: {seconds: 5}}"))
    assert errors(validator, one_step("- {id: a, action: core.log, with: {}}"))


def test_any_parameter_may_be_a_template(validator: jsonschema.Draft202012Validator) -> None:
    templated = "- {id: a, action: core.sleep, with: {seconds: '{{ vars.delay }}'}}"
    assert errors(validator, one_step(templated)) == []
    statement = "- {id: a, action: core.fail, with: {times: '{% if x %}1{% endif %}'}}"
    assert errors(validator, one_step(statement)) == []


@pytest.mark.parametrize("duration", ["30s", "5m", "1h", "250ms", 30, 1.5])
def test_durations_may_be_written_with_units(
    validator: jsonschema.Draft202012Validator, duration: str | float
) -> None:
    step = {"id": "a", "action": "core.sleep", "with": {"seconds": 1}, "timeout": duration,
            "retry": {"backoff": duration, "on": ["Throttling"]},
            "approval": {"expires_in": duration}}
    assert errors(validator, {"name": "p", "steps": [step]}) == []


@pytest.mark.parametrize("duration", ["soon", "-5s", -1])
def test_malformed_durations_are_rejected(
    validator: jsonschema.Draft202012Validator, duration: str | float
) -> None:
    step = {"id": "a", "action": "core.sleep", "with": {"seconds": 1}, "timeout": duration}
    assert errors(validator, {"name": "p", "steps": [step]})


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table_rows = [line for line in readme.splitlines() if line.startswith("| `RIPOSTE_")]
    documented = {re.match(r"\| `(RIPOSTE_\w+)`", row)[1]: row for row in table_rows}  # type: ignore[index]
    for name, field in Settings.model_fields.items():
        variable = f"RIPOSTE_{name.upper()}"
        assert variable in documented, f"README.md: the settings table lacks {variable}"
        default = "unset" if field.default is None else str(field.default)
        assert f"`{default}`" in documented[variable], (
            f"README.md: {variable} should show its default `{default}`"
        )
    unknown = set(documented) - {f"RIPOSTE_{n.upper()}" for n in Settings.model_fields}
    assert not unknown, f"README.md documents settings that do not exist: {sorted(unknown)}"


def test_the_readme_yaml_examples_are_valid(tmp_path: Path) -> None:
    """Every YAML block of the README loads as what it shows: a playbook (it starts with its
    ``name``), the replay's expectations file, or a CI job's steps."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    playbooks = [e for e in examples if e.startswith("name: ")]
    expectations = [e for e in examples if e.startswith("# replay-expected.yml")]
    assert len(playbooks) >= 3 and len(expectations) == 1
    for example in playbooks:
        parse_playbook(example, "README.md")
    (tmp_path / "replay-expected.yml").write_text(expectations[0], encoding="utf-8")
    assert load_expectations(tmp_path / "replay-expected.yml").expected
    for example in set(examples) - {*playbooks, *expectations}:
        assert isinstance(yaml.safe_load(example), list), example  # a CI job's steps


SEED_TRIGGER = {
    "source": ["cloudtrail"],
    "event_name": ["TerminateInstances", "DeleteInstances"],
    "resources": {"production": True},
    "threshold": {"count": 20, "within": "5m", "group_by": "principal.arn",
                  "count_resources": True},
}


@pytest.mark.parametrize(
    "trigger",
    [SEED_TRIGGER, {"correlate": {"by": ["principal.arn", "type"], "within": "1h"}},
     {"correlate": {"by": "type", "within": 3600}}],
    ids=["threshold", "correlate", "correlate-one-field"],
)
def test_correlation_and_threshold_triggers_satisfy_the_schema(
    validator: jsonschema.Draft202012Validator, trigger: dict[str, Any]
) -> None:
    playbook = {"name": "p", "trigger": trigger,
                "steps": [{"id": "a", "action": "core.log", "with": {"message": "hi"}}]}
    assert errors(validator, playbook) == []
    parse_playbook(json.dumps(playbook))  # the loader agrees


@pytest.mark.parametrize(
    "threshold",
    [{"count": 0, "within": "5m"}, {"count": 2, "within": 0}, {"count": 2, "within": "soon"},
     {"count": 2, "within": "5m", "every": 1}],
    ids=["count-0", "within-0", "within-not-a-duration", "unknown-key"],
)
def test_a_bad_threshold_is_refused_by_the_schema(
    validator: jsonschema.Draft202012Validator, threshold: dict[str, Any]
) -> None:
    playbook = {"name": "p", "trigger": {"threshold": threshold},
                "steps": [{"id": "a", "action": "core.log", "with": {"message": "hi"}}]}
    assert errors(validator, playbook)
