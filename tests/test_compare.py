"""`sse-perf compare`: metric directions, change %, the ±1 % band, the regression threshold, target
loading (history ids, run folders, mixed), the terminal table, --json, exit codes, and the HTML
document's self-containment (the browser checks are in test_compare_browser.py).

`make_run_folder` fabricates consistent run folders (records -> summary through stats.summarise,
per-second rows from the same records) so a test sets TTFT, TPOT and load exactly; three real
demo runs against the embedded mock server (one module fixture) cover the history path.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from pathlib import Path
from typing import Optional, Sequence

import pytest

from sse_perf_tool import cli
from sse_perf_tool.exit_codes import EXIT_REGRESSION
from sse_perf_tool.compare import (HIGHER, LOWER, METRIC_BY_NAME, Run, change_pct, compare_runs, is_regression,
                                   parse_threshold, table_lines, verdict)
from sse_perf_tool.cli.compare import compare_main
from sse_perf_tool.live import _cell_width
from sse_perf_tool.records import RECORD_FIELDS
from sse_perf_tool.stats import summarise

T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC
GPU_DEVICES = ("local:0", "local:1")


# ---------------------------------------------------------------- fabricated run folders


def _request(rng: random.Random, request_id: int, thread_id: int, at: float, ttft_ms: float, tpot_ms: float,
             fail: bool, level) -> dict:
    record = dict.fromkeys(RECORD_FIELDS)
    record.update(request_id=request_id, thread_id=thread_id, query="你是谁", started_at=T0 + at,
                  scheduled_at=T0 + at, queue_ms=0.0, level=level, warmup=False, itl_ms=[], chunks=0,
                  output_tokens=0, token_source="usage", output_chars=0)
    if fail:
        record.update(ok=False, error_kind="http_status", error="HTTP 500: overloaded", http_status=500,
                      total_ms=round(rng.uniform(20, 60), 3))
        return record
    ttft = rng.lognormvariate(math.log(ttft_ms), 0.18)
    tokens = rng.randint(100, 160)
    tpot = tpot_ms * rng.uniform(0.9, 1.1)
    itl = [round(tpot * rng.uniform(0.7, 1.3), 3) for _ in range(tokens - 1)]
    e2e = ttft + sum(itl)
    record.update(ok=True, http_status=200, ttfb_ms=round(ttft * 0.98, 3), ttft_ms=round(ttft, 3),
                  ttfo_ms=round(ttft, 3), e2e_ms=round(e2e, 3), total_ms=round(e2e + 0.5, 3), itl_ms=itl,
                  tpot_ms=round((e2e - ttft) / (tokens - 1), 3), chunks=tokens, output_tokens=tokens,
                  output_chars=tokens * 3, prompt_tokens=3, ttft_from_scheduled_ms=round(ttft, 3),
                  e2e_from_scheduled_ms=round(e2e, 3))
    return record


def _closed_loop(rng, records: list, threads: int, start_s: float, seconds: float, ttft_ms: float,
                 tpot_ms: float, error_rate: float, level=None) -> None:
    """Each thread sends its next request when the last ends, for `seconds` from `start_s`."""
    slow = 1 + 0.03 * threads  # a busier server is slower
    for thread in range(1, threads + 1):
        at = start_s + 0.05 * (thread - 1)
        while at < start_s + seconds:
            rec = _request(rng, 0, thread, at, ttft_ms * slow, tpot_ms * slow, rng.random() < error_rate, level)
            records.append(rec)
            at += rec["total_ms"] / 1000.0 + 0.01
    for i, rec in enumerate(sorted(records, key=lambda r: r["started_at"]), start=1):
        rec["request_id"] = i


def _pct(values: list, q: float) -> Optional[float]:
    from sse_perf_tool.stats import percentile

    return percentile(sorted(values), q) if values else None


def _timeseries(records: list, seconds: int, rng, gpu_util: Optional[float], levels=None) -> list[dict]:
    rows = []
    ok_total = done_total = 0
    for k in range(seconds):
        active = [r for r in records if r["started_at"] - T0 < k + 1 and r["started_at"] - T0 + r["total_ms"] / 1000 > k]
        ended = [r for r in records if k <= r["started_at"] - T0 + r["total_ms"] / 1000 < k + 1]
        ok = [r for r in ended if r["ok"]]
        tokens = 0.0
        for r in records:  # tokens spread evenly over each request's generation
            if not r["ok"]:
                continue
            first = r["started_at"] - T0 + r["ttft_ms"] / 1000
            last = r["started_at"] - T0 + r["e2e_ms"] / 1000
            overlap = min(last, k + 1) - max(first, k)
            if overlap > 0 and last > first:
                tokens += r["output_tokens"] * overlap / (last - first)
        ok_total += len(ok)
        done_total += len(ended)
        row = {"second": k, "active_threads": len({r["thread_id"] for r in active}),
               "requests_started": sum(1 for r in records if k <= r["started_at"] - T0 < k + 1),
               "requests_ok": len(ok), "requests_failed": len(ended) - len(ok), "output_tokens": round(tokens),
               "success_rate_pct": 100.0 * ok_total / done_total if done_total else None,
               "phase": "measure", "level": None}
        for family in ("ttft", "tpot", "e2e"):
            values = [r[f"{family}_ms"] for r in ok]
            row[f"{family}_p50_ms"] = _pct(values, 50)
            row[f"{family}_p95_ms"] = _pct(values, 95)
        if levels:
            row["level"] = next((v for v, a, b in levels if a <= k < b), None)
        if gpu_util is not None:
            busy = 1.0 if active else 0.05
            for device in GPU_DEVICES:
                row[f"gpu[{device}].util_pct"] = round(min(100.0, max(0.0, gpu_util * busy + rng.gauss(0, 3))), 1)
        rows.append(row)
    return rows


def make_run_folder(path: Path, model_name: str, *, ttft_ms: float = 200.0, tpot_ms: float = 20.0,
                    threads: int = 4, seconds: float = 20.0, seed: int = 1, gpu_util: Optional[float] = None,
                    sweep: Optional[Sequence[int]] = None, error_rate: float = 0.0, max_tokens: Optional[int] = 256,
                    summary_patch: Optional[dict] = None) -> Path:
    """A run folder (summary.json, records.jsonl, timeseries.csv) of a closed-loop run, or of a thread
    sweep (`sweep` = levels of `seconds` each). `gpu_util` adds two GPUs' utilisation columns and the
    summary's `gpu` section with energy, hence tokens per joule. `summary_patch` overrides
    top-level summary sections (for exact figures in unit tests)."""
    rng = random.Random(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    levels = []
    if sweep:
        for i, level in enumerate(sweep):
            mine: list[dict] = []
            _closed_loop(rng, mine, level, i * seconds, seconds, ttft_ms, tpot_ms, error_rate, level)
            levels.append((level, i * seconds, (i + 1) * seconds, mine))
            records += mine
        for i, rec in enumerate(sorted(records, key=lambda r: r["started_at"]), start=1):
            rec["request_id"] = i
    else:
        _closed_loop(rng, records, threads, 0.0, seconds, ttft_ms, tpot_ms, error_rate)
    last_end = max(r["started_at"] + r["total_ms"] / 1000 for r in records) - T0
    duration = last_end - min(r["started_at"] for r in records) + T0
    n_seconds = math.ceil(last_end)
    rows = _timeseries(records, n_seconds, rng, gpu_util, [(v, a, b) for v, a, b, _ in levels])
    load_threads = max(sweep) if sweep else threads
    summary = {"run": {
        "started_at": T0, "ended_at": T0 + last_end, "duration_s": round(duration, 3), "api": "openai-chat",
        "base_url": "http://gpu-1:8000/v1", "threads": load_threads, "ramp_up_s": 0.0, "model_name": model_name,
        "load": {"model": "closed", "threads": load_threads, "rate": None, "arrival": None, "seed": seed,
                 "warmup_s": None, "warmup_requests": None,
                 "sweep": {"kind": "threads", "values": list(sweep), "cooldown_s": 0.0} if sweep else None},
        "interrupted": False, "tool_version": "0.1.0",
        "config": {"api": "openai-chat", "model": model_name, "max_tokens": max_tokens, "query": "你是谁",
                   "param_file": None, "datasets": [], "threads": load_threads, "requests": None,
                   "duration_s": seconds, "api_key": "app-…9f3a"},
        "stopped_early": None}}
    summary.update(summarise(records, duration))
    if sweep:
        summary["levels"] = []
        for value, start, end, mine in levels:
            level_duration = max(r["started_at"] + r["total_ms"] / 1000 for r in mine) - min(r["started_at"] for r in mine)
            block = {"level": {"threads": value}, "from_s": start, "to_s": end, "warmup_to_s": None,
                     **summarise(mine, level_duration), "meets_slo": None}
            block.pop("datasets", None)
            summary["levels"].append(block)
        summary["sweep"] = {"kind": "threads", "values": list(sweep), "best_level": None}
    if gpu_util is not None:
        energy = 300.0 * gpu_util / 100 * duration
        summary["gpu"] = {d: {"util_pct_mean": gpu_util, "util_pct_max": min(100.0, gpu_util + 8),
                              "mem_used_mib_max": 60000, "power_w_mean": 300.0 * gpu_util / 100,
                              "energy_j": energy} for d in GPU_DEVICES}
        summary["throughput"]["output_tokens_per_joule"] = summary["throughput"]["output_tokens_total"] / (2 * energy)
    summary.update(summary_patch or {})
    (path / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(path / "records.jsonl", "w", encoding="utf-8") as fh:
        for rec in sorted(records, key=lambda r: r["started_at"] + r["total_ms"] / 1000):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    columns = list(rows[0])
    with open(path / "timeseries.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return path


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


def _metric(comparison: dict, name: str) -> dict:
    return next(m for m in comparison["metrics"] if m["name"] == name)


def run_cli(capsys, argv: list) -> tuple[int, str, str]:
    code = compare_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


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
              "output_tokens_per_joule"}
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
    tps = _metric(comparison, "output_tokens_per_s")
    assert tps["values"] == [100.0, 150.0, 100.5]
    assert tps["change_pct"][0] is None and tps["change_pct"][1] == pytest.approx(50.0)
    assert tps["verdict"] == [None, "better", "same"]
    ttft = _metric(comparison, "ttft_p95_ms")
    assert ttft["change_pct"][1:] == [pytest.approx(50.0), pytest.approx(-50.0)]
    assert ttft["verdict"] == [None, "worse", "better"]
    assert comparison["regressions"] == [] and comparison["threshold_pct"] is None


def test_missing_baseline_value_gives_no_change():
    comparison = compare_runs(_runs(_summary(ttft_p95=None), _summary(ttft_p95=300.0)))
    ttft = _metric(comparison, "ttft_p95_ms")
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
    goodput = _metric(with_extra, "goodput_requests_per_s")
    assert goodput["values"] == [1.5, 1.2] and goodput["verdict"][1] == "worse"
    assert _metric(with_extra, "output_tokens_per_joule")["values"] == [0.5, None]


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


def test_table_for_three_runs_fits_100_columns_and_marks_verdicts():
    comparison = compare_runs([Run(label="#12 qwen2.5-72b-instruct-awq", summary=_summary(tps=100.0)),
                               Run(label="#13 llama-3.1-70b-instruct", summary=_summary(tps=1234.5, ttft_p95=9000.0)),
                               Run(label="20261121-101500-deepseek-v3", summary=_summary(tps=99.0, ttft_p95=12000.0))])
    lines = table_lines(comparison)
    start = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    table = lines[start:]
    assert all(_cell_width(line) <= 100 for line in table), max(table, key=_cell_width)
    tps = next(line for line in table if line.startswith("output tok/s"))
    assert "+1134% ↑ better" in tps and "-1.0% = same" in tps
    ttft = next(line for line in table if line.startswith("TTFT p95"))
    assert "+4400% ↑ worse" in ttft and "+5900% ↑ worse" in ttft


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
    code, out, _ = run_cli(capsys, ["--baseline", str(folders["base"]), str(folders["at_limit"]),
                                    "--fail-on-regression", threshold])
    assert code == 0
    assert "regression gate passed" in out


@pytest.mark.parametrize("threshold", ["10%", "10"])
def test_gate_fails_with_99_beyond_the_threshold_and_names_the_metric(capsys, folders, threshold):
    code, out, _ = run_cli(capsys, ["--baseline", str(folders["base"]), str(folders["beyond"]),
                                    "--fail-on-regression", threshold])
    assert code == EXIT_REGRESSION == 99
    assert "regression gate FAILED: 1 metric(s)" in out
    assert "beyond: TTFT p95 ms +10.5% (200 -> 221)" in out


def test_gate_checks_every_other_run_and_ignores_improvements(capsys, folders):
    code, out, _ = run_cli(capsys, ["--baseline", str(folders["base"]), str(folders["better"]), str(folders["beyond"]),
                                    "--fail-on-regression", "5%"])
    assert code == 99
    assert "beyond: TTFT p95" in out and "better:" not in out.split("regression gate")[1]
    assert run_cli(capsys, ["--baseline", str(folders["base"]), str(folders["better"]),
                            "--fail-on-regression", "0"])[0] == 0


def test_without_a_threshold_compare_exits_0_even_when_worse(capsys, folders):
    code, out, _ = run_cli(capsys, [str(folders["base"]), str(folders["beyond"])])
    assert code == 0 and "regression gate" not in out and "↑ worse" in out


@pytest.mark.parametrize("threshold", ["abc", "-3%", "ten%"])
def test_bad_threshold_exits_2_with_one_line(capsys, folders, threshold):
    code, out, err = run_cli(capsys, [str(folders["base"]), str(folders["beyond"]), "--fail-on-regression", threshold])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--fail-on-regression" in err


def test_fewer_than_two_runs_is_bad_usage(capsys, folders):
    code, _, err = run_cli(capsys, [str(folders["base"])])
    assert code == 2 and "at least two runs" in err
    code, _, err = run_cli(capsys, ["--baseline", str(folders["base"])])
    assert code == 2 and "--baseline ID plus one or more runs" in err


def test_folder_without_summary_exits_2_with_one_line(capsys, tmp_path, folders):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_cli(capsys, [str(folders["base"]), str(empty)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"sse-perf compare: error: {empty} is not a run folder (no summary.json)"]
    code, _, err = run_cli(capsys, [str(folders["base"]), str(tmp_path / "nope" / "run")])
    assert code == 2 and "no such run folder" in err


def test_summary_json_path_is_taken_as_its_folder(capsys, folders):
    code, out, _ = run_cli(capsys, [str(folders["base"] / "summary.json"), str(folders["better"])])
    assert code == 0 and "[1] base" in out


def test_id_without_a_history_database_exits_2(capsys, tmp_path, folders):
    code, _, err = run_cli(capsys, [str(folders["base"]), "3", "--output-dir", str(tmp_path / "none")])
    assert code == 2 and "no history database at" in err


def test_json_shape(capsys, folders):
    code, out, _ = run_cli(capsys, ["--baseline", str(folders["base"]), str(folders["beyond"]), "--json",
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
    code, out, _ = run_cli(capsys, [str(folders["base"]), "--json", str(folders["better"])])
    assert code == 0 and [r["label"] for r in json.loads(out)["runs"]] == ["base", "better"]


def test_unwritable_html_path_exits_2(capsys, tmp_path, folders):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, [str(folders["base"]), str(folders["better"]), "--html", str(blocker / "c.html")])
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
    body = json.loads(run_cli(capsys, [str(a), str(b), "--json"])[1])
    assert [r["label"] for r in body["runs"]] == ["run", "run (2)"]


# ---------------------------------------------------------------- real demo runs and the history


DEMO_RUNS = (("qwen-7b", 2), ("qwen-14b", 4), ("llama-8b", 8))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """Three real demo runs (embedded mock server) with different thread counts: ids 1, 2, 3.

    Each request takes ~35 ms at the mock and each thread sends three, so the run's length is set
    by the mock's latency, not by client start-up: 2x the threads serve ~2x the requests/s."""
    out = tmp_path_factory.mktemp("demo")
    for name, threads in DEMO_RUNS:
        code = cli.main(["--demo", "--demo-mock", "ttft_ms=30,itl_ms=1,tokens=6", "--threads", str(threads),
                         "--requests", str(3 * threads), "--output-dir", str(out),
                         "--quiet", "--model-name", name])
        assert code == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    return {"out": out, "db": out / "history.db",
            "folders": {name: next(f for f in folders if f.name.endswith(name)) for name, _ in DEMO_RUNS}}


