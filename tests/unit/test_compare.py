"""`sse-perf compare`: metric directions, change %, the ±1 % band, the regression threshold, target
loading from run folders, the terminal table, --json, exit codes, and the HTML document's
self-containment. The run folders are fabricated (compare_fixtures.make_run_folder) so a test
sets TTFT, TPOT and load exactly. History ids (real demo runs) are in
tests/integration/test_compare.py; the browser checks in tests/browser/test_compare_report.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import pytest

from sse_perf_tool.exit_codes import EXIT_REGRESSION
from sse_perf_tool.compare import (HIGHER, LOWER, METRIC_BY_NAME, Run, change_pct, compare_runs, is_regression,
                                   parse_threshold, table_lines, verdict)
from sse_perf_tool.live import _cell_width

from compare_fixtures import T0, compare_metric, make_run_folder, run_compare


def _summary(tps: float = 100.0, rps: float = 2.0, ttft_p95: Optional[float] = 200.0, failed: int = 0,
             model: str = "m", threads: int = 4, max_tokens: Optional[int] = 256, **extra) -> dict:
    """A minimal summary.json with exact figures."""
    dist = {"count": 10, "mean": 100.0, "min": 50.0, "p50": 100.0, "p90": 150.0, "p95": ttft_p95, "p99": 250.0,
            "max": 300.0}
    summary = {
        "run": {"started_at": T0, "duration_s": 10.0, "api": "openai-chat", "base_url": "http://x/v1",
                "threads": threads, "model_name": model,
                "load": {"model": "closed", "threads": threads, "rate": None, "sweep": None},
                "config": {"max_tokens": max_tokens, "query": "hi", "model": model}},
        "requests": {"total": 20, "ok": 20 - failed, "failed": failed, "success_rate_pct": 100.0 * (20 - failed) / 20},
        "errors": {}, "throughput": {"requests_per_s": rps, "output_tokens_total": 1000, "output_tokens_per_s": tps},
        "ttft_ms": dist, "tpot_ms": dict(dist, p95=20.0), "itl_ms": dict(dist, p95=20.0), "e2e_ms": dict(dist, p95=1500.0),
    }
    summary.update(extra)
    return summary


def _write_summary(path: Path, summary: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return path


# ---------------------------------------------------------------- change %, directions, verdicts


def test_change_is_percent_of_the_baseline():
    assert change_pct(200.0, 220.0) == pytest.approx(10.0)
    assert change_pct(100.0, 50.0) == pytest.approx(-50.0)
    assert change_pct(-4.0, -2.0) == pytest.approx(50.0)  # against |baseline|


@pytest.mark.parametrize("baseline, value", [(0.0, 5.0), (None, 5.0), (5.0, None), (None, None)])
def test_no_change_without_a_baseline_value(baseline, value):
    """A baseline of 0 or no value has no percentage: shown '-', never a fake 0 %."""
    assert change_pct(baseline, value) is None


def test_a_faster_ttft_is_better_and_a_slower_one_worse():
    assert METRIC_BY_NAME["ttft_p95_ms"].direction == LOWER
    assert verdict(LOWER, 200.0, 150.0) == "better"
    assert verdict(LOWER, 200.0, 260.0) == "worse"


def test_more_tokens_per_second_is_better_and_fewer_worse():
    assert METRIC_BY_NAME["output_tokens_per_s"].direction == HIGHER
    assert verdict(HIGHER, 100.0, 130.0) == "better"
    assert verdict(HIGHER, 100.0, 70.0) == "worse"


@pytest.mark.parametrize("value, expected", [(100.9, "same"), (99.1, "same"), (101.0, "same"), (99.0, "same"),
                                             (101.2, "better"), (98.8, "worse")])
def test_a_change_within_one_percent_is_the_same(value, expected):
    assert verdict(HIGHER, 100.0, value) == expected


def test_verdict_from_a_zero_baseline_follows_the_direction_without_a_percentage():
    assert verdict(LOWER, 0.0, 3.0) == "worse"  # 0 -> 3 failed requests
    assert verdict(LOWER, 0.0, 0.0) == "same"
    assert verdict(LOWER, None, 3.0) is None


def test_every_main_metric_has_the_expected_direction():
    higher = {"requests_per_s", "output_tokens_per_s", "goodput_requests_per_s", "success_rate_pct",
              "output_tokens_per_joule", "request_tps_p50"}  # tokens/s per request: faster is better
    for name, metric in METRIC_BY_NAME.items():
        assert metric.direction == (HIGHER if name in higher else LOWER), name


# ---------------------------------------------------------------- the threshold


@pytest.mark.parametrize("direction, change, regressed", [
    (LOWER, 10.0, False),    # exactly at the limit: not a regression
    (LOWER, 10.01, True),
    (LOWER, -30.0, False),   # better is never a regression
    (HIGHER, -10.0, False),
    (HIGHER, -10.01, True),
    (HIGHER, 50.0, False),
    (LOWER, None, False),
])
def test_regression_only_beyond_the_threshold_in_the_worse_direction(direction, change, regressed):
    assert is_regression(direction, change, 10.0) is regressed


def test_float_noise_at_the_threshold_is_not_a_regression():
    change = change_pct(200.0, 220.00000000000003)
    assert change > 10.0 and not is_regression(LOWER, change, 10.0)


@pytest.mark.parametrize("text, value", [("10%", 10.0), ("10", 10.0), (" 2.5 % ", 2.5), ("0", 0.0)])
def test_threshold_accepts_percent_sign_or_plain_number(text, value):
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["abc", "-5%", "nan", "", "%", "inf"])
def test_bad_threshold_is_refused(text):
    with pytest.raises(ValueError):
        parse_threshold(text)


# ---------------------------------------------------------------- the comparison data


def _runs(*summaries: dict) -> list[Run]:
    return [Run(label=f"run{i}", summary=s) for i, s in enumerate(summaries, start=1)]


def test_compare_runs_values_changes_and_verdicts():
    comparison = compare_runs(_runs(_summary(tps=100.0, ttft_p95=200.0), _summary(tps=150.0, ttft_p95=300.0),
                                    _summary(tps=100.5, ttft_p95=100.0)))
    tps = compare_metric(comparison, "output_tokens_per_s")
    assert tps["values"] == [100.0, 150.0, 100.5]
    assert tps["change_pct"][0] is None and tps["change_pct"][1] == pytest.approx(50.0)
    assert tps["verdict"] == [None, "better", "same"]
    ttft = compare_metric(comparison, "ttft_p95_ms")
    assert ttft["change_pct"][1:] == [pytest.approx(50.0), pytest.approx(-50.0)]
    assert ttft["verdict"] == [None, "worse", "better"]
    assert comparison["regressions"] == [] and comparison["threshold_pct"] is None


def test_missing_baseline_value_gives_no_change():
    comparison = compare_runs(_runs(_summary(ttft_p95=None), _summary(ttft_p95=300.0)))
    ttft = compare_metric(comparison, "ttft_p95_ms")
    assert ttft["values"] == [None, 300.0]
    assert ttft["change_pct"] == [None, None] and ttft["verdict"] == [None, None]


def test_optional_metrics_only_when_a_run_has_them():
    plain = compare_runs(_runs(_summary(goodput={"requests_per_s": 2.0, "pct": 100.0, "bounds": {}}), _summary()))
    names = [m["name"] for m in plain["metrics"]]
    assert "goodput_requests_per_s" not in names, "goodput without SLO bounds repeats ok requests/s"
    assert "output_tokens_per_joule" not in names
    slo = {"requests_per_s": 1.5, "pct": 75.0, "bounds": {"ttft_ms": 300.0}}
    with_extra = compare_runs(_runs(
        _summary(goodput=slo, throughput={"requests_per_s": 2.0, "output_tokens_total": 1, "output_tokens_per_s": 9.0,
                                          "output_tokens_per_joule": 0.5}),
        _summary(goodput=dict(slo, requests_per_s=1.2))))
    goodput = compare_metric(with_extra, "goodput_requests_per_s")
    assert goodput["values"] == [1.5, 1.2] and goodput["verdict"][1] == "worse"
    assert compare_metric(with_extra, "output_tokens_per_joule")["values"] == [0.5, None]


def test_regressions_name_run_metric_and_change():
    comparison = compare_runs(_runs(_summary(tps=100.0), _summary(tps=100.0, ttft_p95=240.0)), threshold_pct=10.0)
    assert comparison["regressions"] == [{"run": "run2", "run_index": 1, "metric": "ttft_p95_ms", "baseline": 200.0,
                                          "value": 240.0, "change_pct": pytest.approx(20.0)}]


def test_differing_settings_are_named():
    comparison = compare_runs(_runs(_summary(threads=4), _summary(threads=8, max_tokens=512), _summary(threads=4)))
    differ = {d["setting"]: d["values"] for d in comparison["settings_differ"]}
    assert differ == {"threads/rate": ["4 threads", "8 threads", "4 threads"], "max_tokens": [256, 512, 256]}
    same = compare_runs(_runs(_summary(model="a"), _summary(model="b")))
    assert same["settings_differ"] == [], "different models at the same settings is the common case"


# ---------------------------------------------------------------- terminal table


def test_table_for_three_runs_fits_80_columns_and_marks_verdicts():
    comparison = compare_runs([Run(label="#12 qwen2.5-72b-instruct-awq", summary=_summary(tps=100.0)),
                               Run(label="#13 llama-3.1-70b-instruct", summary=_summary(tps=1234.5, ttft_p95=9000.0)),
                               Run(label="20261121-101500-deepseek-v3", summary=_summary(tps=99.0, ttft_p95=12000.0))])
    lines = table_lines(comparison)
    assert all(_cell_width(line) <= 80 for line in lines), max(lines, key=_cell_width)
    start = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    assert lines[start].split() == ["metric", "[1]", "[2]", "[3]"]
    table = lines[start:]
    tps = next(line for line in table if line.startswith("output tok/s"))
    assert "+1134% ↑ better" in tps and "-1.0% = same" in tps
    ttft = next(line for line in table if line.startswith("TTFT p95"))
    assert "+4400% ↑ worse" in ttft and "+5900% ↑ worse" in ttft


def test_five_runs_continue_in_a_second_block_and_long_settings_wrap():
    runs = [Run(label=f"#{i} model-{i}", summary=_summary(tps=100.0 + i)) for i in range(1, 6)]
    runs[1].summary["run"]["config"]["query"] = "请用三句话介绍你自己，并说明你能做什么" * 3
    lines = table_lines(compare_runs(runs))
    assert all(_cell_width(line) <= 80 for line in lines), max(lines, key=_cell_width)
    heads = [line.split() for line in lines if line.startswith("metric")]
    assert heads == [["metric", "[1]", "[2]", "[3]"], ["metric", "[1]", "[4]", "[5]"]]
    rows = [line.split() for line in lines if line.startswith("output tok/s")]
    assert rows == [["output", "tok/s", "101.0", "102.0", "+1.0%", "=", "same", "103.0", "+2.0%", "↑", "better"],
                    ["output", "tok/s", "101.0", "104.0", "+3.0%", "↑", "better", "105.0", "+4.0%", "↑", "better"]]
    legend = lines[1:lines.index("")]
    assert [line for line in legend if line.startswith("  [")] == [f"  [{i}] #{i} model-{i}" for i in range(1, 6)]
    two = legend.index("  [2] #2 model-2")  # its settings did not fit beside it: they wrap below, indented
    assert legend[two + 1].startswith("      4 threads, max_tokens 256 · 10.0 s")
    assert [line[:6] for line in legend[two + 1:two + 4]] == ["      "] * 3 and legend[two + 3].endswith("…")


def test_table_warns_when_settings_differ_and_lists_each_runs_settings():
    lines = table_lines(compare_runs(_runs(_summary(threads=2), _summary(threads=8))))
    text = "\n".join(lines)
    assert "[1] run1" in text and "2 threads" in text and "8 threads" in text and "openai-chat http://x/v1" in text
    assert "settings differ (threads/rate: 2 threads / 8 threads)" in text


def test_table_in_chinese_aligns_cjk_labels():
    lines = table_lines(compare_runs(_runs(_summary(), _summary(tps=50.0))), lang="zh")
    row = next(line for line in lines if line.startswith("输出 tok/s"))
    assert "-50.0% ↓ 更差" in row
    head = next(line for line in lines if line.startswith("指标"))
    assert _cell_width(row[:row.index("100.0")]) <= _cell_width(head)


def test_colour_only_when_asked():
    comparison = compare_runs(_runs(_summary(), _summary(tps=50.0)))
    assert not any("\033[" in line for line in table_lines(comparison))
    assert any("\033[31m" in line for line in table_lines(comparison, colour=True))


# ---------------------------------------------------------------- command line on run folders


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    return {
        "base": _write_summary(tmp_path / "base", _summary(ttft_p95=200.0)),
        "at_limit": _write_summary(tmp_path / "at_limit", _summary(ttft_p95=220.0)),
        "beyond": _write_summary(tmp_path / "beyond", _summary(ttft_p95=221.0)),
        "better": _write_summary(tmp_path / "better", _summary(ttft_p95=150.0, tps=150.0)),
    }


@pytest.mark.parametrize("threshold", ["10%", "10"])
def test_gate_passes_exactly_at_the_threshold(capsys, folders, threshold):
    code, out, _ = run_compare(capsys, ["--baseline", str(folders["base"]), str(folders["at_limit"]),
                                    "--fail-on-regression", threshold])
    assert code == 0
    assert "regression gate passed" in out


@pytest.mark.parametrize("threshold", ["10%", "10"])
def test_gate_fails_with_99_beyond_the_threshold_and_names_the_metric(capsys, folders, threshold):
    code, out, _ = run_compare(capsys, ["--baseline", str(folders["base"]), str(folders["beyond"]),
                                    "--fail-on-regression", threshold])
    assert code == EXIT_REGRESSION == 99
    assert "regression gate FAILED: 1 metric(s)" in out
    assert "beyond: TTFT p95 ms +10.5% (200 -> 221)" in out


def test_gate_checks_every_other_run_and_ignores_improvements(capsys, folders):
    code, out, _ = run_compare(capsys, ["--baseline", str(folders["base"]), str(folders["better"]), str(folders["beyond"]),
                                    "--fail-on-regression", "5%"])
    assert code == 99
    assert "beyond: TTFT p95" in out and "better:" not in out.split("regression gate")[1]
    assert run_compare(capsys, ["--baseline", str(folders["base"]), str(folders["better"]),
                            "--fail-on-regression", "0"])[0] == 0


def test_without_a_threshold_compare_exits_0_even_when_worse(capsys, folders):
    code, out, _ = run_compare(capsys, [str(folders["base"]), str(folders["beyond"])])
    assert code == 0 and "regression gate" not in out and "↑ worse" in out


@pytest.mark.parametrize("threshold", ["abc", "-3%", "ten%"])
def test_bad_threshold_exits_2_with_one_line(capsys, folders, threshold):
    code, out, err = run_compare(capsys, [str(folders["base"]), str(folders["beyond"]), "--fail-on-regression", threshold])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--fail-on-regression" in err


def test_fewer_than_two_runs_is_bad_usage(capsys, folders):
    code, _, err = run_compare(capsys, [str(folders["base"])])
    assert code == 2 and "at least two runs" in err
    code, _, err = run_compare(capsys, ["--baseline", str(folders["base"])])
    assert code == 2 and "--baseline ID plus one or more runs" in err


def test_folder_without_summary_exits_2_with_one_line(capsys, tmp_path, folders):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_compare(capsys, [str(folders["base"]), str(empty)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"sse-perf compare: error: {empty} is not a run folder (no summary.json)"]
    code, _, err = run_compare(capsys, [str(folders["base"]), str(tmp_path / "nope" / "run")])
    assert code == 2 and "no such run folder" in err


def test_summary_json_path_is_taken_as_its_folder(capsys, folders):
    code, out, _ = run_compare(capsys, [str(folders["base"] / "summary.json"), str(folders["better"])])
    assert code == 0 and "[1] base" in out


def test_id_without_a_history_database_exits_2(capsys, tmp_path, folders):
    code, _, err = run_compare(capsys, [str(folders["base"]), "3", "--output-dir", str(tmp_path / "none")])
    assert code == 2 and "no history database at" in err


def test_json_shape(capsys, folders):
    code, out, _ = run_compare(capsys, ["--baseline", str(folders["base"]), str(folders["beyond"]), "--json",
                                    "--fail-on-regression", "10%"])
    assert code == 99
    body = json.loads(out)
    assert set(body) >= {"runs", "metrics", "regressions", "baseline", "settings_differ", "threshold_pct"}
    assert [r["label"] for r in body["runs"]] == ["base", "beyond"]
    assert set(body["runs"][0]) >= {"label", "id", "run_dir", "model_name", "settings"}
    for metric in body["metrics"]:
        assert set(metric) >= {"name", "direction", "values", "change_pct", "verdict"}
        assert len(metric["values"]) == len(metric["change_pct"]) == len(metric["verdict"]) == 2
        assert metric["direction"] in ("higher", "lower")
    assert body["regressions"][0]["metric"] == "ttft_p95_ms" and body["threshold_pct"] == 10.0


def test_options_may_come_between_runs(capsys, folders):
    code, out, _ = run_compare(capsys, [str(folders["base"]), "--json", str(folders["better"])])
    assert code == 0 and [r["label"] for r in json.loads(out)["runs"]] == ["base", "better"]


def test_unwritable_html_path_exits_2(capsys, tmp_path, folders):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_compare(capsys, [str(folders["base"]), str(folders["better"]), "--html", str(blocker / "c.html")])
    assert code == 2 and "cannot write" in err


def test_load_text_names_the_load_model():
    from sse_perf_tool.compare import load_text

    assert load_text(_summary(threads=1)) == "1 thread"
    open_loop = _summary()
    open_loop["run"]["load"] = {"model": "open", "threads": 64, "rate": 4.0, "arrival": "poisson", "sweep": None}
    assert load_text(open_loop) == "open loop 4 req/s poisson"
    sweep = _summary()
    sweep["run"]["load"]["sweep"] = {"kind": "rate", "values": [1, 2.5, 4], "cooldown_s": 0}
    assert load_text(sweep) == "sweep rate 1,2.5,4"


def test_same_folder_name_twice_gets_distinct_labels(capsys, tmp_path):
    a = _write_summary(tmp_path / "x" / "run", _summary())
    b = _write_summary(tmp_path / "y" / "run", _summary(tps=120.0))
    body = json.loads(run_compare(capsys, [str(a), str(b), "--json"])[1])
    assert [r["label"] for r in body["runs"]] == ["run", "run (2)"]


# ---------------------------------------------------------------- HTML document (no browser)


@pytest.fixture(scope="module")
def html_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("html")
    return [make_run_folder(root / "a", "qwen-7b", ttft_ms=180, tpot_ms=20, gpu_util=70, seconds=12),
            make_run_folder(root / "b", "qwen-14b", ttft_ms=320, tpot_ms=34, gpu_util=90, seconds=12, seed=2),
            make_run_folder(root / "c", "<b>llama</b>", ttft_ms=150, tpot_ms=17, seconds=12, seed=3, threads=8)]


def _render(runs: list[Path], threshold: Optional[float] = None, lang: str = "en") -> str:
    from sse_perf_tool.compare import load_runs
    from sse_perf_tool.compare_report import render_compare

    loaded = load_runs([str(p) for p in runs], lambda: None, lambda db, text: 0)
    return render_compare(compare_runs(loaded, threshold), loaded, lang=lang)


def test_html_is_self_contained_with_a_csp_pinning_each_script(html_runs):
    import base64
    import hashlib

    html = _render(html_runs, threshold=10.0)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external resource"
    import html as html_module

    csp = html_module.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 2  # Chart.js and compare_app.js
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_html_escapes_labels_and_marks_cells(html_runs):
    html = _render(html_runs, threshold=10.0)
    assert "<b>llama</b>" not in html and "&lt;b&gt;llama&lt;/b&gt;" in html
    assert "cmp-better" in html and "cmp-worse" in html and "cmp-regression" in html
    assert 'id="gate-badge"' in html


def test_html_in_chinese(html_runs):
    html = _render(html_runs, lang="zh")
    assert 'lang="zh-CN"' in html and "对比报告" in html and "更差" in html


def test_every_language_has_every_string():
    from sse_perf_tool.compare_report import STRINGS

    keys = set(STRINGS["en"])
    assert all(set(strings) == keys for strings in STRINGS.values())
    assert all(f"m_{name}" in keys for name in METRIC_BY_NAME)


def test_html_of_folders_with_only_a_summary(folders):
    """No timeseries.csv and no records.jsonl: the table and bars, no empty charts."""
    html = _render([folders["base"], folders["beyond"]], threshold=10.0)
    assert 'id="compare-table"' in html and '<section id="timeseries"' not in html
    assert 'class="cdf-chart"' not in html and html.count("No successful request to draw.") == 3
