"""The HTML reports in headless Chromium (playwright), marked `browser`; skipped where Chromium is
absent (.ci/run installs it)."""
