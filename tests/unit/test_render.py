"""The shared rendering for people (engine/render.py): plans grouped with counts, summaries,
durations and table rows, as the CLI, the demo and the console show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.render import plan_lines, plan_summary, run_rows, time_left, undo_lines


def _call(operation: str, target: str, **params: Any) -> dict[str, Any]:
    return {"service": "iam", "operation": operation, "target": target, "params": params}


PLAN: dict[str, Any] = {
    "step": "disable", "action": "aws.iam.disable_user", "params": {"user": "mallory"},
    "reason": "locks mallory out",
    "calls": [[_call("AttachUserPolicy", "user/mallory", PolicyArn="arn:aws:iam::aws:policy/X"),
               _call("UpdateAccessKey", "user/mallory", AccessKeyId="AKIA1", Status="Inactive"),
               _call("UpdateAccessKey", "user/mallory", AccessKeyId="AKIA2", Status="Inactive")]],
    "covers": [
        {"step": "relaunch", "action": "aws.ec2.relaunch_instances", "params": {},
         "calls": [], "unplannable": "no instance is terminated yet"},
        {"step": "tell", "action": "core.log", "params": {"message": "done"}, "calls": []},
    ],
}


def test_a_plan_is_grouped_by_step_and_operation_with_counts_and_targets_first() -> None:
    assert plan_lines(PLAN) == [
        "3 steps, 3 calls",
        "  step disable (aws.iam.disable_user): 3 calls",
        "    iam:AttachUserPolicy × 1",
        "      user/mallory",
        "    iam:UpdateAccessKey × 2",
        "      user/mallory AccessKeyId=AKIA1",
        "      user/mallory AccessKeyId=AKIA2",
        "  step relaunch (aws.ec2.relaunch_instances, covered by this approval): cannot be "
        "planned now (no instance is terminated yet): no call",
        '  step tell (core.log, covered by this approval): no call; parameters: '
        '{"message": "done"}',
    ]


def test_targets_beyond_the_number_shown_are_counted() -> None:
    many = {"step": "s", "action": "a", "params": {},
            "calls": [[_call("TagUser", f"user/u{n}") for n in range(6)]]}
    assert plan_lines(many, targets_shown=2)[-3:] == [
        "      user/u0", "      user/u1", "      … and 4 more"]


def test_a_plan_summary_is_one_line_per_step_in_order() -> None:
    assert plan_summary(PLAN) == (
        "step disable: aws.iam.disable_user, 3 calls: iam:AttachUserPolicy on user/mallory, "
        "iam:UpdateAccessKey × 2 on user/mallory; then step relaunch: "
        "aws.ec2.relaunch_instances, approved for no call (cannot be planned now: no instance "
        'is terminated yet); then step tell: core.log with {"message": "done"}')


def test_time_left_is_said_in_words_and_an_expired_request_says_so() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert time_left(now + timedelta(minutes=59, seconds=5), now) == (
        "59 minutes and 5 seconds left")
    assert time_left(now - timedelta(hours=2), now) == "expired 2 hours ago"


def test_run_rows_show_the_outcome_how_long_it_took_and_what_was_left_undone() -> None:
    run = {"id": "r1", "status": "succeeded", "outcome": "partial", "playbook": "contain",
           "mode": "dry_run", "created_at": "2026-12-03T09:00:00Z",
           "finished_at": "2026-12-03T09:02:00Z",
           "left_undone": [{"step": "relaunch", "target": "i-1", "reason": "no backup"}]}
    waiting = {**run, "id": "r2", "status": "waiting_approval", "outcome": None,
               "mode": "live", "finished_at": None, "left_undone": []}
    assert run_rows([run, waiting]) == [
        ("ID", "OUTCOME", "PLAYBOOK", "MODE", "CREATED (UTC)", "TOOK", "LEFT UNDONE"),
        ("r1", "partial", "contain", "REHEARSAL", "2026-12-03 09:00:00", "2 minutes", "1"),
        ("r2", "waiting_approval", "contain", "live", "2026-12-03 09:00:00", "-", "0"),
    ]


def test_undo_lines_say_what_is_undone_and_what_is_kept() -> None:
    assert undo_lines([
        {"step": "tell", "action": "notify.webhook", "item": None,
         "why_not": "notify.webhook cannot be undone"},
        {"step": "revoke", "action": "aws.iam.revoke_access_keys", "item": 0,
         "undo": {"user": "mallory", "keys": ["AKIA1"]}},
    ]) == [
        "  keep   tell (notify.webhook): notify.webhook cannot be undone",
        '  undo   revoke[0] (aws.iam.revoke_access_keys): {"keys": ["AKIA1"], "user": "mallory"}',
    ]
