"""The HTML report in a real browser: Debian's headless Chromium driven by Playwright.

Checks what only a browser can: no JavaScript error, every chart drew, the injected XSS
payload stayed text, zooming one time chart zooms the others, the page needs no network; for
a sweep and an open-loop run: capacity curves, warm-up / cooldown / level bands that follow
the zoom, and a narrow layout that does not scroll sideways; for a run whose load generator
saturated: the self-check charts with their limit lines and the saturation band on every chart.
Every test finds its page freshly loaded (one page per report file, reloaded between tests).
Skipped only where /usr/bin/chromium is absent (.ci/run installs it); screenshots to look at
after a change: benchmarks/screenshots.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sse_perf_tool.report import write_report

from report_fixtures import XSS_PAYLOAD, make_open_loop_run_dir, make_run_dir, make_sweep_run_dir

from .browser_support import WatchedPage, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A demo-like run (20 threads, GPU + server + other series, datasets, errors) with the
    XSS payload in the query, model label, options, error message and dataset name."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("browser") / "run", seconds=30, threads=20, ramp_up_s=5,
                           with_gpu=True, with_datasets=True, xss=True, extra_columns=["client_lag_ms"])
    return {"en": write_report(run_dir, run_dir / "report.html", lang="en"),
            "zh": write_report(run_dir, run_dir / "report-zh.html", lang="zh")}


class Page(WatchedPage):
    """The run report: its script publishes window.ssePerfReport."""
    ready_global = "ssePerfReport"

    def x_ranges(self) -> list[list[float]]:
        return self.page.evaluate(
            "window.ssePerfReport.timeCharts.map(c => [c.scales.x.min, c.scales.x.max])")


@pytest.fixture(params=["en", "zh"])
def page(request, pages, reports):
    return pages.fresh(reports[request.param], Page)


TIME_CHARTS = 18

COLOURED_PIXELS = """
() => Array.from(document.querySelectorAll('canvas')).map(canvas => {
  const ctx = canvas.getContext('2d');
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0, coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    drawn++;
    const r = data[i], g = data[i + 1], b = data[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;  // a series, not grey axes/text
  }
  return {id: canvas.id, width: canvas.width, height: canvas.height, drawn, coloured};
})
"""


def test_report_loads_without_errors_or_network(page):
    assert page.errors == []
    assert page.ready, "the report script finished"
    assert page.dialogs == []
    external = [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))]
    assert external == [], "the report must not touch the network"


def test_every_chart_canvas_draws_its_data(page):
    canvases = page.page.evaluate(COLOURED_PIXELS)
    ids = [c["id"] for c in canvases]
    # 7 fixed + tokens-vs-utilisation + 6 GPU metrics + 3 server + 1 other time charts, 4 histograms,
    # throughput by concurrency (the threads ramp up)
    assert len(ids) == TIME_CHARTS + 4 + 1, ids
    assert "conc-chart" in ids
    assert page.page.evaluate("Object.keys(Chart.instances).length") == len(ids)
    for canvas in canvases:
        assert canvas["width"] > 100 and canvas["height"] > 100, canvas
        assert canvas["drawn"] > 500, f"{canvas['id']} drew nothing"
        assert canvas["coloured"] > 150, f"{canvas['id']} drew no coloured series: {canvas}"


def test_injected_script_did_not_run_and_stays_text(page):
    assert page.page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.page.evaluate("document.scripts.length") == 5
    cell = page.page.locator("#slowest-e2e td.query").first
    assert cell.inner_text().startswith(XSS_PAYLOAD[:40])
    assert XSS_PAYLOAD in page.page.locator(".subtitle").inner_text()
    assert page.page.locator("#options-list").inner_text().count(XSS_PAYLOAD) >= 2  # query + model_name


def test_drag_zoom_on_one_chart_zooms_all_and_reset_restores(page):
    full = page.x_ranges()
    assert len(full) == TIME_CHARTS and all(r == full[0] for r in full)
    overlay = page.page.evaluate(
        "window.ssePerfReport.timeCharts.findIndex(c => c.scales.y1 !== undefined)")
    assert overlay >= 0, "the tokens/s vs GPU utilisation chart is one of the synced time charts"
    first = page.page.locator("canvas.ts-chart").nth(1)  # requests/s bars
    first.scroll_into_view_if_needed()
    area = page.page.evaluate(
        "(() => { const c = window.ssePerfReport.timeCharts[1]; const a = c.chartArea;"
        " const r = c.canvas.getBoundingClientRect();"
        " return {left: r.left + a.left, right: r.left + a.right, top: r.top + a.top, bottom: r.top + a.bottom}; })()")
    y = (area["top"] + area["bottom"]) / 2
    x0 = area["left"] + 0.3 * (area["right"] - area["left"])
    x1 = area["left"] + 0.6 * (area["right"] - area["left"])
    page.page.mouse.move(x0, y)
    page.page.mouse.down()
    page.page.mouse.move((x0 + x1) / 2, y, steps=4)
    page.page.mouse.move(x1, y, steps=4)
    page.page.mouse.up()
    zoomed = page.x_ranges()
    lo, hi = zoomed[1]
    assert full[0][0] < lo < hi < full[0][1], "the dragged chart zoomed in"
    width = full[0][1] - full[0][0]
    assert abs(lo - (full[0][0] + 0.3 * width)) < 0.05 * width and abs(hi - (full[0][0] + 0.6 * width)) < 0.05 * width
    for index, rng in enumerate(zoomed):
        assert rng == pytest.approx([lo, hi]), f"time chart {index} follows the zoom"
    assert page.page.locator("#reset-zoom").is_enabled()
    assert page.page.locator("#zoom-range").inner_text() not in ("Whole run", "完整运行")
    assert page.errors == []

    page.page.locator("#reset-zoom").click()
    assert page.x_ranges() == full
    assert not page.page.locator("#reset-zoom").is_enabled()


def test_programmatic_zoom_and_pan_propagate(page):
    """The plugin's own API (as a pinch or shift-drag pan ends) drives the same sync."""
    full = page.x_ranges()
    page.page.evaluate("""(() => {
        const charts = window.ssePerfReport.timeCharts;
        const last = charts[charts.length - 1];
        last.zoomScale('x', {min: 5, max: 15}, 'none');
        last.options.plugins.zoom.zoom.onZoomComplete({chart: last});
    })()""")
    assert all(r == pytest.approx([5, 15]) for r in page.x_ranges())
    page.page.evaluate("""(() => {
        const c = window.ssePerfReport.timeCharts[0];
        c.pan({x: -100}, undefined, 'none');
        c.options.plugins.zoom.pan.onPanComplete({chart: c});
    })()""")
    panned = page.x_ranges()
    assert panned[0] != pytest.approx([5, 15]) and all(r == pytest.approx(panned[0]) for r in panned)
    page.page.dblclick("canvas.ts-chart >> nth=2")
    assert page.x_ranges() == full


