"""The report of a run against a Dify chatflow app (the embedded mock in its chatflow mode: usage
with Dify's timings and prices, <think> reasoning in the answer, three-turn conversations), as a
reader sees it in Chromium: the server's own timings beside the client's, the per-turn table, the
cost, the rate-limited and paused requests told apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sse_perf_tool import cli
from sse_perf_tool.mock_server import MockConfig, MockServer

from .browser_support import WatchedPage, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]


class Page(WatchedPage):
    ready_global = "ssePerfReport"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dify-report")
    mock = MockServer(MockConfig(ttft_ms=20, itl_ms=2, tokens=8, reasoning_tokens=3, think_tags="split",
                                 dify_mode="chatflow", rate_limit_rate=0.15, pause_rate=0.1, seed=3)).start()
    try:
        code = cli.main(["--base-url", mock.base_url, "--api", "auto", "--threads", "2", "--requests", "24",
                         "--turns", "3", "--output-dir", str(out), "--quiet", "--no-history"])
    finally:
        mock.stop()
    assert code == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


@pytest.fixture
def page(pages, run_dir):
    return pages.fresh(run_dir / "report.html", Page)


def test_the_run_measured_what_a_chatflow_sends(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["api"] == "dify-chat"
    assert summary["requests"]["paused"] >= 1 and summary["errors"].get("rate_limited", 0) >= 1
    assert summary["errors_by_status"].get("429", 0) >= 1
    assert summary["tokens"]["sources"] == {"usage": summary["requests"]["ok"]}
    assert summary["server_ttft_ms"]["count"] == summary["requests"]["ok"]
    assert summary["ttfo_ms"]["p50"] > summary["ttft_ms"]["p50"], "the <think> block comes before the answer"
    assert set(summary["turns"]) <= {"1", "2", "3"} and "1" in summary["turns"]
    assert summary["cost"]["currency"] == "USD" and summary["cost"]["priced_requests"] == summary["requests"]["ok"]


def test_a_reader_sees_the_servers_timings_turns_cost_and_outcomes(page):
    assert page.errors == [] and page.ready
    server = page.page.locator("#server-table")
    assert server.is_visible()
    rows = server.locator("tbody tr").all_inner_texts()
    assert any(row.startswith("Server TTFT") and "TTFT" in row for row in rows)
    turns = page.page.locator("#turn-table tbody tr").all_inner_texts()
    assert [row.split()[0] for row in turns] == ["1", "2", "3"][: len(turns)] and turns
    assert "USD" in page.page.locator("#server-cost").inner_text()
    assert page.page.locator("#paused-note").is_visible()
    assert "HTTP 429" in page.page.locator("#errors-by-status").inner_text()
    kinds = page.page.locator("#error-table .kind").all_inner_texts()
    assert "rate_limited" in kinds and "paused" not in kinds
