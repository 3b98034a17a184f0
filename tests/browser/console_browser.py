"""A headless Chromium that uses the console as a person would, and keeps what it saw.

Debian's ``chromium`` and ``chromedriver`` (``.ci/run`` installs them; ``RIPOSTE_CHROMIUM`` and
``RIPOSTE_CHROMEDRIVER`` name others), driven by Selenium with both paths given, so Selenium
Manager never looks for (or downloads) a browser or a driver.

What the browser saw is kept: a screenshot of every page it was on (the whole page, under
``tests/browser/artifacts/<test>/``, or ``RIPOSTE_BROWSER_ARTIFACTS``) and every line of its
console log, where a script error or a Content-Security-Policy violation shows.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path(os.environ.get("RIPOSTE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RIPOSTE_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("RIPOSTE_BROWSER_ARTIFACTS",
                                Path(__file__).resolve().parent / "artifacts"))
DESKTOP = (1280, 900)
PHONE = (390, 844)  # an iPhone 12-15's screen in CSS pixels
WAIT_SECONDS = 10.0
TALLEST_SHOT = 8_000  # CSS pixels: a longer page is cut there (the time a shot takes)


def start_chromium() -> WebDriver:
    """Start headless Chromium with its console log kept; fail saying what to install."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        assert path.is_file(), (
            f"{path} not found: the browser tests need Debian's {package} package "
            f"(apt-get install chromium chromium-driver, as .ci/run does), or "
            f"RIPOSTE_CHROMIUM / RIPOSTE_CHROMEDRIVER naming a Chromium and its driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--hide-scrollbars",
                     "--force-device-scale-factor=1", "--lang=en-US", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


