"""Fabricated run folders for `sse-perf compare`: consistent records -> summary (through
stats.summarise) and per-second rows from the same records, so a test sets TTFT, TPOT and load
exactly; the comparison reports rendered from them that the browser tests check and
benchmarks/screenshots.py photographs; and the compare tests' helpers (a metric by name, the
compare CLI with its output). Used by tests/unit/test_compare.py, tests/integration/test_compare.py,
tests/browser/test_compare_report.py and benchmarks/screenshots.py."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Optional, Sequence

from sse_perf_tool.cli.compare import compare_main
from sse_perf_tool.compare import compare_runs, load_runs
from sse_perf_tool.compare_report import render_compare
from sse_perf_tool.records import RECORD_FIELDS
from sse_perf_tool.stats import summarise

T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC
GPU_DEVICES = ("local:0", "local:1")


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


def write_compare_report(folders: Sequence[Path], target: Path, threshold=None, lang: str = "en") -> Path:
    """The comparison report of `folders` (the first is the baseline), written to `target`."""
    runs = load_runs([str(f) for f in folders], lambda: None, lambda db, text: 0)
    target.write_text(render_compare(compare_runs(runs, threshold), runs, lang=lang), encoding="utf-8")
    return target


def make_compare_reports(root: Path) -> dict[str, Path]:
    """Three models at the same settings (90 s, 8 threads): qwen-14b slower than the qwen-7b baseline,
    llama faster with a few errors; GPU utilisation for two of them ("en", "zh": threshold 10 %). And a
    sweep comparison ("sweep"): two thread sweeps and one plain run. The folders go under `root`."""
    models = [make_run_folder(root / "20260101-100000-qwen2.5-7b", "qwen2.5-7b", ttft_ms=180, tpot_ms=20,
                              gpu_util=72, seconds=90, threads=8, seed=1),
              make_run_folder(root / "20260101-101000-qwen2.5-14b", "qwen2.5-14b", ttft_ms=320, tpot_ms=34,
                              gpu_util=91, seconds=90, threads=8, seed=2),
              make_run_folder(root / "20260101-102000-llama-3.1-8b", "llama-3.1-8b", ttft_ms=150, tpot_ms=17,
                              seconds=90, threads=8, seed=3, error_rate=0.02)]
    sweeps = [make_run_folder(root / "sweep-qwen-7b", "qwen-7b", ttft_ms=180, tpot_ms=20, seconds=15,
                              sweep=[1, 4, 8, 16], seed=4),
              make_run_folder(root / "sweep-qwen-14b", "qwen-14b", ttft_ms=300, tpot_ms=32, seconds=15,
                              sweep=[1, 4, 8, 16], seed=5),
              make_run_folder(root / "single-llama", "llama-8b", ttft_ms=150, tpot_ms=17, seconds=30, threads=8,
                              seed=6)]
    return {"en": write_compare_report(models, root / "compare.html", threshold=10.0),
            "zh": write_compare_report(models, root / "compare-zh.html", threshold=10.0, lang="zh"),
            "sweep": write_compare_report(sweeps, root / "compare-sweep.html")}


def compare_metric(comparison: dict, name: str) -> dict:
    """The entry of `comparison["metrics"]` named `name`."""
    return next(m for m in comparison["metrics"] if m["name"] == name)


def run_compare(capsys, argv: list) -> tuple[int, str, str]:
    """`sse-perf compare ARGV`: (exit code, stdout, stderr)."""
    code = compare_main(argv)
    out, err = capsys.readouterr()
    return code, out, err
