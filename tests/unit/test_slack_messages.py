"""What Slack shows of an approval request and of an ended run; who a Slack user is; where a
playbook says failures go. Pure: no database, no HTTP."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.settings import Settings, SettingsInvalid, SlackPerson
from engine.notice_feed import failure_targets
from engine.playbooks import PlaybookInvalid, parse_playbook
from engine.run_notices import RunEnding, StepDone, failure_notice
from engine.slack.blocks import (
    Decided,
    RequestCard,
    decision_view,
    read_button_value,
    request_message,
)
from engine.slack.people import SlackPeople

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click here> &amp;\nStatus: all clear"
PLAN = {
    "step": "revoke", "action": "aws.iam.revoke_access_keys", "params": {"user": "mallory"},
    "reason": "the keys leaked",
    "calls": [[{"service": "iam", "operation": "UpdateAccessKey", "target": "mallory",
                "params": {"AccessKeyId": f"AKIA{n}"}} for n in range(3)]],
    "covers": [{"step": "relaunch", "action": "aws.ec2.relaunch_instances", "params": {},
                "calls": [], "unplannable": "NoBackup: no snapshot"}],
}


def card(**changes: Any) -> RequestCard:
    fields: dict[str, Any] = {
        "request_id": "req-1", "run_id": "run-1", "step_id": "revoke", "playbook": "leak",
        "mode": "live", "status": "pending", "plan": PLAN, "plan_hash": "a" * 64,
        "required": 2, "expires_at": NOW + timedelta(minutes=42), "on_timeout": "reject",
        "alert": {"title": HOSTILE, "severity_label": "HIGH",
                  "principal": {"name": "mallory"}},
        "verdict": {"unusual": True, "reasons": ["tor_exit"], "severity": "HIGH"},
    }
    return RequestCard(**{**fields, **changes})


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_a_pending_request_shows_its_plan_grouped_with_counts_and_buttons_bound_to_its_hash(
) -> None:
    text, blocks = request_message(card(), now=NOW)
    shown = texts(blocks)
    assert "iam:UpdateAccessKey × 3 on mallory" in shown
    assert "then, under this approval, relaunch" in shown and "NoBackup: no snapshot" in shown
    assert "Approvals: 0 of 2 · 42 min left (expires 10:42 UTC, then rejected)" in shown
    assert "--plan-hash " + "a" * 64 in shown
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [read_button_value(b["value"]) for b in actions["elements"]] == [("req-1", "a" * 64)] * 2


def test_alert_text_can_neither_mention_nor_link_nor_forge_lines() -> None:
    text, blocks = request_message(card(), now=NOW)
    shown = texts(blocks) + text
    assert "<!channel>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt; &lt;https://evil.example|click here&gt; &amp;amp;" in shown
    assert "\\nStatus: all clear" not in shown  # the line break became a blank
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections and all(b["text"]["verbatim"] is True for b in sections)


@pytest.mark.parametrize(("status", "headline", "said"), [
    ("approved", "Approved", "carol approved: confirmed"),
    ("rejected", "Rejected", "carol rejected: confirmed"),
    ("expired", "Expired", "Nobody decided before"),
    ("superseded", "Superseded: the plan changed", "Replaced by request req-2"),
    ("cancelled", "Closed: the run was cancelled", "Request `req-1`"),
])
def test_a_request_no_longer_pending_shows_its_outcome_without_buttons(
    status: str, headline: str, said: str
) -> None:
    verdict = "reject" if status == "rejected" else "approve"
    _, blocks = request_message(card(status=status, replaced_by="req-2", decisions=[
        Decided(actor="carol", decision=verdict, reason="confirmed")]), now=NOW)
    assert blocks[0]["text"]["text"] == f"{headline}: revoke (leak)"
    assert said in texts(blocks)
    assert not [b for b in blocks if b["type"] == "actions"]


def test_an_escalated_request_keeps_its_buttons_only_in_the_escalation_message() -> None:
    escalated = card(escalated_at=NOW - timedelta(minutes=1))
    _, first = request_message(escalated, now=NOW)
    _, asked = request_message(escalated, now=NOW, escalation=True)
    assert first[0]["text"]["text"].startswith("Escalated, still waiting")
    assert not [b for b in first if b["type"] == "actions"]
    assert [b for b in asked if b["type"] == "actions"]


def test_the_modal_sends_back_the_request_the_plan_hash_and_the_message() -> None:
    view = decision_view(card(mode="dry_run"), "reject", channel="C1", ts="1.2")
    assert json.loads(view["private_metadata"]) == {
        "request": "req-1", "plan_hash": "a" * 64, "decision": "reject", "channel": "C1",
        "ts": "1.2"}
    assert view["submit"]["text"] == "Reject" and "REHEARSAL" in texts(view["blocks"])
    assert read_button_value("not json") is None and read_button_value("[1]") is None


def test_a_failure_during_containment_says_what_failed_what_was_done_and_what_is_left() -> None:
    ending = RunEnding(
        run_id="run-1", playbook="leak", mode="live", status="failed", outcome="failed",
        error="tell: X: y", acted=True, by="w1", alert={"title": HOSTILE},
        steps=[StepDone("revoke", "aws.iam.revoke_access_keys", "succeeded", True),
               StepDone("tell", "core.fail", "failed", False, "OwnerUnreachable: no answer")],
        left_undone=[{"step": "revoke", "target": "AKIA1", "reason": "already inactive"}],
        run_url=None,
    )
    subject, text = failure_notice(ending)
    assert subject == "Riposte: run run-1 (leak) FAILED during containment"
    lines = text.splitlines()
    assert "Failed at step tell (core.fail): OwnerUnreachable: no answer" in lines
    assert "- revoke (aws.iam.revoke_access_keys)" in lines
    assert "- AKIA1: already inactive (step revoke)" in lines
    assert not any(line.startswith("Status: all clear") for line in lines)
    cancelled = RunEnding(**{**ending.__dict__, "status": "cancelled", "acted": False,
                             "by": "alice", "steps": []})
    subject, text = failure_notice(cancelled)
    assert subject == "Riposte: run run-1 (leak) was CANCELLED by alice"
    assert "Nothing was changed in AWS" in text and "riposte runs show run-1" in text


PLAYBOOK = """\
    name: leak
    {on_failure}
    steps:
      - id: revoke
        action: core.log
        with: {{message: x}}
        approval:
          notify: ["slack:#secops", "https://hooks.example/T/B/x"]
