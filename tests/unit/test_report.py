"""The HTML report's content: figures, sections, languages, safety, self-containment, rendered from
fabricated run folders (report_fixtures.py). In Chromium: tests/browser/test_report.py."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import json
import math
import re
from pathlib import Path

import pytest
from markupsafe import escape

from report_fixtures import RUN_STARTED_AT, XSS_PAYLOAD, make_open_loop_run_dir, make_run_dir, make_sweep_run_dir
from sse_perf_tool import metrics, report
from sse_perf_tool.report import LANGS, load_timeseries, render_report, write_report
from sse_perf_tool.report_i18n import STRINGS

DATA_RE = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def load_run(run_dir: Path) -> tuple[dict, list[dict], list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    timeseries = load_timeseries(run_dir / "timeseries.csv")
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    return summary, timeseries, records


def render_dir(run_dir: Path, lang: str = "en") -> str:
    summary, timeseries, records = load_run(run_dir)
    return render_report(summary, timeseries, iter(records), lang=lang)


def embedded_data(html: str) -> dict:
    match = DATA_RE.search(html)
    assert match, "the report embeds its chart data in #report-data"
    return json.loads(match.group(1))


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, f"table #{table_id} is in the report"
    return match.group(0)


def cells(row_html: str) -> list[str]:
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_html, re.S)]


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">.*?</section>', html, re.S)
    assert match, f"section #{section_id} is in the report"
    return match.group(0)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("demo") / "run", seconds=30, threads=8, ramp_up_s=3,
                        with_gpu=True, with_datasets=True, extra_columns=["client_lag_ms"])


@pytest.fixture(scope="module")
def demo_html(demo_dir) -> str:
    return render_dir(demo_dir)


@pytest.fixture(scope="module")
def xss_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("xss") / "run", seconds=20, threads=4, xss=True,
                        with_datasets=True, extra_columns=["server[</script><b>bad]"])


# ---------------------------------------------------------------- figures


def test_summary_cards_show_the_summary_figures_formatted(demo_dir, demo_html):
    summary, _, _ = load_run(demo_dir)
    cards = section(demo_html, "summary")
    req, thr = summary["requests"], summary["throughput"]
    assert f"{req['total']:,}" in cards
    assert f"{req['ok']:,} ok · {req['failed']:,} failed" in cards
    assert f"{req['success_rate_pct']:.1f} %" in cards
    assert f"{thr['requests_per_s']:,.2f}" in cards
    tps = thr["output_tokens_per_s"]
    assert (f"{tps:,.0f}" if tps >= 100 else f"{tps:,.1f}") in cards
    assert f"{thr['output_tokens_total']:,}" in cards
    for key, pct in (("ttft_ms", "p50"), ("ttft_ms", "p95"), ("tpot_ms", "p50"), ("tpot_ms", "p95"),
                     ("e2e_ms", "p95"), ("e2e_ms", "p50")):
        assert f"{summary[key][pct]:,.1f} ms" in cards, f"{key} {pct} card"
    assert f">{req['failed']:,}<" in cards.replace(" ", "")


def test_header_shows_run_facts_and_every_option(demo_dir, demo_html):
    summary, _, _ = load_run(demo_dir)
    run = summary["run"]
    head = demo_html[: demo_html.index("<nav")]
    for text in (run["base_url"], run["api"], run["model_name"], run["tool_version"],
                 report.fmt_time(run["started_at"]), report.fmt_time(run["ended_at"]),
                 f"{run['duration_s']:,.1f} s", f"{run['ramp_up_s']:,.1f} s"):
        assert htmllib.escape(str(text), quote=False) in head, text
    assert f"<dt>Threads</dt><dd>{run['threads']}</dd>" in head
    assert f"<dt>Model</dt><dd>{run['config']['model']}</dd>" in head
    options = section(demo_html, "options")
    for name, value in run["config"].items():
        assert f"<dt>{htmllib.escape(name)}</dt>" in options
        assert f"<dd>{htmllib.escape(report.fmt_option(value))}</dd>" in options, name
    assert 'id="interrupted-badge"' not in demo_html


def test_interrupted_run_gets_a_badge(tmp_path):
    html = render_dir(make_run_dir(tmp_path / "run", seconds=5, threads=2, interrupted=True))
    assert 'id="interrupted-badge"' in html
    assert STRINGS["en"]["interrupted"] in html


def test_percentile_table_has_every_metric_and_summary_values(demo_dir, demo_html):
    summary, _, _ = load_run(demo_dir)
    body = table(demo_html, "percentile-table")
    for key, label in (("ttfb_ms", "TTFB"), ("ttft_ms", "TTFT"), ("ttfo_ms", "TTFO"), ("tpot_ms", "TPOT"),
                       ("itl_ms", "ITL"), ("e2e_ms", "E2E")):
        row = re.search(rf'<tr data-metric="{key}">(.*?)</tr>', body, re.S).group(1)
        dist = summary[key]
        expected = [label, f"{dist['count']:,}"] + [f"{dist[k]:,.1f}" for k in
                                                    ("mean", "min", "p50", "p90", "p95", "p99", "max")]
        assert cells(row) == expected


def test_null_distribution_is_shown_as_dash_never_zero(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    summary["tpot_ms"] = {"count": 0, "mean": None, "min": None, "p50": None, "p90": None, "p95": None,
                          "p99": None, "max": None}
    html = render_report(summary, timeseries, records)
    row = re.search(r'<tr data-metric="tpot_ms">(.*?)</tr>', table(html, "percentile-table"), re.S).group(1)
    assert cells(row) == ["TPOT", "0"] + ["—"] * 7
    cards = section(html, "summary")
    tpot_card = re.search(r"TPOT p50</div>\s*<div class=\"card-value\">(.*?)</div>\s*<div class=\"card-sub\">(.*?)</div>",
                          cards, re.S)
    assert tpot_card.group(1) == "—" and tpot_card.group(2) == "p95 —"


def test_timeseries_gaps_stay_null_in_chart_data(demo_dir, demo_html):
    data = embedded_data(demo_html)
    _, timeseries, _ = load_run(demo_dir)
    assert data["ts"]["x"] == [row["second"] for row in timeseries]
    column = "gpu[ssh://gpu-node-2:0].util_pct"
    expected = [row[column] for row in timeseries]
    assert None in expected, "the fixture has a missed GPU sample"
    assert data["ts"]["cols"][column] == expected
    ttft = data["ts"]["cols"]["ttft_p50_ms"]
    assert [v is None for v in ttft] == [row["ttft_p50_ms"] is None for row in timeseries]


def charts_by_columns(html: str) -> dict[tuple, dict]:
    return {tuple(s["col"] for s in chart["series"]): chart for chart in embedded_data(html)["ts"]["charts"]}


def chart_titles(html: str) -> list[str]:
    return [" ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", c)).split())
            for c in re.findall(r"<figcaption>(.*?)</figcaption>", section(html, "timeseries"), re.S)]


def test_extra_columns_are_charted_and_grouped_by_metric(demo_dir, demo_html):
    data = embedded_data(demo_html)
    by_columns = charts_by_columns(demo_html)
    devices = ("local:0", "local:1", "ssh://gpu-node-2:0")
    for metric in ("util_pct", "temp_c", "power_w", "sm_clock_mhz"):
        cols = tuple(f"gpu[{d}].{metric}" for d in devices)
        assert cols in by_columns, f"one chart for {metric} with one line per GPU"
        assert [s["label"] for s in by_columns[cols]["series"]] == list(devices)
    # the SSH GPU has no energy counter: its empty series is left out, the local ones drawn
    assert ("gpu[local:0].energy_j", "gpu[local:1].energy_j") in by_columns
    assert "gpu[ssh://gpu-node-2:0].energy_j" not in data["ts"]["cols"]
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc"):
        assert (f"server[{name}]",) in by_columns
    assert ("client_lag_ms",) in by_columns
    groups = re.findall(r'<h3 class="group-title">(.*?)</h3>', demo_html)
    assert groups == ["Load and throughput", "Latency (requests finished in each second)", "GPU",
                      "Server metrics", "Other series"]
    other = demo_html[demo_html.index(">Other series<"):]
    assert "client_lag_ms" in other[: other.index("</div>\n")] or "client_lag_ms" in other
    titles = chart_titles(demo_html)
    for title in ("Output tokens/s vs GPU utilisation · mean over the GPUs", "GPU utilisation (%) · one line per GPU",
                  "GPU memory used (MiB) · one line per GPU · dashed: memory total",
                  "GPU temperature (°C) · one line per GPU", "GPU power (W) · one line per GPU",
                  "GPU SM clock (MHz) · one line per GPU", "GPU energy (J, cumulative) · one line per GPU"):
        assert title in titles, title
    canvases = re.findall(r'<canvas id="(ts-\d+)"', demo_html)
    assert sorted(canvases) == sorted(chart["id"] for chart in data["ts"]["charts"])
    assert len(canvases) == 7 + 7 + 3 + 1  # fixed, overlay + 6 GPU metrics, server, other


def test_gpu_units_follow_the_metric(demo_html):
    units = {chart["series"][0]["col"].rsplit(".", 1)[-1]: chart["unit"]
             for chart in embedded_data(demo_html)["ts"]["charts"] if chart["series"][0]["col"].startswith("gpu[")}
    assert units == {"util_pct": "%", "mem_used_mib": "MiB", "temp_c": "°C", "power_w": "W",
                     "sm_clock_mhz": "MHz", "energy_j": "J"}


def test_memory_total_is_a_dashed_reference_never_its_own_chart(demo_dir, demo_html):
    charts = embedded_data(demo_html)["ts"]["charts"]
    with_total = [c for c in charts if any(s["col"].endswith(".mem_total_mib") for s in c["series"])]
    assert len(with_total) == 1, "memory total appears only inside the memory-used chart"
    memory = with_total[0]
    assert memory["series"][0]["col"] == "gpu[local:0].mem_used_mib"
    refs = [s for s in memory["series"] if s.get("ref")]
    assert [s["col"] for s in refs] == [f"gpu[{d}].mem_total_mib" for d in ("local:0", "local:1", "ssh://gpu-node-2:0")]
    assert all(s.get("dash") for s in refs)
    assert not any("mem_total" in title for title in chart_titles(demo_html))

    # a nearly empty GPU (1 GiB of 80): a dashed line at 80 GiB would squash the used line
    # against the axis, so the total is named in the subtitle instead
    summary, timeseries, records = load_run(demo_dir)
    for row in timeseries:
        for key in row:
            if key.endswith(".mem_used_mib") and row[key] is not None:
                row[key] = 1024.0
    html = render_report(summary, timeseries, records)
    memory = [c for c in embedded_data(html)["ts"]["charts"] if c["series"][0]["col"].endswith(".mem_used_mib")]
    assert len(memory) == 1 and not any(s.get("ref") for s in memory[0]["series"])
    assert "GPU memory used (MiB) · one line per GPU · total 81,559 MiB" in chart_titles(html)
    assert not any(col.endswith(".mem_total_mib") for col in embedded_data(html)["ts"]["cols"])


def test_series_without_a_single_value_are_not_charted(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    for row in timeseries:
        for key in list(row):
            if key.endswith(".energy_j") or key == "gpu[local:1].power_w":
                row[key] = None
        row["server[sglang:num_queue_reqs]"] = None
        row["never_measured"] = None
    html = render_report(summary, timeseries, records)
    data = embedded_data(html)
    cols = data["ts"]["cols"]
    assert not [c for c in cols if c.endswith(".energy_j")], "no energy chart when no GPU reports energy"
    assert "gpu[local:1].power_w" not in cols and "gpu[local:0].power_w" in cols
    assert "server[sglang:num_queue_reqs]" not in cols and "never_measured" not in cols
    titles = chart_titles(html)
    assert not any("energy" in title or "never_measured" in title for title in titles)
    assert titles.count("Waiting requests · vllm:num_requests_waiting") == 1  # only the measured one
    canvases = re.findall(r'<canvas id="(ts-\d+)"', html)
    assert sorted(canvases) == sorted(chart["id"] for chart in data["ts"]["charts"])
    for chart in data["ts"]["charts"]:  # every chart drawn has at least one value
        assert any(v is not None for s in chart["series"] for v in cols[s["col"]]), chart["id"]


def test_fixed_charts_stay_even_without_values(tmp_path):
    """The load and latency charts are the report's frame: a run in which every request
    failed still shows its (empty) latency charts rather than moving everything around."""
    summary, timeseries, records = load_run(make_run_dir(tmp_path / "run", seconds=6, threads=2))
    for row in timeseries:
        for key in ("ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "e2e_p50_ms", "e2e_p95_ms"):
            row[key] = None
    assert len(embedded_data(render_report(summary, timeseries, records))["ts"]["charts"]) == 7


def test_tokens_vs_gpu_utilisation_overlay(demo_dir, demo_html):
    data = embedded_data(demo_html)
    overlay = [c for c in data["ts"]["charts"] if c.get("y1")]
    assert len(overlay) == 1
    chart = overlay[0]
    assert chart["y1"] == {"max": 100, "unit": "%"}
    left, right = chart["series"]
    assert left["col"] == "output_tokens" and left.get("axis") is None
    assert right["axis"] == "y1" and right["unit"] == "%" and right["label"] == "mean GPU utilisation %"
    _, timeseries, _ = load_run(demo_dir)
    utils = [c for c in timeseries[0] if c.endswith(".util_pct")]
    assert len(utils) == 3
    for row, value in zip(timeseries, data["ts"]["cols"][right["col"]]):
        present = [row[c] for c in utils if row[c] is not None]
        assert value == pytest.approx(sum(present) / len(present), abs=0.01)  # a missed sample: mean of the rest
    assert data["ts"]["cols"]["output_tokens"] == [row["output_tokens"] for row in timeseries]
    # a time chart like any other (same x, same zoom), first in the GPU group
    gpu_group = demo_html[demo_html.index('<h3 class="group-title">GPU</h3>'):]
    assert re.search(r'<canvas id="(ts-\d+)"', gpu_group).group(1) == chart["id"]
    assert chart_titles(render_dir(demo_dir, lang="zh"))[7] == "每秒输出 token 与 GPU 利用率 · 各 GPU 的平均值"


def test_no_overlay_without_gpu_utilisation(demo_dir, tmp_path):
    html = render_dir(make_run_dir(tmp_path / "run", seconds=8, threads=2, extra_columns=["server[x]"]))
    assert not [c for c in embedded_data(html)["ts"]["charts"] if c.get("y1")]
    assert "Output tokens/s vs GPU utilisation" not in html
    summary, timeseries, records = load_run(demo_dir)
    for row in timeseries:  # GPU columns without any utilisation value: no overlay either
        for key in row:
            if key.endswith(".util_pct"):
                row[key] = None
    html = render_report(summary, timeseries, records)
    assert not [c for c in embedded_data(html)["ts"]["charts"] if c.get("y1")]
    assert "GPU temperature (°C)" in html


def test_server_metrics_get_readable_escaped_titles(demo_dir, xss_dir):
    summary, timeseries, records = load_run(demo_dir)
    for row in timeseries:  # a second --server-metrics URL: the same metric, host appended
        row["server[vllm:num_requests_running@10.0.0.2:8000]"] = 3.0
        row["server[my_app:queue_depth]"] = 1.0
    html = render_report(summary, timeseries, records)
    server = html[html.index('<h3 class="group-title">Server metrics</h3>'):html.index(">Other series<")]
    titles = chart_titles(html)
    assert "Running requests · vllm:num_requests_running" in titles
    assert "Waiting requests · vllm:num_requests_waiting" in titles
    assert "KV-cache usage (0–1) · vllm:gpu_cache_usage_perc" in titles
    assert "my_app:queue_depth" in titles and "my_app:queue_depth" in server
    running = charts_by_columns(html)[("server[vllm:num_requests_running]",
                                       "server[vllm:num_requests_running@10.0.0.2:8000]")]
    assert running["legend"] is True
    assert [s["label"] for s in running["series"]] == ["vllm:num_requests_running",
                                                       "vllm:num_requests_running@10.0.0.2:8000"]
    assert charts_by_columns(html)[("server[vllm:gpu_cache_usage_perc]",)]["ymax"] == 1
    zh = chart_titles(render_report(summary, timeseries, records, lang="zh"))
    assert "运行中的请求 · vllm:num_requests_running" in zh and "排队中的请求 · vllm:num_requests_waiting" in zh
    xss = render_dir(xss_dir)
    assert "<figcaption>&lt;/script&gt;&lt;b&gt;bad</figcaption>" in section(xss, "timeseries")


def test_gpu_summary_table_shows_the_summary_figures(demo_dir, demo_html):
    summary, _, _ = load_run(demo_dir)
    body = table(demo_html, "gpu-table")
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]
    assert len(rows) == len(summary["gpu"]) == 3
    for row, (device, gpu) in zip(rows, summary["gpu"].items()):
        pct = 100.0 * gpu["mem_used_mib_max"] / gpu["mem_total_mib"]
        energy = "—" if gpu["energy_j"] is None else f"{round(gpu['energy_j']):,}"
        assert cells(row) == [
            device, f"{gpu['util_pct_mean']:,.1f}", f"{gpu['util_pct_max']:,.1f}",
            f"{round(gpu['mem_used_mib_max']):,} / {gpu['mem_total_mib']:,} ({pct:,.1f} %)",
            f"{gpu['power_w_mean']:,.1f}", f"{gpu['temp_c_max']:,.1f}", energy, f"{gpu['samples']:,}"]
    assert '<a href="#gpu">GPU</a>' in demo_html
    # the SSH GPU has no energy: no tokens per joule, and the page says why
    assert summary["throughput"]["output_tokens_per_joule"] is None
    assert 'id="tokens-per-joule"' not in demo_html
    assert "Output tokens per joule: not known" in section(demo_html, "gpu")
    assert STRINGS["en"]["g_gpu"] in section(demo_html, "glossary")
    zh = render_dir(demo_dir, lang="zh")
    assert "GPU 概览" in section(zh, "gpu") and "峰值显存 / 总量（MiB）" in table(zh, "gpu-table")


def test_tokens_per_joule_card_when_energy_is_known(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    del summary["gpu"]["ssh://gpu-node-2:0"]
    energy = sum(gpu["energy_j"] for gpu in summary["gpu"].values())
    summary["throughput"]["output_tokens_per_joule"] = summary["throughput"]["output_tokens_total"] / energy
    html = render_report(summary, timeseries, records)
    card = re.search(r'<div class="card card-good" id="tokens-per-joule">(.*?)</div></div>', html, re.S).group(1)
    assert "Output tokens per joule" in card
    assert f"{summary['throughput']['output_tokens_per_joule']:,.2f}" in card
    assert f"{summary['throughput']['output_tokens_total']:,} tokens / {round(energy):,} J of all GPUs" in card
    assert "not known" not in section(html, "gpu")
    zh = render_report(summary, timeseries, records, lang="zh")
    assert "每焦耳输出 token" in section(zh, "gpu")
    for bad in ("x", float("nan"), True):
        summary["throughput"]["output_tokens_per_joule"] = bad
        assert 'id="tokens-per-joule"' not in render_report(summary, timeseries, records)


def test_no_gpu_section_without_a_gpu_summary(demo_dir, tmp_path):
    html = render_dir(make_run_dir(tmp_path / "run", seconds=8, threads=2))
    assert 'id="gpu-table"' not in html and '<section id="gpu">' not in html and 'href="#gpu"' not in html
    assert "GPU utilisation" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert STRINGS["en"]["g_gpu"] not in html
    summary, timeseries, records = load_run(demo_dir)
    for broken in ({}, "n/a", None):
        summary["gpu"] = broken
        assert '<section id="gpu">' not in render_report(summary, timeseries, records)
    summary["gpu"] = {"local:0": {"util_pct_mean": "busy", "mem_used_mib_max": 10, "mem_total_mib": 0}}
    row = re.findall(r"<tr>(.*?)</tr>", table(render_report(summary, timeseries, records), "gpu-table"), re.S)[1]
    assert cells(row) == ["local:0", "—", "—", "10 / 0", "—", "—", "—", "—"]


def test_unknown_gpu_metric_gets_its_own_grouped_chart(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    for i, row in enumerate(timeseries):
        row["gpu[local:0].fan_speed_pct"] = 30.0 + i
        row["gpu[local:1].fan_speed_pct"] = 35.0 + i
    html = render_report(summary, timeseries, records)
    charts = embedded_data(html)["ts"]["charts"]
    fan = [c for c in charts if c["series"][0]["col"].endswith(".fan_speed_pct")]
    assert len(fan) == 1 and len(fan[0]["series"]) == 2 and fan[0]["unit"] == "%"
    assert "GPU fan_speed_pct" in html


def test_without_extra_columns_there_are_no_extra_groups(tmp_path):
    html = render_dir(make_run_dir(tmp_path / "run", seconds=10, threads=2))
    groups = re.findall(r'<h3 class="group-title">(.*?)</h3>', html)
    assert groups == ["Load and throughput", "Latency (requests finished in each second)"]


# ---------------------------------------------------------------- records-derived sections


def test_errors_by_kind_with_first_last_second_and_examples(demo_dir, demo_html):
    summary, _, records = load_run(demo_dir)
    body = table(demo_html, "error-table")
    rows = re.findall(r"<tr><td><span class=\"kind\">(.*?)</span>.*?</tr>", body, re.S)
    assert sorted(rows) == sorted(summary["errors"])
    for kind, count in summary["errors"].items():
        failed = [r for r in records if not r["ok"] and r["error_kind"] == kind]
        seconds = [math.floor(r["started_at"] + r["total_ms"] / 1000 - summary["run"]["started_at"]) for r in failed]
        row = re.search(rf'<span class="kind">{kind}</span>.*?</tr>', body, re.S).group(0)
        values = cells(row)
        assert values[:3] == [f"{count:,}", f"{min(seconds):,}", f"{max(seconds):,}"], kind
        examples = re.findall(r'<li class="mono">(.*?)</li>', row)
        distinct = list(dict.fromkeys(r["error"] for r in failed))
        assert [htmllib.unescape(e) for e in examples] == distinct[:3]


def test_no_errors_section_says_so(tmp_path):
    html = render_dir(make_run_dir(tmp_path / "run", seconds=10, threads=2, errors=False))
    assert 'id="error-table"' not in html
    assert STRINGS["en"]["no_errors"] in section(html, "errors")


def test_dataset_table_only_when_records_have_datasets(demo_dir, demo_html, tmp_path):
    _, _, records = load_run(demo_dir)
    body = table(demo_html, "dataset-table")
    for name in sorted({r["dataset"] for r in records}):
        mine = [r for r in records if r["dataset"] == name]
        row = re.search(rf"<tr><th scope=\"row\">{re.escape(name)}</th>.*?</tr>", body, re.S).group(0)
        ok = sum(r["ok"] for r in mine)
        assert cells(row)[:5] == [name, f"{len(mine):,}", f"{ok:,}", f"{len(mine) - ok:,}",
                                  f"{100 * ok / len(mine):,.1f}"]
    plain = render_dir(make_run_dir(tmp_path / "run", seconds=10, threads=2))
    assert 'id="datasets"' not in plain and 'href="#datasets"' not in plain


def test_slowest_tables_list_the_ten_highest_successful(demo_dir, demo_html):
    summary, _, records = load_run(demo_dir)
    ok = [r for r in records if r["ok"]]
    for table_id, field in (("slowest-e2e", "e2e_ms"), ("slowest-ttft", "ttft_ms")):
        body = table(demo_html, table_id)
        ids = [int(i) for i in re.findall(r"<tr><td>#(\d+)</td>", body)]
        expected = [r["request_id"] for r in sorted(ok, key=lambda r: -r[field])[:10]]
        assert ids == expected, table_id
        top = max(ok, key=lambda r: r[field])
        assert f"{top[field]:,.1f}" in body
        start = top["started_at"] - summary["run"]["started_at"]
        assert f"<td>{start:,.1f}</td>" in body


def test_long_queries_are_shortened_in_the_slowest_tables(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    slowest = max((r for r in records if r["ok"]), key=lambda r: r["e2e_ms"])
    slowest["query"] = "why " * 200
    html = render_report(summary, timeseries, records)
    row = re.search(rf'<tr><td>#{slowest["request_id"]}</td>.*?</tr>', table(html, "slowest-e2e"), re.S).group(0)
    shown = re.search(r'<td class="l query" title="([^"]*)">(.*?)</td>', row)
    assert len(shown.group(2)) <= report.QUERY_CELL_CHARS and shown.group(2).endswith("…")
    assert len(shown.group(1)) <= report.QUERY_TITLE_CHARS


def test_histograms_are_prebinned_and_count_every_value(demo_dir, demo_html):
    summary, _, records = load_run(demo_dir)
    hist = {h["id"]: h for h in embedded_data(demo_html)["hist"]}
    assert set(hist) == {"hist-ttft", "hist-tpot", "hist-e2e", "hist-itl"}
    for key in ("ttft", "tpot", "e2e", "itl"):
        h = hist[f"hist-{key}"]
        assert sum(h["counts"]) + h["overflow"] == summary[f"{key}_ms"]["count"], key
        assert len(h["counts"]) <= 2 * report.HIST_TARGET_BINS
        assert h["lo"] <= summary[f"{key}_ms"]["min"] < h["lo"] + h["width"]
    # no raw ITL values travel to the browser
    assert len(json.dumps(hist["hist-itl"])) < 2000


@pytest.mark.parametrize("key", ["ttft", "tpot", "e2e", "itl"])
def test_histograms_are_the_same_streamed_or_collected(demo_dir, key):
    """With the summary's min/p99/max the values are binned while streaming (the report's memory
    does not grow with the run); without, collected first. Both give the same bins."""
    summary, timeseries, records = load_run(demo_dir)
    streamed = embedded_data(render_report(summary, timeseries, records))["hist"]
    del summary[f"{key}_ms"]
    collected = embedded_data(render_report(summary, timeseries, records))["hist"]
    a = next(h for h in streamed if h["id"] == f"hist-{key}")
    b = next(h for h in collected if h["id"] == f"hist-{key}")
    assert sum(a["counts"]) + a["overflow"] == sum(b["counts"]) + b["overflow"]
    assert (a["lo"], a["width"], len(a["counts"])) == (b["lo"], b["width"], len(b["counts"]))
    assert a["counts"] == b["counts"] and a["overflow"] == b["overflow"]


def test_histogram_clips_a_long_tail_into_an_overflow_bin():
    from array import array

    values = array("d", [10.0 + (i % 50) for i in range(1000)] + [5000.0] * 5)
    h = report.histogram(values)
    assert h["overflow"] == 5
    assert sum(h["counts"]) == 1000
    assert h["lo"] <= 10.0 and h["lo"] + h["width"] * len(h["counts"]) < 5000.0
    same = report.histogram(array("d", [7.0] * 10))
    assert sum(same["counts"]) == 10 and same["overflow"] == 0
    assert report.histogram(array("d")) is None


def test_records_are_consumed_as_a_single_pass_stream(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    consumed = []

    def once():
        for record in records:
            consumed.append(1)
            yield record

    html = render_report(summary, timeseries, once())
    assert len(consumed) == len(records)
    assert 'id="slowest-e2e"' in html


def test_unknown_summary_sections_are_ignored(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    summary.update(future={"x": [1, 2]}, issue99={"cpu_pct_mean": 12.0})
    html = render_report(summary, timeseries, records)
    assert "future" not in html and "issue99" not in html and "cpu_pct" not in html
    assert 'id="percentile-table"' in html


def test_partial_load_sections_render_with_dashes(demo_dir):
    """Issue-5 sections with most of their fields missing or malformed still render."""
    summary, timeseries, records = load_run(demo_dir)
    summary.update(slo=[{"expr": "ttft_p95<500", "met": True}, "junk", {"metric": "success", "limit": "x"}],
                   levels=[{"level": {"threads": 4}}, {"level": "?"}, 7], sweep="n/a",
                   goodput={"requests_per_s": 1.0, "pct": 99.0})
    summary["run"]["load"] = {"model": "open", "rate": "fast", "sweep": {"values": "1,2"}}
    html = render_report(summary, timeseries, records)
    rows = re.findall(r"<tr class=\"slo-(?:met|missed)\">(.*?)</tr>", table(html, "slo-table"), re.S)
    assert [cells(row) for row in rows] == [["ttft_p95<500", "—", "—", "MET"], ["success", "—", "—", "—"]]
    assert "1 of 2 SLOs missed" in html
    levels = re.findall(r"<tr data-level=\"[^\"]*\">(.*?)</tr>", table(html, "sweep-table"), re.S)
    assert [cells(row)[0] for row in levels] == ["4 threads", "—"]
    assert 'id="goodput-card"' in html and "99.0 % of requests" in html


def test_empty_run_renders_with_placeholders():
    summary = {"run": {"started_at": RUN_STARTED_AT, "ended_at": RUN_STARTED_AT, "duration_s": 0, "api": "dify-chat",
                       "base_url": "http://x/v1", "threads": 1, "ramp_up_s": 0, "model_name": None,
                       "interrupted": True, "config": {}, "tool_version": "0.1.0"},
               "requests": {"total": 0, "ok": 0, "failed": 0, "success_rate_pct": None}, "errors": {},
               "throughput": {"requests_per_s": None, "output_tokens_total": 0, "output_tokens_per_s": None}}
    html = render_report(summary, [], [])
    assert STRINGS["en"]["no_timeseries"] in html
    assert html.count(STRINGS["en"]["hist_empty"]) == len(metrics.select(histogram=True)) == 5
    assert "<canvas" not in html
    assert cells(re.search(r'<tr data-metric="e2e_ms">(.*?)</tr>', html, re.S).group(1)) == ["E2E", "—"] + ["—"] * 7


# ---------------------------------------------------------------- languages


def test_every_language_has_every_string():
    assert set(LANGS) == set(STRINGS) == {"en", "zh"}
    assert set(STRINGS["en"]) == set(STRINGS["zh"])
    for key in STRINGS["en"]:
        assert re.findall(r"{(\w+)}", STRINGS["en"][key]) == re.findall(r"{(\w+)}", STRINGS["zh"][key]), key


def test_chinese_report_translates_visible_strings(demo_dir):
    html = render_dir(demo_dir, lang="zh")
    assert '<html lang="zh-CN">' in html
    for text in ("sse-perf 压测报告", "时延分布", "最慢的请求", "指标说明", "按数据集", "重置缩放", "负载与吞吐",
                 "首 token 时延 TTFT（毫秒）", "GPU 利用率（%）", "GPU 显存占用（MiB）", "GPU 温度（°C）",
                 "GPU 功耗（W）", "GPU SM 时钟频率（MHz）", "GPU 能耗（J，累计）", "每秒输出 token 与 GPU 利用率",
                 "GPU 概览", "虚线：显存总量"):
        assert text in html, text
    visible = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    for english in ("Latency distributions", "Slowest requests", "What the numbers mean", "Reset zoom",
                    "Per dataset", "Load and throughput", "Every request succeeded", "Summary"):
        assert english not in visible, english
    data = embedded_data(html)
    assert data["locale"] == "zh-CN" and data["i18n"]["second_n"] == "第 {n} 秒"


def test_unknown_language_is_rejected(demo_dir, tmp_path):
    with pytest.raises(ValueError, match="fr"):
        render_report({}, [], [], lang="fr")
    with pytest.raises(ValueError):
        write_report(demo_dir, tmp_path / "x.html", lang="fr")
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------- safety and self-containment


def test_output_references_no_external_url(demo_dir, demo_html):
    summary, _, _ = load_run(demo_dir)
    text = demo_html.replace(summary["run"]["base_url"], "")  # the target URL is data, shown as text
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"(?i)<(script|img|iframe|link|source|video|audio|embed|object)\b[^>]*\s(src|href|data)=", text)
    assert not re.search(r"(?i)@import|//cdn|sourceMappingURL|<link\b", text)
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert "url(" not in style.lower() and "@font-face" not in style
    assert len(re.findall(r"<script\b", demo_html)) == 5  # data + hammer + chart.js + zoom + app, all inline
    for name in ("Chart.js v4.6.1", "chartjs-plugin-zoom v2.2.0", "Hammer.JS"):
        assert name in demo_html, f"{name} is inlined with its licence banner"


def test_content_security_policy_pins_the_inline_scripts(demo_html):
    csp = htmllib.unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">',
                                     demo_html).group(1))
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    hashes = set(re.findall(r"'sha256-([^']+)'", csp))
    scripts = re.findall(r"<script>(.*?)</script>", demo_html, re.S)
    assert len(scripts) == 4
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert digest in hashes


def test_untrusted_text_is_escaped_in_html(xss_dir):
    html = render_dir(xss_dir)
    assert XSS_PAYLOAD not in html
    assert "<img" not in html and "onerror=\"" not in html and "<b>" not in html
    escaped = str(escape(XSS_PAYLOAD))
    for where in ("slowest-e2e", "slowest-ttft", "error-table", "dataset-table"):
        assert escaped[:60] in table(html, where), where
    assert escaped in section(html, "options")
    assert escaped in html[: html.index("<nav")]  # the model label in the header
    assert len(re.findall(r"<script\b", html)) == 5
    assert html.count("</script>") == 5


def test_script_data_is_json_that_cannot_close_its_element(xss_dir):
    html = render_dir(xss_dir)
    raw = DATA_RE.search(html).group(1)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert "\\u003c/script\\u003e" in raw
    data = json.loads(raw)
    assert "server[</script><b>bad]" in data["ts"]["cols"]
    assert report.script_json({"k": "a\u2028b\u2029c</script>&"}) == '{"k":"a\\u2028b\\u2029c\\u003c/script\\u003e\\u0026"}'


def test_secrets_in_options_are_masked(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    summary["run"]["config"].update(api_key="app-abcdefghijkl7777", ssh_password="hunter2secret",
                                    header=["X-Ok: visible", "Authorization: Bearer sk-live-SECRET9999"])
    html = render_report(summary, timeseries, records)
    assert "abcdefghijkl" not in html and "hunter2secret" not in html and "sk-live-SECRET" not in html
    assert "app-…7777" in html and "X-Ok: visible" in html and "Authorization: Bearer sk-…9999" in html


# ---------------------------------------------------------------- files and API


def test_load_timeseries_types_and_nulls(tmp_path):
    path = tmp_path / "timeseries.csv"
    path.write_text("second,active_threads,ttft_p50_ms,gpu[local:0].util_pct,weird\n"
                    "0,2,,55.5,nan\n1,2,120.25,,x\n", encoding="utf-8")
    rows = load_timeseries(path)
    assert rows == [
        {"second": 0, "active_threads": 2.0, "ttft_p50_ms": None, "gpu[local:0].util_pct": 55.5, "weird": None},
        {"second": 1, "active_threads": 2.0, "ttft_p50_ms": 120.25, "gpu[local:0].util_pct": None, "weird": None},
    ]
    assert isinstance(rows[0]["second"], int)


def test_write_report_default_and_explicit_paths(tmp_path):
    run_dir = make_run_dir(tmp_path / "run", seconds=8, threads=2)
    default = write_report(run_dir)
    assert default == run_dir / "report.html"
    assert default.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    explicit = write_report(run_dir, tmp_path / "elsewhere" / "deep" / "r.html", lang="zh")
    assert explicit == tmp_path / "elsewhere" / "deep" / "r.html"
    assert "压测报告" in explicit.read_text(encoding="utf-8")
    assert not list((tmp_path / "elsewhere" / "deep").glob("*.tmp"))


def test_write_report_renders_the_same_numbers_as_from_memory(tmp_path):
    run_dir = make_run_dir(tmp_path / "run", seconds=8, threads=2, with_datasets=True)
    from_files = write_report(run_dir).read_text(encoding="utf-8")
    from_memory = render_dir(run_dir)
    strip = lambda h: re.sub(r"Generated by sse-perf .*? at [^.]*\.", "", h)  # noqa: E731
    assert strip(from_files) == strip(from_memory)


def test_torn_last_record_line_is_skipped_and_reported(tmp_path):
    run_dir = make_run_dir(tmp_path / "run", seconds=8, threads=2)
    with open(run_dir / "records.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"request_id": 999, "ok": tr')
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "1 unreadable line(s) of records.jsonl were skipped." in html


def test_templates_and_assets_are_found():
    base = report._templates_dir()
    assert (base / "report.html.j2").is_file() and (base / "report_app.js").is_file()
    for _, filename, version in report.VENDORED:
        text = report._asset(filename)
        assert "http://" not in text and "https://" not in text and "</script" not in text
    versions = (Path(report.__file__).parent / "assets" / "VERSIONS.md").read_text(encoding="utf-8")
    for _, filename, version in report.VENDORED:
        assert filename in versions and version in versions


@pytest.mark.parametrize("value,expected", [
    (1234.56, "1,234.6 ms"), (None, "—"), (float("nan"), "—"), (0.0, "0.0 ms"),
])
def test_fmt_ms(value, expected):
    assert report.fmt_ms(value) == expected


def test_number_formats():
    assert report.fmt_int(50000) == "50,000" and report.fmt_int(None) == "—"
    assert report.fmt_pct(99.95) == "99.95 %" and report.fmt_pct(100.0) == "100.0 %" and report.fmt_pct(93.24) == "93.2 %"
    assert report.fmt_seconds(3600) == "3,600.0 s (1:00:00)" and report.fmt_seconds(25.2) == "25.2 s"
    assert report.fmt_option(None) == "—" and report.fmt_option(True) == "true" and report.fmt_option(["a", "b"]) == "a, b"


def test_malformed_values_in_records_are_skipped_not_counted_twice(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    ok = [r for r in records if r["ok"]]
    ok[0]["itl_ms"] = [1.0, None, "x", float("nan"), float("inf"), 2.0]
    ok[1]["ttft_ms"] = None
    ok[2]["e2e_ms"] = "slow"
    expected_itl = sum(len(r["itl_ms"]) for r in ok) - 4
    for with_summary in (True, False):
        if not with_summary:
            del summary["itl_ms"]
        hist = {h["id"]: h for h in embedded_data(render_report(summary, timeseries, records))["hist"]}
        itl = hist["hist-itl"]
        assert sum(itl["counts"]) + itl["overflow"] == expected_itl
        assert sum(hist["hist-ttft"]["counts"]) + hist["hist-ttft"]["overflow"] == len(ok) - 1
        assert sum(hist["hist-e2e"]["counts"]) + hist["hist-e2e"]["overflow"] == len(ok) - 1


def test_a_minimal_summary_still_renders():
    """A partial summary.json (a crashed run, an older version) renders with dashes."""
    html = render_report({"requests": {"total": 3}}, [{"active_threads": 1.0}], [{"ok": True, "ttft_ms": 5.0}])
    assert "<!DOCTYPE html>" in html
    assert '<div class="card-value">3</div>' in html
    assert embedded_data(html)["ts"]["x"] == [0]


# ---------------------------------------------------------------- load models (issue 5)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return make_sweep_run_dir(tmp_path_factory.mktemp("sweep") / "run")


@pytest.fixture(scope="module")
def sweep_html(sweep_dir) -> str:
    return render_dir(sweep_dir)


@pytest.fixture(scope="module")
def open_dir(tmp_path_factory) -> Path:
    return make_open_loop_run_dir(tmp_path_factory.mktemp("open") / "run",
                                  stopped_early="error rate 85.0% over the last 50 requests > 20%")


@pytest.fixture(scope="module")
def open_html(open_dir) -> str:
    return render_dir(open_dir)


LOAD_IDS = ('id="slo"', 'id="slo-badge"', 'id="sweep"', 'id="best-level"', 'id="load-cards"', 'id="goodput-card"',
            'id="band-legend"', 'id="stopped-early"', 'id="not-sent-warning"', 'id="open-loop-note"', "curve-chart",
            'href="#slo"', 'href="#sweep"', 'data-metric="queue_ms"')


def visible_text(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>|<style.*?</style>", "",
                                                                      html, flags=re.S))).split())


def test_fixture_runs_are_internally_consistent(sweep_dir, open_dir):
    """The fabricated issue-5 runs follow the data spec, so the tests below test the report."""
    summary, timeseries, records = load_run(sweep_dir)
    assert [e["level"] for e in summary["levels"]] == [{"threads": n} for n in (1, 4, 16, 64)]
    assert summary["sweep"]["best_level"] == 16 and [e["meets_slo"] for e in summary["levels"]] == [True] * 3 + [False]
    assert summary["requests"]["warmup"] == sum(r["warmup"] for r in records) > 0
    assert summary["requests"]["total"] == sum(not r["warmup"] for r in records)
    assert {row["phase"] for row in timeseries} == {"warmup", "measure", "cooldown"}
    p95 = [e["ttft_ms"]["p95"] for e in summary["levels"]]
    assert p95 == sorted(p95), "latency rises with the level"
    summary, _, records = load_run(open_dir)
    assert summary["run"]["load"]["model"] == "open" and summary["requests"]["not_sent"] > 0
    assert max(r["queue_ms"] for r in records) > 1000 and summary["queue_ms"]["count"] == summary["requests"]["ok"]


def test_old_run_folders_show_no_load_sections(demo_html, demo_dir):
    for marker in LOAD_IDS:
        assert marker not in demo_html, marker
    data = embedded_data(demo_html)
    assert "sweep" not in data and "bands" not in data["ts"]
    for key in ("g_goodput", "g_slo", "g_queue", "g_warmup", "g_loop", "g_level"):
        assert STRINGS["en"][key] not in demo_html, key
    # a closed-loop run of the new runner (phase column, no warm-up, no SLO) adds only its load model
    summary, timeseries, records = load_run(demo_dir)
    for row in timeseries:
        row.update(phase="measure", level=None)
    summary["run"]["load"] = {"model": "closed", "threads": 8, "rate": None, "arrival": None, "seed": None,
                              "warmup_s": None, "warmup_requests": None, "sweep": None}
    summary["requests"].update(warmup=0, not_sent=0)
    summary["goodput"] = {"requests_per_s": 3.0, "pct": 97.0, "bounds": {}}
    html = render_report(summary, timeseries, records)
    for marker in LOAD_IDS:
        assert marker not in html, marker
    assert "<dt>Load model</dt><dd>Closed loop</dd>" in html and "Warm-up" not in visible_text(html)
    assert "phase" not in embedded_data(html)["ts"]["cols"] and "level" not in embedded_data(html)["ts"]["cols"]


def slo_rows_of(html: str) -> list[list[str]]:
    body = table(html, "slo-table")
    return [cells(row) for row in re.findall(r'<tr class="slo-(?:met|missed)">(.*?)</tr>', body, re.S)]


def test_slo_table_shows_value_limit_and_verdict(sweep_dir, sweep_html, open_dir, open_html):
    summary, _, _ = load_run(sweep_dir)
    expected = []
    for v in summary["slo"]:
        shown = (lambda x: f"{x:,.1f} ms") if v["unit"] == "ms" else (lambda x: f"{x:.1f} %")
        op = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}[v["op"]]
        expected.append([v["expr"], shown(v["value"]), f"{op} {shown(v['limit'])}", "MET" if v["met"] else "MISSED"])
    assert slo_rows_of(sweep_html) == expected
    assert expected[0] == ["ttft_p95<800ms", f"{summary['levels'][2]['ttft_ms']['p95']:,.1f} ms", "< 800.0 ms", "MET"]
    assert "Verdicts of the best level, 16 threads." in section(sweep_html, "slo")
    assert re.search(r'<span class="badge badge-ok" id="slo-badge">All SLOs met</span>', sweep_html)
    # open loop: one SLO missed, coloured red in the header and the table
    rows = slo_rows_of(open_html)
    assert [row[3] for row in rows] == ["MET", "MISSED", "MET"]
    assert rows[1][:3] == ["e2e_from_scheduled_p95<5s", f"{load_run(open_dir)[0]['slo'][1]['value']:,.1f} ms",
                           "< 5,000.0 ms"]
    assert re.search(r'<span class="badge badge-bad" id="slo-badge">1 of 3 SLOs missed</span>', open_html)
    assert '<span class="vbadge vbadge-missed">MISSED</span>' in table(open_html, "slo-table")
    assert 'href="#slo"' in open_html and "Verdicts of" not in section(open_html, "slo")


def test_slo_rates_and_unmeasured_values_are_formatted(open_dir):
    summary, timeseries, records = load_run(open_dir)
    summary["slo"] = [
        {"expr": "rps>=2", "metric": "requests_per_s", "op": ">=", "limit": 2.0, "unit": "/s", "value": 2.345,
         "met": True},
        {"expr": "tps>=500", "metric": "output_tokens_per_s", "op": ">=", "limit": 500.0, "unit": "/s", "value": 312.0,
         "met": False},
        {"expr": "ttfo_p99<1s", "metric": "ttfo_p99", "op": "<", "limit": 1000.0, "unit": "ms", "value": None,
         "met": False},
    ]
    rows = slo_rows_of(render_report(summary, timeseries, records))
    assert rows == [["rps>=2", "2.35 req/s", "≥ 2.00 req/s", "MET"],
                    ["tps>=500", "312.00 tok/s", "≥ 500.00 tok/s", "MISSED"],
                    ["ttfo_p99<1s", "—", "< 1,000.0 ms", "MISSED"]]
    zh = slo_rows_of(render_report(summary, timeseries, records, lang="zh"))
    assert zh[0] == ["rps>=2", "2.35 请求/秒", "≥ 2.00 请求/秒", "达标"] and zh[1][3] == "未达标"


def test_goodput_card_with_its_bounds(sweep_dir, sweep_html, open_html):
    summary, timeseries, records = load_run(sweep_dir)
    card = re.search(r'id="goodput-card">(.*?)</div></div>', sweep_html, re.S).group(1)
    goodput = summary["goodput"]
    assert f"{goodput['requests_per_s']:,.2f} req/s" in card
    assert f"{goodput['pct']:.1f} % of requests · within TTFT &lt; 800.0 ms, TPOT &lt; 40.0 ms" in card
    assert "card-good" in re.search(r'<div class="card ([^"]*)" id="goodput-card">', sweep_html).group(1)
    assert "E2E from scheduled &lt; 5,000.0 ms" in open_html
    assert "card-warn" in re.search(r'<div class="card ([^"]*)" id="goodput-card">', open_html).group(1)
    # no SLO: goodput would repeat the ok rate, so no card
    del summary["slo"]
    summary["goodput"]["bounds"] = {}
    assert 'id="goodput-card"' not in render_report(summary, timeseries, records)


def sweep_rows(html: str) -> list[tuple[str, list[str]]]:
    body = table(html, "sweep-table")
    return [(m.group(1) or "", cells(m.group(2)))
            for m in re.finditer(r'<tr(?: class="(best-row)")? data-level="[^"]*">(.*?)</tr>', body, re.S)]


def test_sweep_table_has_one_row_per_level_and_marks_the_best(sweep_dir, sweep_html):
    summary, _, _ = load_run(sweep_dir)
    rows = sweep_rows(sweep_html)
    assert [cls for cls, _ in rows] == ["", "", "best-row", ""]
    for (_, values), entry in zip(rows, summary["levels"]):
        n = entry["level"]["threads"]
        good = entry["goodput"]
        verdict = "MET" if entry["meets_slo"] else "MISSED"
        met = sum(v["met"] for v in entry["slo"])
        assert values == [
            f"{n} thread" + ("s" if n > 1 else "") + (" ★ best" if n == 16 else ""),
            f"{entry['requests']['total']:,}",
            f"{entry['requests']['success_rate_pct']:,.1f}", f"{entry['throughput']['requests_per_s']:,.2f}",
            f"{entry['throughput']['output_tokens_per_s']:,.1f}", f"{entry['ttft_ms']['p95']:,.1f}",
            f"{entry['tpot_ms']['p95']:,.1f}", f"{entry['e2e_ms']['p95']:,.1f}",
            f"{good['requests_per_s']:,.2f} ({report.fmt_pct(good['pct'])})", f"{verdict} {met}/3"]
    assert table(sweep_html, "sweep-table").count("best-row") == 1
    sentence = "Highest level within the SLOs: 16 threads"
    assert re.search(rf'<p class="verdict verdict-good" id="best-level">{sentence}</p>', section(sweep_html, "summary"))
    assert sentence in section(sweep_html, "sweep")
    assert section(sweep_html, "sweep").index('id="sweep-table"') < section(sweep_html, "sweep").index("cap-ttft")
    assert sweep_html.index('<section id="summary">') < sweep_html.index('<section id="slo">') \
        < sweep_html.index('<section id="sweep">') < sweep_html.index('<section id="timeseries">')


def test_sweep_without_a_level_meeting_the_slos(sweep_dir):
    summary, timeseries, records = load_run(sweep_dir)
    summary["sweep"]["best_level"] = None
    for entry in summary["levels"]:
        entry["meets_slo"] = False
    html = render_report(summary, timeseries, records)
    assert re.search(r'<p class="verdict verdict-bad" id="best-level">No level met the SLOs</p>', html)
    assert "best-row" not in table(html, "sweep-table") and "★" not in table(html, "sweep-table")
    assert "No level met every SLO: verdicts of the first level, 1 thread." in section(html, "slo")
    assert not any(p["best"] for p in embedded_data(html)["sweep"]["points"])
    zh = render_report(summary, timeseries, records, lang="zh")
    assert "没有级别满足 SLO" in zh
    # no SLO given at all: no level is best, and the page says why
    del summary["slo"], summary["sweep"]["best_level"]
    for entry in summary["levels"]:
        entry.pop("slo"), entry.update(meets_slo=None)
    html = render_report(summary, timeseries, records)
    assert "No SLO was given (--slo), so no level is marked best." in section(html, "summary")
    assert 'id="slo"' not in html and "MET" not in table(html, "sweep-table")
    assert [row[-1] for _, row in sweep_rows(html)] == ["—"] * 4


def test_sweep_best_level_from_meets_slo_when_the_sweep_section_is_missing(sweep_dir):
    summary, timeseries, records = load_run(sweep_dir)
    del summary["sweep"]
    html = render_report(summary, timeseries, records)
    assert [cls for cls, _ in sweep_rows(html)] == ["", "", "best-row", ""]


def test_capacity_curves_have_a_point_per_level_and_the_slo_limits(sweep_dir, sweep_html):
    summary, _, _ = load_run(sweep_dir)
    data = embedded_data(sweep_html)["sweep"]
    levels = summary["levels"]
    assert [p["short"] for p in data["points"]] == ["1", "4", "16", "64"]
    assert [p["label"] for p in data["points"]] == ["1 thread", "4 threads", "16 threads", "64 threads"]
    assert [p["tps"] for p in data["points"]] == [e["throughput"]["output_tokens_per_s"] for e in levels]
    assert [p["rps"] for p in data["points"]] == [e["throughput"]["requests_per_s"] for e in levels]
    assert [p["best"] for p in data["points"]] == [False, False, True, False]
    assert [p["met"] for p in data["points"]] == [True, True, True, False]
    charts = {c["id"]: c for c in data["charts"]}
    assert list(charts) == ["cap-ttft", "cap-tpot", "cap-e2e"]
    for family in ("ttft", "tpot", "e2e"):
        assert charts[f"cap-{family}"]["ys"] == [e[f"{family}_ms"]["p95"] for e in levels]
        assert charts[f"cap-{family}"]["stat"] == "p95"
    assert charts["cap-ttft"]["limits"] == [{"value": 800.0, "text": "SLO ttft_p95<800ms"}]
    assert charts["cap-tpot"]["limits"] == [{"value": 40.0, "text": "SLO tpot_p95<40ms"}]
    assert charts["cap-e2e"]["limits"] == []
    assert data["x_titles"] == {"tps": "Output tokens/s", "rps": "Requests/s"}
    assert re.findall(r'<canvas id="(cap-\w+)" class="curve-chart"', sweep_html) == list(charts)
    assert "<figcaption>TTFT p95 (ms)</figcaption>" in sweep_html


def test_capacity_curve_plots_the_statistic_its_slo_bounds(sweep_dir):
    """A p99 limit drawn over p95 points would mislead: the curve follows the SLO's statistic."""
    summary, timeseries, records = load_run(sweep_dir)
    summary["slo"][0].update(expr="ttft_p99<1s", metric="ttft_p99", limit=1000.0)
    html = render_report(summary, timeseries, records)
    chart = embedded_data(html)["sweep"]["charts"][0]
    assert chart["stat"] == "p99" and chart["ys"] == [e["ttft_ms"]["p99"] for e in summary["levels"]]
    assert chart["limits"] == [{"value": 1000.0, "text": "SLO ttft_p99<1s"}]
    assert "<figcaption>TTFT p99 (ms)</figcaption>" in html


