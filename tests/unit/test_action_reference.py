"""docs/actions.md is the reference the registry writes, and it says what an author needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actions import registry
from actions.reference import (
    REGENERATE,
    markdown,
    render_action_reference,
    summary,
    undo_sentence,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_FILE = ROOT / "docs" / "actions.md"
ACTIONS = registry.all_actions()


def section(text: str, name: str) -> str:
    """The part of the reference about one action: from its heading to the next action's."""
    found = re.search(rf"^## `{re.escape(name)}`\n(?P<body>.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"docs/actions.md has no section for {name}"
    return found["body"]


def test_docs_actions_md_is_the_generated_reference() -> None:
    assert REFERENCE_FILE.is_file(), f"docs/actions.md is missing: run `{REGENERATE}`"
    assert REFERENCE_FILE.read_text(encoding="utf-8") == render_action_reference(), (
        f"docs/actions.md is stale: run `{REGENERATE}`"
    )


def test_riposte_docs_actions_prints_the_reference() -> None:
    from riposte.cli import app  # the whole command line, as `riposte` builds it

    result = CliRunner().invoke(app, ["docs", "actions"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_action_reference()


def test_the_readme_links_the_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/actions.md)" in readme


@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_action_is_documented_with_its_parameters_permissions_and_example(
    name: str,
) -> None:
    action = ACTIONS[name]
    text = render_action_reference()
    assert f"| [`{name}`](#" in text, f"{name} is missing from the index"
    body = section(text, name)
    assert body.lstrip().startswith(summary(action))
    for parameter, field in action.Input.model_fields.items():
        row = re.search(rf"^\| `{re.escape(field.alias or parameter)}` \|.*\|$", body, re.M)
        assert row, f"{name}: parameter {parameter} has no row"
        described = markdown(" ".join((field.description or "").split()))
        assert described[:40] in row[0], f"{name}: parameter {parameter} lacks its description"
        if field.is_required():
            assert "| required |" in row[0]
    for permission in action.permissions:
        assert f"`{permission}`" in body, f"{name}: permission {permission} not listed"
    if not action.permissions:
        assert "None: it makes no AWS call." in body
    assert "### Example\n\n```yaml\n- id: " in body
    assert f"**Mutating:** {'yes' if action.mutating else 'no'}." in body


def test_a_parameter_shows_its_type_default_and_bounds() -> None:
    body = section(render_action_reference(), "core.log")
    assert "| `message` | string | required | Text to write to the run's log. |" in body
    assert "| `level` | one of `debug`, `info`, `warning`, `error` | `\"info\"` |" in body
    sleep = section(render_action_reference(), "core.sleep")
    assert "| `seconds` | number (≥ 0, ≤ 86400) | required |" in sleep


def test_nested_parameter_models_get_their_own_table() -> None:
    body = section(render_action_reference(), "aws.ec2.relaunch_instances")
    assert "| `overrides` | mapping of `Override` |" in body
    assert "\n`Override`: " in body
    assert re.search(r"^\| `instance_profile_arn` \| string \| unset \| ARN of", body, re.M)


def test_scoped_permissions_say_on_what_and_why() -> None:
    body = section(render_action_reference(), "aws.iam.disable_user")
    row = next(line for line in body.splitlines() if "`iam:AttachUserPolicy`" in line)
    assert "AWSDenyAll" in row
    assert "the only managed policy attached" in row


@pytest.mark.parametrize("name", [n for n, a in ACTIONS.items() if a.mutating])
def test_every_mutating_action_says_how_a_rollback_treats_it(name: str) -> None:
    action = ACTIONS[name]
    said = undo_sentence(action)
    expected = "Undo " if action.reversible else "Not reversible"
    assert said.startswith(expected), (
        f"{name}: its docstring should say in a sentence starting {expected!r} how its "
        f"change is undone (found {said!r})"
    )
    assert f"**Rollback:** {markdown(said)}" in section(render_action_reference(), name)


def test_a_read_only_action_has_nothing_to_undo() -> None:
    body = section(render_action_reference(), "aws.iam.describe_principal")
    assert "**Mutating:** no. **Rollback:** nothing to undo: it changes nothing." in body


def test_the_undo_sentence_ends_at_its_full_stop_not_inside_parentheses() -> None:
    said = undo_sentence(ACTIONS["aws.ec2.relaunch_instances"])
    assert said == ("Undo terminates only the replacements this step launched and deregisters "
                    "only the image it registered (the backup snapshots stay).")
