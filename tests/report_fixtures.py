"""Fabricates a realistic, internally consistent run folder (records.jsonl, timeseries.csv,
summary.json) for the report tests and benchmarks/bench_report.py.

Closed loop like the real runner: each thread sends its next request when the last ends;
summary figures come from the records through `sse_perf_tool.stats`, per-second rows from
the same records, so every number in a report can be checked against the records.
`make_sweep_run_dir` (a thread sweep with warm-up, cooldown and SLOs) and
`make_open_loop_run_dir` (Poisson arrivals, queue times) fabricate the issue-5 fields;
`make_run_dir(client=...)` adds the load generator's self-check (client.* columns and section).
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import operator
import random
from pathlib import Path
from typing import Iterable, Optional

from sse_perf_tool.selfcheck import machine_busy_from, saturation_from
from sse_perf_tool.stats import distribution, percentile, summarise

XSS_PAYLOAD = '</script><img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=1;alert(2)</script>'
RUN_STARTED_AT = 1_735_725_600.0  # 2025-01-01 10:00:00 UTC
API_KEY_MASKED = "app-…9f3a"
GPU_DEVICES = ("local:0", "local:1", "ssh://gpu-node-2:0")
GPU_METRICS = ("util_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w", "sm_clock_mhz", "energy_j")
GPU_MEM_TOTAL_MIB = 81559
SERVER_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc")
DATASETS = {  # name -> (output tokens low, high, TTFT factor)
    "chat-short": (40, 110, 1.0),
    "code-gen": (120, 260, 1.3),
    "long-context": (60, 160, 2.6),
}
QUERIES = (
    "你是谁",
    "Explain the difference between TCP and UDP in two sentences.",
    "用三句话介绍一下长城的历史。",
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Summarise the following meeting notes and list the action items with owners: "
    "the team reviewed the Q3 roadmap, agreed to postpone the billing migration, and asked "
    "infra to provision two more inference nodes before the launch.",
    "把下面这段话翻译成英文：今天的天气很好，我们去公园散步吧。",
    "What are the main causes of inflation?",
    "Give me a SQL query that finds duplicate emails in a users table.",
)
ERROR_KINDS = (  # kind, weight, message, http status
    ("http_status", 5, "HTTP 500: Internal Server Error: upstream model overloaded, retry later", 500),
    ("http_status", 2, "HTTP 429: Too Many Requests: rate limit exceeded for app", 429),
    ("timeout", 3, "timeout: no byte within 60 s (first byte)", None),
    ("truncated", 3, "stream ended before message_end (connection reset by peer)", 200),
)

CLIENT_COLUMNS = ("client.lag_p50_ms", "client.lag_p99_ms", "client.cpu_pct")
TIMESERIES_COLUMNS = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed",
    "output_tokens", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms",
    "e2e_p50_ms", "e2e_p95_ms", "success_rate_pct",
)


def _config(threads: int, seconds: float, ramp_up_s: float, requests: int, model_name: str,
            query: str, with_datasets: bool, header: str) -> dict:
    return {
        "host": "localhost", "port": 8000, "base_url": "http://127.0.0.1:8000/v1",
        "api": "openai-chat", "api_key": API_KEY_MASKED, "api_key_file": None, "query": query,
        "param_file": "examples/datasets.jsonl" if with_datasets else None, "threads": threads,
        "ramp_up": ramp_up_s, "duration": seconds, "requests": requests, "timeout": 60.0,
        "model": "Qwen/Qwen2.5-7B-Instruct", "max_tokens": 512, "temperature": 0.7, "top_p": None,
        "header": [header],
        "user": "sse-perf", "conversation_id": "", "output_dir": "./report", "html_report": None,
        "model_name": model_name, "quiet": False, "demo": True, "lang": "en",
    }


def make_run_dir(path: Path, seconds: int = 30, requests: Optional[int] = None, threads: int = 4,
                 ramp_up_s: float = 2.0, with_gpu: bool = False, with_datasets: bool = False,
                 xss: bool = False, errors: bool = True, interrupted: bool = False,
                 extra_columns: Iterable[str] = (), model_name: str = "qwen2.5-7b-demo",
                 seed: int = 7, client: Optional[str] = None) -> Path:
    """Write a run folder under `path` (created) and return it.

    `requests` defaults to one request per thread-second. `extra_columns` adds synthetic
    numeric series with those names to timeseries.csv (for the "Other" charts). `client`:
    None for a run folder from before the self-check, "ok" for a healthy load generator,
    "saturated" for one saturated from second 12 on (mid-run in a shorter run), "busy" for a
    machine busy with other work from second 12 on (the same lag, while sse-perf idles).
    """
    rng = random.Random(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if requests is None:
        requests = max(1, int(seconds * threads))
    thread_start = [ramp_up_s * i / threads for i in range(threads)]
    available = sum(max(0.5, seconds - s) for s in thread_start)
    slot_s = available / requests  # seconds one request occupies its thread, on average
    burst = (seconds * 0.45, seconds * 0.55)  # a window with many errors, as in real incidents
    dataset_names = list(DATASETS)

    records: list[dict] = []
    free = [(thread_start[i], i + 1) for i in range(threads)]
    heapq.heapify(free)
    while free and len(records) < requests:
        at, thread_id = heapq.heappop(free)
        if at >= seconds:
            continue
        dataset = rng.choice(dataset_names) if with_datasets else None
        low, high, ttft_factor = DATASETS[dataset] if dataset else (80, 120, 1.0)
        budget_ms = slot_s * 1000 * rng.uniform(0.7, 0.95)
        load = 0.6 + 0.4 * min(1.0, at / max(1.0, ramp_up_s + 1))
        ttft = min(budget_ms * 0.5, rng.lognormvariate(math.log(150 * ttft_factor * load), 0.25))
        tokens = rng.randint(low, high)
        failing = errors and rng.random() < (0.25 if burst[0] <= at < burst[1] else 0.02)
        record = _make_record(rng, len(records) + 1, thread_id, at, dataset, budget_ms, ttft, tokens, failing)
        records.append(record)
        ended = at + record["total_ms"] / 1000.0
        heapq.heappush(free, (ended + rng.uniform(0.0005, 0.003), thread_id))

    ok_records = [r for r in records if r["ok"]]
    if xss:
        model_name = "demo " + XSS_PAYLOAD
        if ok_records:  # the payload must be rendered: in both "slowest" tables
            max(ok_records, key=lambda r: r["e2e_ms"])["query"] = XSS_PAYLOAD
            max(ok_records, key=lambda r: r["ttft_ms"])["query"] = XSS_PAYLOAD
            if with_datasets:
                ok_records[0]["dataset"] = XSS_PAYLOAD
        failed = [r for r in records if not r["ok"]]
        if failed:
            failed[0]["error"] = failed[0]["error"] + " " + XSS_PAYLOAD

    # records.jsonl in finish order, as the runner appends them
    records_by_end = sorted(records, key=lambda r: r["started_at"] + r["total_ms"] / 1000.0)
    with open(path / "records.jsonl", "w", encoding="utf-8") as handle:
        for record in records_by_end:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    first_send = min(r["started_at"] for r in records)
    last_end = max(r["started_at"] + r["total_ms"] / 1000.0 for r in records)
    n_seconds = max(1, math.ceil(last_end - RUN_STARTED_AT))
    rows = _timeseries(records, n_seconds, thread_start, threads)
    gpu_summary = None
    columns = list(TIMESERIES_COLUMNS)
    if with_gpu:
        gpu_summary = _add_gpu(rows, rng, threads)
        columns += [f"gpu[{d}].{m}" for d in GPU_DEVICES for m in GPU_METRICS]  # the runner's order
        columns += [f"server[{m}]" for m in SERVER_METRICS]
    client_summary = _add_client(rows, client, seed) if client else None
    if client_summary:
        columns += CLIENT_COLUMNS
    for name in extra_columns:
        for k, row in enumerate(rows):
            row[name] = round(5 + 3 * math.sin(k / 4) + rng.random(), 3)
        columns.append(name)
    with open(path / "timeseries.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])

    duration = last_end - first_send
    total, ok = len(records), len(ok_records)
    tokens_total = sum(r["output_tokens"] for r in records)
    error_counts: dict[str, int] = {}
    for r in records:
        if not r["ok"]:
            error_counts[r["error_kind"]] = error_counts.get(r["error_kind"], 0) + 1

    def dist(field: str) -> dict:
        return distribution(r[field] for r in ok_records if r[field] is not None)

    itl_all = [v for r in ok_records for v in r["itl_ms"]]
    summary = {
        "run": {
            "started_at": RUN_STARTED_AT, "ended_at": RUN_STARTED_AT + (last_end - RUN_STARTED_AT),
            "duration_s": round(duration, 3), "api": "openai-chat", "base_url": "http://127.0.0.1:8000/v1",
            "threads": threads, "ramp_up_s": ramp_up_s, "model_name": model_name, "interrupted": interrupted,
            "config": _config(threads, seconds, ramp_up_s, requests, model_name,
                              XSS_PAYLOAD if xss else "你是谁", with_datasets,
                              "X-Trace: " + (XSS_PAYLOAD if xss else "report-fixture")),
            "tool_version": "0.1.0",
        },
        "requests": {"total": total, "ok": ok, "failed": total - ok,
                     "success_rate_pct": 100.0 * ok / total if total else None},
        "errors": error_counts,
        "throughput": {"requests_per_s": total / duration if duration > 0 else None,
                       "output_tokens_total": tokens_total,
                       "output_tokens_per_s": tokens_total / duration if duration > 0 else None},
        "ttfb_ms": dist("ttfb_ms"), "ttft_ms": dist("ttft_ms"), "ttfo_ms": dist("ttfo_ms"),
        "tpot_ms": dist("tpot_ms"), "itl_ms": distribution(itl_all), "e2e_ms": dist("e2e_ms"),
    }
    if client_summary:
        summary["client"] = client_summary
    if gpu_summary:
        summary["gpu"] = gpu_summary
        energies = [entry["energy_j"] for entry in gpu_summary.values()]
        # like the runner: known only when every GPU has an energy counter (not the SSH one)
        summary["throughput"]["output_tokens_per_joule"] = (
            tokens_total / sum(energies) if None not in energies and sum(energies) > 0 else None)
    with open(path / "summary.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, ensure_ascii=False, indent=2)
    return path


def _make_record(rng: random.Random, request_id: int, thread_id: int, at: float, dataset: Optional[str],
                 budget_ms: float, ttft: float, tokens: int, failing: bool) -> dict:
    """One records.jsonl object (docs/run-folder.md fields) of a request sent `at` s after the start
    that takes about `budget_ms`: TTFT `ttft`, then `tokens` tokens spread over the rest."""
    mean_itl = max(0.3, (budget_ms - ttft) / max(1, tokens - 1))
    record = {
        "request_id": request_id, "thread_id": thread_id, "query": rng.choice(QUERIES),
        "dataset": dataset, "started_at": round(RUN_STARTED_AT + at, 6), "ok": True,
        "error_kind": None, "error": None, "http_status": 200,
        "ttfb_ms": None, "ttft_ms": None, "ttfo_ms": None, "e2e_ms": None, "total_ms": 0.0,
        "itl_ms": [], "tpot_ms": None, "chunks": 0, "output_tokens": 0, "token_source": "usage",
        "output_chars": 0, "reasoning_tokens": None, "prompt_tokens": rng.randint(12, 900),
    }
    if failing:
        kind, _, message, status = rng.choices(ERROR_KINDS, weights=[k[1] for k in ERROR_KINDS])[0]
        record.update(ok=False, error_kind=kind, error=message, http_status=status, prompt_tokens=None)
        if kind == "http_status":
            record.update(ttfb_ms=round(rng.uniform(3, 25), 3), total_ms=round(rng.uniform(5, 30), 3))
        elif kind == "timeout":
            record.update(http_status=None, total_ms=round(budget_ms, 3))
        else:  # truncated mid-stream: some tokens arrived
            part = max(2, tokens // 3)
            itl = [round(mean_itl * rng.uniform(0.6, 1.4), 3) for _ in range(part - 1)]
            e2e = ttft + sum(itl)
            record.update(ttfb_ms=round(ttft * 0.97, 3), ttft_ms=round(ttft, 3), ttfo_ms=round(ttft, 3),
                          e2e_ms=round(e2e, 3), total_ms=round(e2e + 2.0, 3), itl_ms=itl, chunks=part,
                          output_tokens=part, token_source="tokenizer", output_chars=part * 3)
    else:
        itl = [mean_itl * rng.uniform(0.6, 1.4) for _ in range(tokens - 1)]
        if rng.random() < 0.05 and itl:
            itl[rng.randrange(len(itl))] += rng.uniform(100, 400)  # a scheduler stall
        itl = [round(v, 3) for v in itl]
        ttft = round(ttft, 3)
        e2e = ttft + sum(itl)
        reasoning = rng.randint(5, 20) if rng.random() < 0.3 and tokens > 25 else None
        ttfo = ttft + sum(itl[:reasoning]) if reasoning else ttft
        record.update(ttfb_ms=round(ttft * rng.uniform(0.9, 0.99), 3), ttft_ms=ttft,
                      ttfo_ms=round(ttfo, 3), e2e_ms=round(e2e, 6),
                      total_ms=round(e2e + rng.uniform(0.5, 3.0), 3), itl_ms=itl,
                      tpot_ms=round((e2e - ttft) / (tokens - 1), 6) if tokens > 1 else None,
                      chunks=tokens, output_tokens=tokens, reasoning_tokens=reasoning,
                      output_chars=tokens * 3, token_source="usage" if rng.random() < 0.9 else "tokenizer")
    return record


def _timeseries(records: list[dict], n_seconds: int, thread_start: list[float], threads: int,
                lifetimes: Optional[list[tuple[float, float]]] = None) -> list[dict]:
    """Per-second rows of the fixed columns. Active threads: those started and not yet done, or,
    with `lifetimes` ((start, end) s per thread and level), the lifetimes overlapping the second."""
    rows = [{"second": k, "active_threads": 0, "requests_started": 0, "requests_ok": 0, "requests_failed": 0,
             "output_tokens": 0.0} for k in range(n_seconds)]
    finished: list[dict[str, list[float]]] = [{"ttft": [], "tpot": [], "e2e": []} for _ in range(n_seconds)]
    last_end = [0.0] * (threads + 1)
    for r in records:
        start = r["started_at"] - RUN_STARTED_AT
        end = start + r["total_ms"] / 1000.0
        if lifetimes is None:
            last_end[r["thread_id"]] = max(last_end[r["thread_id"]], end)
        rows[min(n_seconds - 1, int(start))]["requests_started"] += 1
        k_end = min(n_seconds - 1, int(end))
        rows[k_end]["requests_ok" if r["ok"] else "requests_failed"] += 1
        if r["ok"]:
            for key, field in (("ttft", "ttft_ms"), ("tpot", "tpot_ms"), ("e2e", "e2e_ms")):
                if r[field] is not None:
                    finished[k_end][key].append(r[field])
        if r["output_tokens"] and r["ttft_ms"] is not None and r["e2e_ms"] is not None:
            t0, t1 = start + r["ttft_ms"] / 1000.0, start + r["e2e_ms"] / 1000.0
            span = max(t1 - t0, 1e-9)
            for k in range(int(t0), min(n_seconds - 1, int(t1)) + 1):
                overlap = min(t1, k + 1) - max(t0, k)
                if t1 == t0:
                    overlap = span
                rows[k]["output_tokens"] += r["output_tokens"] * max(0.0, overlap) / span
    ok_cum = done_cum = 0
    for k, row in enumerate(rows):
        if lifetimes is None:
            row["active_threads"] = sum(1 for t in range(threads) if thread_start[t] < k + 1 and last_end[t + 1] > k)
        else:
            row["active_threads"] = sum(1 for a, b in lifetimes if a < k + 1 and b > k)
        row["output_tokens"] = int(round(row["output_tokens"]))
        for key in ("ttft", "tpot", "e2e"):
            ordered = sorted(finished[k][key])
            row[f"{key}_p50_ms"] = _r(percentile(ordered, 50))
            row[f"{key}_p95_ms"] = _r(percentile(ordered, 95))
        ok_cum += row["requests_ok"]
        done_cum += row["requests_ok"] + row["requests_failed"]
        row["success_rate_pct"] = _r(100.0 * ok_cum / done_cum) if done_cum else None
    return rows


def _add_client(rows: list[dict], kind: str, seed: int) -> dict:
    """The self-check's columns (one row per second) and summary section, as the runner writes them
    (one usable core). Healthy: lag p99 under 3 ms, CPU following the active threads up to ~50 %.
    Saturated from second 12 on (mid-run in a shorter run): lag p99 9-38 ms, CPU 93-99.5 %. The verdict comes from
    `selfcheck.saturation_from`, the runner's own rule. Its own random stream: the other
    columns are the same with or without it."""
    rng = random.Random(seed + 1)
    start = min(12, len(rows) // 2) if kind in ("saturated", "busy") else None
    peak = max(1, max(row["active_threads"] for row in rows))
    for k, row in enumerate(rows):
        if start is not None and k >= start and kind == "busy":  # other processes: lag, little CPU of ours
            p50, p99, cpu = rng.uniform(1.5, 4.0), rng.uniform(9.0, 38.0), rng.uniform(2.0, 8.0)
        elif start is not None and k >= start:
            p50, p99, cpu = rng.uniform(1.5, 4.0), rng.uniform(9.0, 38.0), rng.uniform(93.0, 99.5)
        else:
            busy = row["active_threads"] / peak
            p50, p99, cpu = rng.uniform(0.08, 0.3), rng.uniform(0.6, 2.8), 8 + 40 * busy + rng.uniform(-3, 3)
        row.update({"client.lag_p50_ms": round(p50, 3), "client.lag_p99_ms": round(p99, 3),
                    "client.cpu_pct": round(max(0.0, cpu), 1)})
        if kind == "busy":  # the whole machine (2 cores) was full from then on
            row["client.machine_cpu_pct"] = round(rng.uniform(185.0, 199.0) if start is not None and k >= start
                                                  else cpu + rng.uniform(5.0, 20.0), 1)
    cpu_values = [row["client.cpu_pct"] for row in rows]
    return {"lag_ms_p50": round(percentile(sorted(r["client.lag_p50_ms"] for r in rows), 50), 3),
            "lag_ms_p99": round(percentile(sorted(r["client.lag_p99_ms"] for r in rows), 95), 3),
            "cpu_pct_mean": sum(cpu_values) / len(cpu_values), "cpu_pct_max": max(cpu_values),
            "cores_usable": 1, "saturated_from_s": saturation_from(rows, 1, 2),
            "machine_busy_from_s": machine_busy_from(rows, 1, 2), "load_avg_max": 3.6 if kind == "busy" else 0.4,
            "machine_cores": 2}


def _r(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def _add_gpu(rows: list[dict], rng: random.Random, threads: int) -> dict:
    """GPU columns as the runner writes them: local GPUs (NVML) have every metric including
    cumulative energy; the SSH GPU (nvidia-smi) has no energy column values and misses a
    sample now and then (a gap, never a zero)."""
    summary = {}
    for index, device in enumerate(GPU_DEVICES):
        remote = device.startswith("ssh")
        temp = 38.0 + index
        energy = 0.0
        utils, powers, mems, temps = [], [], [], []
        for k, row in enumerate(rows):
            load = row["active_threads"] / threads
            util = min(100.0, max(0.0, load * (88 - 6 * index) + rng.uniform(-4, 4)))
            temp += (40 + util * 0.35 - temp) * 0.08
            power = 75 + util * 3.1 + rng.uniform(-5, 5)
            mem = 62000 + 8000 * load + index * 500
            energy += power  # one sample per second: joules since the first sample
            if remote and k % 11 == 5:  # a missed SSH sample: a gap, not a zero
                for metric in GPU_METRICS:
                    row[f"gpu[{device}].{metric}"] = None
                continue
            row[f"gpu[{device}].util_pct"] = round(util, 1)
            row[f"gpu[{device}].mem_used_mib"] = round(mem)
            row[f"gpu[{device}].mem_total_mib"] = GPU_MEM_TOTAL_MIB
            row[f"gpu[{device}].temp_c"] = round(temp, 1)
            row[f"gpu[{device}].power_w"] = round(power, 1)
            row[f"gpu[{device}].sm_clock_mhz"] = round(1410 + 570 * util / 100)
            row[f"gpu[{device}].energy_j"] = None if remote else round(energy, 1)
            utils.append(util)
            powers.append(power)
            mems.append(mem)
            temps.append(temp)
        summary[device] = {"util_pct_mean": sum(utils) / len(utils), "util_pct_max": max(utils),
                           "mem_used_mib_max": max(mems), "power_w_mean": sum(powers) / len(powers),
                           "energy_j": None if remote else round(energy, 1), "mem_total_mib": GPU_MEM_TOTAL_MIB,
                           "temp_c_max": max(temps), "samples": len(utils)}
    for row in rows:
        running = row["active_threads"]
        row["server[vllm:num_requests_running]"] = running
        row["server[vllm:num_requests_waiting]"] = max(0, running - 16)
        row["server[vllm:gpu_cache_usage_perc]"] = round(min(1.0, running * 0.03 + rng.uniform(0, 0.02)), 4)
    return summary


# ---------------------------------------------------------------- issue 5: load models

SLO_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# (expr, metric, op, limit, unit) as sse_perf_tool/slo.py writes its verdicts (limits in the canonical unit)
SWEEP_SLOS = (
    ("ttft_p95<800ms", "ttft_p95", "<", 800.0, "ms"),
    ("tpot_p95<40ms", "tpot_p95", "<", 40.0, "ms"),
    ("success>=95%", "success", ">=", 95.0, "%"),
)
OPEN_SLOS = (
    ("ttft_p95<600ms", "ttft_p95", "<", 600.0, "ms"),
    ("e2e_from_scheduled_p95<5s", "e2e_from_scheduled_p95", "<", 5000.0, "ms"),
    ("success>=99%", "success", ">=", 99.0, "%"),
)
GOODPUT_FAMILIES = ("ttft", "ttfo", "tpot", "e2e", "ttft_from_scheduled", "e2e_from_scheduled")
QUEUE_FIELDS = ("queue_ms", "ttft_from_scheduled_ms", "e2e_from_scheduled_ms")
DATASET_WEIGHTS = (5, 3, 2)  # chat-short, code-gen, long-context: a weighted mix


def _queue_fields(record: dict, scheduled_at_s: float, level: Optional[float], warmup: bool) -> None:
    """The issue-5 record fields, appended after the existing ones in the spec's order."""
    queue_ms = round((record["started_at"] - RUN_STARTED_AT - scheduled_at_s) * 1000.0, 3)
    record.update(
        scheduled_at=round(RUN_STARTED_AT + scheduled_at_s, 6), queue_ms=max(0.0, queue_ms),
        ttft_from_scheduled_ms=None if record["ttft_ms"] is None else round(queue_ms + record["ttft_ms"], 3),
        e2e_from_scheduled_ms=None if record["e2e_ms"] is None else round(queue_ms + record["e2e_ms"], 3),
        level=level, warmup=warmup)


