"""`sse-perf ui` in headless Chromium, as a user goes through it: save a target and reuse it,
start a run from the form against the demo mock server, watch it in its live view and stop it,
find it in Runs with its report inline and its files, compare it with a second run; what a form,
a run or a server says is shown as text, never run as markup."""

from __future__ import annotations

import re
import signal
import subprocess

import pytest

from .browser_support import poll
from live_runs import start_console

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'




@pytest.fixture
def console(tmp_path):
    proc, url = start_console(tmp_path)
    yield url, url.split("/?")[0], tmp_path
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_viewport_size({"width": 1300, "height": 900})
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    yield page
    page.close()


def _start_from_form(page, base: str, **fields) -> None:
    """The New run form filled (demo), checked, started; returns once the live view is open."""
    page.goto(base + "/new")
    page.check("[name=demo]")
    for name, value in fields.items():
        page.fill(f"[name={name}]", value)
    poll(page, "document.getElementById('command').textContent", lambda text: "--duration" in text)
    page.click("#start")
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/$"), timeout=60_000)


def test_a_run_started_from_the_form_is_watched_stopped_found_and_compared(console, page):
    url, base, tmp_path = console
    page.goto(url)
    assert page.url == base + "/" and page.inner_text("#no-runs")
    # the form: an error by its field, then the command line it stands for
    page.goto(base + "/new")
    page.check("[name=demo]")
    page.fill("[name=threads]", "0")
    text = poll(page, "document.querySelector('[data-error=threads]').textContent", bool)
    assert "--threads must be at least 1" in text
    assert page.locator("label[data-field=threads]").get_attribute("class").split().count("invalid") == 1
    # a run: started, watched in its live view, stopped there
    _start_from_form(page, base, threads="2", duration="60", model_name="ui-a")
    console_origin, live_origin = base, page.url.rstrip("/")
    assert live_origin != console_origin
    assert poll(page, "window.ssePerfLive.rows.length", lambda n: n >= 2) >= 2
    page.click("#stop")
    ended = poll(page, "window.ssePerfLive.ended", lambda value: value is not None, timeout_s=30)
    assert ended["exit_code"] == 130
    # a second run, to the end
    _start_from_form(page, base, threads="1", duration="2", model_name="ui-b")
    assert poll(page, "window.ssePerfLive.ended", lambda value: value is not None, timeout_s=30)["exit_code"] == 0
    # Runs: both, newest first, with their status; one opened with its report inline and its files
    page.goto(base + "/")
    rows = page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => [r.querySelector('.model')"
                                     ".textContent, r.querySelector('.status').textContent])")
    assert rows == [["ui-b", "completed"], ["ui-a", "interrupted"]]
    page.fill("[name=model]", "ui-a")
    page.click("#filters button[type=submit]")
    assert page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.length") == 1
    page.click("#runs-table a[href^='/runs/']")
    frame = page.frame_locator("#report")
    assert "ui-a" in frame.locator("header").inner_text()
    names = page.eval_on_selector_all("#files a", "links => links.map(a => a.textContent)")
    assert {"report.html", "summary.json", "records.jsonl", "timeseries.csv"} <= set(names)
    download = page.request.get(base + page.get_attribute("#files a:has-text('summary.json')", "href"))
    assert download.ok and download.json()["run"]["interrupted"] is True
    # compare the two
    page.goto(base + "/")
    assert page.is_disabled("#compare")
    page.check(".pick >> nth=0")
    page.check(".pick >> nth=1")
    page.click("#compare")
    page.wait_for_url(re.compile(r".*/compare\?ids=.*"))
    heading = page.inner_text("header")
    assert "ui-a" in heading and "ui-b" in heading
    assert page.problems == []


def test_a_saved_target_fills_the_form(console, page):
    url, base, _ = console
    page.goto(url)
    page.goto(base + "/targets")
    page.fill("#target-form [name=name]", "qwen-7b on gpu1")
    page.fill("#target-form [name=base_url]", "http://gpu1.internal:8000/v1")
    page.select_option("#target-form [name=api]", "openai-chat")
    page.fill("#target-form [name=model]", "qwen2.5-7b")
    page.fill("#target-form [name=key_env]", "HOME")  # a variable the console has
    page.click("#target-form button[type=submit]")
    page.wait_for_selector("#targets-table")
    assert page.inner_text("#targets-table .name") == "qwen-7b on gpu1"
    page.click("#targets-table a:has-text('New run with it')")
    assert page.input_value("[name=base_url]") == "http://gpu1.internal:8000/v1"
    assert page.input_value("[name=api]") == "openai-chat" and page.input_value("[name=model]") == "qwen2.5-7b"
    command = poll(page, "document.getElementById('command').textContent", lambda text: "--base-url" in text)
    assert command == "sse-perf --base-url http://gpu1.internal:8000/v1 --api openai-chat --model qwen2.5-7b"
    assert page.problems == []


def test_what_forms_runs_and_servers_say_is_inert(console, page):
    url, base, tmp_path = console
    page.goto(url)
    page.goto(base + "/targets")
    page.fill("#target-form [name=name]", XSS)
    page.fill("#target-form [name=base_url]", "http://gpu1:8000/v1")
    page.click("#target-form button[type=submit]")
    page.wait_for_selector("#targets-table")
    assert page.inner_text("#targets-table .name") == XSS
    # a form whose error message carries the payload (a query file that is not there)
    page.goto(base + "/new")
    page.check("[name=demo]")
    page.fill("[name=param_file]", XSS)
    text = poll(page, "document.querySelector('[data-error=param_file]').textContent", bool)
    assert XSS in text
    # a run labelled with it, in Runs
    _start_from_form(page, base, threads="1", duration="1", model_name=XSS)
    poll(page, "window.ssePerfLive.ended", lambda value: value is not None, timeout_s=30)
    page.goto(base + "/")
    assert page.inner_text("#runs-table .model") == XSS
    assert page.evaluate("window.__xss") is None and page.locator("img").count() == 0
    assert page.problems == []


def test_a_query_payload_in_a_reports_inline_view_is_inert(console, page):
    import sys

    url, base, tmp_path = console
    subprocess.run([sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=4",
                    "--requests", "2", "--query", XSS, "--output-dir", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    page.goto(url)
    page.click("#runs-table a[href^='/runs/']")
    frame = page.frame_locator("#report")
    assert XSS in frame.locator("body").inner_text()  # the slowest requests name their query
    report = next(f for f in page.frames if f.url.endswith("/report"))
    assert report.evaluate("window.__xss") is None and page.evaluate("window.__xss") is None
    assert frame.locator("img").count() == 0
    assert page.problems == []
