"""The console in a real browser: signing in, the inbox refreshing itself, attacker text that
stays text under the Content-Security-Policy, the run's starter turned away, and an approval
made with the keyboard alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from api.console import routes
from tests.browser.conftest import Api
from tests.browser.console_browser import ConsoleBrowser, console_log
from tests.e2e.conftest import Tokens

CONTAIN = """\
name: contain
description: Investigate, then contain once a human agrees
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
        narrative: >-
          {{ alert.principal.name }} called from {{ alert.user_agent }}: {{ alert.title }}
        recommendation: ["disable {{ alert.principal.name }}"]
  - id: disable
    action: core.log
    with: {message: "disabling {{ alert.principal.name }}"}
    approval: {reason: disabling a user locks them out}
"""

BY_HAND = """\
name: by-hand
steps:
  - id: act
    action: core.log
    with: {message: "acting"}
    approval: {reason: act}
"""

# Each would leave a mark if it ran: the page's title, or window.pwned.
SCRIPT = "<script>window.pwned = 'script'; document.title = 'pwned'</script>"
IMAGE = "<img src=x onerror=\"window.pwned = 'img'\">"
TEMPLATE = "{{ 7*7 }}"


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    write_playbook("contain.yml", CONTAIN)
    write_playbook("by-hand.yml", BY_HAND)


def test_a_signed_out_visitor_is_sent_to_sign_in_and_then_to_the_page_asked_for(
    console: Api, browser: ConsoleBrowser, tokens: Tokens
) -> None:
    browser.open("/", "root signed out")
    at_root = browser.path
    browser.open("/ui/runs?status=failed", "runs signed out")
    sent_to = browser.path
    focused = browser.driver.switch_to.active_element.get_attribute("id")
    navigation_shown = browser.has("#nav")

    browser.by_id("token").send_keys(tokens.responder)
    browser.click("sign-in")
    browser.wait_for("#sign-out-form")
    browser.saw("runs after sign-in")

    assert at_root == sent_to == "/ui/sign-in"
    assert focused == "token" and not navigation_shown  # the token field, ready to paste into
    assert browser.path == "/ui/runs" and browser.driver.current_url.endswith("?status=failed")
    assert browser.text("#signed-in-as") == "alice (responder)"
    assert browser.text("#nav-runs") == "Runs"


@pytest.mark.allowed_statuses(401)  # the inbox's refresh once the session is gone
def test_the_open_inbox_shows_a_new_request_by_itself_and_leaves_once_the_token_is_revoked(
    console: Api, browser: ConsoleBrowser, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "REFRESH_SECONDS", 0.5)
    browser.sign_in(tokens.other_responder)
    before = browser.text("#pending-approvals")
    htmx = browser.script("return typeof window.htmx")

    _, request_id = console.waiting(kind="iam", title="keys used from a new country",
                                    principal={"type": "IAMUser", "name": "mallory"})
    item = browser.wait_for(f'.approval-item[data-request-id="{request_id}"]')
    browser.saw("inbox refreshed")
    shown = " ".join(item.text.split())
    revoked = console.http.delete("/v1/tokens/bob", headers=tokens.as_admin)
    browser.wait_for_path("/ui/sign-in")
    browser.saw("sent to sign in")

    assert htmx == "object"  # the vendored script loaded under the policy
    assert "Waiting for a decision (0)" in before
    assert "you may decide" in shown and "mallory" in shown and "disable (core.log)" in shown
    assert revoked.status_code == 200
    assert "revoked or has expired" in browser.text("#message")


def test_attacker_text_in_an_alert_shows_as_written_and_nothing_in_it_runs(
    console: Api, browser: ConsoleBrowser, tokens: Tokens
) -> None:
    run, request_id = console.waiting(
        kind="iam", title=SCRIPT, user_agent=f"{TEMPLATE} {IMAGE}",
        principal={"type": "IAMUser", "name": f"<b>{TEMPLATE}</b>"})
    browser.sign_in(tokens.other_responder)
    pages = ["/ui/", f"/ui/runs/{run['id']}", f"/ui/approvals/{request_id}",
             f"/ui/alerts/{run['alert_id']}", "/ui/alerts", "/ui/runs", "/ui/audit"]
    seen = {}
    for path in pages:
        browser.open(path, keep=False)
        browser.unfold_everything()  # the evidence and the parameters too
        browser.saw(f"{path} unfolded")
        seen[path] = browser.script("""return {
            pwned: window.pwned === undefined ? null : String(window.pwned),
            title: document.title,
            text: document.body.innerText,
            injected: document.querySelectorAll('main script, main img, main b').length,
        }""")
    browser.open(f"/ui/runs/{run['id']}", "run")
    narrative = browser.text("#narrative p")  # a template in the text is not evaluated
    logged_so_far = browser.problems()
    # The policy is in force: even a script that got into the page would not run.
    browser.script("const s = document.createElement('script');"
                   "s.textContent = 'window.injected = 1'; document.body.append(s);")
    injected_ran = browser.script("return window.injected === 1")
    violations = [e["message"] for e in console_log(browser.driver)]

    for path, shown in seen.items():
        assert shown["pwned"] is None and "pwned" not in shown["title"], path
        assert shown["injected"] == 0, path
        assert SCRIPT in shown["text"], path  # read as written, not run
        if path != "/ui/audit":  # the audit shows no alert's principal
            assert f"<b>{TEMPLATE}</b>" in shown["text"], path
    assert narrative == f"<b>{TEMPLATE}</b> called from {TEMPLATE} {IMAGE}: {SCRIPT}"
    assert logged_so_far == []  # no script error, nothing the pages need was refused
    assert not injected_ran
    assert any("Content Security Policy" in message for message in violations), violations


def test_the_run_s_starter_is_told_why_they_cannot_approve_it(
    console: Api, browser: ConsoleBrowser, tokens: Tokens
) -> None:
    alert = console.post_alert(kind="manual", title="by hand")
    started = console.http.post("/v1/runs", headers=tokens.as_responder,
                                json={"alert_id": alert["alert_id"], "playbook": "by-hand"})
    assert started.status_code == 201, started.text
    run = console.wait_for_run(started.json()["id"], "waiting_approval")
    [request_id] = [a["id"] for a in run["approvals"]]

    browser.sign_in(tokens.responder)  # alice, who started it
    browser.open(f"/ui/approvals/{request_id}", "approval of own run")

    assert not browser.has("#approve") and not browser.has("#decision-form")
    why = browser.by_id("cannot-decide")
    assert why.is_displayed()
    assert "You cannot decide this request" in why.text and "'alice' started run" in why.text
    assert console.get(f"/v1/approvals/{request_id}")["decisions"] == []


def test_an_approval_can_be_made_with_the_keyboard_alone(
    console: Api, browser: ConsoleBrowser, tokens: Tokens
) -> None:
    run, request_id = console.waiting(kind="iam", title="20 instances terminated",
                                      principal={"type": "IAMUser", "name": "Roboman1"})
    browser.sign_in(tokens.other_responder)
    browser.open(f"/ui/approvals/{request_id}", "approval")

    browser.press(Keys.TAB)
    first = browser.focused.get_attribute("class")
    presses = browser.tab_to("reason")
    browser.press("confirmed with Roboman1's manager", Keys.TAB)
    on_approve = browser.focused.get_attribute("id")
    outline = browser.script("return getComputedStyle(document.activeElement).outlineStyle")
    browser.saw("approve focused")
    browser.press(Keys.ENTER)
    browser.wait_for('#approval[data-status="approved"]')
    browser.saw("approved")
    finished = console.wait_for_run(run["id"], "succeeded")

    assert first == "skip" and presses > 1  # the skip link comes first; then the page
    assert on_approve == "approve" and outline != "none"  # and the focus shows
    decision = browser.all(".decision")[0]
    assert decision.get_attribute("data-actor") == "bob"
    assert "confirmed with Roboman1's manager" in decision.text
    assert [(s["step_id"], s["status"]) for s in finished["steps"]] == [
        ("assess", "succeeded"), ("disable", "succeeded")]
