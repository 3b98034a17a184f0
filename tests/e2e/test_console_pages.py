"""The console's pages show what the API holds: attacker-written alert text as inert text, a
rehearsal marked wherever its run appears, lists paged and filtered like the API's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.app import create_app
from core.settings import Settings
from engine.store.models import Run
from engine.store.types import utcnow
from tests.e2e.conftest import PostAlert, Tokens, WaitForRun
from tests.e2e.console_client import console_client, page, signed_in

ASSESS = """\
name: assess
description: Writes what the alert said into the investigation, as investigation.assess would
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: assess
    action: core.set
    with:
      values:
        findings:
          - id: principal.user_agent
            question: Which client made the call?
            answer: "{{ alert.title }}"
            confidence: high
            evidence: {user_agent: "{{ alert.user_agent }}", title: "{{ alert.title }}"}
        narrative: "{{ alert.title }} was called from {{ alert.user_agent }}"
        recommendation: ["confirm with the owner of {{ alert.principal.name }}"]
  - id: contain
    action: core.log
    with: {message: "contain {{ alert.principal.name }}"}
    approval: {reason: contain the principal}
"""

REHEARSED = """\
name: rehearsed
description: Shadow mode, to adopt a playbook before it acts
mode: dry_run
trigger:
  source: [generic]
  kind: [ec2]
steps:
  - id: contain
    action: core.log
    with: {message: "would contain {{ alert.principal.name }}"}
    approval: {reason: rehearse the containment}
"""

NOTED = """\
name: noted
trigger:
  source: [generic]
  kind: [note]
steps:
  - id: note
    action: core.log
    with: {message: "noted"}
"""

BROKEN = """\
name: broken
steps:
  - id: oops
    action: core.logg