def test_gpu_overlay_and_memory_reference_lines(page):
    """Tokens/s on the left axis, GPU utilisation on a right axis fixed to 0-100 %; memory
    totals are dashed lines kept out of the legend."""
    overlay = page.page.evaluate("""(() => {
        const c = window.ssePerfReport.timeCharts.find(c => c.scales.y1 !== undefined);
        return {axes: c.data.datasets.map(d => d.yAxisID), y1: [c.scales.y1.min, c.scales.y1.max],
                y: c.scales.y.max, points: c.data.datasets.map(d => d.data.filter(p => p.y !== null).length)};
    })()""")
    assert overlay["axes"] == ["y", "y1"] and overlay["y1"] == [0, 100] and overlay["y"] > 100
    assert all(n > 20 for n in overlay["points"])
    memory = page.page.evaluate("""(() => {
        const c = window.ssePerfReport.timeCharts.find(c => c.data.datasets.some(d => d.isRef));
        const legend = c.legend.legendItems.map(i => i.text);
        return {legend, dashed: c.data.datasets.filter(d => d.isRef).map(d => d.borderDash),
                max: c.scales.y.max};
    })()""")
    assert memory["legend"] == ["local:0", "local:1", "ssh://gpu-node-2:0"]
    assert memory["dashed"] == [[6, 4]] * 3 and memory["max"] >= 81559


def test_histograms_are_not_zoomable_and_report_counts(page):
    counts = page.page.evaluate("""Object.values(Chart.instances)
        .filter(c => c.canvas.classList.contains('hist-chart'))
        .map(c => c.data.datasets[0].data.reduce((a, b) => a + b, 0))""")
    assert len(counts) == 4 and all(c > 0 for c in counts)


SECTIONS = ["summary", "gpu", "timeseries", "distributions", "errors", "datasets", "slowest", "options", "glossary"]


def test_every_section_is_shown_with_its_heading(page):
    """What a reader scrolls through: the title, then each section with a visible, non-empty
    heading, taller than its heading (it holds its cards, charts or tables)."""
    assert page.errors == [] and page.ready
    assert page.page.locator("h1").first.is_visible() and page.page.locator("h1").first.inner_text().strip()
    for section in SECTIONS:
        box = page.page.locator(f"#{section}")
        heading = box.locator("h2").first
        assert box.is_visible() and heading.is_visible(), section
        assert heading.inner_text().strip(), f"{section} has an empty heading"
        assert box.bounding_box()["height"] > heading.bounding_box()["height"] + 20, f"{section} is empty"