def test_time_chart_bands_come_from_phase_and_level_columns(sweep_dir, sweep_html, open_html):
    summary, timeseries, _ = load_run(sweep_dir)
    bands = embedded_data(sweep_html)["ts"]["bands"]
    for entry, band in zip(summary["levels"], bands["levels"]):
        n = entry["level"]["threads"]
        seconds = [row["second"] for row in timeseries if row["level"] == n]
        assert (band["from"], band["to"]) == (min(seconds), max(seconds) + 1)
        assert (band["from"], band["to"]) == (entry["from_s"], math.ceil(entry["to_s"]))
        assert band["label"] == (f"{n} threads" if n > 1 else "1 thread") and band["short"] == str(n)
    assert [(b["from"], b["to"]) for b in bands["warmup"]] == [(e["from_s"], e["warmup_to_s"]) for e in summary["levels"]]
    assert len(bands["cooldown"]) == 3
    for cooldown, (before, after) in zip(bands["cooldown"], zip(bands["levels"], bands["levels"][1:])):
        assert (cooldown["from"], cooldown["to"]) == (before["to"], after["from"])
    cols = embedded_data(sweep_html)["ts"]["cols"]
    assert "phase" not in cols and "level" not in cols, "bands, not series"
    legend = re.search(r'<div class="band-legend" id="band-legend">(.*?)</div>', sweep_html, re.S).group(1)
    assert cells(legend) == [] and visible_text(legend) == ("warm-up (excluded from statistics) cooldown between "
                                                            "levels sweep levels (alternating bands, labelled)")
    # open loop: the warm-up only
    open_bands = embedded_data(open_html)["ts"]["bands"]
    assert open_bands["levels"] == [] and open_bands["cooldown"] == []
    assert open_bands["warmup"] == [{"from": 0, "to": 3}]
    legend = re.search(r'<div class="band-legend" id="band-legend">(.*?)</div>', open_html, re.S).group(1)
    assert visible_text(legend) == "warm-up (excluded from statistics)"


