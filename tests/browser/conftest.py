"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) against a whole
stack on free ports (tests/browser/stack.py).

    stack       module-scoped: services + gateway emulator + edge (a Stack: .url, .emulator, …)
    browser     module-scoped headless Chromium
    page        a fresh context (its own localStorage) and page, 1280×900; JS errors and CSP
                violations fail the test
    shots       shots.take("step") saves test-artifacts/screenshots/<test>/<nn>-<step>.png

Chromium is /usr/bin/chromium unless CHROMIUM_PATH says otherwise. Without it (or without the
playwright package) the tests fail with the reason, locally as in CI: a missing component is a
failure, never a skip.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.stack import Stack, full_stack

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}


def _unavailable(reason: str) -> None:
    pytest.fail(f"browser tests cannot run: {reason} (apt-get install chromium; pip install playwright)", pytrace=False)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Any) -> Iterator[Any]:
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def stack(browser: Any, server_urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    # `browser` first: no stack is started when there is no browser to drive it
    with full_stack(tmp_path_factory.mktemp("browser-stack"), server_urls) as running:
        yield running


class Shots:
    def __init__(self, page: Any, test_name: str) -> None:
        self.page = page
        self.dir = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, step: str, *, full_page: bool = True) -> pathlib.Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        if full_page:
            self.page.evaluate("window.scrollTo(0, 0)")  # else a sticky header lands mid-picture
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def page(browser: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    context.set_default_timeout(15000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    # the page must keep to the edge's strict CSP: a refused script, style or request is a bug
    opened.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            Shots(opened, request.node.name + "-failed").take("failed")
        except Exception:  # a page that crashed has nothing to show
            pass
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shots(page: Any, request: pytest.FixtureRequest) -> Shots:
    return Shots(page, request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)  # the page fixture screenshots a failed test