def test_a_phone_sized_window_does_not_scroll_sideways(browser, reports):
    narrow = Page(browser, reports["en"], width=420)  # a phone: one chart per row, no overflow
    try:
        assert narrow.errors == [] and narrow.ready
        overflow = narrow.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page must not scroll sideways on a narrow screen"
    finally:
        narrow.close()


# ---------------------------------------------------------------- load models (issue 5)


@pytest.fixture(scope="module")
def load_reports(tmp_path_factory) -> dict[str, Path]:
    """A 4-level thread sweep (warm-up per level, cooldown between, SLOs, GPU series) and an
    open-loop run that stopped early."""
    base = tmp_path_factory.mktemp("load")
    sweep = make_sweep_run_dir(base / "sweep", with_gpu=True)
    open_loop = make_open_loop_run_dir(base / "open", stopped_early="error rate 85.0% over the last 50 requests > 20%")
    return {"sweep": write_report(sweep, sweep / "report.html"),
            "sweep-zh": write_report(sweep, sweep / "report-zh.html", lang="zh"),
            "open": write_report(open_loop, open_loop / "report.html")}


@pytest.fixture(params=["sweep", "sweep-zh", "open"])
def load_page(request, pages, load_reports):
    return pages.fresh(load_reports[request.param], Page)


@pytest.fixture
def sweep_page(pages, load_reports):
    return pages.fresh(load_reports["sweep"], Page)


def test_load_reports_have_no_errors_and_every_canvas_draws(load_page):
    assert load_page.errors == [] and load_page.ready and load_page.dialogs == []
    assert [u for u in load_page.requests if not u.startswith(("file:", "data:", "about:"))] == []
    canvases = load_page.page.evaluate(COLOURED_PIXELS)
    assert load_page.page.evaluate("Object.keys(Chart.instances).length") == len(canvases)
    for canvas in canvases:
        assert canvas["width"] > 100 and canvas["height"] > 100, canvas
        assert canvas["drawn"] > 500, f"{canvas['id']} drew nothing"
        assert canvas["coloured"] > 100, f"{canvas['id']} drew no coloured series: {canvas}"
    curves = [c["id"] for c in canvases if c["id"].startswith("cap-")]
    assert curves == (["cap-ttft", "cap-tpot", "cap-e2e"] if "sweep" in load_page.page.url else [])


CURVES = """() => window.ssePerfReport.curveCharts.map(c => ({
  id: c.canvas.id,
  points: c.data.datasets[0].data.map(d => ({x: d.x, y: d.y, level: d.p.short, best: d.p.best})),
  radius: c.getDatasetMeta(0).data.map(e => e.options.radius),
  xTitle: c.options.scales.x.title.text,
  yMax: c.scales.y.max}))"""


def test_capacity_curves_have_four_points_and_mark_the_best_level(sweep_page):
    curves = sweep_page.page.evaluate(CURVES)
    assert [c["id"] for c in curves] == ["cap-ttft", "cap-tpot", "cap-e2e"]
    data = sweep_page.page.evaluate("JSON.parse(document.getElementById('report-data').textContent).sweep")
    for curve, spec in zip(curves, data["charts"]):
        assert [p["level"] for p in curve["points"]] == ["1", "4", "16", "64"]
        assert [p["x"] for p in curve["points"]] == [p["tps"] for p in data["points"]]
        assert [p["y"] for p in curve["points"]] == spec["ys"]
        assert [p["best"] for p in curve["points"]] == [False, False, True, False]
        assert curve["radius"][2] > max(curve["radius"][:2] + curve["radius"][3:]), "the best point is bigger"
        assert curve["xTitle"] == "Output tokens/s"
        for limit in spec["limits"]:  # the SLO line is inside the plot
            assert curve["yMax"] > limit["value"]
    # the limit line is drawn: red dashed pixels at the limit's height
    red = sweep_page.page.evaluate("""(() => {
        const c = window.ssePerfReport.curveCharts[0];
        const y = Math.round(c.scales.y.getPixelForValue(800) * devicePixelRatio);
        const a = c.chartArea, ctx = c.canvas.getContext('2d');
        const r = devicePixelRatio;
        const row = ctx.getImageData(Math.round(a.left * r), y, Math.round((a.right - a.left) * r * 0.5), 1).data;
        let n = 0;
        for (let i = 0; i < row.length; i += 4) if (row[i] > 180 && row[i + 1] < 120 && row[i + 2] < 120) n++;
        return n;
    })()""")
    assert red > 20, "a red dashed SLO line at 800 ms"
    sweep_page.page.locator('#curve-x button[data-x="rps"]').click()
    curves = sweep_page.page.evaluate(CURVES)
    for curve in curves:
        assert [p["x"] for p in curve["points"]] == [p["rps"] for p in data["points"]]
        assert curve["xTitle"] == "Requests/s"
    assert sweep_page.page.locator('#curve-x button[data-x="rps"]').get_attribute("aria-pressed") == "true"
    assert sweep_page.page.locator('#curve-x button[data-x="tps"]').get_attribute("aria-pressed") == "false"
    assert sweep_page.errors == []