def test_bands_fall_back_to_the_level_spans(sweep_dir):
    """An older timeseries.csv without phase/level: the levels' from_s/to_s/warmup_to_s."""
    summary, timeseries, records = load_run(sweep_dir)
    for row in timeseries:
        del row["phase"], row["level"]
    bands = embedded_data(render_report(summary, timeseries, records))["ts"]["bands"]
    assert [(b["from"], b["to"]) for b in bands["levels"]] == [(e["from_s"], e["to_s"]) for e in summary["levels"]]
    assert [(b["from"], b["to"]) for b in bands["warmup"]] == [(e["from_s"], e["warmup_to_s"]) for e in summary["levels"]]
    assert bands["cooldown"] == []


def test_load_timeseries_keeps_phase_as_text(sweep_dir):
    rows = load_timeseries(sweep_dir / "timeseries.csv")
    assert rows[0]["phase"] == "warmup" and rows[0]["level"] == 1.0
    cooldown = next(row for row in rows if row["phase"] == "cooldown")
    assert cooldown["level"] is None


def test_warmup_records_are_excluded_from_the_digest(sweep_dir, sweep_html):
    summary, timeseries, records = load_run(sweep_dir)
    warmup_ids = {r["request_id"] for r in records if r["warmup"]}
    hist = {h["id"]: h for h in embedded_data(sweep_html)["hist"]}
    for key in ("ttft", "tpot", "e2e", "itl"):
        h = hist[f"hist-{key}"]
        assert sum(h["counts"]) + h["overflow"] == summary[f"{key}_ms"]["count"], key
    for table_id in ("slowest-e2e", "slowest-ttft"):
        ids = {int(i) for i in re.findall(r"<tr><td>#(\d+)</td>", table(sweep_html, table_id))}
        assert ids and not ids & warmup_ids, table_id
    rows = re.findall(r'<span class="kind">(.*?)</span>.*?</div></td>(.*?)</tr>', table(sweep_html, "error-table"), re.S)
    counts = {kind: int(cells(row)[0].replace(",", "")) for kind, row in rows}
    assert counts == summary["errors"]
    assert "100 warm-up requests are excluded." in section(sweep_html, "distributions")
    # the slowest request of all, a failure and a new token source, all during warm-up: none shows
    warm = [r for r in records if r["warmup"] and r["ok"]]
    warm[0].update(e2e_ms=99_999.0, ttft_ms=88_888.0, token_source="estimate")
    warm[1].update(ok=False, error_kind="protocol", error="warm-up failure")
    html = render_report(summary, timeseries, records)
    assert "99,999.0" not in html and "88,888.0" not in html and "warm-up failure" not in html
    assert "estimate" not in html[: html.index("<nav")]


