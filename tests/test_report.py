"""The HTML report's content: figures, sections, languages, safety, self-containment."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from report_fixtures import RUN_STARTED_AT, XSS_PAYLOAD, make_run_dir
from sse_perf_tool import report
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


def test_itl_histogram_is_the_same_streamed_or_collected(demo_dir):
    """With the summary's min/p99/max the gaps are binned while streaming; without, collected."""
    summary, timeseries, records = load_run(demo_dir)
    streamed = embedded_data(render_report(summary, timeseries, records))["hist"]
    del summary["itl_ms"]
    collected = embedded_data(render_report(summary, timeseries, records))["hist"]
    a = next(h for h in streamed if h["id"] == "hist-itl")
    b = next(h for h in collected if h["id"] == "hist-itl")
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
    summary.update(slo=[{"expr": "ttft_p95<500", "met": True}], levels=[{"level": {"threads": 4}}],
                   goodput={"requests_per_s": 1.0, "pct": 99.0}, future={"x": [1, 2]})
    html = render_report(summary, timeseries, records)
    assert "ttft_p95&lt;500" not in html and "future" not in html
    assert 'id="percentile-table"' in html


def test_empty_run_renders_with_placeholders():
    summary = {"run": {"started_at": RUN_STARTED_AT, "ended_at": RUN_STARTED_AT, "duration_s": 0, "api": "dify-chat",
                       "base_url": "http://x/v1", "threads": 1, "ramp_up_s": 0, "model_name": None,
                       "interrupted": True, "config": {}, "tool_version": "0.1.0"},
               "requests": {"total": 0, "ok": 0, "failed": 0, "success_rate_pct": None}, "errors": {},
               "throughput": {"requests_per_s": None, "output_tokens_total": 0, "output_tokens_per_s": None}}
    html = render_report(summary, [], [])
    assert STRINGS["en"]["no_timeseries"] in html
    assert html.count(STRINGS["en"]["hist_empty"]) == 4
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


def test_jinja_is_not_imported_with_the_module():
    code = "import sys, sse_perf_tool.report; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