def test_history_ids_are_labelled_by_model_name(capsys, demo):
    code, out, _ = run_cli(capsys, ["1", "2", "3", "--output-dir", str(demo["out"])])
    assert code == 0
    assert "[1] #1 qwen-7b" in out and "[2] #2 qwen-14b" in out and "[3] #3 llama-8b" in out
    assert "settings differ (threads/rate: 2 threads / 4 threads / 8 threads)" in out
    rps = next(line for line in out.splitlines() if line.startswith("requests/s"))
    assert rps.count("↑ better") == 2, "more threads against the mock serve more requests/s"


def test_ids_and_folders_mix(capsys, demo):
    code, out, _ = run_cli(capsys, ["#1", str(demo["folders"]["llama-8b"]), "--history", str(demo["db"]), "--json"])
    assert code == 0
    body = json.loads(out)
    assert body["runs"][0]["id"] == 1 and body["runs"][0]["label"] == "#1 qwen-7b"
    assert body["runs"][1]["id"] is None and body["runs"][1]["label"] == demo["folders"]["llama-8b"].name
    assert _metric(body, "requests_per_s")["verdict"][1] == "better"


def test_unknown_id_exits_2_naming_the_closest_ids(capsys, demo):
    code, out, err = run_cli(capsys, ["1", "7", "--history", str(demo["db"])])
    assert code == 2 and out == ""
    assert err.strip() == "sse-perf compare: error: unknown run id '7' (closest known: 1, 2, 3)"
    code, _, err = run_cli(capsys, ["qwen", "1", "--history", str(demo["db"])])
    assert code == 2 and "closest known:" in err