def test_run_facts_name_the_load_model_and_the_warmup(sweep_dir, sweep_html, open_html):
    head = sweep_html[: sweep_html.index("<nav")]
    assert "<dt>Load model</dt><dd>Closed loop</dd>" in head
    assert "<dt>Sweep</dt><dd>threads 1 · 4 · 16 · 64 · cooldown 3 s</dd>" in head
    assert "<dt>Warm-up</dt><dd>3 s per level · 100 requests excluded from statistics</dd>" in head
    assert "Arrivals" not in head and "Seed" not in head
    head = open_html[: open_html.index("<nav")]
    assert "<dt>Load model</dt><dd>Open loop</dd>" in head
    assert "<dt>Arrivals</dt><dd>Poisson · 3 req/s</dd>" in head and "<dt>Seed</dt><dd>42</dd>" in head
    assert re.search(r"<dt>Warm-up</dt><dd>3 s · \d+ requests excluded from statistics</dd>", head)
    # without the summary's count, the records tell it
    summary, timeseries, records = load_run(sweep_dir)
    del summary["requests"]["warmup"]
    summary["run"]["load"].update(warmup_s=None, warmup_requests=20)
    html = render_report(summary, timeseries, records)
    assert "<dt>Warm-up</dt><dd>first 20 requests · 100 requests excluded from statistics</dd>" in html
    zh = render_dir(sweep_dir, lang="zh")
    assert "<dt>负载模型</dt><dd>闭环</dd>" in zh and "<dt>预热</dt><dd>每级 3 秒 · 100 个请求未计入统计</dd>" in zh


