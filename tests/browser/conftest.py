"""Browser fixtures: one headless Chromium for the session, a live console per test (uvicorn on
a socket, one in-process worker), and the API beside it for what a test sets up and checks.

SQLite only: what these tests prove is the browser's (pages, forms, keyboard, layout, the
Content-Security-Policy); the rules and the stores behind the pages run on both databases in
tests/e2e and tests/integration.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from api.app import create_app
from core.settings import Settings
from riposte.demo_aws import LocalAws
from tests.aws_sandbox import REGION
from tests.browser.console_browser import (
    ARTIFACTS,
    ConsoleBrowser,
    console_log,
    start_chromium,
)
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Tokens
from tests.live_server import serving

# The end-to-end fixtures these tests share: a temporary playbook directory, the settings on a
# fresh database, tokens of each role.
playbook_dir = e2e.playbook_dir
write_playbook = e2e.write_playbook
settings = e2e.settings
tokens = e2e.tokens

WAIT_SECONDS = 20.0


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server started as the demo starts it: without moto's ~1300 public images, which
    the seed's backup lookups would walk (``aws`` resets it before each test that uses it)."""
    local = LocalAws(REGION)
    url = local.start(point_boto3=False)
    try:
        yield url
    finally:
        local.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[WebDriver]:
    """One headless Chromium for every browser test of the session (each starts clean)."""
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: WebDriver, request: pytest.FixtureRequest) -> Iterator[ConsoleBrowser]:
    """The browser, signed out, on a desktop screen, keeping this test's screenshots under
    ``artifacts/<module>/<test>/``. No page it showed may have logged a script error or a
    Content-Security-Policy violation (``allowed_statuses``: pages answered so on purpose)."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every site's, not one
    chromium.get("about:blank")
    console_log(chromium)  # what the last test left
    where = ARTIFACTS / request.node.path.stem / request.node.name.replace("/", "-")
    shutil.rmtree(where, ignore_errors=True)
    used = ConsoleBrowser(driver=chromium, artifacts=where)
    yield used
    marker = request.node.get_closest_marker("allowed_statuses")
    problems = used.problems(answered=tuple(marker.args) if marker else ())
    assert not problems, f"the browser's console logged problems: {problems}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allowed_statuses(*codes): pages a browser test meets answered with these "
                   "HTTP statuses on purpose (not a problem in the browser's log)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.rglob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")


@dataclass
class Api:
    """The HTTP API of the console's app, for what a test sets up and checks."""

    http: httpx.Client
    tokens: Tokens

    def get(self, path: str) -> Any:
        answer = self.http.get(path, headers=self.tokens.as_admin)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post_alert(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "suspicious API call", "severity": 50, **fields}
        answer = self.http.post("/v1/alerts", json=body, headers=self.tokens.as_ingest)
        assert answer.status_code == 202, answer.text
        posted: dict[str, Any] = answer.json()
        return posted

    def wait_for_run(self, run_id: str, *statuses: str) -> dict[str, Any]:
        """Poll a run until it reaches one of ``statuses``; fail with its last state."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            run: dict[str, Any] = self.get(f"/v1/runs/{run_id}")
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run {run_id} is {run['status']}: {run}"
            time.sleep(0.05)

    def waiting(self, **alert: Any) -> tuple[dict[str, Any], str]:
        """Post an alert whose run waits for approval; return the run and its request's id."""
        [run_id] = self.post_alert(**alert)["run_ids"]
        run = self.wait_for_run(run_id, "waiting_approval")
        [request_id] = [a["id"] for a in run["approvals"] if a["status"] == "pending"]
        return run, request_id


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    """The settings of the console under test (a test may override them): its worker looks
    for work often, as a test waits for it."""
    return settings.model_copy(update={"worker_poll_seconds": 0.1})


@pytest.fixture
def console(console_settings: Settings, tokens: Tokens,
            browser: ConsoleBrowser) -> Iterator[Api]:
    """A live console with one in-process worker; the browser is pointed at it."""
    app = create_app(console_settings, in_process_workers=1)
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        browser.url = url
        yield Api(http=http, tokens=tokens)