def test_baseline_gate_on_history_runs(capsys, demo):
    """Run #1 (2 threads) against #3 (8 threads): far more throughput, so no throughput regression;
    --fail-on-regression 1000% lets nothing fail, 0% fails on any worse metric."""
    assert run_cli(capsys, ["--baseline", "1", "3", "--history", str(demo["db"]), "--fail-on-regression", "1000%"])[0] == 0
    body = json.loads(run_cli(capsys, ["--baseline", "3", "1", "--history", str(demo["db"]), "--json",
                                       "--fail-on-regression", "0%"])[1])
    assert "requests_per_s" in {r["metric"] for r in body["regressions"]}


def test_html_of_history_runs_is_written(capsys, demo, tmp_path):
    target = tmp_path / "out" / "cmp.html"
    code, out, _ = run_cli(capsys, ["1", "2", "3", "--history", str(demo["db"]), "--html", str(target)])
    assert code == 0 and f"comparison report: {target}" in out
    html = target.read_text("utf-8")
    assert "#3 llama-8b" in html and 'id="compare-table"' in html


def test_unfinished_history_run_cannot_be_compared(capsys, demo, tmp_path):
    from sse_perf_tool.history import History

    db_path = tmp_path / "h.db"
    import shutil

    shutil.copy(demo["db"], db_path)
    db = History(str(db_path))
    run_id = db.begin_run(tmp_path, {"started_at": T0, "model_name": "crashed"})
    db.close()
    code, _, err = run_cli(capsys, ["1", str(run_id), "--history", str(db_path)])
    assert code == 2 and f"run #{run_id} has no summary" in err


def test_sse_perf_compare_is_dispatched_by_the_cli(capsys, demo):
    code = cli.main(["compare", "1", "2", "--history", str(demo["db"]), "--json"])
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 2


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