def test_open_loop_adds_queue_and_from_scheduled_rows(open_dir, open_html, sweep_html):
    summary, _, _ = load_run(open_dir)
    body = table(open_html, "percentile-table")
    for key, label in (("queue_ms", "Queue"), ("ttft_from_scheduled_ms", "TTFT from scheduled"),
                       ("e2e_from_scheduled_ms", "E2E from scheduled")):
        row = re.search(rf'<tr data-metric="{key}">(.*?)</tr>', body, re.S).group(1)
        dist = summary[key]
        assert cells(row) == [label, f"{dist['count']:,}"] + [f"{dist[k]:,.1f}" for k in
                                                              ("mean", "min", "p50", "p90", "p95", "p99", "max")]
    assert STRINGS["en"]["open_loop_note"] in htmllib.unescape(section(open_html, "distributions"))
    card = re.search(r'id="queue-card">(.*?)</div></div>', open_html, re.S).group(1)
    assert f"{summary['queue_ms']['p95']:,.1f} ms" in card and f"p50 {summary['queue_ms']['p50']:,.1f} ms" in card
    # closed loop: the same distributions repeat TTFT and E2E, so no rows
    assert 'data-metric="queue_ms"' not in sweep_html and 'id="queue-card"' not in sweep_html
    assert STRINGS["en"]["g_queue"] not in sweep_html and STRINGS["en"]["g_queue"] in open_html


