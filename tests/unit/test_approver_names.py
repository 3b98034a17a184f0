"""Approvers name a role or a token, never either: `role:admin` is not a token called admin.

Before, ``approvers: [admin]`` matched any admin token *and* a responder token named ``admin``.
Playbook files must now say which; a bare entry is still read where it was written before
(requests stored by an older Riposte, playbooks pinned in runs that began then).
"""

from __future__ import annotations

import pytest

from engine.identities import RESERVED_NAMES, Approver, read_approver, token_name_problem
from engine.playbooks import PlaybookInvalid, parse_playbook

PLAYBOOK = """\
name: contain
steps:
  - id: enrich
    action: core.log
    with: {{message: look}}
  - id: contain
    action: core.log
    with: {{message: act}}
    approval:
      reason: it locks a user out
      approvers: {approvers}
"""


def problems(approvers: str) -> list[str]:
    with pytest.raises(PlaybookInvalid) as refused:
        parse_playbook(PLAYBOOK.format(approvers=approvers), "contain.yml")
    return [str(problem) for problem in refused.value.problems]


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("[admin]", "write 'role:admin' for any admin token"),
        ("[responder]", "write 'role:responder' for any responder token"),
        ("[alice]", "write 'token:alice' for the token named alice"),
    ],
)
def test_a_bare_approver_is_refused_with_its_file_line_step_and_the_fix(
    written: str, fix: str
) -> None:
    [problem] = problems(written)
    assert problem.startswith("contain.yml:11: step 'contain': approval.approvers: ")
    assert "is ambiguous" in problem and fix in problem


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("[role:ingest]", "ingest tokens cannot decide approvals"),
        ("[ingest]", "ingest tokens cannot decide approvals"),
        ("[role:root]", "no such role"),
        ("[token:admin]", "no token may be named 'admin', a reserved name (role:admin"),
        ("[token:system]", "no token may be named 'system'"),
        ("['token:']", "not a token's name"),
    ],
)
def test_an_approver_nobody_can_be_is_refused(written: str, why: str) -> None:
    [problem] = problems(written)
    assert why in problem


def test_every_wrong_entry_is_named_in_one_problem() -> None:
    [problem] = problems("[role:admin, lead, admin, token:bob]")
    assert "'lead' is ambiguous" in problem and "'admin' is ambiguous" in problem
    for right in ("'role:admin'", "'token:bob'"):
        assert f"{right}:" not in problem and f"{right} is" not in problem


def test_explicit_approvers_load_as_written() -> None:
    loaded = parse_playbook(PLAYBOOK.format(approvers="[role:responder, role:admin, token:lead]"))
    approval = loaded.spec.step("contain").approval
    assert approval is not None
    assert approval.approvers == ["role:responder", "role:admin", "token:lead"]


def test_a_pinned_playbook_of_a_run_begun_before_keeps_its_meaning() -> None:
    text = PLAYBOOK.format(approvers="[responder, admin, lead]")
    pinned = parse_playbook(text, "contain (pinned in run r1)", pinned=True)
    approval = pinned.spec.step("contain").approval
    assert approval is not None
    assert approval.approvers == ["role:responder", "role:admin", "token:lead"]
    assert pinned.text == text  # the text, and so its hash, is the one the run pinned


@pytest.mark.parametrize(
    ("entry", "actor", "role", "admitted"),
    [
        ("role:admin", "root", "admin", True),
        ("role:admin", "admin", "responder", False),  # the confusion this fixes
        ("admin", "admin", "responder", False),  # stored bare: the role, not the token
        ("admin", "root", "admin", True),
        ("token:lead", "lead", "responder", True),
        ("token:lead", "root", "admin", False),
        ("lead", "lead", "responder", True),  # stored bare: a token's name
        ("lead", "root", "admin", False),
    ],
)
def test_an_entry_admits_its_role_or_its_token_only(
    entry: str, actor: str, role: str, admitted: bool
) -> None:
    assert read_approver(entry).admits(actor=actor, role=role) is admitted


def test_entries_read_back_in_their_explicit_form() -> None:
    assert [str(read_approver(e)) for e in ["admin", "lead", "role:admin", "token:lead"]] == [
        "role:admin", "token:lead", "role:admin", "token:lead"]
    assert read_approver("token:lead") == Approver("token", "lead")


@pytest.mark.parametrize(
    "name", sorted(RESERVED_NAMES) + ["Admin", "SYSTEM", "role:admin", "token:x", "", " ", " a"]
)
def test_reserved_and_ambiguous_token_names_are_refused(name: str) -> None:
    assert token_name_problem(name) is not None


@pytest.mark.parametrize("name", ["alice", "pager-duty", "sns-ingest", "ci.bot", "responder-01"])
def test_ordinary_token_names_are_accepted(name: str) -> None:
    assert token_name_problem(name) is None


def test_the_reserved_names_are_the_roles_and_riposte_s_own_actors() -> None:
    assert {"admin", "responder", "ingest", "system", "anonymous", "sns"} <= RESERVED_NAMES