def _end_s(record: dict) -> float:
    return record["started_at"] - RUN_STARTED_AT + record["total_ms"] / 1000.0


def _duration(records: list[dict]) -> Optional[float]:
    if not records:
        return None
    return max(map(_end_s, records)) - min(r["started_at"] - RUN_STARTED_AT for r in records)


def _bounds(slos) -> dict[str, tuple[str, float]]:
    """Goodput per-request bounds: field -> (op, limit), the tightest upper bound per family."""
    bounds: dict[str, tuple[str, float]] = {}
    for _, metric, op, limit, unit in slos:
        family = metric.rpartition("_")[0]
        if unit == "ms" and family in GOODPUT_FAMILIES and op in ("<", "<="):
            field = family + "_ms"
            if field not in bounds or limit < bounds[field][1]:
                bounds[field] = (op, limit)
    return bounds


def _goodput(records: list[dict], slos, duration: Optional[float]) -> dict:
    bounds = _bounds(slos)

    def good(r: dict) -> bool:
        return r["ok"] and all(r[f] is None and f == "tpot_ms" or r[f] is not None and SLO_OPS[op](r[f], limit)
                               for f, (op, limit) in bounds.items())

    n = sum(1 for r in records if good(r))
    return {"requests_per_s": n / duration if duration else None,
            "pct": 100.0 * n / len(records) if records else None,
            "bounds": {f: limit for f, (_, limit) in bounds.items()}}