def test_not_sent_arrivals_get_a_warning(open_dir, open_html):
    summary, timeseries, records = load_run(open_dir)
    n = summary["requests"]["not_sent"]
    warning = re.search(r'<p class="warn-line" id="not-sent-warning">(.*?)</p>', open_html).group(1)
    assert warning.startswith(f"{n} scheduled arrivals were never sent: when they were due every thread was still busy")
    summary["requests"]["not_sent"] = 0
    assert 'id="not-sent-warning"' not in render_report(summary, timeseries, records)


def test_early_stop_gets_a_banner_with_its_reason(open_dir, open_html, sweep_html):
    banner = re.search(r'<div class="banner banner-warn" id="stopped-early" role="alert">(.*?)</div>', open_html)
    assert visible_text(banner.group(1)) == "Stopped early: error rate 85.0% over the last 50 requests > 20%"
    assert '<span class="badge badge-warn" id="stopped-early-badge">Stopped early</span>' in open_html
    assert ">Completed<" not in open_html[: open_html.index("<nav")]
    assert 'id="stopped-early"' not in sweep_html
    summary, timeseries, records = load_run(open_dir)
    for value in (None, "", "   ", 3, True):
        summary["run"]["stopped_early"] = value
        assert 'id="stopped-early"' not in render_report(summary, timeseries, records)
    summary["run"]["stopped_early"] = "error rate 85.0% > 20%"
    zh = render_report(summary, timeseries, records, lang="zh")
    assert "提前停止：</strong> error rate 85.0% &gt; 20%" in zh