"""

SCRIPT = "<script>alert(1)</script>"
TEMPLATE = "{{ 7*7 }}"


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    for name, text in (("assess", ASSESS), ("rehearsed", REHEARSED), ("noted", NOTED)):
        write_playbook(f"{name}.yml", text)


def waiting_run(client: TestClient, tokens: Tokens, post_alert: PostAlert,
                wait_for_run: WaitForRun, **alert: Any) -> dict[str, Any]:
    [run_id] = post_alert(client, tokens.as_ingest, **alert)["run_ids"]
    return wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_attacker_text_in_an_alert_and_its_evidence_shows_as_text_and_never_runs(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    with console_client(create_app(settings, in_process_workers=1)) as browser:
        run = waiting_run(browser, tokens, post_alert, wait_for_run, kind="iam", title=SCRIPT,
                          user_agent=f"{TEMPLATE} {SCRIPT}",
                          principal={"type": "IAMUser", "name": f"<b>{TEMPLATE}</b>"})
        signed_in(browser, tokens.responder)
        [approval] = run["approvals"]
        answers = {path: browser.get(path) for path in (
            "/ui/", f"/ui/runs/{run['id']}", f"/ui/approvals/{approval['id']}",
            f"/ui/alerts/{run['alert_id']}", "/ui/alerts", "/ui/runs", "/ui/audit")}

    for path, answer in answers.items():
        assert answer.status_code == 200, path
        assert "<script>alert" not in answer.text and "<b>" not in answer.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text, path
        if path != "/ui/audit":  # the principal, as sent: neither markup nor a template
            assert f"&lt;b&gt;{TEMPLATE}&lt;/b&gt;" in answer.text, path
    shown = page(answers[f"/ui/runs/{run['id']}"])
    [finding] = shown.by_class("finding")
    assert finding.by_class("finding-answer")[0].text == SCRIPT
    [evidence] = finding.by_class("evidence")
    assert evidence.tag == "details" and "open" not in evidence.attrs  # folded
    assert f'"user_agent": "{TEMPLATE} {SCRIPT}"' in evidence.text
    assert shown.get("narrative").by_tag("p")[0].text == (
        f"{SCRIPT} was called from {TEMPLATE} {SCRIPT}")
    assert page(answers[f"/ui/alerts/{run['alert_id']}"]).by_class("user-agent")[0].text == (
        f"{TEMPLATE} {SCRIPT}")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rehearsal_is_marked_wherever_its_run_appears(
    settings: Settings, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun,
) -> None:
    with console_client(create_app(settings, in_process_workers=1)) as browser:
        run = waiting_run(browser, tokens, post_alert, wait_for_run, kind="ec2",
                          title="instances stopped", principal={"name": "ops-bot"})
        signed_in(browser, tokens.responder)
        [approval] = run["approvals"]
        pages = {path: page(browser.get(path)) for path in (
            "/ui/", "/ui/runs", f"/ui/runs/{run['id']}", f"/ui/approvals/{approval['id']}",
            f"/ui/alerts/{run['alert_id']}", "/ui/playbooks")}

    assert run["mode"] == "dry_run"
    for path, shown in pages.items():
        marked = [m.text for m in shown.by_class("dry-run-marker")]
        assert marked and all(text == "REHEARSAL · dry run" for text in marked), path
    inbox = pages["/ui/"]
    [pending] = inbox.get("pending-approvals").by_class("approval-item")
    assert pending.by_class("dry-run-marker")
    assert "you may decide" in pending.text and "contain (core.log)" in pending.text
    assert "REHEARSAL (dry run, nothing will change)" in pages[f"/ui/runs/{run['id']}"].get(
        "run").text
    assert pages[f"/ui/approvals/{approval['id']}"].get("approval").attrs["data-mode"] == (
        "dry_run")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lists_are_paged_like_the_api(
    client: TestClient, settings: Settings, tokens: Tokens, post_alert: PostAlert,
) -> None:
    for number in range(5):
        post_alert(client, tokens.as_ingest, kind="note", title=f"note {number}")
    with console_client(create_app(settings)) as browser:
        signed_in(browser, tokens.responder)
        first = page(browser.get("/ui/alerts?limit=2"))
        second = page(browser.get(first.get("next-page").attrs["href"]))
        last = page(browser.get(second.get("next-page").attrs["href"]))
        runs_first = page(browser.get("/ui/runs?limit=3"))
        runs = page(browser.get(runs_first.get("next-page").attrs["href"]))
        audit_first = page(browser.get("/ui/audit?limit=4"))
        audit_next = page(browser.get(audit_first.get("next-page").attrs["href"]))

    titles = [[a.by_class("alert-link")[0].text for a in shown.by_class("alert-item")]
              for shown in (first, second, last)]
    assert titles == [["note 4", "note 3"], ["note 2", "note 1"], ["note 0"]]
    assert first.by_id("prev-page") is None and last.by_id("next-page") is None
    assert second.get("prev-page").attrs["href"] == "/ui/alerts?limit=2"
    assert len(runs_first.by_class("run-item")) == 3
    assert len(runs.by_class("run-item")) == 2 and runs.by_id("next-page") is None
    ids = [[int(e.attrs["data-event-id"]) for e in shown.by_class("audit-event")]
           for shown in (audit_first, audit_next)]
    assert ids[0] == sorted(ids[0]) and len(ids[0]) == 4 and ids[1][0] == ids[0][-1] + 1
    assert audit_first.get("chain").text.startswith("chain verified")


def test_runs_are_filtered_by_status_playbook_principal_and_time(
    client: TestClient, settings: Settings, tokens: Tokens, post_alert: PostAlert,
    sessionmaker: SessionMaker[Session],
) -> None:
    arn = "arn:aws:iam::123456789012:user/Development/Roboman1"
    post_alert(client, tokens.as_ingest, kind="note", title="a", principal={"arn": arn})
    post_alert(client, tokens.as_ingest, kind="note", title="b",
               principal={"name": "ops_bot%"})
    post_alert(client, tokens.as_ingest, kind="ec2", title="c", principal={"name": "Roboman1"})
    with sessionmaker.begin() as session:  # the oldest run, failed a day ago
        oldest = session.query(Run).order_by(Run.id).first()
        assert oldest is not None
        session.execute(update(Run).where(Run.id == oldest.id).values(
            status="failed", created_at=utcnow() - timedelta(days=1)))
    with console_client(create_app(settings)) as browser:
        signed_in(browser, tokens.responder)

        def alerts_of(query: str) -> list[str]:
            answer = browser.get(f"/ui/runs?{query}")
            assert answer.status_code == 200, answer.text
            return sorted(_title(item) for item in page(answer).by_class("run-item"))

        assert alerts_of("") == ["a", "b", "c"]
        assert alerts_of("principal=roboman1") == ["a", "c"]  # any case, name or ARN
        assert alerts_of("principal=ops_bot%25") == ["b"]  # LIKE's wildcards are text
        assert alerts_of("principal=ops_bo_") == []
        assert alerts_of("playbook=rehearsed") == ["c"]
        assert alerts_of("status=failed") == ["a"]
        assert alerts_of("status=queued&principal=Roboman1") == ["c"]
        since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert alerts_of(f"since={since}") == ["b", "c"]
        assert alerts_of(f"until={since}") == ["a"]
        refused = browser.get("/ui/runs?status=lost&since=yesterday")
        assert refused.status_code == 422
        assert "since: not a date and time" in page(refused).get("filter-problems").text
    api = client.get("/v1/runs?principal=ROBOMAN1&playbook=rehearsed", headers=tokens.as_responder)
    assert [r["playbook"] for r in api.json()["runs"]] == ["rehearsed"]


def _title(item: Any) -> str:
    """The title of the alert a run item names."""
    return str(item.by_tag("div")[0].text.split(" · ")[0])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_playbooks_page_lists_what_loaded_and_every_problem_of_what_did_not(
    settings: Settings, tokens: Tokens, write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("broken.yml", BROKEN)
    with console_client(create_app(settings)) as browser:
        signed_in(browser, tokens.responder)
        shown = page(browser.get("/ui/playbooks"))

    loaded = [e.attrs["data-playbook"] for e in shown.get("playbooks").by_class("playbook")]
    assert loaded == ["assess", "noted", "rehearsed"]
    [problem] = shown.get("problems").by_class("problem")
    assert "broken.yml" in problem.text and "core.logg" in problem.text