def _slo_value(metric: str, summary: dict) -> Optional[float]:
    if metric in ("success", "error_rate"):
        value = summary["requests"]["success_rate_pct"]
        return None if value is None else (value if metric == "success" else 100.0 - value)
    if metric in ("requests_per_s", "output_tokens_per_s"):
        return summary["throughput"][metric]
    if metric in ("goodput", "goodput_pct"):
        return summary["goodput"]["requests_per_s" if metric == "goodput" else "pct"]
    family, _, stat = metric.rpartition("_")
    return summary[family + "_ms"][stat]


def _verdicts(slos, summary: dict) -> list[dict]:
    out = []
    for expr, metric, op, limit, unit in slos:
        value = _slo_value(metric, summary)
        out.append({"expr": expr, "metric": metric, "op": op, "limit": limit, "unit": unit,
                    "value": value, "met": value is not None and SLO_OPS[op](value, limit)})
    return out


def _load_summary(records: list[dict], slos) -> dict:
    """stats.summarise over the measured (non-warm-up) records, plus goodput and SLO verdicts.
    Fields an older `summarise` lacks are filled in the same way."""
    measured = [r for r in records if not r["warmup"]]
    duration = _duration(measured)
    summary = summarise(measured, duration)
    summary["requests"]["warmup"] = len(records) - len(measured)
    ok = [r for r in measured if r["ok"]]
    for field in QUEUE_FIELDS:
        summary.setdefault(field, distribution(r[field] for r in ok if r[field] is not None))
    if "datasets" not in summary and any(r["dataset"] for r in measured):
        summary["datasets"] = {}
        for name in sorted({r["dataset"] for r in measured if r["dataset"]}):
            mine = [r for r in measured if r["dataset"] == name]
            good = [r for r in mine if r["ok"]]
            summary["datasets"][name] = {
                "requests": len(mine), "ok": len(good), "failed": len(mine) - len(good),
                "success_rate_pct": 100.0 * len(good) / len(mine),
                "output_tokens_per_s": sum(r["output_tokens"] for r in good) / duration if duration else None,
                **{f: distribution(r[f] for r in good if r[f] is not None) for f in ("ttft_ms", "tpot_ms", "e2e_ms")}}
    summary["goodput"] = _goodput(measured, slos, duration)
    if slos:
        summary["slo"] = _verdicts(slos, summary)
    else:
        summary.pop("slo", None)
    return summary