def test_dataset_rows_prefer_the_summary(open_dir, open_html):
    summary, timeseries, records = load_run(open_dir)
    body = table(open_html, "dataset-table")
    assert "<th>Output tokens/s</th>" in body
    for name, entry in summary["datasets"].items():
        row = cells(re.search(rf'<tr><th scope="row">{name}</th>.*?</tr>', body, re.S).group(0))
        assert row[:5] == [name, f"{entry['requests']:,}", f"{entry['ok']:,}", f"{entry['failed']:,}",
                           f"{entry['success_rate_pct']:,.1f}"]
        assert row[5] == f"{entry['ttft_ms']['p50']:,.1f}" and row[10] == f"{entry['output_tokens_per_s']:,.1f}"
        measured = [r for r in records if r["dataset"] == name and not r["warmup"]]
        assert entry["requests"] == len(measured)
    # without the summary's section, the records give the same counts (warm-up skipped there too)
    del summary["datasets"]
    html = render_report(summary, timeseries, records)
    assert "<th>Output tokens/s</th>" not in table(html, "dataset-table")
    for name in sorted({r["dataset"] for r in records}):
        row = cells(re.search(rf'<tr><th scope="row">{name}</th>.*?</tr>', table(html, "dataset-table"), re.S).group(0))
        assert row[1] == f"{sum(1 for r in records if r['dataset'] == name and not r['warmup']):,}"


def test_glossary_explains_the_load_model_terms(sweep_html, open_html):
    en = STRINGS["en"]
    glossary = htmllib.unescape(section(sweep_html, "glossary"))
    for key in ("g_goodput", "g_slo", "g_warmup", "g_loop", "g_level"):
        assert en[key] in glossary, key
    assert en["g_queue"] not in glossary
    glossary = htmllib.unescape(section(open_html, "glossary"))
    for key in ("g_goodput", "g_slo", "g_warmup", "g_loop", "g_queue"):
        assert en[key] in glossary, key
    assert en["g_level"] not in glossary


def test_chinese_load_sections(sweep_dir, open_dir):
    zh = render_dir(sweep_dir, lang="zh")
    for text in ("满足 SLO 的最高级别：16 线程", "服务等级目标（SLO）", "全部 SLO 达标", "扫描：各级别的容量", "容量曲线",
                 "预热（不计入统计）", "级别之间的冷却", "16 线程 <span class=\"best-badge\">★ 最佳</span>", "有效吞吐"):
        assert text in zh, text
    data = embedded_data(zh)
    assert data["sweep"]["x_titles"] == {"tps": "每秒输出 token", "rps": "每秒请求数"}
    assert data["ts"]["bands"]["levels"][1]["label"] == "4 线程"
    visible = visible_text(zh) + visible_text(render_dir(open_dir, lang="zh"))
    for english in ("Highest level", "Service-level objectives", "Capacity curves", "warm-up (excluded", "Goodput",
                    "Open loop", "Closed loop", "scheduled arrivals", "Queue", "from scheduled", "MET", "MISSED",
                    "16 threads", "1 thread", "Stopped early", "Verdict", "Measured"):
        assert english not in visible, english


def test_load_sections_escape_untrusted_text(open_dir):
    summary, timeseries, records = load_run(open_dir)
    summary["slo"][0]["expr"] = XSS_PAYLOAD
    summary["run"]["stopped_early"] = XSS_PAYLOAD
    summary["run"]["load"]["arrival"] = XSS_PAYLOAD
    summary["datasets"][XSS_PAYLOAD] = summary["datasets"].pop("code-gen")
    html = render_report(summary, timeseries, records)
    assert XSS_PAYLOAD not in html and "<img" not in html
    escaped = str(escape(XSS_PAYLOAD))
    assert escaped in table(html, "slo-table") and escaped in html[: html.index("<nav")]
    assert escaped in re.search(r'id="stopped-early".*?</div>', html, re.S).group(0)
    assert escaped in table(html, "dataset-table")
    assert len(re.findall(r"<script\b", html)) == 5


def test_report_load_module_stays_apart_and_report_stays_small():
    """report.py delegates the load-model views; neither module grows into a monolith."""
    import ast

    source = Path(report.__file__).read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 550
    load_source = Path(report.__file__).with_name("report_load.py").read_text(encoding="utf-8")
    imports = [node for node in ast.walk(ast.parse(load_source)) if isinstance(node, ast.ImportFrom)]
    assert {(node.level, node.module) for node in imports if node.level} == {(1, None), (1, "metrics")}, \
        "report_load imports only the metric registry from the package"


def test_rate_sweep_levels_read_as_rates(sweep_dir):
    summary, timeseries, records = load_run(sweep_dir)
    rates = (0.5, 1, 2, 4)
    for entry, rate in zip(summary["levels"], rates):
        entry["level"] = {"rate": rate}
    summary["sweep"] = {"kind": "rate", "values": list(rates), "best_level": 2}
    summary["run"]["load"].update(model="open", rate=None, arrival="constant", seed=None,
                                  sweep={"kind": "rate", "values": list(rates), "cooldown_s": 3.0})
    for row in timeseries:
        if row["level"] is not None:
            row["level"] = dict(zip((1, 4, 16, 64), rates))[row["level"]]
    html = render_report(summary, timeseries, records)
    assert [row[0] for _, row in sweep_rows(html)] == ["0.5 req/s", "1 req/s", "2 req/s ★ best", "4 req/s"]
    assert "Highest level within the SLOs: 2 req/s" in section(html, "summary")
    assert "<dt>Sweep</dt><dd>rate (req/s) 0.5 · 1 · 2 · 4 · cooldown 3 s</dd>" in html
    assert "<dt>Arrivals</dt><dd>constant</dd>" in html
    labels = [b["label"] for b in embedded_data(html)["ts"]["bands"]["levels"]]
    assert labels == ["0.5 req/s", "1 req/s", "2 req/s", "4 req/s"]
    assert "labelled with its arrival rate (req/s)" in html



# ---------------------------------------------------------------- self-check of the load generator

CLIENT_IDS = ('id="client-card"', 'id="client-saturated"', 'class="client-fact"', 'id="glossary-self-check"',
              'class="swatch swatch-saturated"', "Load generator (self-check)")


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("client") / "run", seconds=30, threads=8, ramp_up_s=3, client="ok")


@pytest.fixture(scope="module")
def saturated_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("saturated") / "run", seconds=30, threads=8, ramp_up_s=3,
                        client="saturated")


def group_of(html: str, title: str) -> str:
    start = html.index(f'<h3 class="group-title">{title}</h3>')
    end = html.find('<h3 class="group-title">', start + 1)
    return html[start: end if end > 0 else html.index("</section>", start)]


def test_fixture_self_check_follows_the_runner_rule(client_dir, saturated_dir):
    """The fabricated self-check: one row per second, the verdict from selfcheck.saturation_from."""
    summary, timeseries, _ = load_run(client_dir)
    assert summary["client"]["saturated_from_s"] is None and summary["client"]["cores_usable"] == 1
    assert all(row["client.lag_p99_ms"] is not None for row in timeseries)
    summary, timeseries, _ = load_run(saturated_dir)
    assert summary["client"]["saturated_from_s"] == 12
    assert all(row["client.lag_p99_ms"] > 5 for row in timeseries if row["second"] >= 12)


def test_old_run_folders_show_no_self_check(demo_dir, demo_html, sweep_html):
    """A run folder without the client section and columns renders as before the self-check."""
    summary, timeseries, _ = load_run(demo_dir)
    assert "client" not in summary and not any(key.startswith("client.") for key in timeseries[0])
    for html in (demo_html, sweep_html):
        for marker in CLIENT_IDS:
            assert marker not in html, marker
        assert STRINGS["en"]["group_client"] not in html and "@client" not in html
        assert "saturated" not in embedded_data(html)["ts"].get("bands", {})
    assert "bands" not in embedded_data(demo_html)["ts"]