"""


def test_failures_go_to_on_failure_else_the_setting_else_the_approvals_targets() -> None:
    def loaded(on_failure: str = "") -> Any:
        return parse_playbook(textwrap.dedent(PLAYBOOK.format(on_failure=on_failure)))

    told = loaded('on_failure: {notify: ["slack:C0INCIDENT", "arn:aws:sns:us-east-1:'
                  '123456789012:pager"]}')
    assert failure_targets(told, Settings()) == (
        ["slack:C0INCIDENT", "arn:aws:sns:us-east-1:123456789012:pager"], False)
    assert failure_targets(loaded(), Settings(failure_notify=["slack:#oncall"])) == (
        ["slack:#oncall"], False)
    assert failure_targets(loaded(), Settings()) == (
        ["slack:#secops", "https://hooks.example/T/B/x"], True)


@pytest.mark.parametrize("on_failure", [
    'on_failure: {notify: ["slack:#Not A Channel"]}',
    "on_failure: {notify: []}",
    'on_failure: {notify: ["slack:#ok"], steps: []}',
])
def test_an_on_failure_that_names_no_valid_target_is_refused(on_failure: str) -> None:
    with pytest.raises(PlaybookInvalid) as refused:
        parse_playbook(textwrap.dedent(PLAYBOOK.format(on_failure=on_failure)), "bad.yml")
    [problem] = refused.value.problems
    assert problem.line == 2  # the on_failure line
    assert re.search("not a notification target|at least 1 item|unknown field 'steps'",
                     problem.message), problem.message


def test_slack_users_are_known_by_id_or_by_email_in_any_case() -> None:
    people = SlackPeople({"U0CAROL": SlackPerson(name="carol", role="responder"),
                          "Dave@Example.com": SlackPerson(name="dave", role="admin")})
    asked: list[str] = []

    def email_of(user: str) -> str | None:
        asked.append(user)
        return {"U0DAVE": "dave@example.COM"}.get(user)

    carol = people.identify("U0CAROL", email_of=email_of)
    assert carol is not None and (carol.name, carol.role) == ("carol", "responder")
    assert asked == []  # known by id: Slack is not asked
    dave = people.identify("U0DAVE", email_of=email_of)
    assert dave is not None and (dave.name, dave.role) == ("dave", "admin")
    assert people.identify("U0NOBODY", email_of=email_of) is None


def test_slack_people_are_read_from_the_environment_and_refused_when_unusable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIPOSTE_SLACK_PEOPLE", '{"U0CAROL": {"name": "carol", "role": "admin"}}')
    assert Settings().slack_people == {"U0CAROL": SlackPerson(name="carol", role="admin")}
    monkeypatch.setenv("RIPOSTE_SLACK_PEOPLE", '{"U0EVE": {"name": "eve", "role": "ingest"}}')
    with pytest.raises(ValueError, match="role"):
        Settings()
    with pytest.raises(SettingsInvalid, match=r"RIPOSTE_SLACK_PEOPLE\['U0SYS'\]: 'system' is "
                                              "reserved"):
        SlackPeople({"U0SYS": SlackPerson(name="system", role="admin")})


def test_a_bot_token_without_what_makes_its_buttons_work_is_a_warning_when_serving() -> None:
    def slack_warnings(settings: Settings, *, serving: bool = True) -> list[str]:
        return [w for w in settings.warnings(serving=serving) if w.startswith("RIPOSTE_SLACK")]

    token: dict[str, Any] = {"slack_bot_token": "xoxb-1"}
    [unsigned] = slack_warnings(Settings(**token))
    assert unsigned.startswith("RIPOSTE_SLACK_BOT_TOKEN is set but RIPOSTE_SLACK_SIGNING_SECRET")
    [nobody] = slack_warnings(Settings(**token, slack_signing_secret="s"))
    assert nobody.startswith("RIPOSTE_SLACK_PEOPLE maps nobody")
    people = {"U0CAROL": {"name": "carol", "role": "admin"}}
    assert slack_warnings(Settings(**token, slack_signing_secret="s", slack_people=people)) == []
    assert slack_warnings(Settings(**token), serving=False) == []  # a worker only posts
