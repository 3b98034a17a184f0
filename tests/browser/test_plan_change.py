"""A plan that changes while its approval page is open is refused when approved, and the page
shows the new plan and what changed; AWS (moto) changes only once the new plan is approved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox
from tests.browser.conftest import Api
from tests.browser.console_browser import ConsoleBrowser
from tests.e2e.conftest import Tokens
from tests.e2e.test_console_approvals import REVOKE


@pytest.fixture
def console_settings(settings: Settings, aws: AwsSandbox,
                     write_playbook: Callable[[str, str], Path]) -> Settings:
    write_playbook("revoke.yml", REVOKE)
    return settings.model_copy(update={
        "worker_poll_seconds": 0.1,
        **aws.settings.model_dump(include={"aws_endpoint_url", "aws_region",
                                           "aws_retry_seconds", "responder_role"})})


def keys(aws: AwsSandbox) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


@pytest.mark.allowed_statuses(409)  # the refusal is a page, answered 409 on purpose
def test_a_plan_that_changed_while_the_page_was_open_is_refused_and_the_new_one_shown(
    aws: AwsSandbox, console: Api, browser: ConsoleBrowser, tokens: Tokens
) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    first = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    run, request_id = console.waiting(kind="keys", title="leaked key", account=OWN_ACCOUNT,
                                      principal={"type": "IAMUser", "name": "mallory"})
    browser.sign_in(tokens.other_responder)
    browser.open(f"/ui/approvals/{request_id}", "approval as first shown")
    shown_hash = browser.text("#plan-hash")
    shown_targets = [e.text for e in browser.all("#plan .call-target")]
    shown_params = browser.text("#plan .call-params pre")  # folded: read, not shown

    # The attacker makes a second key while the approver reads the page.
    second = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    browser.by_id("reason").send_keys("contain mallory")
    browser.click("approve")
    browser.wait_for("#plan-changed")
    browser.saw("refused: the plan changed")
    keys_after_refusal = keys(aws)
    new_id = browser.by_id("approval").get_attribute("data-request-id")
    new_hash = browser.text("#plan-hash")
    changes = browser.text("#plan-changes")
    new_targets = sorted(e.text for e in browser.all("#plan .call-key"))
    group = browser.all('#plan .call-group[data-operation="iam:UpdateAccessKey"] h4')[0].text
    form_hash = browser.driver.find_element(
        "css selector", '#decision-form input[name="plan_hash"]').get_attribute("value")
    kept_reason = browser.by_id("reason").get_attribute("value")
    message = browser.text("#message")

    browser.click("approve")  # the reason was kept: the new plan, approved on purpose
    browser.wait_for('#approval[data-status="approved"]')
    browser.saw("the new plan approved")
    console.wait_for_run(run["id"], "succeeded")

    assert shown_targets == ["user/mallory"] and first in shown_params
    assert "changed since it was shown" in message
    assert "now also: iam:UpdateAccessKey" in changes
    assert new_id != request_id and new_hash != shown_hash
    assert form_hash == new_hash  # the form now sends the hash of the plan it shows
    assert new_targets == sorted([f"· AccessKeyId={first}", f"· AccessKeyId={second}"])
    assert group == "iam:UpdateAccessKey × 2"
    assert kept_reason == "contain mallory"
    assert keys_after_refusal == {first: "Active", second: "Active"}  # nothing approved
    assert console.get(f"/v1/approvals/{request_id}")["status"] == "superseded"
    assert keys(aws) == {first: "Inactive", second: "Inactive"}
