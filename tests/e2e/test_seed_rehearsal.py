"""The seed's attack rehearsed: in shadow mode, and as a dry-run copy of the live run.

Through the HTTP API with one in-process worker, the shipped playbook and AWS on a moto server,
as test_seed_scenario.py plays it. A rehearsal investigates, narrates and asks approval as the
live run does — marked as a rehearsal in the API and in the approvers' notice — and once approved
changes nothing in AWS: the user keeps its keys and password, no replacement is launched, no
image registered; the journal shows the calls it would have made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.settings import Settings
from riposte.demo_scenario import USER
from tests.aws_sandbox import AwsSandbox
from tests.e2e.test_seed_scenario import (
    INTACT,
    PLAYBOOK,
    PLAYBOOKS,
    Scene,
    attacked,
    instances,
    moto_endpoint,  # noqa: F401  # the module's moto server, started as the demo starts it
    own_images,
    planned,
    replacements,
    scenario_settings,  # noqa: F401  # the shipped playbooks, the scenario's history settings
    user_state,
)
from tests.live_server import webhook_receiver

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

MARK = "REHEARSAL (dry run, nothing will change): "
NOTICE_SECONDS = 10.0


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the store's part of a rehearsal (the copy, its alerts, the audit row) runs
    on both databases in test_rehearsals.py."""
    return sqlite_url


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Where approval notices go (RIPOSTE_APPROVAL_NOTIFY): every message is kept."""
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def shadow_settings(
    scenario_settings: Settings,  # noqa: F811
    tmp_path: Path,
    webhook: tuple[str, list[dict[str, Any]]],
) -> Settings:
    """The scenario's settings with the shipped playbook set to ``mode: dry_run``."""
    directory = tmp_path / "shadow-playbooks"
    directory.mkdir()
    text = (PLAYBOOKS / f"{PLAYBOOK}.yml").read_text(encoding="utf-8")
    shadowed = text.replace("\ntrigger:\n", "\nmode: dry_run\ntrigger:\n", 1)
    assert shadowed != text
    (directory / f"{PLAYBOOK}.yml").write_text(shadowed, encoding="utf-8")
    return scenario_settings.model_copy(
        update={"playbook_dir": directory, "approval_notify": [webhook[0]]}
    )


def notices(received: list[dict[str, Any]], count: int) -> list[str]:
    """The texts of the first ``count`` notices, once they arrived, in order.

    (A notice as long as the seed's is cut at the webhook's length limit, the request's id with
    it: they are told apart by their order and their first line.)
    """
    deadline = time.monotonic() + NOTICE_SECONDS
    while len(received) < count:
        assert time.monotonic() < deadline, f"{len(received)} notice(s), not {count}: {received}"
        time.sleep(0.1)
    return [str(message["text"]) for message in received[:count]]


def covered_calls(plan: dict[str, Any]) -> dict[str, list[str]]:
    """The operations each step of an approval's plan would call."""
    parts = [plan, *plan.get("covers", [])]
    return {part["step"]: [c["operation"] for calls in part["calls"] for c in calls]
            for part in parts}


