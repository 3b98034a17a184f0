"""The worker drives runs to their end on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine import audit, wakeup
from engine.playbooks import load_file, text_hash
from engine.store import approvals, deciders, leases, runs
from engine.store.errors import Conflict, Forbidden
from engine.store.models import ApprovalRequest, Run
from engine.store.types import utcnow
from tests.integration.engine_helpers import (
    audit_verbs,
    drain,
    journal,
    make_alert,
    queue,
    run_row,
    wait_for,
    worker,
)

THREE_STEPS = """
name: three
steps:
  - id: remember
    action: core.set
    with: {values: {user: "{{ alert.principal.name }}"}}
  - id: flaky
    action: core.fail
    with: {code: Throttling, times: 1}
    retry: {attempts: 2, backoff: 0.01, on: [Throttling]}
  - id: say
    action: core.log
    with: {message: "user {{ vars.user }}"}
"""

APPROVAL = """
name: guarded
steps:
  - id: look
    action: core.log
    with: {message: "looking"}
  - id: contain
    action: core.log
    with: {message: "disable {{ alert.principal.name }}"}
    approval: {reason: "destructive", expires_in: 3600}
  - id: after
    action: core.log
    with: {message: done}
"""


def test_a_run_executes_every_step_and_records_journal_state_and_audit(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, THREE_STEPS, alert=make_alert(principal={"name": "Roboman1"}))
    assert drain(worker(sessionmaker)) == 1
    run = run_row(sessionmaker, run_id)
    assert run.status == "succeeded"
    assert run.lease_owner is None and run.finished_at is not None
    assert run.state["vars"] == {"user": "Roboman1"}
    rows = journal(sessionmaker, run_id)
    assert [(r.step_id, r.status, r.attempts) for r in rows] == [
        ("remember", "succeeded", 1),
        ("flaky", "succeeded", 2),
        ("say", "succeeded", 1),
    ]
    assert rows[2].output == {"message": "user Roboman1"}
    assert audit_verbs(sessionmaker, run_id) == [
        "run.queued", "step.succeeded", "step.succeeded", "step.succeeded", "run.succeeded",
    ]
    with sessionmaker() as session:
        assert audit.verify(session).ok


def test_a_failing_step_fails_the_run_with_its_error(sessionmaker: sessionmaker[Session]) -> None:
    run_id = queue(sessionmaker, """
name: broken
steps:
  - {id: boom, action: core.fail, with: {code: AccessDenied}}
  - {id: never, action: core.log, with: {message: x}}
""")
    drain(worker(sessionmaker))
    run = run_row(sessionmaker, run_id)
    assert run.status == "failed"
    assert run.error == "boom: AccessDenied: failure injected by core.fail"
    assert [r.step_id for r in journal(sessionmaker, run_id)] == ["boom"]


def test_alert_data_is_never_rendered_as_a_template(sessionmaker: sessionmaker[Session]) -> None:
    hostile = make_alert(
        title="{{ 7*7 }}",
        details={
            "ua": "{{ ''.__class__.__mro__ }}",
            "stmt": "{% for x in range(9) %}x{% endfor %}",
        },
    )
    run_id = queue(sessionmaker, """
name: echo
steps:
  - id: title
    action: core.log
    with: {message: "{{ alert.title }}"}
  - id: details
    action: core.set
    with: {values: {ua: "{{ alert.details.ua }}", text: "seen {{ alert.details.stmt }}"}}
""", alert=hostile)
    drain(worker(sessionmaker))
    rows = journal(sessionmaker, run_id)
    assert rows[0].params == {"message": "{{ 7*7 }}"}
    assert rows[0].output == {"message": "{{ 7*7 }}"}
    assert rows[1].output == {
        "ua": "{{ ''.__class__.__mro__ }}",
        "text": "seen {% for x in range(9) %}x{% endfor %}",
    }


def test_the_playbook_is_pinned_when_the_run_starts(
    sessionmaker: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "pinned.yml"
    original = "name: pinned\nsteps:\n  - {id: first, action: core.log, with: {message: v1}}\n"
    path.write_text(original)
    run_id = queue(sessionmaker, load_file(path))
    path.write_text("name: pinned\nsteps:\n  - {id: other, action: core.fail}\n")
    path.unlink()
    drain(worker(sessionmaker))
    run = run_row(sessionmaker, run_id)
    assert run.status == "succeeded"
    assert run.playbook_text == original and run.playbook_hash == text_hash(original)
    assert [r.output for r in journal(sessionmaker, run_id)] == [{"message": "v1"}]


def test_an_approval_parks_the_run_until_approved(sessionmaker: sessionmaker[Session]) -> None:
    run_id = queue(sessionmaker, APPROVAL, alert=make_alert(principal={"name": "Roboman1"}))
    w = worker(sessionmaker)
    drain(w)
    run = run_row(sessionmaker, run_id)
    assert run.status == "waiting_approval" and run.lease_owner is None
    with sessionmaker() as session:
        request = session.execute(select(ApprovalRequest)).scalar_one()
    assert request.plan["params"] == {"message": "disable Roboman1"}
    assert request.plan_hash == approvals.plan_hash(request.plan)
    assert [r.step_id for r in journal(sessionmaker, run_id)] == ["look"]
    with sessionmaker.begin() as session:
        deciders.decide(session=session, request_id=request.id, actor="alice",
                         role="responder", decision="approve", reason="confirmed with manager")
    drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert [r.step_id for r in journal(sessionmaker, run_id)] == ["look", "contain", "after"]
    verbs = audit_verbs(sessionmaker, run_id)
    assert verbs.index("approval.requested") < verbs.index("approval.approve")
    assert "approval.approved" in verbs


def test_a_rejected_approval_ends_the_run_and_the_step_never_runs(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, APPROVAL, alert=make_alert(principal={"name": "Roboman1"}))
    w = worker(sessionmaker)
    drain(w)
    with sessionmaker() as session:
        request = session.execute(select(ApprovalRequest)).scalar_one()
    with sessionmaker.begin() as session:
        deciders.decide(session=session, request_id=request.id, actor="alice",
                         role="responder", decision="reject", reason="authorised change")
    assert drain(w) == 0
    assert run_row(sessionmaker, run_id).status == "rejected"
    assert [r.step_id for r in journal(sessionmaker, run_id)] == ["look"]


def test_an_unanswered_approval_expires_and_rejects_the_run(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, APPROVAL, alert=make_alert(principal={"name": "Roboman1"}))
    w = worker(sessionmaker)
    drain(w)
    with sessionmaker.begin() as session:  # as if the hour had passed
        session.execute(update(ApprovalRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    w.housekeeping()
    assert run_row(sessionmaker, run_id).status == "rejected"
    with sessionmaker() as session:
        assert session.execute(select(ApprovalRequest.status)).scalar_one() == "expired"
    assert "approval.expired" in audit_verbs(sessionmaker, run_id)


def test_a_run_whose_lease_expired_is_resumed_by_another_worker(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, THREE_STEPS, alert=make_alert(principal={"name": "r"}))
    # Worker "dead" claims the run, records the first step, starts the second and vanishes.
    with sessionmaker.begin() as session:
        claim = leases.claim_next_run(session=session, worker="dead", lease_seconds=0.01)
        assert claim is not None and not claim.reclaimed
    dead = worker(sessionmaker, "dead")
    with sessionmaker.begin() as session:
        assert leases.begin_step(session=session, run_id=run_id, step_id="remember",
                               action="core.set", worker="dead")
    survivor = worker(sessionmaker, "survivor")
    wait_for(lambda: run_row(sessionmaker, run_id).lease_expires_at < utcnow(), what="expiry")
    assert drain(survivor) == 1
    run = run_row(sessionmaker, run_id)
    assert run.status == "succeeded"
    rows = journal(sessionmaker, run_id)
    assert [(r.step_id, r.status, r.worker) for r in rows] == [
        ("remember", "interrupted", "dead"),
        ("remember", "succeeded", "survivor"),
        ("flaky", "succeeded", "survivor"),
        ("say", "succeeded", "survivor"),
    ]
    assert "run.lease_expired" in audit_verbs(sessionmaker, run_id)
    assert dead.work_once() is False


def test_a_worker_that_lost_its_lease_records_nothing(sessionmaker: sessionmaker[Session]) -> None:
    run_id = queue(sessionmaker, THREE_STEPS)
    with sessionmaker.begin() as session:
        assert leases.claim_next_run(session=session, worker="slow", lease_seconds=0.01)
    with sessionmaker.begin() as session:
        record_id = leases.begin_step(session=session, run_id=run_id, step_id="remember",
                                    action="core.set", worker="slow")
        assert record_id is not None
        state = runs.get_run(session, run_id).state
    wait_for(lambda: run_row(sessionmaker, run_id).lease_expires_at < utcnow(), what="expiry")
    with sessionmaker.begin() as session:
        assert leases.claim_next_run(session=session, worker="fast", lease_seconds=30)
    from engine.runner import StepOutcome

    with sessionmaker.begin() as session:
        assert leases.finish_step(session=session, run_id=run_id, record_id=record_id,
                                worker="slow", outcome=StepOutcome(status="succeeded"),
                                new_state=state) is None
    assert [r.status for r in journal(sessionmaker, run_id)] == ["interrupted"]


def test_a_cancelled_run_is_never_claimed(sessionmaker: sessionmaker[Session]) -> None:
    run_id = queue(sessionmaker, THREE_STEPS)
    with sessionmaker.begin() as session:
        runs.cancel_run(session=session, run_id=run_id, actor="alice")
    assert drain(worker(sessionmaker)) == 0
    assert run_row(sessionmaker, run_id).status == "cancelled"
    assert journal(sessionmaker, run_id) == []


def test_an_idle_worker_wakes_when_a_run_is_queued(sessionmaker: sessionmaker[Session]) -> None:
    # The poll interval is far longer than the wait below: only the wake-up can explain success.
    w = worker(sessionmaker, poll_seconds=120)
    stop = threading.Event()
    thread = threading.Thread(target=w.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        seen = wakeup.generation()
        run_id = queue(sessionmaker, THREE_STEPS, alert=make_alert(principal={"name": "x"}))
        assert wakeup.generation() != seen
        wait_for(lambda: run_row(sessionmaker, run_id).status == "succeeded", timeout=20,
                 what="the woken worker to finish the run")
    finally:
        stop.set()
        wakeup.signal()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_runs_are_claimed_oldest_first(sessionmaker: sessionmaker[Session]) -> None:
    first = queue(sessionmaker, THREE_STEPS, alert=make_alert(principal={"name": "x"}))
    second = queue(sessionmaker, THREE_STEPS, alert=make_alert(principal={"name": "x"}))
    with sessionmaker.begin() as session:
        claim = leases.claim_next_run(session=session, worker="w", lease_seconds=30)
        assert claim is not None and claim.run.id == first
    with sessionmaker() as session:
        assert session.get(Run, second).status == "queued"  # type: ignore[union-attr]


def test_cancelling_a_waiting_run_closes_its_approval_request(
    sessionmaker: sessionmaker[Session],
) -> None:
    run_id = queue(sessionmaker, APPROVAL, alert=make_alert(principal={"name": "Roboman1"}))
    drain(worker(sessionmaker))
    with sessionmaker.begin() as session:
        runs.cancel_run(session=session, run_id=run_id, actor="alice")
    with sessionmaker() as session:
        request = session.execute(select(ApprovalRequest)).scalar_one()
    assert request.status == "cancelled"
    with sessionmaker.begin() as session, pytest.raises(Conflict, match="already cancelled"):
        deciders.decide(session=session, request_id=request.id, actor="bob", role="responder",
                         decision="approve", reason="too late")
    assert run_row(sessionmaker, run_id).status == "cancelled"


def test_a_quorum_needs_that_many_distinct_approvers(sessionmaker: sessionmaker[Session]) -> None:
    run_id = queue(sessionmaker, APPROVAL.replace(
        'approval: {reason: "destructive", expires_in: 3600}',
        'approval: {reason: "destructive", required: 2}',
    ), alert=make_alert(principal={"name": "Roboman1"}))
    w = worker(sessionmaker)
    drain(w)
    with sessionmaker() as session:
        request_id = session.execute(select(ApprovalRequest.id)).scalar_one()

    def approve(actor: str) -> str:
        with sessionmaker.begin() as session:
            return deciders.decide(session=session, request_id=request_id, actor=actor,
                                    role="responder", decision="approve", reason="ok").status

    assert approve("alice") == "pending"
    assert drain(w) == 0 and run_row(sessionmaker, run_id).status == "waiting_approval"
    with pytest.raises(Conflict, match="'alice' has already decided"):
        approve("alice")
    with pytest.raises(Forbidden, match="started run"):
        approve("tester")
    assert approve("bob") == "approved"
    drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"


def test_a_skipped_approval_step_leaves_one_journal_row_per_following_step(
    sessionmaker: sessionmaker[Session],
) -> None:
    playbook = """
name: skip-guarded
steps:
  - id: guarded
    action: core.log
    when: "false"
    approval: {reason: never asked}
    with: {message: contained}
  - id: after
    action: core.log
    with: {message: done}
"""
    run_id = queue(sessionmaker, playbook)
    drain(worker(sessionmaker))
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert [(r.step_id, r.status) for r in journal(sessionmaker, run_id)] == [
        ("guarded", "skipped"),
        ("after", "succeeded"),
    ]
