"""The comparison report in a real browser: Debian's headless Chromium driven by Playwright.

Checks what only a browser can: no JavaScript error and no network, every chart drew coloured
pixels, each overlay chart has one dataset per run in that run's colour, the table colours better
and worse cells, the smoothing control redraws the time series, sweeps get their curves, and a
narrow window does not scroll sideways. Every test finds its page freshly loaded (one page per
report, reloaded between tests). Skipped only where /usr/bin/chromium is absent (.ci/run installs
it); screenshots to look at after a change: benchmarks/screenshots.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sse_perf_tool.compare_report import RUN_COLORS

from compare_fixtures import make_compare_reports

from .browser_support import WatchedPage, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """compare_fixtures.make_compare_reports: three models at the same settings (qwen-14b slower
    than the qwen-7b baseline, llama faster with a few errors; GPU utilisation for two of them) in
    English and Chinese, and a sweep comparison (two thread sweeps and one plain run)."""
    return make_compare_reports(tmp_path_factory.mktemp("compare-browser"))


class Page(WatchedPage):
    """The comparison report: its script publishes window.ssePerfCompare."""
    ready_global = "ssePerfCompare"


@pytest.fixture(params=["en", "zh", "sweep"])
def page(request, pages, reports):
    opened = pages.fresh(reports[request.param], Page)
    opened.kind = request.param
    return opened


COLOURED_PIXELS = """
() => Array.from(document.querySelectorAll('canvas')).map(canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    const r = data[i], g = data[i + 1], b = data[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;  // a series, not grey axes or text
  }
  return {id: canvas.id, width: canvas.width, height: canvas.height, coloured};
})
"""


def test_loads_without_errors_or_network(page):
    assert page.errors == []
    assert page.ready, "the compare script finished"
    external = [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))]
    assert external == []


def test_every_canvas_draws_its_data(page):
    canvases = page.eval(COLOURED_PIXELS)
    ids = {c["id"] for c in canvases}
    bars = {f"bar-{m}" for m in ("output_tokens_per_s", "requests_per_s", "ttft_p95_ms", "tpot_p95_ms", "e2e_p95_ms")}
    cdfs = {"cdf-ttft", "cdf-tpot", "cdf-e2e"}
    if page.kind == "sweep":
        assert ids == bars | cdfs | {"ts-tps", "ts-ttft", "ts-ok"} | {"sweep-ttft", "sweep-tpot", "sweep-e2e"}
    else:  # GPU runs: utilisation over time and tokens per joule
        assert ids == bars | cdfs | {"ts-tps", "ts-ttft", "ts-ok", "ts-gpu", "bar-output_tokens_per_joule"}
    assert page.eval("Object.keys(Chart.instances).length") == len(canvases)
    for canvas in canvases:
        assert canvas["width"] > 100 and canvas["height"] > 60, canvas
        assert canvas["coloured"] > 300, f"{canvas['id']} drew no coloured series: {canvas}"


def test_overlay_charts_have_one_dataset_per_run_in_its_colour(page):
    charts = page.eval("""(() => { const c = window.ssePerfCompare;
      return c.timeCharts.concat(c.cdfCharts, c.sweepCharts).map(ch => ({
        id: ch.canvas.id, colours: ch.data.datasets.map(d => d.borderColor),
        points: ch.data.datasets.map(d => d.data.length)})); })()""")
    assert len(charts) == (9 if page.kind == "sweep" else 7)
    for chart in charts:
        assert chart["colours"] == list(RUN_COLORS[:3]), chart["id"]
    for chart in charts:
        if chart["id"] != "ts-gpu":  # the third run has no GPU
            assert all(n > 0 for n in chart["points"]), chart
    bars = page.eval("window.ssePerfCompare.bars.map(b => b.data.datasets[0].borderColor)")
    assert all(colours == list(RUN_COLORS[:3]) for colours in bars)


def test_sweep_curves_have_a_point_per_level(page):
    if page.kind != "sweep":
        assert page.eval("window.ssePerfCompare.sweepCharts.length") == 0
        assert page.page.locator("#sweep").count() == 0
        return
    points = page.eval("window.ssePerfCompare.sweepCharts[0].data.datasets.map(d => d.data.map(p => p.label))")
    assert points == [["1 thr", "4 thr", "8 thr", "16 thr"]] * 2 + [["8 thr"]]


def test_table_colours_better_and_worse_cells(page):
    def classes(metric: str) -> list[str]:
        return page.page.locator(f'#compare-table tr[data-metric="{metric}"] td').evaluate_all(
            "cells => cells.map(c => c.className)")

    ttft = classes("ttft_p95_ms")
    assert "cmp-base" in ttft[0]
    assert "cmp-worse" in ttft[1], "the slower model's TTFT p95 is worse"
    assert "cmp-better" in ttft[2] and "cmp-best" in ttft[2], "the faster model's is better, and the best"
    tps = classes("output_tokens_per_s")
    assert "cmp-worse" in tps[1] and "cmp-better" in tps[2]
    if page.kind != "sweep":
        assert "cmp-regression" in ttft[1] and "cmp-regression" not in ttft[2]
        assert page.page.locator("#regressions li").count() == 1, "one line per regressed run"
        colour = page.eval("getComputedStyle(document.querySelector("
                           "'#compare-table tr[data-metric=\"ttft_p95_ms\"] td.cmp-better')).backgroundColor")
        assert colour == "rgb(236, 253, 243)"  # green tint
    else:
        assert page.page.locator("#settings-differ").count() == 1, "sweeps vs one thread count: warned"


def test_smoothing_redraws_the_time_series(page):
    if page.kind == "sweep":
        return
    read = "window.ssePerfCompare.timeCharts[0].data.datasets[0].data.map(p => p.y)"
    assert page.page.locator('#smoothing button[aria-pressed="true"]').get_attribute("data-window") == "5"
    smoothed = page.eval(read)
    page.page.locator('#smoothing button[data-window="1"]').click()
    raw = page.eval(read)
    assert raw != smoothed and len(raw) == len(smoothed)
    assert page.page.locator('#smoothing button[data-window="1"]').get_attribute("aria-pressed") == "true"


def test_narrow_window_does_not_scroll_sideways(browser, reports):
    narrow = Page(browser, reports["en"], width=420)
    try:
        assert narrow.errors == []
        assert narrow.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        narrow.close()


def test_the_table_and_every_chart_are_on_screen_sized_boxes(page):
    """What a reader sees: the comparison table with a row per metric and a column per run, and
    every chart canvas laid out at a readable size (none collapsed or hidden)."""
    assert page.errors == [] and page.ready
    table = page.page.locator("#compare-table")
    assert table.is_visible()
    assert table.locator("tr[data-metric]").count() >= 5
    assert table.locator('tr[data-metric="ttft_p95_ms"] td').count() == 3
    canvases = page.page.locator("canvas")
    assert canvases.count() >= 11
    for i in range(canvases.count()):
        canvas = canvases.nth(i)
        box = canvas.bounding_box()
        assert canvas.is_visible() and box["width"] > 100 and box["height"] > 60, (i, box)
