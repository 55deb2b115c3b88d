"""One headless Chromium, and one browser context, for every browser test; one PageCache per test module."""

import pytest

from .browser_support import CHROMIUM, PageCache, launched_browser


@pytest.fixture(scope="session")
def browser():
    """A BrowserContext of the one Chromium the session launches (WatchedPage takes either)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); .ci/run installs it")
    for instance in launched_browser():
        context = instance.new_context()
        yield context
        context.close()


@pytest.fixture(scope="module")
def pages(browser):
    """The module's PageCache: one page per report file, reloaded for each test; closed after the module."""
    cache = PageCache(browser)
    yield cache
    cache.close()
