"""Shadow mode and rehearsals through the HTTP API: which mode a run starts in, and a run's copy.

A playbook's ``mode`` (else RIPOSTE_DEFAULT_MODE) decides the mode of the runs alerts start;
``POST /v1/runs/{id}/rehearse`` makes a dry-run copy of a run with every alert it sees. What a
rehearsal does on AWS is proved in test_seed_rehearsal.py; here no worker runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from core.settings import Settings
from engine.store.models import Run
from tests.e2e.test_correlation import FOLD, finding

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, PostAlert, Tokens

STEPS = """\
steps:
  - id: contain
    action: core.log
    approval: {reason: contain the principal}
    with: {message: "containing {{ alert.principal.name }}"}
"""
TRIGGER = "trigger: {source: [generic], kind: [iam]}\n"
SHADOWED = f"name: shadowed\nmode: dry_run\n{TRIGGER}{STEPS}"
UNSET = f"name: unset\n{TRIGGER}{STEPS}"
PINNED_LIVE = f"name: pinned-live\nmode: live\n{TRIGGER}{STEPS}"


def iam_alert(name: str) -> dict[str, Any]:
    return {"title": f"keys of {name} used from Tor", "severity": 70, "kind": "iam",
            "principal": {"type": "IAMUser", "name": name}}


def modes_started(
    client: TestClient, tokens: Tokens, post_alert: PostAlert, name: str
) -> dict[str, str]:
    """Post an alert every playbook starts on; return the mode of each run by playbook."""
    answer = post_alert(client, tokens.as_ingest, **iam_alert(name))
    runs = [client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
            for run_id in answer["run_ids"]]
    assert all(run["started_by"] == "system" and run["rehearses"] is None for run in runs)
    return {run["playbook"]: run["mode"] for run in runs}


@pytest.fixture
def three_modes(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("shadowed.yml", SHADOWED)
    write_playbook("unset.yml", UNSET)
    write_playbook("pinned-live.yml", PINNED_LIVE)


@pytest.mark.usefixtures("three_modes")
def test_alerts_start_runs_in_the_playbooks_mode_else_the_default(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, make_client: MakeClient
) -> None:
    with make_client(settings) as client:
        assert modes_started(client, tokens, post_alert, "mallory") == {
            "shadowed": "dry_run", "unset": "live", "pinned-live": "live"}
        listed = client.get("/v1/playbooks", headers=tokens.as_responder).json()["playbooks"]
        assert {p["name"]: p["mode"] for p in listed} == {
            "shadowed": "dry_run", "unset": "live", "pinned-live": "live"}

    # Everything in shadow: only a playbook that says live acts.
    shadow = settings.model_copy(update={"default_mode": "dry_run"})
    with make_client(shadow) as client:
        assert modes_started(client, tokens, post_alert, "trudy") == {
            "shadowed": "dry_run", "unset": "dry_run", "pinned-live": "live"}
        shown = client.get("/v1/playbooks/unset", headers=tokens.as_responder).json()
        assert shown["mode"] == "dry_run"
        # A hand start that names no mode takes the same rule; one that names it is obeyed.
        alert_id = post_alert(client, tokens.as_ingest, **iam_alert("eve"))["alert_id"]
        for playbook, mode, expected in [("unset", None, "dry_run"), ("pinned-live", None, "live"),
                                         ("shadowed", "live", "live")]:
            body = {"alert_id": alert_id, "playbook": playbook}
            started = client.post("/v1/runs", headers=tokens.as_responder,
                                  json=body if mode is None else {**body, "mode": mode})
            assert started.status_code == 201, started.text
            assert (started.json()["mode"], started.json()["started_by"]) == (expected, "alice")


def test_a_misspelt_mode_is_refused_with_the_file_and_the_choices(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("typo.yml", SHADOWED.replace("mode: dry_run", "mode: dryrun"))
    listed = client.get("/v1/playbooks", headers=tokens.as_responder).json()
    assert listed["playbooks"] == []
    [problem] = listed["problems"]
    assert problem["file"] == "typo.yml"
    assert problem["message"] == (
        "mode: 'dryrun' is not one of 'live', 'dry_run' (did you mean 'dry_run'?)"
    ), problem


@pytest.fixture
def fold(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("fold.yml", FOLD)


@pytest.mark.usefixtures("fold")
def test_a_rehearsal_copies_every_alert_of_the_run_and_later_alerts_join_only_the_run(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    [run_id] = post_alert(client, tokens.as_ingest, **finding(0))["run_ids"]
    post_alert(client, tokens.as_ingest, **finding(20, ip="203.0.113.9"))
    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert len(run["alert_ids"]) == 2

    answer = client.post(f"/v1/runs/{run_id}/rehearse", headers=tokens.as_responder)
    assert answer.status_code == 201, answer.text
    copy = answer.json()
    assert copy["id"] != run_id
    assert {k: copy[k] for k in ("mode", "rehearses", "started_by", "status", "alert_id",
                                 "playbook", "playbook_hash", "alert_ids")} == {
        "mode": "dry_run", "rehearses": run_id, "started_by": "alice", "status": "queued",
        "alert_id": run["alert_id"], "playbook": "fold-findings",
        "playbook_hash": run["playbook_hash"], "alert_ids": run["alert_ids"]}

    # A later alert of the group belongs to the run, never to its rehearsal.
    late = post_alert(client, tokens.as_ingest, **finding(40, ip="192.0.2.44"))
    assert (late["run_ids"], late["joined_run_ids"]) == ([], [run_id])
    again = client.get(f"/v1/runs/{copy['id']}", headers=tokens.as_responder).json()
    assert again["alert_ids"] == run["alert_ids"]
    assert again["rehearses"] == run_id
    listed = client.get("/v1/runs", headers=tokens.as_responder).json()["runs"]
    assert {r["id"]: (r["mode"], r["rehearses"]) for r in listed} == {
        run_id: ("live", None), copy["id"]: ("dry_run", run_id)}

    events = client.get(f"/v1/audit?run_id={copy['id']}", headers=tokens.as_responder).json()
    [started] = [e for e in events["events"] if e["verb"] == "run.rehearsal_started"]
    assert (started["actor"], started["alert_id"]) == ("alice", run["alert_id"])
    assert started["details"] == {"rehearses": run_id, "rehearsed_status": "queued",
                                  "playbook_hash": run["playbook_hash"], "alerts": 2}
    [queued] = [e for e in events["events"] if e["verb"] == "run.queued"]
    assert queued["details"]["mode"] == "dry_run"

    # An admin may rehearse too (a rehearsal of the rehearsal is one more dry run of the run).
    by_admin = client.post(f"/v1/runs/{copy['id']}/rehearse", headers=tokens.as_admin)
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["rehearses"] == copy["id"]
    assert by_admin.json()["alert_ids"] == run["alert_ids"]


@pytest.mark.usefixtures("fold")
def test_rehearsing_is_refused_for_no_such_run_an_ingest_token_or_an_unloadable_playbook(
    client: TestClient, tokens: Tokens, post_alert: PostAlert,
    sessionmaker: SessionMaker[Session],
) -> None:
    missing = client.post("/v1/runs/no-such-run/rehearse", headers=tokens.as_responder)
    assert missing.status_code == 404
    assert "no run 'no-such-run'" in missing.json()["detail"]
    [run_id] = post_alert(client, tokens.as_ingest, **finding(0))["run_ids"]
    assert client.post(f"/v1/runs/{run_id}/rehearse", headers=tokens.as_ingest
                       ).status_code == 403
    with sessionmaker.begin() as session:
        session.execute(update(Run).where(Run.id == run_id).values(playbook_text="name: [\n"))
    refused = client.post(f"/v1/runs/{run_id}/rehearse", headers=tokens.as_responder)
    assert refused.status_code == 409
    message = refused.json()["detail"]
    assert message.startswith(f"run {run_id} cannot be rehearsed: the playbook 'fold-findings' "
                              "it pinned no longer loads"), message
    assert "POST /v1/runs with mode dry_run" in message
    runs = client.get("/v1/runs", headers=tokens.as_responder).json()["runs"]
    assert [r["id"] for r in runs] == [run_id]  # nothing was queued
