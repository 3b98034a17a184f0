"""The seed's mass-termination case through the console, as ``riposte demo`` plays it.

The demo's own pieces: its settings (:func:`riposte.demo.demo_overrides`), its three tokens
(:func:`riposte.demo.create_demo_tokens`), the shipped playbooks, the account seeded and attacked
by ``riposte/demo_scenario.py`` on a moto server. The attack is played once for this module; its
run waits for approval while the README's screenshots are taken and the pages are read on a
phone, then the approver approves it in the browser (the last test: it changes AWS).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from engine.store.types import settle_clock
from riposte.demo import DemoTokens, create_demo_tokens, demo_overrides, with_local_aws
from riposte.demo_scenario import USER, Account, play, seed_account
from tests.aws_sandbox import AwsSandbox, reset_moto
from tests.browser.console_browser import ConsoleBrowser
from tests.e2e.test_seed_scenario import (
    PLAYBOOKS,
    SETTLE_AT_MOST,
    replacements,
    user_state,
)
from tests.live_server import serving

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCREENSHOTS = ROOT / "docs" / "screenshots"
WAIT_SECONDS = 60.0


@dataclass
class Attack:
    """The console serving while the attack's run waits for its approval."""

    url: str
    http: httpx.Client
    tokens: DemoTokens
    account: Account
    aws: AwsSandbox
    run_id: str
    request_id: str

    def get(self, path: str) -> Any:
        answer = self.http.get(path, headers={"Authorization": f"Bearer {self.tokens.analyst}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def run(self, *statuses: str) -> dict[str, Any]:
        """Wait for the attack's run to reach one of ``statuses``; return it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            run: dict[str, Any] = self.get(f"/v1/runs/{self.run_id}")
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run {self.run_id} is {run['status']}: {run}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def attack(moto_endpoint: str, _sqlite_template: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attack]:
    """Seed the account, serve Riposte as the demo does, play the attack; yield once its run
    waits for approval. The settle clock moves past the playbook's settle (``at_most``)
    instead of the test waiting for the burst's quiet minute."""
    reset_moto(moto_endpoint)
    database = tmp_path_factory.mktemp("seed-console") / "riposte.db"
    shutil.copyfile(_sqlite_template, database)
    settings = with_local_aws(
        Settings(database_url=f"sqlite:///{database}", playbook_dir=PLAYBOOKS,
                 worker_poll_seconds=0.1, lease_seconds=30.0),
        {**demo_overrides(moto_endpoint), "ec2_poll_seconds": 0.1})
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"
                           }.items():
            env.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.delenv(key, raising=False)
        account = seed_account(moto_endpoint)
        topic = settings.approval_notify[0].rsplit(":", 1)[1]
        account.client("sns").create_topic(Name=topic)  # the demo's on-call topic
        tokens = create_demo_tokens(settings)
        with (serving(create_app(settings, in_process_workers=1)) as url,
              httpx.Client(base_url=url, timeout=30) as http):
            played = play(account, http, tokens.ingest)
            settle_clock.advance(SETTLE_AT_MOST)
            try:
                [run_id] = played.run_ids
                attack = Attack(url=url, http=http, tokens=tokens, account=account,
                                aws=AwsSandbox(url=moto_endpoint, settings=settings),
                                run_id=run_id, request_id="")
                run = attack.run("waiting_approval", "failed", "succeeded")
                assert run["status"] == "waiting_approval", run
                [pending] = run["approvals"]
                attack.request_id = pending["id"]
                yield attack
            finally:
                settle_clock.reset()


@pytest.fixture
def at_attack(attack: Attack, browser: ConsoleBrowser) -> Attack:
    """The browser pointed at the attacked console."""
    browser.url = attack.url
    return attack


# ---------------------------------------------------------------------------------------------
# While the run waits for approval


README_SHOTS = {  # file -> (page, how much of its top the README shows, in CSS pixels)
    "inbox.png": ("/ui/", 760),
    "run.png": ("/ui/runs/{run}", 1250),
    "approval.png": ("/ui/approvals/{request}", 1250),
}


def test_the_readme_shows_screenshots_of_the_demo_s_inbox_run_and_approval(
    at_attack: Attack, browser: ConsoleBrowser
) -> None:
    browser.sign_in(at_attack.tokens.approver, keep=False)
    written = []
    for name, (page, height) in README_SHOTS.items():
        browser.open(page.format(run=at_attack.run_id, request=at_attack.request_id),
                     keep=False)  # the band is this page's screenshot
        browser.read_log()
        written.append(browser.band(SCREENSHOTS / name, height=height))
    pending = browser.has("#decision-form")
    with browser.phone(pixel_ratio=2):
        browser.open(f"/ui/approvals/{at_attack.request_id}", keep=False)
        # The covered relaunch: 22 calls on a phone, counted and folded.
        browser.script("document.querySelector('[data-step=relaunch]').scrollIntoView()")
        browser.saw("relaunch on a phone")
        written.append(browser.screen(SCREENSHOTS / "approval-phone.png"))

    shown = re.findall(r"\]\((docs/screenshots/[\w.-]+\.png)\)", README.read_text("utf-8"))
    assert pending, "the approval was decided already: the README would show no form"
    assert sorted(shown) == sorted(str(path.relative_to(ROOT)) for path in written)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert path.stat().st_size > 20_000, path  # a page, not a blank screen


def test_the_phone_check_sees_a_page_a_little_wider_than_the_phone(
    browser: ConsoleBrowser
) -> None:
    """The check below can fail: a phone zooms out to fit a wider page (so the page's
    ``innerWidth`` grows to match), and the check is not fooled by that."""
    viewport = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    with browser.phone():
        browser.driver.get(f"data:text/html,{viewport}<p>fits</p>")
        fits = browser.sideways_overflow()
        browser.driver.get(f'data:text/html,{viewport}<div id="wide" style="width:450px">x</div>')
        wide = browser.sideways_overflow()

    assert fits == {}
    assert (wide["scrollWidth"], wide["clientWidth"]) == (450 + 8, 390)  # body's margin
    assert "div#wide 458px" in wide["sticking_out"]


def test_on_a_phone_the_inbox_run_and_approval_never_scroll_sideways(
    at_attack: Attack, browser: ConsoleBrowser
) -> None:
    browser.sign_in(at_attack.tokens.approver, keep=False)
    overflowing = {}
    with browser.phone():
        for path in ("/ui/", f"/ui/runs/{at_attack.run_id}",
                     f"/ui/approvals/{at_attack.request_id}"):
            browser.open(path)
            folded = browser.sideways_overflow()
            browser.unfold_everything()  # every parameter, output and piece of evidence
            overflowing[path] = (folded, browser.sideways_overflow())
        width = browser.script("return document.documentElement.clientWidth")

    assert width == 390
    assert {path: found for path, found in overflowing.items() if any(found)} == {}


# ---------------------------------------------------------------------------------------------
# The decision (last: it changes AWS)


def test_the_approver_reads_the_attack_and_approves_it_in_the_console_and_aws_is_contained(
    at_attack: Attack, browser: ConsoleBrowser
) -> None:
    run = at_attack.get(f"/v1/runs/{at_attack.run_id}")
    request = at_attack.get(f"/v1/approvals/{at_attack.request_id}")
    browser.sign_in(at_attack.tokens.approver)

    # The inbox: the request waiting, the approver may decide.
    item = browser.wait_for(f'#pending-approvals .approval-item'
                            f'[data-request-id="{at_attack.request_id}"]')
    in_inbox = " ".join(item.text.split())
    browser.driver.find_element(
        "css selector", f'#waiting-runs .run-item[data-run-id="{at_attack.run_id}"] a.run-link'
    ).click()
    browser.wait_for(f'#run[data-run-id="{at_attack.run_id}"]')
    browser.saw("the run")
    narrative = [p.text for p in browser.all("#narrative p")]
    location = browser.text('.finding[data-finding-id="source_ip.location"] .finding-answer')
    browser.driver.find_element(
        "css selector", f'#approvals .approval-item[data-request-id="{at_attack.request_id}"] '
                        "a.approval-link").click()
    browser.wait_for("#plan")
    browser.saw("the approval")
    steps = [e.get_attribute("data-step") for e in browser.all("#plan .plan-step")]
    groups = {(e.find_element("xpath", "ancestor::section[1]").get_attribute("data-step"),
               e.get_attribute("data-operation")): e.find_element("css selector", "h4").text
              for e in browser.all("#plan .call-group")}
    calls = browser.by_id("plan").get_attribute("data-calls")
    plan_hash = browser.text("#plan-hash")

    browser.by_id("reason").send_keys("Roboman1 does not work from China: contain and recover")
    browser.click("approve")
    browser.wait_for('#approval[data-status="approved"]')
    browser.saw("approved")
    next_step = browser.text("#next")
    decided_by = browser.all(".decision")[0].get_attribute("data-actor")
    finished = at_attack.run("succeeded", "failed", "rejected")

    assert "you may decide" in in_inbox and USER in in_inbox
    assert "disable-user" in in_inbox
    # The narrative the API holds, as written: it names the user and China.
    assert narrative == [" ".join(paragraph.split())
                         for paragraph in run["narrative"].split("\n\n") if paragraph.strip()]
    assert USER in narrative[0] and "China" in " ".join(narrative) and "China" in location
    # The plan as hashed: the step, then every step it covers, with their calls counted.
    covered = {sub["step"]: sub["calls"][0] for sub in request["plan"]["covers"]}
    assert steps == [request["step_id"], *covered]
    assert plan_hash == request["plan_hash"]
    production = len(at_attack.account.fleet.production)
    assert groups[("relaunch", "ec2:RunInstances")] == f"ec2:RunInstances × {production}"
    assert groups[("revoke-keys", "iam:UpdateAccessKey")] == "iam:UpdateAccessKey × 2"
    api_calls = len(request["plan"]["calls"][0]) + sum(len(c) for c in covered.values())
    assert calls == str(api_calls)
    # Decided as the approver, the run went on, AWS changed as after an API approval.
    assert decided_by == at_attack.tokens.approver_name
    assert "the run resumes" in next_step
    assert finished["status"] == "succeeded", finished
    assert user_state(at_attack.aws) == {"denied": True, "keys": ["Inactive", "Inactive"],
                                         "password": False}
    relaunched = replacements(at_attack.aws)
    assert sorted(relaunched) == sorted(at_attack.account.fleet.production)
    assert {new["State"]["Name"] for new in relaunched.values()} == {"running"}

