"""The live view (--live) in headless Chromium: a real demo run watched and stopped from the
page; a reconnect that resumes without a gap or a second shown twice; run values shown as text,
never as markup; the Chinese page."""

from __future__ import annotations


import pytest

from sse_perf_tool.live_feed import LiveFeed
from sse_perf_tool.live_page import render_live_page
from sse_perf_tool.live_server import LiveServer

from .browser_support import poll
from live_runs import start_live_run
from waiting import wait_until

pytestmark = pytest.mark.browser




def _watched(browser, url: str):
    page = browser.new_page()
    page.set_viewport_size({"width": 1400, "height": 900})
    problems: list = []
    requests: list = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: d.accept())  # the Stop button's confirmation
    page.goto(url)
    return page, problems, requests


def test_a_demo_run_is_drawn_every_second_matches_the_terminal_and_stops_from_the_page(browser, tmp_path):
    proc, url, lines = start_live_run(tmp_path)
    try:
        page, problems, requests = _watched(browser, url)
        assert page.url.endswith("/") and "token" not in page.url  # the token went into a cookie
        rows = poll(page, "window.ssePerfLive.rows.length", lambda n: n >= 3)
        assert rows >= 3
        charts = page.evaluate("window.ssePerfLive.charts.map(c => [c.$title, c.data.datasets[0].data.length])")
        assert len(charts) >= 8 and "TTFT (ms)" in [title for title, _ in charts]
        before = charts[0][1]
        assert poll(page, "window.ssePerfLive.charts[0].data.datasets[0].data.length", lambda n: n > before) > before
        # the headline figures are the terminal's row of the same second, cell for cell
        second, cells = page.evaluate("[window.ssePerfLive.lastSecond, window.ssePerfLive.cells]")
        assert wait_until(lambda: any(line.split()[:1] == [f"{second + 1}s"] for line in lines), timeout_s=10)
        terminal = next(line.split() for line in lines if line.split()[:1] == [f"{second + 1}s"])
        assert [value for _, value in cells][:len(terminal)] == terminal
        assert [label for label, _ in cells][:3] == ["time", "threads", "ok"]
        assert page.evaluate("window.ssePerfLive.seconds") == list(range(second + 1))
        page.click("#stop")
        proc.wait(30)  # a bound against a hang only
        ended = poll(page, "window.ssePerfLive.ended", lambda value: value is not None, timeout_s=10)
        assert proc.returncode == 130 and ended["exit_code"] == 130
        assert ended["run_dir"] and page.inner_text("#status") == "ended"
        assert ended["run_dir"] in page.inner_text("#ended")
        assert page.is_disabled("#stop")
        assert problems == []
        origin = url.split("/?")[0]
        assert all(r.startswith(origin) for r in requests)  # nothing from the internet: works offline
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()


def _row(second: int) -> dict:
    return {"second": second, "active_threads": 2, "requests_started": 2, "requests_ok": 2, "requests_failed": 0,
            "output_tokens": 100, "ttft_p50_ms": 200.0, "ttft_p95_ms": 220.0, "success_rate_pct": 100.0}


LIVE = {"tokens_per_s": 100.0, "gpu_util_pct": None, "total_threads": 2}


@pytest.fixture
def live_page_server():
    """An in-process LiveServer whose feed the test drives; yields (server, feed, make: a page over it)."""
    servers = []

    def make(lang="en", facts=(("Target", "http://127.0.0.1:9/v1"),), model_name=None):
        server = LiveServer("127.0.0.1", 0)
        feed = LiveFeed(lang, cores=1)
        page, csp = render_live_page(lang, server.token, facts, 3600, model_name)
        server.start(feed, page, csp, lambda: None)
        servers.append(server)
        return server, feed

    yield make
    for server in servers:
        server.close()


def test_a_dropped_stream_reconnects_and_resumes_without_a_gap_or_a_repeat(browser, live_page_server):
    server, feed = live_page_server()
    connections = []
    watch = feed.watch
    feed.watch = lambda last_id=None: (connections.append(last_id), watch(last_id))[1]
    for second in range(3):
        feed.second(_row(second), LIVE)
    page, problems, _ = _watched(browser, server.url)
    assert poll(page, "window.ssePerfLive.rows.length", lambda n: n == 3) == 3
    feed.second(_row(3), LIVE)
    assert poll(page, "window.ssePerfLive.lastSecond", lambda n: n == 3) == 3
    for watcher in list(feed._watchers):  # the feed drops the browser, as it drops one that fell behind
        watcher.dropped = True
        feed.leave(watcher)
    for second in range(4, 7):  # seconds the browser is not connected for
        feed.second(_row(second), LIVE)
    assert poll(page, "window.ssePerfLive.lastSecond", lambda n: n == 6, timeout_s=15) == 6
    assert page.evaluate("window.ssePerfLive.seconds") == list(range(7))
    assert connections == [None, 3]  # it came back saying where it was (Last-Event-ID)
    assert page.evaluate("window.ssePerfLive.charts[0].data.datasets[0].data.length") == 7
    assert problems == []
    page.close()


def test_values_from_the_run_are_shown_as_text_never_run_as_markup(browser, live_page_server):
    payload = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
    server, feed = live_page_server(facts=(("Target", payload),), model_name=payload)
    feed.second(_row(0), LIVE)
    feed.warning(f"!! server said: {payload}")
    page, problems, _ = _watched(browser, server.url)
    assert poll(page, "window.ssePerfLive.warnings.length", lambda n: n == 1) == 1
    assert page.evaluate("window.__xss") is None
    assert payload in page.inner_text("#warnings") and payload in page.inner_text("header")
    assert page.locator("img").count() == 0
    page.close()


def test_the_chinese_page(browser, live_page_server):
    server, feed = live_page_server(lang="zh")
    feed.second(_row(0), LIVE)
    page, problems, _ = _watched(browser, server.url)
    assert poll(page, "window.ssePerfLive.rows.length", lambda n: n == 1) == 1
    assert page.inner_text("#status") == "运行中 · 第 1 秒"
    assert page.inner_text("#stop") == "停止测试"
    assert page.evaluate("window.ssePerfLive.cells[0][0]") == "时间"
    assert problems == []
    page.close()