BAND_PIXELS = """(args) => {
  const c = window.ssePerfReport.timeCharts[args.chart];
  const a = c.chartArea, r = devicePixelRatio, ctx = c.canvas.getContext('2d');
  function share(x, colour) {  // share of a pixel column in the plot's middle rows that has `colour`
    const top = Math.round((a.top + 20) * r), height = Math.round((a.bottom - a.top - 40) * r);
    const data = ctx.getImageData(Math.round(x * r), top, 1, height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {  // the canvas is transparent: composite over the white card
      const over = k => (data[i + k] * data[i + 3] + 255 * (255 - data[i + 3])) / 255;
      if (Math.abs(over(0) - colour[0]) <= 6 && Math.abs(over(1) - colour[1]) <= 6
          && Math.abs(over(2) - colour[2]) <= 6) n++;
    }
    return n / (data.length / 4);
  }
  const warm = c.$bands.filter(b => b.kind === 'warmup');
  const first = warm[0];
  const grey = [224, 227, 232];  // rgba(100,116,139,0.2) over white
  return {bands: c.$bands, inside: share((first.x0 + first.x1) / 2, grey),
          outside: share(c.scales.x.getPixelForValue(first.to + 4), grey),
          pixelOfEnd: c.scales.x.getPixelForValue(first.to), area: [a.left, a.right]};
}"""


def test_warmup_band_is_drawn_on_every_time_chart_and_follows_zoom(sweep_page):
    page = sweep_page.page
    n = page.evaluate("window.ssePerfReport.timeCharts.length")
    bands = page.evaluate("window.ssePerfReport.bands")
    assert [(b["from"], b["to"]) for b in bands["warmup"]] == [(0, 3), (17, 20), (35, 38), (53, 56)]
    for index in range(n):
        drawn = page.evaluate(f"window.ssePerfReport.timeCharts[{index}].$bands")
        kinds = [b["kind"] for b in drawn]
        assert kinds.count("warmup") == 4 and kinds.count("cooldown") == 3 and kinds.count("level") == 2, index
    result = page.evaluate(BAND_PIXELS, {"chart": 0})  # active threads: a step line near the bottom
    assert result["inside"] > 0.6, "the warm-up seconds are shaded grey"
    assert result["outside"] < 0.05, "a measured second is not"
    first = [b for b in result["bands"] if b["kind"] == "warmup"][0]
    assert first["x0"] == pytest.approx(result["area"][0]) and first["x1"] == pytest.approx(result["pixelOfEnd"])
    before = first["x1"] - first["x0"]

    page.evaluate("""(() => {
        const c = window.ssePerfReport.timeCharts[0];
        c.zoomScale('x', {min: 1, max: 11}, 'none');
        c.options.plugins.zoom.zoom.onZoomComplete({chart: c});
    })()""")
    for index in range(n):
        zoomed = page.evaluate(BAND_PIXELS, {"chart": index})
        warm = [b for b in zoomed["bands"] if b["kind"] == "warmup"]
        assert len(warm) == 1, "only the first level's warm-up is in view"
        assert warm[0]["x0"] == pytest.approx(zoomed["area"][0])
        assert warm[0]["x1"] == pytest.approx(zoomed["pixelOfEnd"])
        assert warm[0]["x1"] - warm[0]["x0"] > 2.5 * before * 0.9, "the band widened with the zoom"
    zoomed = page.evaluate(BAND_PIXELS, {"chart": 0})
    assert zoomed["inside"] > 0.6 and zoomed["outside"] < 0.05
    page.locator("#reset-zoom").click()
    assert len([b for b in page.evaluate("window.ssePerfReport.timeCharts[0].$bands") if b["kind"] == "warmup"]) == 4
    # the test's own pixel reads make Chromium suggest willReadFrequently; nothing else may be logged
    assert [e for e in sweep_page.errors if "willReadFrequently" not in e] == []


