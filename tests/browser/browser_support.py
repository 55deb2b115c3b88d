"""What the browser tests share: where Debian's Chromium is, how it is launched headless, a page
that records what a user would notice (errors, dialogs, network requests) and can be loaded afresh
for each test, and the skip used where Chromium is absent (.ci/run installs it). Screenshots to
look at after a change: benchmarks/screenshots.py."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import pytest

CHROMIUM = Path(os.environ.get("SSE_PERF_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium); .ci/run installs it")


def launched_browser():
    """Yields one headless Chromium (for a scoped fixture), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


class WatchedPage:
    """A page that records console errors, page errors, dialogs (dismissed) and every network
    request of its current load. `ready` is whether the page's script published its global
    (`ready_global`, which a subclass names). `browser` is a Browser or a BrowserContext."""

    ready_global = ""

    def __init__(self, browser, path: Path, width: int = 1400):
        self.path = path
        if hasattr(browser, "new_context"):  # a Browser: the page gets a context of its own
            self.page = browser.new_page(viewport={"width": width, "height": 900})
        else:
            self.page = browser.new_page()
            self.page.set_viewport_size({"width": width, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        # the handlers look the lists up at each event: a reload starts them afresh
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self._load(lambda: self.page.goto(path.as_uri()))

    def _load(self, navigate: Callable[[], object]) -> None:
        self.errors, self.dialogs, self.requests = [], [], []
        self.page.bring_to_front()  # the cache keeps other pages open: this one must not be a background tab
        navigate()  # returns after the load event: every inline script ran
        # (no wait_for_function: its polling evaluates strings, which the reports' CSP forbids)
        self.ready = self.page.evaluate(f"typeof window.{self.ready_global} === 'object'")

    def reload(self) -> "WatchedPage":
        """The same document loaded again, as a new page would find it: its script runs anew (no
        zoom, no clicked button, nothing in storage: the reports keep none) and the lists hold only
        what this load logged. Cheaper than a new page."""
        self._load(self.page.reload)
        return self

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def eval(self, script: str):
        return self.page.evaluate(script)

    def close(self) -> None:
        self.page.close()


class PageCache:
    """One WatchedPage per report file for a module's tests: the first test that asks gets it as
    loaded, every later one gets it reloaded, so each test starts from a fresh load."""

    def __init__(self, browser):
        self.browser = browser
        self.pages: dict[tuple, WatchedPage] = {}

    def fresh(self, path: Path, make: Callable[..., WatchedPage]) -> WatchedPage:
        key = (make, path)
        if key not in self.pages:
            self.pages[key] = make(self.browser, path)
            return self.pages[key]
        return self.pages[key].reload()

    def close(self) -> None:
        for page in self.pages.values():
            page.close()


def poll(page, script: str, predicate, timeout_s: float = 20.0):
    """page.evaluate(script) until predicate(value) holds or timeout_s passed (a bound against a
    hang, not a timing claim; no wait_for_function: its polling evaluates strings, which the
    pages' CSP forbids); the last value."""
    deadline = time.monotonic() + timeout_s
    value = page.evaluate(script)
    while not predicate(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = page.evaluate(script)
    return value