def _write_run(path: Path, records: list[dict], rows: list[dict], summary: dict, extra_columns=()) -> Path:
    with open(path / "records.jsonl", "w", encoding="utf-8") as handle:
        for record in sorted(records, key=_end_s):  # finish order, as the runner appends them
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    columns = list(TIMESERIES_COLUMNS) + ["phase", "level"] + list(extra_columns)
    with open(path / "timeseries.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    with open(path / "summary.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, ensure_ascii=False, indent=2)
    return path


def _run_section(records: list[dict], threads: int, model_name: str, load: dict, config: dict,
                 stopped_early: Optional[str]) -> dict:
    first = min(r["started_at"] - RUN_STARTED_AT for r in records)
    last = max(map(_end_s, records))
    return {"started_at": RUN_STARTED_AT, "ended_at": RUN_STARTED_AT + last, "duration_s": round(last - first, 3),
            "api": "openai-chat", "base_url": "http://127.0.0.1:8000/v1", "threads": threads, "ramp_up_s": 0.0,
            "model_name": model_name, "interrupted": False, "config": config, "tool_version": "0.1.0",
            "load": load, "stopped_early": stopped_early}


def make_sweep_run_dir(path: Path, levels: Iterable[int] = (1, 4, 16, 64), level_s: float = 12.0,
                       warmup_s: float = 3.0, cooldown_s: float = 3.0, slos=SWEEP_SLOS, with_gpu: bool = False,
                       model_name: str = "qwen2.5-7b-sweep", seed: int = 11) -> Path:
    """A closed-loop thread sweep. Each level starts its threads together on a whole second, sends
    for `level_s` s (the first `warmup_s` s are warm-up: recorded, excluded from the figures), and
    ends when its last request does; `cooldown_s` idle seconds follow before the next level.
    Latency and errors rise with the level (TTFT ~110 ms x (1 + n/12), TPOT ~18 ms x (1 + n/40)).

    Per-level and whole-run figures come from `stats.summarise` on the measured records; SLO
    verdicts and goodput are computed here by hand (as sse_perf_tool/slo.py will).
    """
    rng = random.Random(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    levels = list(levels)
    records: list[dict] = []
    lifetimes: list[tuple[float, float]] = []
    spans: list[tuple[int, float, float, float]] = []  # level, from_s, warmup_to_s, to_s
    start = 0.0
    for n in levels:
        warmup_to, stop = start + warmup_s, start + level_s
        free = [(start, i + 1) for i in range(n)]
        last_end: dict[int, float] = {}
        while free:
            at, thread_id = heapq.heappop(free)
            if at >= stop:
                continue
            ttft = rng.lognormvariate(math.log(110 * (1 + n / 12)), 0.25)
            tokens = rng.randint(60, 140)
            budget_ms = ttft + 18 * (1 + n / 40) * (tokens - 1)
            failing = rng.random() < 0.01 + n / 900
            record = _make_record(rng, len(records) + 1, thread_id, at, None, budget_ms, ttft, tokens, failing)
            _queue_fields(record, at, n, at < warmup_to)
            records.append(record)
            last_end[thread_id] = _end_s(record)
            heapq.heappush(free, (last_end[thread_id] + rng.uniform(0.0005, 0.003), thread_id))
        to_s = max(last_end.values())
        lifetimes += [(start, end) for end in last_end.values()]
        spans.append((n, start, warmup_to, to_s))
        start = math.ceil(to_s) + cooldown_s

    n_seconds = math.ceil(max(map(_end_s, records)))
    rows = _timeseries(records, n_seconds, [], 0, lifetimes=lifetimes)
    for k, row in enumerate(rows):
        row["phase"], row["level"] = "cooldown", None
        for n, from_s, warmup_to, to_s in spans:
            if from_s <= k < math.ceil(to_s):
                row["phase"], row["level"] = ("warmup" if k < warmup_to else "measure"), n
    extra: list[str] = []
    gpu_summary = _add_gpu(rows, rng, max(levels)) if with_gpu else None
    if with_gpu:
        extra = [f"gpu[{d}].{m}" for d in GPU_DEVICES for m in GPU_METRICS] + [f"server[{m}]" for m in SERVER_METRICS]

    level_entries = []
    for n, from_s, warmup_to, to_s in spans:
        entry = _load_summary([r for r in records if r["level"] == n], slos)
        entry.pop("datasets", None)
        level_entries.append({"level": {"threads": n}, "from_s": from_s, "to_s": round(to_s, 3),
                              "warmup_to_s": warmup_to, **entry,
                              "meets_slo": all(v["met"] for v in entry["slo"]) if slos else None})
    meeting = [e["level"]["threads"] for e in level_entries if e["meets_slo"]]
    best = max(meeting) if meeting else None
    summary = _load_summary(records, slos)
    if slos:  # the best level's verdicts, or the first level's when none meets
        summary["slo"] = next((e["slo"] for e in level_entries if e["level"]["threads"] == best),
                              level_entries[0]["slo"])
    summary["requests"]["not_sent"] = 0
    load = {"model": "closed", "threads": max(levels), "rate": None, "arrival": None, "seed": None,
            "warmup_s": warmup_s, "warmup_requests": None,
            "sweep": {"kind": "threads", "values": levels, "cooldown_s": cooldown_s}}
    config = _config(max(levels), level_s, 0.0, 0, model_name, "你是谁", False, "X-Trace: sweep-fixture")
    config.update(sweep="threads=" + ",".join(map(str, levels)), warmup=f"{warmup_s:g}s",
                  slo=",".join(expr for expr, *_ in slos) or None)
    summary = {"run": _run_section(records, max(levels), model_name, load, config, None), **summary,
               "levels": level_entries, "sweep": {"kind": "threads", "values": levels, "best_level": best}}
    if gpu_summary:
        summary["gpu"] = gpu_summary
    return _write_run(path, records, rows, summary, extra)


def make_open_loop_run_dir(path: Path, seconds: float = 24.0, rate: float = 3.0, threads: int = 8,
                           warmup_s: float = 3.0, arrival: str = "poisson", slos=OPEN_SLOS,
                           with_datasets: bool = True, stopped_early: Optional[str] = None,
                           model_name: str = "qwen2.5-7b-open", seed: int = 42) -> Path:
    """An open-loop run: arrivals at `rate` per second (Poisson or constant, seeded), each sent by
    the first free of `threads` threads; the wait is its queue time. Slightly overloaded (capacity
    about 2.8 requests/s), so queue times grow and arrivals still waiting at the end are
    never sent (`requests.not_sent`). Datasets drawn with weights 5:3:2."""
    rng = random.Random(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrivals, at = [], 0.0
    while True:
        at += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate
        if at >= seconds:
            break
        arrivals.append(at)
    free = [(0.0, i + 1) for i in range(threads)]
    busy: dict[int, list[float]] = {}
    records: list[dict] = []
    not_sent = 0
    for scheduled in arrivals:
        free_at, thread_id = heapq.heappop(free)
        sent = max(scheduled, free_at)
        if sent >= seconds:  # every thread busy until the end: never sent
            not_sent += 1
            heapq.heappush(free, (free_at, thread_id))
            continue
        dataset = rng.choices(list(DATASETS), weights=DATASET_WEIGHTS)[0] if with_datasets else None
        low, high, ttft_factor = DATASETS[dataset] if dataset else (80, 120, 1.0)
        ttft = rng.lognormvariate(math.log(180 * ttft_factor), 0.25)
        tokens = rng.randint(low, high)
        failing = rng.random() < 0.02
        record = _make_record(rng, len(records) + 1, thread_id, sent, dataset, ttft + 20 * (tokens - 1), ttft,
                              tokens, failing)
        _queue_fields(record, scheduled, None, sent < warmup_s)
        records.append(record)
        span = busy.setdefault(thread_id, [sent, sent])
        span[1] = _end_s(record)
        heapq.heappush(free, (span[1] + rng.uniform(0.0005, 0.003), thread_id))

    n_seconds = math.ceil(max(map(_end_s, records)))
    rows = _timeseries(records, n_seconds, [], 0, lifetimes=[tuple(v) for v in busy.values()])
    for k, row in enumerate(rows):
        row["phase"], row["level"] = ("warmup" if k < warmup_s else "measure"), None
    summary = _load_summary(records, slos)
    summary["requests"]["not_sent"] = not_sent
    load = {"model": "open", "threads": threads, "rate": rate, "arrival": arrival, "seed": seed,
            "warmup_s": warmup_s, "warmup_requests": None, "sweep": None}
    config = _config(threads, seconds, 0.0, 0, model_name, "你是谁", with_datasets, "X-Trace: open-fixture")
    config.update(rate=rate, arrival=arrival, seed=seed, warmup=f"{warmup_s:g}s",
                  slo=",".join(expr for expr, *_ in slos) or None)
    summary = {"run": _run_section(records, threads, model_name, load, config, stopped_early), **summary}
    return _write_run(path, records, rows, summary)