def test_open_loop_report_shades_its_warmup_only(pages, load_reports):
    opened = pages.fresh(load_reports["open"], Page)
    drawn = opened.page.evaluate("window.ssePerfReport.timeCharts.map(c => c.$bands.map(b => b.kind))")
    assert drawn and all(kinds == ["warmup"] for kinds in drawn)
    assert opened.page.evaluate("window.ssePerfReport.curveCharts.length") == 0
    assert opened.page.locator("#stopped-early").is_visible()
    assert "error rate 85.0%" in opened.page.locator("#stopped-early").inner_text()


def test_open_loop_report_draws_offered_vs_achieved_and_throughput_by_concurrency(pages, load_reports):
    """Issue 16: the rate due each second (dashed), the requests sent and finished; and throughput
    by the requests in flight, outside a sweep."""
    opened = pages.fresh(load_reports["open"], Page)
    data = opened.page.evaluate("JSON.parse(document.getElementById('report-data').textContent)")
    summary = json.loads((load_reports["open"].parent / "summary.json").read_text(encoding="utf-8"))
    rate = summary["run"]["load"]["rate"]
    rates = data["ts"]["cols"]["@offered_per_s"]
    sent = [s for s, r in zip(data["ts"]["cols"]["requests_started"], rates) if r]
    assert set(rates[:len(sent)]) == {rate} and set(rates[len(sent):]) <= {0}
    charts = opened.page.evaluate("""window.ssePerfReport.timeCharts.map(c => ({
        title: c.canvas.getAttribute('aria-label'), labels: c.data.datasets.map(d => d.label),
        dashed: c.data.datasets.map(d => !!(d.borderDash && d.borderDash.length)),
        first: c.data.datasets[0].data.map(p => p.y)}))""")
    offered = next(c for c in charts if c["title"] == "Offered vs achieved rate")
    assert offered["labels"] == ["offered (due)", "sent", "finished"] and offered["dashed"] == [True, False, False]
    assert offered["first"] == rates
    caption = opened.page.locator("figcaption", has_text="Offered vs achieved rate").inner_text()
    assert f"offered {rate:g} req/s" in caption and f"{summary['requests']['not_sent']} due but never sent" in caption
    points = opened.page.evaluate("""(() => { const c = window.ssePerfReport.concurrencyChart;
        return c.data.datasets.map(d => d.data.map(p => [p.x, p.y])); })()""")
    assert len(points[0]) >= 2
    assert points[0] == [[p["c"], p["tps"]] for p in data["concurrency"]["points"]]
    assert points[1] == [[p["c"], p["rps"]] for p in data["concurrency"]["points"]]
    assert opened.page.locator("#concurrency canvas").is_visible()
    assert opened.errors == []


def test_a_fixed_thread_run_says_why_it_has_no_concurrency_chart_and_a_sweep_has_no_section(browser, pages,
                                                                                            load_reports, tmp_path):
    run_dir = make_run_dir(tmp_path / "flat", seconds=12, threads=4, ramp_up_s=0)
    opened = Page(browser, write_report(run_dir, run_dir / "report.html"))
    try:
        assert opened.errors == [] and opened.ready
        assert opened.page.evaluate("window.ssePerfReport.concurrencyChart") is None
        assert "ended with 4 requests in flight" in opened.page.locator("#conc-only").inner_text()
        assert opened.page.locator("a[href='#concurrency']").count() == 1
    finally:
        opened.close()
    swept = pages.fresh(load_reports["sweep"], Page)
    assert swept.page.locator("#concurrency").count() == 0 and swept.page.locator("a[href='#concurrency']").count() == 0


@pytest.mark.parametrize("name, width", [("sweep", 1400), ("sweep-zh", 1400), ("open", 1400), ("sweep", 420),
                                         ("open", 420)])
def test_load_reports_do_not_scroll_sideways_and_show_their_sweep(browser, pages, load_reports, name, width):
    """At a desktop width and on a phone the page never scrolls sideways; a sweep shows its
    section and its first group of time charts (the banded ones) on screen-sized boxes."""
    opened = pages.fresh(load_reports[name], Page) if width == 1400 else Page(browser, load_reports[name], width=width)
    try:
        overflow = opened.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width} px scrolls sideways"
        assert opened.errors == [] and opened.ready
        if name.startswith("sweep"):
            for selector in ("#sweep", "#timeseries .chart-grid >> nth=0"):
                box = opened.page.locator(selector)
                assert box.is_visible(), selector
                assert box.bounding_box()["height"] > 200, selector
    finally:
        if width != 1400:
            opened.close()


# ---------------------------------------------------------------- self-check of the load generator


