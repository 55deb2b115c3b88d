"""What the browser tests share: where Debian's Chromium is, how it is launched headless, where
screenshots go, and the skip used where Chromium is absent (.ci/run installs it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SSE_PERF_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = ROOT / "test-output"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium); .ci/run installs it")


def launched_browser():
    """Yields one headless Chromium (for a module-scoped fixture), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


class WatchedPage:
    """A page that records console errors, page errors, dialogs (dismissed) and every network
    request. `ready` is whether the page's script published its global (`ready_global`)."""

    def __init__(self, browser, path: Path, ready_global: str, width: int = 1400):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())  # returns after the load event: every inline script ran
        # (no wait_for_function: its polling evaluates strings, which the reports' CSP forbids)
        self.ready = self.page.evaluate(f"typeof window.{ready_global} === 'object'")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def eval(self, script: str):
        return self.page.evaluate(script)

    def close(self) -> None:
        self.page.close()