@dataclass
class ConsoleBrowser:
    """One test's use of the browser: the console it talks to and what it saw there."""

    driver: WebDriver
    url: str = ""  # the live console's base URL, set by the test's server fixture
    artifacts: Path = ARTIFACTS
    shots: list[Path] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    viewport: str = "desktop"

    # --- going places -------------------------------------------------------------------------

    def open(self, path: str, name: str | None = None, *, keep: bool = True) -> None:
        """Load a console page (``path`` under the console's URL) and keep a screenshot of it
        (``keep=False``: the test keeps one itself, once it has changed the page)."""
        self.driver.get(self.url + path)
        if keep:
            self.saw(name or path)

    def saw(self, name: str) -> Path:
        """Keep the page as it is now: its screenshot, and the console log so far."""
        self.read_log()
        return self.shot(name)

    def click(self, element_id: str) -> None:
        self.by_id(element_id).click()

    def wait_for(self, css: str) -> WebElement:
        """Wait until an element matching ``css`` is on the page (after a form or a link)."""
        WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, css),
            f"no {css} on {self.driver.current_url} after {WAIT_SECONDS} s")
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait_for_path(self, path: str) -> None:
        """Wait until the browser is on ``path`` (the query string and fragment aside)."""
        WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
            lambda driver: self.path == path,
            f"still on {self.driver.current_url}, not {path}")

    @property
    def path(self) -> str:
        """The path of the page the browser shows (no query string, no fragment)."""
        current = self.driver.current_url.removeprefix(self.url)
        return re.split(r"[?#]", current, maxsplit=1)[0]

    def tab_to(self, element_id: str, *, at_most: int = 150) -> int:
        """Press Tab until the element is focused, as a keyboard user moves through the page;
        return how many presses it took."""
        keys = ActionChains(self.driver)
        for presses in range(1, at_most + 1):
            keys.send_keys(Keys.TAB).perform()
            if self.focused.get_attribute("id") == element_id:
                return presses
        raise AssertionError(f"#{element_id} not reached in {at_most} presses of Tab")

    def press(self, *keys: str) -> None:
        """Type into whatever has the focus (text, or keys such as ``Keys.TAB``)."""
        ActionChains(self.driver).send_keys(*keys).perform()

    @property
    def focused(self) -> WebElement:
        """The element that has the keyboard's focus."""
        return self.driver.switch_to.active_element

    def sign_in(self, token: str, *, next_path: str = "/ui/", keep: bool = True) -> None:
        """Sign in with an API token through the sign-in form, as a person pastes it
        (``keep=False``: no screenshot of the page it lands on, which the test opens again)."""
        self.open(f"/ui/sign-in?next={next_path}", keep=False)
        self.by_id("token").send_keys(token)
        self.click("sign-in")
        self.wait_for("#sign-out-form")
        if keep:
            self.saw(f"signed in at {self.path}")
        else:
            self.read_log()

    # --- reading ------------------------------------------------------------------------------

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def has(self, css: str) -> bool:
        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """The text of the first element matching ``css`` as the page renders it (folded
        ``<details>`` content included: ``textContent``, blanks collapsed)."""
        raw = self.driver.find_element(By.CSS_SELECTOR, css).get_attribute("textContent")
        return " ".join((raw or "").split())

    def script(self, source: str, *args: Any) -> Any:
        """Evaluate JavaScript in the page (WebDriver's, not the page's: the page's
        Content-Security-Policy does not apply to it)."""
        return self.driver.execute_script(source, *args)

    # --- the screen ---------------------------------------------------------------------------

    @contextmanager
    def phone(self, *, pixel_ratio: int = 1) -> Iterator[None]:
        """Look at pages as a phone shows them: 390 × 844 CSS pixels, a phone's viewport
        rules (``<meta name=viewport>``), touch; back to the desktop afterwards.
        ``pixel_ratio``: device pixels per CSS pixel (screenshots that many times larger)."""
        width, height = PHONE
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": pixel_ratio,
            "mobile": True})
        self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
        self.viewport = "phone"
        try:
            yield
        finally:
            self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            self.viewport = "desktop"

    def sideways_overflow(self) -> dict[str, Any]:
        """How far the page is wider than the screen, and the first elements sticking out
        (empty when it does not scroll sideways).

        The screen is the layout viewport (``clientWidth``), not ``window.innerWidth``: a
        phone zooms out to fit a page wider than itself, and ``innerWidth`` grows with it.
        """
        found: dict[str, Any] = self.script("""
            const screen = document.documentElement.clientWidth;
            const width = document.documentElement.scrollWidth;
            if (width <= screen) return {};
            const wide = [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > screen + 0.5)
              .slice(0, 5)
              .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                        + (e.className ? '.' + String(e.className).split(' ').join('.') : '')
                        + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
            return {scrollWidth: width, clientWidth: screen, sticking_out: wide};
        """)
        return found

    def unfold_everything(self) -> None:
        """Open every ``<details>``: folded parameters and evidence must fit too."""
        self.script("document.querySelectorAll('details').forEach(d => { d.open = true; });")

    def shot(self, name: str) -> Path:
        """Save a screenshot of the whole page (up to :data:`TALLEST_SHOT`) as an artifact."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"],
                "height": min(size["height"], TALLEST_SHOT), "scale": 1}
        taken = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip,
            "optimizeForSpeed": True})
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{_slug(name)}-{self.viewport}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(taken["data"]))
        self.shots.append(path)
        return path

    def screen(self, path: Path) -> Path:
        """Save what the screen shows now (the viewport, not the whole page) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path

    def band(self, path: Path, *, height: int) -> Path:
        """Save the top ``height`` CSS pixels of the page (its whole width) to ``path``."""
        width = self.script("return document.documentElement.scrollWidth")
        taken = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(taken["data"]))
        return path

    # --- the console log ----------------------------------------------------------------------

    def read_log(self) -> list[dict[str, Any]]:
        """Move the browser's console log into :attr:`log` (reading it empties Chromium's)."""
        entries = console_log(self.driver)
        self.log.extend(entries)
        return entries

    def problems(self, *, answered: tuple[int, ...] = ()) -> list[str]:
        """What went wrong in the pages so far: script errors, Content-Security-Policy
        violations, resources that failed to load. A page answered with a status in
        ``answered`` on purpose (a 409 that shows the new plan) is not a problem."""
        self.read_log()
        expected = [f"status of {status} " for status in answered]
        found = []
        for entry in self.log:
            message = str(entry.get("message", ""))
            if "Content Security Policy" in message or "Refused to" in message:
                found.append(message)
            elif entry.get("level") == "SEVERE" and not any(e in message for e in expected):
                found.append(message)
        return found


def console_log(driver: WebDriver) -> list[dict[str, Any]]:
    """Take what the browser's console logged since the last time (and empty it)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries

