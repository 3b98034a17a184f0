"""One approval for several steps: ``approval.covers``.

A real worker on a real database, the IAM actions against the moto server. The approved step
disables the user; the step it covers deactivates the user's keys later in the run, and may
only make calls the approvers saw.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.store import deciders
from engine.store.models import ApprovalRequest
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.integration.engine_helpers import drain, journal, make_alert, queue, run_row, worker
from tests.live_server import webhook_receiver

DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"
ALERT = make_alert(
    principal={"type": "IAMUser", "name": "mallory", "account": OWN_ACCOUNT}, account=OWN_ACCOUNT
)
CONTAIN = """
name: contain
vars:
  users: [mallory]
steps:
  - id: disable
    action: aws.iam.disable_user
    when: "{disable_when}"
    approval:
      required: 1
      reason: deny mallory everything, then deactivate the keys
      covers: [revoke]
    with:
      user: mallory
      console: keep
      access_keys: keep
  - id: widen
    action: core.set
    with:
      values:
        users: {users_later}
  - id: revoke
    action: aws.iam.revoke_access_keys
    for_each: vars.users
    with:
      user: "{{{{ item }}}}"
"""


def playbook(*, disable_when: str = "1 == 1", users_later: str = "[mallory]") -> str:
    return CONTAIN.format(disable_when=disable_when, users_later=users_later)


def _seed_user(aws: AwsSandbox, name: str = "mallory", keys: int = 2) -> list[str]:
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    return [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def _key_states(aws: AwsSandbox, name: str = "mallory") -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def _denied(aws: AwsSandbox) -> bool:
    attached = aws.client("iam").list_attached_user_policies(UserName="mallory")
    return DENY_ALL in {p["PolicyArn"] for p in attached["AttachedPolicies"]}


def _approve_pending(sessions: sessionmaker[Session]) -> ApprovalRequest:
    with sessions.begin() as session:
        query = select(ApprovalRequest).where(ApprovalRequest.status == "pending")
        request = session.execute(query).scalars().one()
        deciders.decide(session=session, request_id=request.id, actor="alice",
                         role="responder", decision="approve", reason="confirmed",
                         seen_plan_hash=request.plan_hash)
        return request


def _error(sessions: sessionmaker[Session], run_id: str, step_id: str) -> dict[str, str]:
    [record] = [r for r in journal(sessions, run_id) if r.step_id == step_id]
    assert record.status == "failed", record.status
    assert record.error is not None
    return record.error


def test_one_request_shows_every_covered_call_and_approving_it_runs_them_all(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    keys = _seed_user(aws)
    run_id = queue(sessionmaker, playbook(), alert=ALERT)
    with webhook_receiver() as (url, received):
        w = worker(sessionmaker, settings=aws.settings.model_copy(
            update={"approval_notify": [url]}))
        drain(w)
    [notice] = received
    text = notice["text"]
    assert "Step disable will run aws.iam.disable_user:\n- iam:AttachUserPolicy" in text
    assert ("Then, under this approval, step revoke will run aws.iam.revoke_access_keys:\n"
            "- iam:UpdateAccessKey on user/mallory\n") in text
    request = _approve_pending(sessionmaker)
    assert request.step_id == "disable"
    assert [c["operation"] for c in request.plan["calls"][0]] == ["AttachUserPolicy", "TagUser"]
    [covered] = request.plan["covers"]
    assert (covered["step"], covered["action"]) == ("revoke", "aws.iam.revoke_access_keys")
    assert sorted(c["params"]["AccessKeyId"] for c in covered["calls"][0]) == sorted(keys)
    assert _key_states(aws) == dict.fromkeys(keys, "Active")  # nothing before the decision

    drain(w)
    assert run_row(sessionmaker, run_id).status == "succeeded"
    assert _denied(aws)
    assert _key_states(aws) == dict.fromkeys(keys, "Inactive")


def test_a_covered_step_that_would_do_more_than_approved_fails_and_does_nothing(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    """Between the approval and the covered step, a step widens its targets to another user:
    the approvers never saw bob's keys, so the covered step refuses to run at all."""
    keys = _seed_user(aws)
    bob = _seed_user(aws, "bob", keys=1)
    run_id = queue(sessionmaker, playbook(users_later="[mallory, bob]"), alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    _approve_pending(sessionmaker)
    drain(w)
    assert run_row(sessionmaker, run_id).status == "failed"
    error = _error(sessionmaker, run_id, "revoke")
    assert error["code"] == "PlanChanged"
    assert error["message"].endswith(
        "step revoke would now also make iam:UpdateAccessKey on user/bob"
    )
    assert _denied(aws)  # the approved step ran
    assert _key_states(aws) == dict.fromkeys(keys, "Active")
    assert _key_states(aws, "bob") == dict.fromkeys(bob, "Active")


def test_a_covered_step_whose_approval_was_never_granted_does_not_run(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    """The guarded step is skipped, so nobody approved anything; the covered step's own
    condition holds, and it still refuses."""
    keys = _seed_user(aws)
    run_id = queue(sessionmaker, playbook(disable_when="1 == 2"), alert=ALERT)
    drain(worker(sessionmaker, settings=aws.settings))
    assert run_row(sessionmaker, run_id).status == "failed"
    with sessionmaker() as session:
        assert session.execute(select(ApprovalRequest)).scalars().all() == []
    error = _error(sessionmaker, run_id, "revoke")
    assert error["code"] == "NotApproved"
    assert "runs only under the approval of disable" in error["message"]
    assert _key_states(aws) == dict.fromkeys(keys, "Active")


def test_a_covered_step_that_cannot_be_planned_is_approved_for_no_call(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    """bob does not exist when the request opens: the request says the covered step cannot be
    planned, and approves none of its calls. When the step later targets only mallory, her
    keys' calls were not shown either: it fails rather than act unseen."""
    keys = _seed_user(aws)
    run_id = queue(sessionmaker, playbook().replace("[mallory]", "[mallory, bob]", 1),
                   alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    request = _approve_pending(sessionmaker)
    [covered] = request.plan["covers"]
    assert covered["calls"] == []
    assert covered["unplannable"].startswith("NoSuchUser")
    drain(w)
    assert run_row(sessionmaker, run_id).status == "failed"
    error = _error(sessionmaker, run_id, "revoke")
    assert error["code"] == "PlanChanged"
    assert "would now also make iam:UpdateAccessKey on user/mallory" in error["message"]
    assert _denied(aws)
    assert _key_states(aws) == dict.fromkeys(keys, "Active")


def test_the_whole_approved_plan_is_checked_before_the_first_change(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    """A key appears between the approval and the run: the covered step's calls moved, so the
    approved step fails too, before it changes anything."""
    keys = _seed_user(aws, keys=1)
    run_id = queue(sessionmaker, playbook(), alert=ALERT)
    w = worker(sessionmaker, settings=aws.settings)
    drain(w)
    _approve_pending(sessionmaker)
    new_key = aws.client("iam").create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    drain(w)
    error = _error(sessionmaker, run_id, "disable")
    assert error["code"] == "PlanChanged"
    assert "now also: iam:UpdateAccessKey" in error["message"]
    assert not _denied(aws)
    assert _key_states(aws) == dict.fromkeys([*keys, new_key], "Active")


def test_a_covered_step_needing_the_approved_steps_output_fails_before_anyone_is_asked(
    sessionmaker: sessionmaker[Session], aws: AwsSandbox
) -> None:
    """Its parameters cannot be shown before the approved step has run: the request is never
    opened, and the error names the covered step."""
    keys = _seed_user(aws)
    text = playbook().replace('user: "{{ item }}"', 'user: "{{ steps.disable.output.user }}"')
    run_id = queue(sessionmaker, text, alert=ALERT)
    drain(worker(sessionmaker, settings=aws.settings))
    assert run_row(sessionmaker, run_id).status == "failed"
    with sessionmaker() as session:
        assert session.execute(select(ApprovalRequest)).scalars().all() == []
    error = _error(sessionmaker, run_id, "disable")
    assert error["code"] == "TemplateError"
    assert error["message"].startswith(
        "covered step revoke: its parameters cannot be resolved before the approval"
    )
    assert not _denied(aws)
    assert _key_states(aws) == dict.fromkeys(keys, "Active")