def targets(plan: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """What each step of an approval's plan would call, on what (its idempotency tokens,
    derived from the run, aside)."""
    parts = [plan, *plan.get("covers", [])]
    return {part["step"]: sorted((c["operation"], str(c.get("target")))
                                 for calls in part["calls"] for c in calls)
            for part in parts}


def audit(scene: Scene, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = scene.get(f"/v1/audit?run_id={run_id}&limit=500")["events"]
    return events


def test_a_playbook_in_shadow_mode_rehearses_the_whole_attack_and_changes_nothing(
    shadow_settings: Settings, tokens: Tokens, aws: AwsSandbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    _, received = webhook
    with attacked(shadow_settings, tokens, aws) as scene:
        images = own_images(aws)
        [run_id] = scene.played.run_ids
        run = scene.run(run_id, "waiting_approval", "failed", "succeeded")
        assert run["status"] == "waiting_approval", run
        assert (run["mode"], run["started_by"], run["rehearses"]) == ("dry_run", "system", None)
        assert len(run["alert_ids"]) == 2  # both TerminateInstances calls of the burst
        assert run["verdict"]["unusual"] is True and run["verdict"]["principal_kind"] == "user"
        assert "China" in run["narrative"] and USER in run["narrative"]
        [pending] = run["approvals"]
        request = scene.get(f"/v1/approvals/{pending['id']}")
        assert (request["step_id"], request["mode"]) == ("disable-user", "dry_run")
        assert request["plan"]["briefing"]["narrative"] == run["narrative"]
        production = len(scene.account.fleet.production)
        covered = covered_calls(request["plan"])
        assert covered["disable-user"] == ["AttachUserPolicy", "DeleteLoginProfile", "TagUser"]
        assert covered["relaunch"].count("RunInstances") == production  # the whole burst
        listed = scene.get("/v1/approvals?status=pending")["approvals"]
        assert [(a["id"], a["mode"]) for a in listed] == [(request["id"], "dry_run")]
        [text] = notices(received, 1)
        assert text.startswith(f"{MARK}Riposte: approval needed for disable-user ({PLAYBOOK})")
        assert "planned, never made" in text and "changes nothing in AWS" in text

        scene.approve(request, tokens.as_other_responder)
        run = scene.run(run_id, "succeeded", "failed", "rejected")
        assert run["status"] == "succeeded", run
        # The journal shows the calls it would have made, none of which was made.
        disable = [c["operation"] for c in planned(run, "disable-user")]
        assert disable == ["AttachUserPolicy", "DeleteLoginProfile", "TagUser"]
        assert [c["operation"] for c in planned(run, "revoke-keys")] == ["UpdateAccessKey"] * 2
        relaunch = [c["operation"] for c in planned(run, "relaunch")]
        assert relaunch.count("RunInstances") == production
        assert relaunch.count("RegisterImage") == 2
        events = audit(scene, run_id)
        [queued] = [e for e in events if e["verb"] == "run.queued"]
        assert queued["details"]["mode"] == "dry_run"
        assert {"threshold.reached", "approval.requested", "approval.notified",
                "approval.approved", "run.succeeded"} <= {e["verb"] for e in events}
        assert scene.get("/v1/audit/verify")["ok"] is True

    assert user_state(aws) == INTACT
    assert replacements(aws) == {}
    assert own_images(aws) == images  # no image registered from the snapshots
    assert {i["State"]["Name"] for i in instances(aws).values()} == {"terminated"}


def test_a_waiting_live_run_rehearsed_replays_every_alert_and_plans_the_same_instances(
    scenario_settings: Settings,  # noqa: F811
    tokens: Tokens, aws: AwsSandbox, webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    settings = scenario_settings.model_copy(update={"approval_notify": [url]})
    with attacked(settings, tokens, aws) as scene:
        [run_id] = scene.played.run_ids
        live = scene.run(run_id, "waiting_approval", "failed", "succeeded")
        assert (live["status"], live["mode"]) == ("waiting_approval", "live"), live
        [live_pending] = live["approvals"]
        live_request = scene.get(f"/v1/approvals/{live_pending['id']}")
        assert live_request["mode"] == "live"
        [live_text] = notices(received, 1)
        assert live_text.startswith(f"Riposte: approval needed for disable-user ({PLAYBOOK})")
        assert "rehearsal" not in live_text.lower()

        answer = scene.client.post(f"/v1/runs/{run_id}/rehearse", headers=tokens.as_responder)
        assert answer.status_code == 201, answer.text
        copy = answer.json()
        assert (copy["mode"], copy["rehearses"], copy["started_by"]) == (
            "dry_run", run_id, "alice")
        assert copy["alert_ids"] == live["alert_ids"] and len(copy["alert_ids"]) == 2
        assert copy["playbook_hash"] == live["playbook_hash"]

        rehearsal = scene.run(copy["id"], "waiting_approval", "failed", "succeeded")
        assert rehearsal["status"] == "waiting_approval", rehearsal
        assert rehearsal["alert_ids"] == live["alert_ids"]
        assert rehearsal["verdict"] == live["verdict"]
        [pending] = rehearsal["approvals"]
        request = scene.get(f"/v1/approvals/{pending['id']}")
        assert (request["step_id"], request["mode"]) == ("disable-user", "dry_run")
        # The same calls on the same targets as the live run's request: every instance.
        assert targets(request["plan"]) == targets(live_request["plan"])
        production = len(scene.account.fleet.production)
        assert covered_calls(request["plan"])["relaunch"].count("RunInstances") == production
        _, text = notices(received, 2)
        assert text.startswith(f"{MARK}Riposte: approval needed for disable-user ({PLAYBOOK})")
        assert "planned, never made" in text

        # Who asked for the rehearsal may not approve it, as for any run they start.
        refused = scene.client.post(
            f"/v1/approvals/{request['id']}/decision", headers=tokens.as_responder,
            json={"decision": "approve", "plan_hash": request["plan_hash"], "reason": "mine"},
        )
        assert refused.status_code == 403, refused.text
        scene.approve(request, tokens.as_other_responder)
        rehearsal = scene.run(copy["id"], "succeeded", "failed", "rejected")
        assert rehearsal["status"] == "succeeded", rehearsal
        relaunch = [c["operation"] for c in planned(rehearsal, "relaunch")]
        assert relaunch.count("RunInstances") == production
        # The live run still waits for its own decision.
        assert scene.get(f"/v1/runs/{run_id}")["status"] == "waiting_approval"
        assert scene.get(f"/v1/approvals/{live_request['id']}")["status"] == "pending"

        events = audit(scene, copy["id"])
        [started] = [e for e in events if e["verb"] == "run.rehearsal_started"]
        assert started["actor"] == "alice"
        assert started["details"] == {"rehearses": run_id, "rehearsed_status": "waiting_approval",
                                      "playbook_hash": live["playbook_hash"], "alerts": 2}
        joined = [e for e in events if e["verb"] == "alert.correlated"]
        assert [(e["actor"], e["details"]["rehearses"]) for e in joined] == [("alice", run_id)]
        assert scene.get("/v1/audit/verify")["ok"] is True

    assert user_state(aws) == INTACT
    assert replacements(aws) == {}
