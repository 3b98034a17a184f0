"""The run summary people read: alert values stay inert text, one line each, capped."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actions.notify import (
    SUMMARY_LIMIT,
    plain,
    render_summary,
    slack_escape,
    slack_text,
)

ALERT: dict[str, Any] = {
    "source": "securityhub",
    "kind": "finding",
    "title": "API called from a Tor exit node",
    "severity": 70,
    "severity_label": "HIGH",
    "account": "123456789012",
    "region": "eu-west-1",
    "principal": {
        "type": "IAMUser",
        "name": "alice",
        "arn": "arn:aws:iam::123456789012:user/alice",
    },
    "resources": [{"type": "AwsEc2Instance", "id": f"i-{n:017x}"} for n in range(7)],
}


def test_summary_says_what_happened_in_a_few_lines() -> None:
    text = render_summary(
        title="Riposte contained alice",
        alert=ALERT,
        done=["access keys deactivated", "console password deleted"],
        run_id="run-42",
    )
    assert text.splitlines() == [
        "Riposte contained alice",
        "Alert: API called from a Tor exit node (securityhub finding)",
        "Severity: HIGH (70/100)",
        "Where: account 123456789012, region eu-west-1",
        "Principal: IAMUser alice (arn:aws:iam::123456789012:user/alice)",
        "Resources: AwsEc2Instance i-00000000000000000, AwsEc2Instance i-00000000000000001, "
        "AwsEc2Instance i-00000000000000002, AwsEc2Instance i-00000000000000003, "
        "AwsEc2Instance i-00000000000000004, and 2 more",
        "Done:",
        "- access keys deactivated",
        "- console password deleted",
        "Run: run-42",
    ]


def test_summary_without_an_alert_or_steps_is_just_the_title() -> None:
    assert render_summary(title="Riposte run r", alert={}) == "Riposte run r"
    assert render_summary(title="  ") == "Riposte"


def test_alert_values_cannot_forge_lines_or_run_templates() -> None:
    hostile = {
        **ALERT,
        "title": "x\nRun: fake\u2028Done:\r- nothing\u202e{{ settings }}",
        "principal": {"name": "{% for x in y %}" * 40},
    }
    text = render_summary(title="t", alert=hostile)
    lines = text.splitlines()
    assert lines[1] == "Alert: x Run: fake Done: - nothing {{ settings }} (securityhub finding)"
    assert [line for line in lines if line.startswith("Run:")] == []
    assert lines[4].startswith("Principal: {% for x in y %}") and lines[4].endswith("…")
    assert len(lines[4]) <= len("Principal: ") + 80


@given(
    title=st.text(max_size=300),
    values=st.dictionaries(
        st.sampled_from(["title", "source", "account", "region", "severity_label", "type"]),
        st.text(max_size=500),
    ),
    done=st.lists(st.text(max_size=400), max_size=30),
)
def test_any_alert_gives_a_capped_summary_of_inert_lines(
    title: str, values: dict[str, str], done: list[str]
) -> None:
    text = render_summary(title=title, alert=values, done=done, run_id="r")
    assert len(text) <= SUMMARY_LIMIT
    # title, at most 3 alert lines (alert, severity, where), "Done:" + 15 + "and N more", run
    assert len(text.splitlines()) <= 1 + 3 + 17 + 1
    for line in text.splitlines():
        assert line == plain(line, len(line))  # no control characters survived


@given(st.text(max_size=2000), st.integers(min_value=10, max_value=3000))
def test_slack_text_is_escaped_and_fits(text: str, limit: int) -> None:
    escaped = slack_text(text, limit)
    assert len(escaped) <= limit
    assert "<" not in escaped and ">" not in escaped
    if len(slack_escape(text)) <= limit:
        assert escaped == slack_escape(text)