def test_self_check_group_charts_lag_and_cpu_with_dashed_limits(client_dir):
    html = render_dir(client_dir)
    summary, timeseries, _ = load_run(client_dir)
    groups = re.findall(r'<h3 class="group-title">(.*?)</h3>', html)
    assert groups == ["Load and throughput", "Latency (requests finished in each second)",
                      "Load generator (self-check)"]
    titles = [" ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", c)).split())
              for c in re.findall(r"<figcaption>(.*?)</figcaption>", group_of(html, "Load generator (self-check)"), re.S)]
    assert titles == ["Scheduling lag of sse-perf (ms) · how late a 10 ms sleep wakes up · dashed: limit 5.0 ms",
                      "CPU of sse-perf (% of one core) · dashed: limit 90 % · usable cores: 1"]
    data = embedded_data(html)
    by_columns = charts_by_columns(html)
    lag = by_columns[("client.lag_p50_ms", "client.lag_p99_ms", "@client_lag_limit_ms")]
    cpu = by_columns[("client.cpu_pct", "@client_cpu_limit_pct")]
    assert lag["unit"] == "ms" and cpu["unit"] == "%" and lag["legend"] and not cpu["legend"]
    for chart in (lag, cpu):
        limit = chart["series"][-1]
        assert limit["ref"] and limit["dash"] and limit["color"] == report.RED
    assert data["ts"]["cols"]["@client_lag_limit_ms"] == [5.0] * len(timeseries)
    assert data["ts"]["cols"]["@client_cpu_limit_pct"] == [90.0] * len(timeseries)
    assert data["ts"]["cols"]["client.cpu_pct"] == [row["client.cpu_pct"] for row in timeseries]
    assert len(data["ts"]["charts"]) == 7 + 2 and "client.cpu_pct" not in section(html, "timeseries").split(
        "Load generator (self-check)")[0], "client columns are not 'Other series'"
    assert "bands" not in data["ts"], "no saturation: no band"


def test_self_check_facts_card_and_glossary_when_healthy(client_dir):
    html = render_dir(client_dir)
    client = load_run(client_dir)[0]["client"]
    head = html[: html.index("<nav")]
    assert client["lag_ms_p50"] < 1 < client["lag_ms_p99"], "sub-ms with 2 decimals, above with 1"
    assert f'<dt>Client lag</dt><dd>p50 {client["lag_ms_p50"]:.2f} ms · p99 {client["lag_ms_p99"]:.1f} ms</dd>' in head
    assert f'<dt>Client CPU</dt><dd>mean {client["cpu_pct_mean"]:.1f} % · max {client["cpu_pct_max"]:.1f} %</dd>' in head
    assert "<dt>Usable cores</dt><dd>1</dd>" in head
    card = re.search(r'<div class="card card-good" id="client-card">.*?</div></div>', html, re.S).group(0)
    assert f'<div class="card-value value-good">{client["lag_ms_p99"]:.1f} ms</div>' in card
    assert f"limit 5.0 ms · CPU max {client['cpu_pct_max']:.1f} %" in card
    assert 'id="load-cards"' not in html, "the goodput/queue cards are not there"
    assert 'id="client-saturated"' not in html and 'class="swatch swatch-saturated"' not in html
    glossary = htmllib.unescape(section(html, "glossary"))
    assert "<dt>Self-check</dt>" in glossary
    assert "sleeps 10 ms in a loop" in glossary and "3 seconds in a row with lag p99 above 5.0 ms" in glossary
    assert "above 90 % of the usable cores" in glossary


def test_saturated_run_gets_a_banner_a_band_and_a_bad_card(saturated_dir):
    html = render_dir(saturated_dir)
    summary, timeseries, _ = load_run(saturated_dir)
    after = [row for row in timeseries if row["second"] >= 12]
    lag_peak = max(row["client.lag_p99_ms"] for row in after)
    cpu_peak = max(row["client.cpu_pct"] for row in after)
    banner = re.search(r'<div class="banner banner-bad" id="client-saturated" role="alert">(.*?)</div>', html, re.S)
    assert banner, "a saturation banner"
    assert html.index('id="client-saturated"') < html.index('<section id="summary">'), "near the top"
    assert visible_text(banner.group(1)) == (
        f"The load generator was saturated from 12 s on: scheduling lag p99 up to {lag_peak:.1f} ms (limit 5.0 ms), "
        f"CPU up to {cpu_peak:.1f} % (limit 90.0 %). Latencies after that include sse-perf's own delay; "
        "use fewer threads, more worker processes (--processes) on a machine with spare cores, or free this one of other work.")
    card = re.search(r'<div class="card card-bad" id="client-card">.*?</div></div>', html, re.S).group(0)
    assert f'<div class="card-value value-bad">{summary["client"]["lag_ms_p99"]:.1f} ms</div>' in card
    assert "saturated from 12 s on · limit 5.0 ms" in card
    bands = embedded_data(html)["ts"]["bands"]
    assert bands["saturated"] == [{"from": 12, "to": timeseries[-1]["second"] + 1}], "to the end of the run"
    assert bands["levels"] == bands["warmup"] == bands["cooldown"] == []
    legend = re.search(r'<div class="band-legend" id="band-legend">(.*?)</div>', html, re.S).group(1)
    assert visible_text(legend) == "load generator saturated (latencies include sse-perf's own delay)"


def test_saturation_band_joins_the_sweep_bands(sweep_dir):
    summary, timeseries, records = load_run(sweep_dir)
    summary["client"] = {"lag_ms_p50": 1.0, "lag_ms_p99": 9.0, "cpu_pct_mean": 80.0, "cpu_pct_max": 99.0,
                         "cores_usable": 2, "saturated_from_s": 40}
    html = render_report(summary, timeseries, records)
    bands = embedded_data(html)["ts"]["bands"]
    assert bands["saturated"] == [{"from": 40, "to": timeseries[-1]["second"] + 1}]
    assert len(bands["levels"]) == 4 and len(bands["warmup"]) == 4 and len(bands["cooldown"]) == 3
    # no client columns in this time series: the banner shows the whole run's figures, no self-check charts
    assert "scheduling lag p99 up to 9.0 ms (limit 5.0 ms), CPU up to 99.0 % (limit 180.0 %)" in visible_text(html)
    assert "Load generator (self-check)" not in html


def test_partial_client_section_renders_with_dashes(demo_dir):
    summary, timeseries, records = load_run(demo_dir)
    summary["client"] = {"cpu_pct_mean": 12.0, "lag_ms_p99": "slow", "saturated_from_s": None}
    html = render_report(summary, timeseries, records)
    head = html[: html.index("<nav")]
    assert "<dt>Client lag</dt><dd>p50 — · p99 —</dd>" in head
    assert "<dt>Client CPU</dt><dd>mean 12.0 % · max —</dd>" in head and "<dt>Usable cores</dt><dd>—</dd>" in head
    assert '<div class="card" id="client-card">' in html, "no verdict colour without a lag p99"
    assert 'id="client-saturated"' not in html
    summary["client"] = {"saturated_from_s": 3}  # saturated, nothing else known, no client columns
    html = render_report(summary, timeseries, records)
    assert "scheduling lag p99 up to — (limit 5.0 ms), CPU up to — (limit —)" in visible_text(html)
    assert embedded_data(html)["ts"]["bands"]["saturated"][0]["from"] == 3


def test_client_columns_without_the_summary_section(client_dir):
    """Columns only (a run cut short before its summary had the section): charts, no CPU limit line."""
    summary, timeseries, records = load_run(client_dir)
    del summary["client"]
    html = render_report(summary, timeseries, records)
    by_columns = charts_by_columns(html)
    assert ("client.cpu_pct",) in by_columns and "@client_cpu_limit_pct" not in embedded_data(html)["ts"]["cols"]
    assert 'id="client-card"' not in html and 'class="client-fact"' not in html
    assert 'id="glossary-self-check"' in html


def test_fmt_lag():
    assert report.fmt_lag(0.191) == "0.19 ms" and report.fmt_lag(2.579) == "2.6 ms"
    assert report.fmt_lag(1234.5) == "1,234.5 ms" and report.fmt_lag(None) == "—" and report.fmt_lag(float("inf")) == "—"


def test_chinese_self_check(saturated_dir):
    html = render_dir(saturated_dir, lang="zh")
    visible = visible_text(html)
    for text in ("压测端从第 12 秒起已饱和：", "此后的时延包含 sse-perf 自身的延迟", "压测端（自检）", "压测端延迟 p99",
                 "自第 12 秒起饱和", "压测端调度延迟", "可用核数", "压测端饱和（时延包含 sse-perf 自身的延迟）", "自检"):
        assert text in visible, text
    for english in ("saturated", "Load generator", "Client lag", "Usable cores", "Self-check", "usable core"):
        assert english not in visible, english


def test_run_facts_name_the_worker_processes_only_when_there_are_several(sweep_dir):
    """--processes 2 shows as a run fact; one process (the default) adds nothing."""
    summary, timeseries, records = load_run(sweep_dir)
    summary["run"]["load"]["processes"] = 1
    html = render_report(summary, timeseries, list(records))
    assert "Worker processes" not in html[: html.index("<nav")]
    summary["run"]["load"]["processes"] = 2
    html = render_report(summary, timeseries, list(load_run(sweep_dir)[2]))
    assert "<dt>Worker processes</dt><dd>2</dd>" in html[: html.index("<nav")]


def test_an_open_loop_runs_busy_threads_chart_is_titled_requests_in_flight(open_dir, open_html):
    """In an open loop the rate is the load: the busy threads are what is in flight, not a setting."""
    assert "Requests in flight (threads busy)" in open_html and "Active threads" not in open_html


def test_a_gpus_power_limit_is_a_dashed_line_in_its_power_chart_not_a_chart_of_its_own():
    from sse_perf_tool.report_i18n import strings
    from sse_perf_tool.report_timeseries import timeseries_view

    rows = [{"second": s, "output_tokens": 10, "gpu[local:0].power_w": 300.0 + s, "gpu[local:0].power_limit_w": 700.0}
            for s in range(5)]
    groups, data = timeseries_view(rows, strings("en"))
    charts = [chart for group in groups for chart in group["charts"]]
    (power,) = [c for c in charts if any(s["col"] == "gpu[local:0].power_w" for s in c["series"])]
    limit = [s for s in power["series"] if s["col"] == "gpu[local:0].power_limit_w"]
    assert limit and limit[0]["ref"] and limit[0]["dash"] and limit[0]["label"] == "local:0 power limit"
    assert [c for c in charts if "power_limit" in c["title"]] == []