@pytest.fixture(scope="module")
def selfcheck_reports(tmp_path_factory) -> dict[str, Path]:
    """A run whose load generator saturated from second 12 on (lag p99 and CPU above their limits)."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("selfcheck") / "run", seconds=30, threads=20, ramp_up_s=5,
                           client="saturated")
    return {"en": write_report(run_dir, run_dir / "report.html", lang="en"),
            "zh": write_report(run_dir, run_dir / "report-zh.html", lang="zh")}


@pytest.fixture(params=["en", "zh"])
def selfcheck_page(request, pages, selfcheck_reports):
    return pages.fresh(selfcheck_reports[request.param], Page)


SATURATION_PIXELS = """(args) => {
  const c = window.ssePerfReport.timeCharts[args.chart];
  const a = c.chartArea, r = devicePixelRatio, ctx = c.canvas.getContext('2d');
  function share(x) {  // share of a pixel column in the plot's middle rows that is the band's pale red
    const top = Math.round((a.top + 20) * r), height = Math.round((a.bottom - a.top - 40) * r);
    const data = ctx.getImageData(Math.round(x * r), top, 1, height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {  // the canvas is transparent: composite over the white card
      const over = k => (data[i + k] * data[i + 3] + 255 * (255 - data[i + 3])) / 255;
      if (Math.abs(over(0) - 251) <= 6 && Math.abs(over(1) - 233) <= 6 && Math.abs(over(2) - 233) <= 6) n++;
    }
    return n / (data.length / 4);
  }
  const band = c.$bands.filter(b => b.kind === 'saturated')[0];
  let inside = 0;  // the best of a few columns: a bar chart's bars cover the band in some
  for (let k = 1; k < 8; k++) { inside = Math.max(inside, share(band.x0 + (band.x1 - band.x0) * k / 8 + 0.5)); }
  return {band: band, inside: inside, before: share(c.scales.x.getPixelForValue(band.from - 3)),
          covered: c.config.type === 'bar' || !!c.data.datasets[0].fill,  // bars or an area hide much of it
          start: c.scales.x.getPixelForValue(band.from), area: [a.left, a.right]};
}"""


def test_selfcheck_report_loads_and_every_canvas_draws(selfcheck_page):
    page = selfcheck_page
    assert page.errors == [] and page.ready and page.dialogs == []
    assert [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))] == []
    canvases = page.page.evaluate(COLOURED_PIXELS)
    assert len(canvases) == 7 + 2 + 4 + 1, "fixed time charts, lag and CPU of the self-check, histograms, concurrency"
    for canvas in canvases:
        assert canvas["width"] > 100 and canvas["height"] > 100, canvas
        assert canvas["drawn"] > 500, f"{canvas['id']} drew nothing"
        assert canvas["coloured"] > 150, f"{canvas['id']} drew no coloured series: {canvas}"
    assert page.page.locator("#client-saturated").is_visible()
    assert page.page.locator("#client-card").is_visible()
    limits = page.page.evaluate("""window.ssePerfReport.timeCharts
        .map(c => c.data.datasets.filter(d => d.isRef).map(d => [d.borderDash, d.data[0].y]))
        .filter(refs => refs.length)""")
    assert limits == [[[[6, 4], 5]], [[[6, 4], 90]]], "dashed limits: 5 ms lag, 90 % CPU of one core"


def test_saturation_band_is_drawn_on_every_time_chart_and_follows_zoom(selfcheck_page):
    page = selfcheck_page.page
    n = page.evaluate("window.ssePerfReport.timeCharts.length")
    assert n == 9
    end = page.evaluate("window.ssePerfReport.range[1]")
    for index in range(n):
        result = page.evaluate(SATURATION_PIXELS, {"chart": index})
        assert (result["band"]["from"], result["band"]["to"]) == (12, end)
        assert result["band"]["x1"] == pytest.approx(result["area"][1]), "to the end of the run"
        assert result["band"]["x0"] == pytest.approx(result["start"])
        assert result["inside"] > (0.1 if result["covered"] else 0.5), f"chart {index}: the saturated seconds are shaded"
        assert result["before"] < 0.05, f"chart {index}: a second before the saturation is not"
    before = page.evaluate(SATURATION_PIXELS, {"chart": n - 1})["band"]
    page.evaluate("""(() => {
        const c = window.ssePerfReport.timeCharts[0];
        c.zoomScale('x', {min: 8, max: 16}, 'none');
        c.options.plugins.zoom.zoom.onZoomComplete({chart: c});
    })()""")
    for index in range(n):  # the self-check charts zoom with the others, and so does the band
        assert page.evaluate(f"[window.ssePerfReport.timeCharts[{index}].scales.x.min,"
                             f" window.ssePerfReport.timeCharts[{index}].scales.x.max]") == pytest.approx([8, 16])
        zoomed = page.evaluate(SATURATION_PIXELS, {"chart": index})
        assert zoomed["band"]["x0"] == pytest.approx(zoomed["start"])
        assert zoomed["inside"] > (0.1 if zoomed["covered"] else 0.5)
        assert zoomed["band"]["x0"] - zoomed["area"][0] > 0.4 * (zoomed["area"][1] - zoomed["area"][0])
    assert page.evaluate(SATURATION_PIXELS, {"chart": n - 1})["band"]["x0"] != pytest.approx(before["x0"])
    page.locator("#reset-zoom").click()
    assert page.evaluate(SATURATION_PIXELS, {"chart": 0})["band"]["from"] == 12
    # the test's own pixel reads make Chromium suggest willReadFrequently; nothing else may be logged
    assert [e for e in selfcheck_page.errors if "willReadFrequently" not in e] == []


def test_the_selfcheck_group_is_on_screen_and_a_phone_does_not_scroll_sideways(browser, pages, selfcheck_reports):
    """The banner, the facts card and the self-check group (its two charts, drawn) are visible;
    the Chinese page on a phone does not scroll sideways."""
    opened = pages.fresh(selfcheck_reports["en"], Page)
    assert opened.errors == [] and opened.ready
    for selector in ("#client-saturated", "#client-card"):
        assert opened.page.locator(selector).is_visible(), selector
    group = opened.page.locator("#timeseries .chart-grid").last
    assert group.is_visible() and group.bounding_box()["height"] > 200
    assert group.locator("canvas").count() == 2
    assert all(box["width"] > 100 and box["height"] > 100 for box in
               (group.locator("canvas").nth(i).bounding_box() for i in range(2)))
    narrow = Page(browser, selfcheck_reports["zh"], width=420)
    try:
        assert narrow.errors == [] and narrow.ready
        assert narrow.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    finally:
        narrow.close()


def test_a_busy_machine_gets_its_own_banner_not_the_saturation_one(browser, tmp_path):
    """Issue 13: lag while sse-perf idles is 'machine busy' (load, cores, our CPU), never 'saturated'."""
    run_dir = make_run_dir(tmp_path / "busy", seconds=30, threads=4, client="busy")
    opened = Page(browser, write_report(run_dir, run_dir / "report.html", lang="en"))
    try:
        assert opened.errors == [] and opened.ready
        banner = opened.page.locator("#machine-busy")
        assert banner.is_visible() and "from 12 s" in banner.inner_text() and "3.6 on 2 cores" in banner.inner_text()
        assert opened.page.locator("#client-saturated").count() == 0
    finally:
        opened.close()


def test_a_real_run_shows_empty_answers_finish_reasons_and_the_token_note(browser, tmp_path):
    """A run over loopback against a server with no usage and some empty answers: the report says how
    many answers were empty, the finish reasons, and (once) that tiktoken counted a non-OpenAI model."""
    from sse_perf_tool.cli import main
    from sse_perf_tool.mock_server import MockConfig, MockServer

    with MockServer(MockConfig(ttft_ms=2, itl_ms=1, tokens=6, usage=False, empty_rate=0.5, seed=5)) as server:
        code = main(["--base-url", server.base_url, "--api", "openai-chat", "--model", "qwen3-8b", "--requests", "12",
                     "--output-dir", str(tmp_path), "--quiet", "--no-history"])
    assert code == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    for lang in ("en", "zh"):
        opened = Page(browser, write_report(run_dir, run_dir / f"report-{lang}.html", lang=lang))
        try:
            assert opened.errors == [] and opened.ready
            assert opened.page.locator("#token-note").is_visible()
            assert opened.page.locator("#token-note").inner_text().count("tiktoken cl100k_base") == 1
            empty = opened.page.locator("#empty-answers").inner_text()
            assert str(summary["requests"]["empty"]) in empty and summary["requests"]["empty"] > 0
            assert f"stop {summary['requests']['total']}" in opened.page.locator("#finish-reasons").inner_text()
        finally:
            opened.close()


def test_an_slo_label_moves_off_a_sweep_point_that_sits_under_it(browser, tmp_path):
    """The limit's text sits at the right end just above its dashed line; a level whose p95 is
    just above the limit, at the right of the chart, was drawn under that text. Every text box
    keeps clear of every point marker and of the other texts."""
    probe = make_sweep_run_dir(tmp_path / "probe")
    last = json.loads((probe / "summary.json").read_text(encoding="utf-8"))["levels"][-1]
    p95 = last["ttft_ms"]["p95"]
    limit = round(p95 - 8.0, 1)  # the 64-thread point a pixel or two above the line
    slos = ((f"ttft_p95<{limit:g}ms", "ttft_p95", "<", limit, "ms"),)
    run = make_sweep_run_dir(tmp_path / "run", slos=slos)
    watched = Page(browser, write_report(run, run / "report.html"))
    try:
        boxes = watched.page.evaluate("""() => window.ssePerfReport.curveCharts.map(c => ({
            id: c.canvas.id, boxes: c.$labelBoxes, area: [c.chartArea.left, c.chartArea.top,
            c.chartArea.right, c.chartArea.bottom],
            limitY: c.$spec.limits.map(l => c.scales.y.getPixelForValue(l.value))}))""")
        ttft = next(b for b in boxes if b["id"] == "cap-ttft")
        assert len(ttft["boxes"]["limits"]) == 1 and len(ttft["boxes"]["markers"]) == 4

        def overlap(a, b):
            return not (a[0] >= b[2] or a[2] <= b[0] or a[1] >= b[3] or a[3] <= b[1])

        right_above = ttft["area"][2] - 1 - (ttft["boxes"]["limits"][0][2] - ttft["boxes"]["limits"][0][0])
        default = [right_above, ttft["limitY"][0] - 15, ttft["area"][2] - 1, ttft["limitY"][0] - 2]
        assert any(overlap(default, m) for m in ttft["boxes"]["markers"]), \
            "the fixture puts a point where the label used to be drawn"
        assert ttft["boxes"]["limits"][0] != default, "so the label moved"
        for chart in boxes:
            texts = chart["boxes"]["limits"] + chart["boxes"]["levels"]
            for box in chart["boxes"]["limits"]:
                assert not any(overlap(box, m) for m in chart["boxes"]["markers"]), (chart["id"], box)
            for i, box in enumerate(texts):
                assert not any(overlap(box, other) for other in texts[i + 1:]), (chart["id"], box)
        assert watched.errors == [] and watched.ready
    finally:
        watched.close()


def test_a_run_on_workers_lists_them_with_their_clocks_and_names_the_one_that_was_the_limit(browser, tmp_path):
    """A --ray run folder (two workers on two nodes, one an hour off this machine's clock, one the
    limit from second 12): the header says Ray workers and the clock bound; the Workers table has a
    row per worker with its node, versions, offset, bound and verdict, the limit's row marked; on a
    phone the table scrolls inside itself, not the page."""
    run_dir = make_run_dir(tmp_path / "ray", seconds=20, threads=4)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["run"].setdefault("load", {"model": "closed", "threads": 4}).update(backend="ray", workers=2, clock_bound_ms_max=0.42, nodes=[
        {"host": "10.0.0.7", "workers": 1}, {"host": "10.0.0.8", "workers": 1}], worker_list=[
        {"where": "node 10.0.0.7 pid 4652", "sse_perf": "0.1.0", "ray": "2.60.0", "python": "3.11.7",
         "clock_offset_ms": 3600000.125, "clock_bound_ms": 0.42, "clock_drift_ppm": 3.1},
        {"where": "node 10.0.0.8 pid 977", "sse_perf": "0.1.0", "ray": "2.60.0", "python": "3.11.7",
         "clock_offset_ms": -0.25, "clock_bound_ms": 0.31, "clock_drift_ppm": 0.0}])
    summary.setdefault("client", {})["workers"] = [
        {"worker": 1, "where": "node 10.0.0.7 pid 4652", "lag_ms_p99_max": 2.5, "cpu_pct_mean": 41.0,
         "saturated_from_s": None},
        {"worker": 2, "where": "node 10.0.0.8 pid 977", "lag_ms_p99_max": 38.0, "cpu_pct_mean": 97.0,
         "saturated_from_s": 12}]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    for lang, fact, limit in (("en", "2 on 2 node(s) · clocks within ±0.42 ms", "from second 12"),
                              ("zh", "2 个，分布在 2 个节点", "自第 12 秒起")):
        opened = Page(browser, write_report(run_dir, run_dir / f"report-{lang}.html", lang=lang))
        try:
            assert opened.errors == [] and opened.ready
            assert fact in opened.page.locator("header").inner_text()
            rows = opened.page.locator("#workers-table tbody tr")
            assert rows.count() == 2
            first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
            assert "node 10.0.0.7 pid 4652" in first and "Ray 2.60.0" in first and "3,600,000.12" in first
            assert "±0.42" in first and limit not in first
            assert "node 10.0.0.8 pid 977" in second and limit in second and "97" in second
            assert rows.nth(1).get_attribute("class") == "row-bad" and rows.nth(0).get_attribute("class") == ""
            assert opened.page.locator("#workers").is_visible()
        finally:
            opened.close()
    narrow = Page(browser, run_dir / "report-en.html", width=390)
    try:
        assert narrow.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    finally:
        narrow.close()
