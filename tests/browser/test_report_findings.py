"""The report's findings and a model's reading, in headless Chromium: the findings come first,
the most severe on top, each link opens its chart with those seconds outlined; a model's answer
is shown as text, so markup in it never runs."""

from __future__ import annotations

import csv
import json

import pytest

from sse_perf_tool.analysis import write_analysis
from sse_perf_tool.report import write_report
from sse_perf_tool.storage import load_timeseries

from report_fixtures import make_run_dir

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run whose TTFT p95 climbs through it and whose requests mostly fail for five seconds."""
    folder = make_run_dir(tmp_path_factory.mktemp("findings") / "run", seconds=40, threads=4)
    rows = load_timeseries(folder)
    for row in rows:
        second = int(row["second"])
        row["ttft_p95_ms"] = 200 + 15 * second
        row["phase"] = "measure"
        row["requests_ok"], row["requests_failed"] = (1, 4) if 20 <= second < 25 else (4, 0)
    with open(folder / "timeseries.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = json.loads((folder / "summary.json").read_text())
    summary.pop("findings", None)  # a folder from before findings: the report finds them itself
    summary["errors"] = {"http_status": 20}
    (folder / "summary.json").write_text(json.dumps(summary))
    write_analysis(folder, f"## Reading\n\nThe run {XSS} shows a queue.\n\n- first {XSS}\n\n```\n{XSS}\n```\n",
                   "a-model", "http://127.0.0.1:9/v1", "en")
    write_report(folder, folder / "report.html")
    return folder


@pytest.fixture
def page(browser, run_dir):
    page = browser.new_page()
    page.set_viewport_size({"width": 1300, "height": 900})
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.goto((run_dir / "report.html").as_uri())
    yield page
    page.close()


def test_the_findings_come_first_the_most_severe_on_top_and_link_to_their_chart(page):
    items = page.eval_on_selector_all("#findings .finding", "els => els.map(e => [e.dataset.finding, "
                                      "e.querySelector('.sev').textContent.trim()])")
    ids = [i for i, _ in items]
    assert ids[:2] == ["error_burst", "queue_building"] and items[0][1] == "critical"
    assert page.evaluate("document.querySelector('nav.toc a').getAttribute('href')") == "#findings"
    page.click("#findings [data-finding=queue_building] .finding-chart")
    marked = page.evaluate("window.ssePerfReport.timeCharts.filter(c => (c.$marks || []).length)"
                           ".map(c => [c.canvas.id, c.$marks.map(m => m.id)])")
    assert ["queue_building"] in [marks for _, marks in marked] and ["error_burst"] in [m for _, m in marked]
    target = page.evaluate("location.hash.slice(1)")
    assert [chart for chart, marks in marked if "queue_building" in marks] == [target]
    assert page.problems == []


def test_a_models_reading_is_text_and_says_who_wrote_it(page):
    analysis = page.locator("#analysis")
    assert "a-model" in analysis.locator(".analysis-by").inner_text()
    assert analysis.locator("h3").inner_text() == "Reading"
    assert XSS in analysis.locator(".analysis p").first.inner_text() and XSS in analysis.locator("pre").inner_text()
    assert analysis.locator("li").inner_text() == f"first {XSS}"
    assert analysis.locator("img, script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.problems == []
