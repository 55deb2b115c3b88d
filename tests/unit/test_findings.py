"""findings: what a run's numbers say. Each scenario starts from a clean run (a summary and its
per-second rows, shaped as summary.json and timeseries.csv are) and changes only what it needs;
every series is built from findings.py's own thresholds, so a test keeps meaning what it says if a
threshold changes."""

from __future__ import annotations

import inspect
import re
import string

import pytest

from sse_perf_tool import findings as findings_module
from sse_perf_tool.findings import (
    BURST_MIN_PCT, BURST_RATIO, BURST_WINDOW_S, CLOCK_BOUND_MS, COLD_START_RATIO, COLD_START_S, DIFY_QUEUE_MS,
    GPU_BUSY_PCT, GPU_HOT_C, GPU_IDLE_PCT, GPU_MEMORY_NEAR_PCT, KNEE_GAIN_PCT, KNEE_LATENCY_RISE_PCT,
    KV_FULL_FRACTION, MIN_REQUESTS_FOR_P99, RAMP_FLAT_PCT, SEVERITIES, TAIL_RATIO, TPOT_RISE_PCT, TREND_MIN_SECONDS,
    TREND_RATIO, describe, findings)
from sse_perf_tool.i18n import en, zh

# -- a clean run: 60 measured seconds of steady load, no errors, healthy telemetry --
SECONDS = 60
THREADS = 4
OK_PER_S = 20
TOKENS_PER_S = 1000.0
TTFT_P50 = 100.0
TTFT_P95 = 130.0
TPOT_P50 = 20.0
GPU_UTIL = (GPU_IDLE_PCT + GPU_BUSY_PCT) / 2  # neither idle nor saturated
KV_OK = KV_FULL_FRACTION / 2
KV_FULL = (1 + KV_FULL_FRACTION) / 2  # above the limit, below 100 %
# thresholds findings.py writes as bare numbers, not named constants
BURST_CRITICAL_PCT = 50.0
TIMEOUT_WARN_PCT = 1.0

GPU = "gpu[local:0].util_pct"
WAITING = "server[vllm:num_requests_waiting]"
KV = "server[vllm:gpu_cache_usage_perc]"
PREEMPT = "server[vllm:num_preemptions_total]"


def make_row(second: int, **over) -> dict:
    row = {"second": second, "phase": "measure", "level": None, "active_threads": THREADS,
           "requests_started": OK_PER_S, "requests_ok": OK_PER_S, "requests_failed": 0,
           "output_tokens": TOKENS_PER_S, "ttft_p50_ms": TTFT_P50, "ttft_p95_ms": TTFT_P95,
           "tpot_p50_ms": TPOT_P50, "success_rate_pct": 100.0,
           GPU: GPU_UTIL, WAITING: 0.0, KV: KV_OK, PREEMPT: 0.0}
    row.update(over)
    return row


def make_rows(n: int = SECONDS, start: int = 0, **series) -> list[dict]:
    """`n` seconds from `start`; each keyword a column's value: a constant, or a function of the second."""
    return [make_row(s, **{k: (v(s) if callable(v) else v) for k, v in series.items()})
            for s in range(start, start + n)]


def make_summary(load=None, **sections) -> dict:
    """summary.json of the clean run; each keyword updates that section (a dict) or sets it (anything else)."""
    ok = SECONDS * OK_PER_S
    summary = {
        "run": {"load": {"model": "closed", "threads": THREADS, "warmup_s": None, "warmup_requests": None,
                         "clock_bound_ms_max": None, "sweep": None}},
        "requests": {"total": ok, "ok": ok, "failed": 0, "success_rate_pct": 100.0, "not_sent": 0},
        "errors": {},
        "errors_by_status": {},
        "throughput": {"output_tokens_per_s": TOKENS_PER_S},
        "ttft_ms": {"count": ok, "p50": TTFT_P50, "p95": TTFT_P95, "p99": 160.0},
        "e2e_ms": {"count": ok, "p50": 900.0, "p95": 1000.0, "p99": 1100.0},
        "server_ttft_ms": {"count": 0, "p50": None},
        "client": {"lag_ms_p50": 0.1, "lag_ms_p99": 0.5, "cpu_pct_mean": 14.0, "cpu_pct_max": 15.0,
                   "saturated_from_s": None, "machine_busy_from_s": None},
        "gpu": {"local:0": {"mem_used_mib_max": 40960.0, "mem_total_mib": 81920.0, "temp_c_max": 65.0}},
    }
    if load:
        summary["run"]["load"].update(load)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(summary.get(key), dict):
            summary[key].update(value)
        else:
            summary[key] = value
    return summary


def ids(found: list[dict]) -> list[str]:
    return [f["id"] for f in found]


def only(found: list[dict], id_: str) -> dict:
    """The one finding `id_` in `found`."""
    matching = [f for f in found if f["id"] == id_]
    assert len(matching) == 1, ids(found)
    return matching[0]


def assert_renders(finding: dict) -> None:
    """describe() gives a title, an evidence sentence and a suggestion in each language, every
    placeholder filled from the evidence."""
    assert finding["severity"] in SEVERITIES
    for lang in ("en", "zh"):
        words = describe(finding, lang)
        assert set(words) == {"title", "evidence", "suggestion"}
        for text in words.values():
            assert text and "{" not in text and "None" not in text, (lang, text)


# -- 1. a clean run --
def test_a_clean_run_has_no_finding():
    assert findings(make_summary(), make_rows()) == []


def test_a_clean_run_with_its_warm_up_cooldown_and_drain_second_has_no_finding():
    """As the real CSV has them: slow warm-up seconds, cooldown seconds, and the last, partial
    second while the threads drain (no active threads)."""
    rows = (make_rows(5, start=0, phase="warmup", ttft_p95_ms=TTFT_P95 * COLD_START_RATIO * 3)
            + make_rows(SECONDS, start=5)
            + make_rows(1, start=SECONDS + 5, active_threads=None, requests_ok=2, output_tokens=40.0)
            + make_rows(3, start=SECONDS + 6, phase="cooldown", requests_ok=0, output_tokens=0.0, ttft_p95_ms=None))
    assert findings(make_summary(load={"warmup_s": 5.0}), rows) == []


def test_a_summary_alone_of_a_clean_run_has_no_finding():
    assert findings(make_summary()) == []


# -- 2. a sweep --
def make_level(threads, tokens_per_s, ttft_p95, e2e_p95, goodput_rps=None, index=0):
    level = {"level": {"threads": threads}, "from_s": index * 10.0 + 0.001, "to_s": index * 10.0 + 9.5,
             "warmup_to_s": None, "throughput": {"output_tokens_per_s": tokens_per_s},
             "ttft_ms": {"p50": ttft_p95 * 0.8, "p95": ttft_p95, "p99": ttft_p95 * 1.1},
             "e2e_ms": {"p50": e2e_p95 * 0.8, "p95": e2e_p95, "p99": e2e_p95 * 1.1}}
    level["goodput"] = {"requests_per_s": goodput_rps, "pct": 100.0, "bounds": {"ttft_ms": 500.0}}
    return level


KNEE_TPS = 1900.0
KNEE_TTFT = 120.0
PAST_KNEE_TPS = KNEE_TPS * (1 + KNEE_GAIN_PCT / 100 / 2)  # half the gain that counts as more
PAST_KNEE_TTFT = KNEE_TTFT * (1 + KNEE_LATENCY_RISE_PCT / 100 * 2)  # twice the rise that counts


def knee_levels(goodputs=(5.0, 10.0, 19.0, 12.0)):
    """1 -> 2 -> 4 threads doubling the throughput, 8 threads flat while TTFT p95 jumps (E2E a little)."""
    shape = [(1, 500.0, 100.0, 1000.0), (2, 1000.0, 105.0, 1010.0), (4, KNEE_TPS, KNEE_TTFT, 1050.0),
             (8, PAST_KNEE_TPS, PAST_KNEE_TTFT, 1050.0 * (1 + KNEE_LATENCY_RISE_PCT / 100 / 2))]
    return [make_level(*values, goodput_rps=g, index=i) for i, (values, g) in enumerate(zip(shape, goodputs))]


def sweep_summary(levels, best_level=None, slo=None):
    return make_summary(levels=levels, sweep={"kind": "threads", "values": [_v(lv) for lv in levels],
                                              "best_level": best_level},
                        slo=slo, load={"sweep": {"kind": "threads"}})


def _v(level):
    return level["level"]["threads"]


SLO_MISSED = [{"expr": "ttft_p95<150ms", "metric": "ttft_p95", "op": "<", "limit": 150.0, "unit": "ms",
               "value": PAST_KNEE_TTFT, "met": False}]
SLO_MET = [dict(SLO_MISSED[0], limit=10_000.0, met=True)]


def test_a_sweep_past_the_knee_names_the_last_level_that_still_gained():
    levels = knee_levels()
    found = findings(sweep_summary(levels))
    assert ids(found) == ["capacity_knee"]  # no SLO: no best level, no goodput
    knee = found[0]
    assert knee["severity"] == "warn"
    assert knee["chart"] == "output_tokens"
    assert (knee["from_s"], knee["to_s"]) == (levels[2]["from_s"], levels[3]["to_s"])
    assert knee["evidence"] == {
        "kind": "threads", "level": 4, "next_level": 8, "tokens_per_s": round(KNEE_TPS, 1),
        "next_tokens_per_s": round(PAST_KNEE_TPS, 1), "gain_pct": round(KNEE_GAIN_PCT / 2, 1),
        "metric": "ttft_p95", "rise_pct": round(KNEE_LATENCY_RISE_PCT * 2, 1)}
    assert_renders(knee)
    assert "+" in describe(knee)["evidence"]  # the gain is signed


def test_the_knee_names_the_latency_that_rose_most():
    levels = knee_levels()
    levels[3]["ttft_ms"]["p95"] = KNEE_TTFT  # TTFT flat, E2E up three times the limit
    levels[3]["e2e_ms"]["p95"] = levels[2]["e2e_ms"]["p95"] * (1 + 3 * KNEE_LATENCY_RISE_PCT / 100)
    knee = only(findings(sweep_summary(levels)), "capacity_knee")
    assert knee["evidence"]["metric"] == "e2e_p95"
    assert knee["evidence"]["rise_pct"] == round(3 * KNEE_LATENCY_RISE_PCT, 1)


def test_a_sweep_that_keeps_scaling_or_stays_fast_has_no_knee():
    scaling = knee_levels()
    scaling[3]["throughput"]["output_tokens_per_s"] = KNEE_TPS * (1 + 2 * KNEE_GAIN_PCT / 100)
    assert "capacity_knee" not in ids(findings(sweep_summary(scaling)))
    fast = knee_levels()  # flat throughput, but the latencies barely move: not a knee
    fast[3]["ttft_ms"]["p95"] = KNEE_TTFT * (1 + KNEE_LATENCY_RISE_PCT / 100 / 2)
    fast[3]["e2e_ms"]["p95"] = fast[2]["e2e_ms"]["p95"]
    assert "capacity_knee" not in ids(findings(sweep_summary(fast)))


def test_a_sweep_with_slos_names_its_best_level_and_its_goodput_peak():
    levels = knee_levels(goodputs=(5.0, 10.0, 19.0, 12.0))
    found = findings(sweep_summary(levels, best_level=4, slo=SLO_MISSED))
    assert ids(found) == ["capacity_knee", "best_level", "goodput_peak"]
    best, peak = found[1], found[2]
    assert best["severity"] == "info" and best["evidence"] == {"kind": "threads", "level": 4}
    assert peak["severity"] == "info"
    assert peak["evidence"] == {"kind": "threads", "level": 4, "goodput_rps": 19.0}
    assert (peak["from_s"], peak["to_s"]) == (levels[2]["from_s"], levels[2]["to_s"])
    for finding in found:
        assert_renders(finding)


def test_a_goodput_that_still_rises_at_the_last_level_has_no_peak():
    levels = knee_levels(goodputs=(5.0, 10.0, 19.0, 19.5))
    assert "goodput_peak" not in ids(findings(sweep_summary(levels, best_level=4, slo=SLO_MISSED)))


def test_a_sweep_where_every_level_met_the_slos_says_so():
    levels = knee_levels()
    found = findings(sweep_summary(levels, best_level=8, slo=SLO_MET))
    every = only(found, "all_levels_met")
    assert every["severity"] == "info" and every["evidence"] == {"kind": "threads", "level": 8}
    assert "best_level" not in ids(found)
    assert_renders(every)


def test_a_sweep_where_no_level_met_the_slos_is_critical():
    levels = knee_levels()
    found = findings(sweep_summary(levels, best_level=None, slo=SLO_MISSED))
    none_met = only(found, "no_level_met")
    assert none_met["severity"] == "critical"
    assert none_met["evidence"] == {"kind": "threads", "lowest": 1}
    assert found[0] is none_met  # critical first
    assert "best_level" not in ids(found)
    assert_renders(none_met)


def test_one_level_is_no_sweep():
    assert findings(sweep_summary(knee_levels()[:1], best_level=1, slo=SLO_MET)) == []


def test_a_healthy_sweeps_rising_ttft_from_level_to_level_is_no_queue_building():
    """A sweep's rows go level after level; TTFT p95 steady within each level but higher at each
    higher level (ordinary batching, throughput still doubling). That is the load changing, not
    a queue building within the run, and the finding's advice ('lower the load, or run longer')
    would be wrong. Fails today: queue_building compares the first third of the whole sweep with
    its last third."""
    per_level = 15
    shape = [(1, 500.0, 100.0), (2, 1000.0, 120.0), (4, 2000.0, 140.0), (8, 4000.0, 170.0)]
    rows = []
    for i, (threads, tps, ttft) in enumerate(shape):
        rows += make_rows(per_level, start=i * per_level, level=threads, active_threads=threads,
                          output_tokens=tps, ttft_p95_ms=ttft, requests_ok=OK_PER_S * threads)
    levels = [make_level(t, tps, ttft, 1000.0, index=i) for i, (t, tps, ttft) in enumerate(shape)]
    assert 170.0 / 100.0 >= TREND_RATIO  # the sweep's rise, level to level, is past the one-run trend ratio
    assert "queue_building" not in ids(findings(sweep_summary(levels), rows))


# -- 3. a queue building through the run --
LOW_TTFT = TTFT_P95
HIGH_TTFT = TTFT_P95 * TREND_RATIO * 1.2


def rising_ttft(n):
    third = n // 3
    return lambda s: LOW_TTFT if s < third else (HIGH_TTFT if s >= n - third else (LOW_TTFT + HIGH_TTFT) / 2)


def test_ttft_rising_through_the_run_is_a_queue_building():
    found = findings(make_summary(), make_rows(ttft_p95_ms=rising_ttft(SECONDS)))
    assert ids(found) == ["queue_building"]
    queue = found[0]
    assert queue["severity"] == "warn" and queue["chart"] == "ttft_p95_ms"
    assert (queue["from_s"], queue["to_s"]) == (SECONDS - SECONDS // 3, SECONDS)
    assert queue["evidence"] == {"first_ms": round(LOW_TTFT, 1), "last_ms": round(HIGH_TTFT, 1),
                                 "ratio": round(HIGH_TTFT / LOW_TTFT, 2)}
    assert_renders(queue)


def test_a_rise_short_of_the_trend_ratio_is_no_queue():
    rows = make_rows(ttft_p95_ms=lambda s: LOW_TTFT * (TREND_RATIO * 0.9 if s >= SECONDS - SECONDS // 3 else 1))
    assert findings(make_summary(), rows) == []


def test_a_run_shorter_than_the_trend_minimum_tells_no_trend():
    n = TREND_MIN_SECONDS - 1
    assert "queue_building" not in ids(findings(make_summary(), make_rows(n, ttft_p95_ms=rising_ttft(n))))
    n = TREND_MIN_SECONDS  # and at the minimum it does
    assert "queue_building" in ids(findings(make_summary(), make_rows(n, ttft_p95_ms=rising_ttft(n))))


def test_seconds_without_a_ttft_do_not_count_toward_the_trend_minimum():
    n = TREND_MIN_SECONDS
    rows = make_rows(n, ttft_p95_ms=rising_ttft(n)) + make_rows(10, start=n, ttft_p95_ms=None)
    rows[n // 2]["ttft_p95_ms"] = None  # n - 1 seconds with a TTFT p95
    assert "queue_building" not in ids(findings(make_summary(), rows))


def test_warm_up_and_cooldown_seconds_are_no_part_of_the_trend():
    rows = (make_rows(SECONDS // 2, phase="warmup", ttft_p95_ms=LOW_TTFT)
            + make_rows(SECONDS // 2, start=SECONDS // 2, ttft_p95_ms=HIGH_TTFT)
            + make_rows(SECONDS // 2, start=SECONDS, phase="cooldown", ttft_p95_ms=HIGH_TTFT * 10))
    assert findings(make_summary(load={"warmup_s": SECONDS / 2}), rows) == []


# -- 4. users added past capacity --
def ramp_threads(s):
    """2 -> 4 -> 8 -> 16 active threads, a quarter of the run each."""
    return 2 * 2 ** (s // (SECONDS // 4))


def test_threads_ramping_while_the_tokens_stay_flat_is_past_capacity():
    best = TOKENS_PER_S * (1 + RAMP_FLAT_PCT / 100 / 2)  # a little more, within the flat band
    rows = make_rows(active_threads=ramp_threads, output_tokens=lambda s: best if s == SECONDS - 1 else TOKENS_PER_S)
    found = findings(make_summary(), rows)
    assert ids(found) == ["ramp_past_capacity"]
    ramp = found[0]
    assert ramp["severity"] == "warn" and ramp["chart"] == "output_tokens"
    doubled_s = SECONDS // 4  # the first second with twice the starting threads
    assert (ramp["from_s"], ramp["to_s"]) == (doubled_s, SECONDS)
    assert ramp["evidence"] == {"threads": 4, "final_threads": 16, "tokens_per_s": round(TOKENS_PER_S, 1),
                                "best_after": round(best, 1)}
    assert_renders(ramp)


def test_a_drain_second_without_active_threads_ends_the_ramp_at_the_last_second_with_them():
    rows = make_rows(active_threads=ramp_threads) + make_rows(1, start=SECONDS, active_threads=None,
                                                              output_tokens=TOKENS_PER_S / 10)
    ramp = only(findings(make_summary(), rows), "ramp_past_capacity")
    assert ramp["to_s"] == SECONDS and ramp["evidence"]["final_threads"] == 16


def test_threads_ramping_with_the_tokens_rising_in_proportion_is_not_past_capacity():
    rows = make_rows(active_threads=ramp_threads, output_tokens=lambda s: TOKENS_PER_S / 2 * ramp_threads(s))
    assert findings(make_summary(), rows) == []


def test_tokens_rising_just_past_the_flat_band_is_not_past_capacity():
    rows = make_rows(active_threads=ramp_threads,
                     output_tokens=lambda s: TOKENS_PER_S * (1 + 1.5 * RAMP_FLAT_PCT / 100 if s >= 45 else 1))
    assert "ramp_past_capacity" not in ids(findings(make_summary(), rows))


# -- 5. scheduler-bound --
IDLE_UTIL = GPU_IDLE_PCT / 2


def test_requests_waiting_while_the_gpu_idles_is_scheduler_bound():
    rows = make_rows(**{WAITING: 5.0, GPU: lambda s: IDLE_UTIL if 10 <= s < 50 else GPU_UTIL})
    found = findings(make_summary(), rows)
    assert ids(found) == ["scheduler_bound"]
    bound = found[0]
    assert bound["severity"] == "warn" and bound["chart"] == WAITING
    assert (bound["from_s"], bound["to_s"]) == (10, 50)
    assert bound["evidence"] == {"seconds": 40, "gpu_util_pct": round(IDLE_UTIL, 1), "waiting": 5.0}
    assert_renders(bound)


def test_an_sglang_queue_and_several_gpus_count_too():
    rows = make_rows(**{"server[sglang:num_queue_reqs]": 2.0, "gpu[local:1].util_pct": IDLE_UTIL,
                        GPU: IDLE_UTIL, WAITING: None})
    bound = only(findings(make_summary(), rows), "scheduler_bound")
    assert bound["evidence"]["seconds"] == SECONDS and bound["evidence"]["waiting"] == 2.0


def test_requests_waiting_while_the_gpu_is_busy_is_not_scheduler_bound():
    assert findings(make_summary(), make_rows(**{WAITING: 5.0, GPU: 99.0})) == []


def test_an_idle_gpu_in_only_a_few_of_the_waiting_seconds_is_not_scheduler_bound():
    rows = make_rows(**{WAITING: 5.0, GPU: lambda s: IDLE_UTIL if s < SECONDS // 2 - 1 else 99.0})
    assert "scheduler_bound" not in ids(findings(make_summary(), rows))


def test_an_idle_gpu_with_nothing_waiting_is_not_scheduler_bound():
    assert findings(make_summary(), make_rows(**{GPU: IDLE_UTIL})) == []


# -- 6. memory-bound --
def test_a_full_kv_cache_with_requests_waiting_is_memory_bound():
    full = lambda s: 20 <= s < 30  # noqa: E731
    rows = make_rows(**{KV: lambda s: KV_FULL if full(s) else KV_OK, WAITING: lambda s: 3.0 if full(s) else 0.0})
    found = findings(make_summary(), rows)
    assert ids(found) == ["memory_bound"]
    bound = found[0]
    assert bound["severity"] == "warn" and bound["chart"] == KV
    assert (bound["from_s"], bound["to_s"]) == (20, 30)
    assert bound["evidence"] == {"seconds": 10, "kv_limit_pct": round(100 * KV_FULL_FRACTION)}
    assert_renders(bound)


def test_a_full_kv_cache_while_requests_are_preempted_is_memory_bound():
    rows = make_rows(**{KV: lambda s: KV_FULL if 20 <= s < 30 else KV_OK,
                        PREEMPT: lambda s: 0.0 if s < 20 else float(min(s, 29) - 19)})
    bound = only(findings(make_summary(), rows), "memory_bound")
    assert (bound["from_s"], bound["to_s"]) == (20, 30) and bound["evidence"]["seconds"] == 10


def test_a_full_kv_cache_for_fewer_than_three_seconds_is_not_memory_bound():
    rows = make_rows(**{KV: lambda s: KV_FULL if s in (20, 21) else KV_OK, WAITING: 3.0})
    assert "memory_bound" not in ids(findings(make_summary(), rows))


def test_a_kv_cache_at_the_limit_is_not_above_it():
    assert "memory_bound" not in ids(findings(make_summary(), make_rows(**{KV: KV_FULL_FRACTION, WAITING: 3.0})))


def test_a_full_kv_cache_with_nothing_waiting_or_preempted_is_not_memory_bound():
    assert findings(make_summary(), make_rows(**{KV: KV_FULL})) == []


def test_a_preemption_counter_left_from_before_the_run_is_not_memory_bound():
    """vllm:num_preemptions_total is a Prometheus counter: its per-second value is the running
    total since the server started, not this second's preemptions. Seven preemptions long before
    the run, none during it, a full cache and nothing waiting: nothing is preempted, so the cache
    being full is no memory limit. Fails today: any counter value above 0 counts as preempted."""
    rows = make_rows(**{KV: KV_FULL, PREEMPT: 7.0})
    assert "memory_bound" not in ids(findings(make_summary(), rows))


# -- 7. compute-bound --
BUSY_UTIL = (GPU_BUSY_PCT + 100) / 2
SLOW_TPOT = TPOT_P50 * (1 + 1.5 * TPOT_RISE_PCT / 100)


def test_busy_gpus_while_tpot_rises_is_compute_bound():
    third = SECONDS // 3
    rows = make_rows(**{GPU: BUSY_UTIL, "tpot_p50_ms": lambda s: TPOT_P50 if s < third else (
        SLOW_TPOT if s >= SECONDS - third else (TPOT_P50 + SLOW_TPOT) / 2)})
    found = findings(make_summary(), rows)
    assert ids(found) == ["compute_bound"]
    bound = found[0]
    assert bound["severity"] == "warn" and bound["chart"] == "tpot_p50_ms"
    assert (bound["from_s"], bound["to_s"]) == (0, SECONDS)
    assert bound["evidence"] == {"gpu_util_pct": round(BUSY_UTIL, 1), "tpot_first_ms": round(TPOT_P50, 2),
                                 "tpot_last_ms": round(SLOW_TPOT, 2)}
    assert_renders(bound)


def test_busy_gpus_with_a_flat_tpot_are_not_compute_bound():
    assert findings(make_summary(), make_rows(**{GPU: BUSY_UTIL})) == []


def test_a_rising_tpot_on_gpus_short_of_busy_is_not_compute_bound():
    rows = make_rows(**{GPU: GPU_BUSY_PCT - 5, "tpot_p50_ms": lambda s: SLOW_TPOT if s >= 40 else TPOT_P50})
    assert "compute_bound" not in ids(findings(make_summary(), rows))


# -- 8. the GPUs' memory and temperature --
def test_a_gpu_near_its_memory_total_and_hot():
    total = 81920.0
    used = total * (GPU_MEMORY_NEAR_PCT + 100) / 200  # between the limit and the total
    hot = GPU_HOT_C + 3
    summary = make_summary(gpu={"local:0": {"mem_used_mib_max": 30000.0, "mem_total_mib": total, "temp_c_max": 60.0},
                                "local:1": {"mem_used_mib_max": used, "mem_total_mib": total, "temp_c_max": hot}})
    found = findings(summary, make_rows())
    assert ids(found) == ["gpu_memory_near_full", "gpu_hot"]
    memory, heat = found
    assert memory["severity"] == heat["severity"] == "warn"
    assert memory["chart"] == "gpu[local:1].mem_used_mib" and heat["chart"] == "gpu[local:1].temp_c"
    assert memory["evidence"] == {"device": "local:1", "used_mib": round(used), "total_mib": round(total)}
    assert heat["evidence"] == {"device": "local:1", "temp_c": round(hot)}
    for finding in found:
        assert_renders(finding)
        assert "local:1" in describe(finding, "en")["title"]


def test_a_gpu_just_under_its_memory_limit_and_temperature_is_fine():
    total = 81920.0
    summary = make_summary(gpu={"local:0": {"mem_used_mib_max": total * (GPU_MEMORY_NEAR_PCT - 1) / 100,
                                            "mem_total_mib": total, "temp_c_max": GPU_HOT_C - 1}})
    assert findings(summary, make_rows()) == []


def test_a_gpu_without_its_memory_total_or_temperature_is_no_finding():
    summary = make_summary(gpu={"local:0": {"mem_used_mib_max": 80000.0, "mem_total_mib": None, "temp_c_max": None}})
    assert findings(summary, make_rows()) == []


# -- 9. error bursts --
BURST_AT = 30


def burst_rows(failed_per_s: int) -> list[dict]:
    """BURST_WINDOW_S seconds from BURST_AT where `failed_per_s` of the second's requests fail."""
    inside = lambda s: BURST_AT <= s < BURST_AT + BURST_WINDOW_S  # noqa: E731
    return make_rows(requests_failed=lambda s: failed_per_s if inside(s) else 0,
                     requests_ok=lambda s: OK_PER_S - failed_per_s if inside(s) else OK_PER_S)


def burst_summary(failed: int) -> dict:
    ok = SECONDS * OK_PER_S - failed
    return make_summary(requests={"ok": ok, "failed": failed}, errors={"http_status": failed},
                        errors_by_status={"503": failed})


def test_most_requests_failing_in_a_few_seconds_is_a_critical_error_burst():
    failed_per_s = OK_PER_S * 9 // 10
    failed = failed_per_s * BURST_WINDOW_S
    run_pct = 100.0 * failed / (SECONDS * OK_PER_S)
    found = findings(burst_summary(failed), burst_rows(failed_per_s))
    assert ids(found) == ["error_burst"]
    burst = found[0]
    assert burst["severity"] == "critical" and burst["chart"] == "requests_failed"
    assert (burst["from_s"], burst["to_s"]) == (BURST_AT, BURST_AT + BURST_WINDOW_S)
    assert burst["evidence"] == {"failed_pct": 90.0, "run_failed_pct": round(run_pct, 1), "failed": failed,
                                 "kinds": {"http_status": failed}, "statuses": {"503": failed}}
    assert_renders(burst)
    for lang in ("en", "zh"):
        text = describe(burst, lang)["evidence"]
        assert f"http_status {failed}" in text and f"503 {failed}" in text


def test_a_burst_under_half_failed_is_a_warning():
    share = (BURST_MIN_PCT + BURST_CRITICAL_PCT) / 2
    failed_per_s = round(OK_PER_S * share / 100)
    pct = 100.0 * failed_per_s / OK_PER_S
    assert BURST_MIN_PCT <= pct < BURST_CRITICAL_PCT
    burst = only(findings(burst_summary(failed_per_s * BURST_WINDOW_S), burst_rows(failed_per_s)), "error_burst")
    assert burst["severity"] == "warn" and burst["evidence"]["failed_pct"] == round(pct, 1)
    assert_renders(burst)


def test_a_burst_of_exactly_half_failed_is_critical():
    failed_per_s = OK_PER_S // 2
    burst = only(findings(burst_summary(failed_per_s * BURST_WINDOW_S), burst_rows(failed_per_s)), "error_burst")
    assert burst["evidence"]["failed_pct"] == BURST_CRITICAL_PCT and burst["severity"] == "critical"


def test_a_burst_without_the_runs_kinds_renders_a_dash():
    failed_per_s = OK_PER_S * 9 // 10
    summary = make_summary(errors={}, errors_by_status={})
    burst = only(findings(summary, burst_rows(failed_per_s)), "error_burst")
    assert burst["evidence"]["kinds"] == {} and burst["evidence"]["statuses"] == {}
    assert "—" in describe(burst, "en")["evidence"]


def test_errors_spread_evenly_are_no_burst():
    failed_per_s = 1
    failed = failed_per_s * SECONDS
    rows = make_rows(requests_failed=failed_per_s, requests_ok=OK_PER_S - failed_per_s)
    summary = make_summary(requests={"ok": SECONDS * OK_PER_S - failed, "failed": failed},
                           errors={"http_status": failed}, errors_by_status={"503": failed})
    assert findings(summary, rows) == []


def test_a_window_under_the_burst_minimum_is_no_burst():
    """A window a lot worse than the run, but under BURST_MIN_PCT of its requests failed."""
    per_s = 1000
    failed_per_s = int(per_s * BURST_MIN_PCT / 100) - 1
    rows = make_rows(requests_ok=per_s)
    for row in rows[BURST_AT:BURST_AT + BURST_WINDOW_S]:
        row["requests_ok"], row["requests_failed"] = per_s - failed_per_s, failed_per_s
    run_pct = 100.0 * failed_per_s * BURST_WINDOW_S / (per_s * SECONDS)
    assert 100.0 * failed_per_s / per_s >= BURST_RATIO * run_pct  # worse than BURST_RATIO times the run
    assert "error_burst" not in ids(findings(make_summary(), rows))


def test_failures_in_the_warm_up_are_no_burst():
    rows = make_rows(BURST_WINDOW_S, phase="warmup", requests_ok=0, requests_failed=OK_PER_S) + make_rows(
        SECONDS, start=BURST_WINDOW_S)
    assert findings(make_summary(load={"warmup_s": float(BURST_WINDOW_S)}), rows) == []


# -- 10. rate limits and timeouts --
def spread_failures(failed: int) -> list[dict]:
    """`failed` failures spread one a second over the run (no burst)."""
    return make_rows(requests_failed=lambda s: 1 if s < failed else 0,
                     requests_ok=lambda s: OK_PER_S - 1 if s < failed else OK_PER_S)


def test_rate_limited_requests_are_critical():
    found = findings(make_summary(errors={"rate_limited": 12}), spread_failures(12))
    assert ids(found) == ["rate_limited"]
    limited = found[0]
    assert limited["severity"] == "critical" and limited["chart"] == "requests_failed"
    assert limited["evidence"] == {"requests": 12}
    assert_renders(limited)


def test_an_http_429_status_alone_is_rate_limited():
    found = findings(make_summary(errors={"http_status": 7}, errors_by_status={"429": 7}), spread_failures(7))
    assert ids(found) == ["rate_limited"] and found[0]["evidence"] == {"requests": 7}


def test_other_statuses_are_not_rate_limited():
    summary = make_summary(errors={"http_status": 7}, errors_by_status={"503": 7})
    assert findings(summary, spread_failures(7)) == []


def test_timeouts_of_one_percent_of_the_requests_are_a_warning():
    total = SECONDS * OK_PER_S
    timeouts = round(total * TIMEOUT_WARN_PCT / 100)
    found = findings(make_summary(errors={"timeout": timeouts}), spread_failures(timeouts))
    assert ids(found) == ["timeouts"]
    timed_out = found[0]
    assert timed_out["severity"] == "warn" and timed_out["chart"] == "requests_failed"
    assert timed_out["evidence"] == {"requests": timeouts, "pct": round(100.0 * timeouts / total, 1)}
    assert_renders(timed_out)


def test_timeouts_under_one_percent_are_no_finding():
    timeouts = round(SECONDS * OK_PER_S * TIMEOUT_WARN_PCT / 100) - 1
    assert findings(make_summary(errors={"timeout": timeouts}), spread_failures(timeouts)) == []


# -- 11. the tail --
def test_a_ttft_p99_over_the_tail_ratio_times_p50_is_a_long_tail():
    p99 = TTFT_P50 * TAIL_RATIO * 1.5
    found = findings(make_summary(ttft_ms={"p99": p99}), make_rows())
    assert ids(found) == ["long_tail"]
    tail = found[0]
    assert tail["severity"] == "warn" and tail["chart"] == "ttft_p95_ms"
    assert tail["evidence"] == {"p50_ms": round(TTFT_P50, 1), "p99_ms": round(p99, 1),
                                "ratio": round(TAIL_RATIO * 1.5, 1)}
    assert_renders(tail)


def test_a_ttft_p99_at_the_tail_ratio_is_no_long_tail():
    assert findings(make_summary(ttft_ms={"p99": TTFT_P50 * TAIL_RATIO}), make_rows()) == []


# -- 12. whether the numbers can be trusted --
def test_a_saturated_client_is_critical_from_its_second():
    summary = make_summary(client={"saturated_from_s": 12, "machine_busy_from_s": 8, "lag_ms_p99": 41.26,
                                   "cpu_pct_max": 99.04})
    found = findings(summary, make_rows())
    assert ids(found) == ["client_saturated"]  # the busy machine is not said twice
    saturated = found[0]
    assert saturated["severity"] == "critical" and saturated["chart"] == "client.lag_p99_ms"
    assert (saturated["from_s"], saturated["to_s"]) == (12, None)
    assert saturated["evidence"] == {"second": 12, "lag_p99_ms": 41.3, "cpu_pct_max": 99.0}
    assert_renders(saturated)


def test_a_busy_machine_is_a_warning_from_its_second():
    found = findings(make_summary(client={"machine_busy_from_s": 8}), make_rows())
    assert ids(found) == ["machine_busy"]
    busy = found[0]
    assert busy["severity"] == "warn" and (busy["from_s"], busy["to_s"]) == (8, None)
    assert busy["evidence"] == {"second": 8}
    assert_renders(busy)


def test_a_client_saturated_from_second_zero_still_counts():
    assert ids(findings(make_summary(client={"saturated_from_s": 0}), make_rows())) == ["client_saturated"]


def test_too_few_requests_for_a_p99_is_info():
    few = MIN_REQUESTS_FOR_P99 - 1
    found = findings(make_summary(requests={"ok": few, "total": few}))
    assert ids(found) == ["few_requests"]
    assert found[0]["severity"] == "info"
    assert found[0]["evidence"] == {"ok": few, "needed": MIN_REQUESTS_FOR_P99}
    assert_renders(found[0])
    assert findings(make_summary(requests={"ok": MIN_REQUESTS_FOR_P99})) == []
    assert findings(make_summary(requests={"ok": 0})) == []  # nothing ok is no p99 at all: not this finding


def test_requests_not_sent_are_critical():
    found = findings(make_summary(requests={"not_sent": 5}), make_rows())
    assert ids(found) == ["not_sent"]
    assert found[0]["severity"] == "critical" and found[0]["evidence"] == {"requests": 5}
    assert_renders(found[0])


def test_a_worker_clock_known_only_roughly_is_a_warning():
    found = findings(make_summary(load={"clock_bound_ms_max": CLOCK_BOUND_MS * 2 + 0.04}), make_rows())
    assert ids(found) == ["clock_bound"]
    assert found[0]["severity"] == "warn"
    assert found[0]["evidence"] == {"bound_ms": round(CLOCK_BOUND_MS * 2, 1)}
    assert_renders(found[0])
    assert findings(make_summary(load={"clock_bound_ms_max": CLOCK_BOUND_MS}), make_rows()) == []


COLD_TTFT = TTFT_P95 * COLD_START_RATIO * 1.5


def cold_rows():
    return make_rows(ttft_p95_ms=lambda s: COLD_TTFT if s == COLD_START_S - 1 else (
        TTFT_P95 * 1.2 if s < COLD_START_S else TTFT_P95))


def test_slow_first_seconds_without_a_warm_up_are_a_cold_start():
    found = findings(make_summary(), cold_rows())
    assert ids(found) == ["cold_start"]
    cold = found[0]
    assert cold["severity"] == "info" and cold["chart"] == "ttft_p95_ms"
    assert (cold["from_s"], cold["to_s"]) == (0, COLD_START_S)
    assert cold["evidence"] == {"first_ms": round(COLD_TTFT, 1), "rest_ms": round(TTFT_P95, 1)}
    assert_renders(cold)


def test_slow_first_seconds_with_a_warm_up_asked_for_are_no_cold_start():
    assert findings(make_summary(load={"warmup_s": 10.0}), cold_rows()) == []
    assert findings(make_summary(load={"warmup_requests": 20}), cold_rows()) == []


def test_first_seconds_under_the_cold_start_ratio_are_no_cold_start():
    rows = make_rows(ttft_p95_ms=lambda s: TTFT_P95 * COLD_START_RATIO if s < COLD_START_S else TTFT_P95)
    assert findings(make_summary(), rows) == []


def test_a_slow_second_after_the_first_ones_is_no_cold_start():
    rows = make_rows(ttft_p95_ms=lambda s: COLD_TTFT if s == COLD_START_S else TTFT_P95)
    assert findings(make_summary(), rows) == []


def test_time_outside_difys_own_ttft_is_dify_queueing():
    server = 80.0
    client = server + DIFY_QUEUE_MS * 1.5
    summary = make_summary(ttft_ms={"p50": client, "p95": client * 1.2, "p99": client * 1.5},
                           server_ttft_ms={"count": 1200, "p50": server})
    found = findings(summary, make_rows())
    assert ids(found) == ["dify_queueing"]
    queueing = found[0]
    assert queueing["severity"] == "warn"
    assert queueing["evidence"] == {"client_ms": round(client, 1), "server_ms": round(server, 1),
                                    "outside_ms": round(DIFY_QUEUE_MS * 1.5, 1)}
    assert_renders(queueing)


def test_a_client_ttft_near_difys_is_no_queueing():
    summary = make_summary(server_ttft_ms={"count": 1200, "p50": TTFT_P50 - DIFY_QUEUE_MS / 10})
    assert findings(summary, make_rows()) == []
    summary = make_summary(ttft_ms={"p50": 80.0 + DIFY_QUEUE_MS}, server_ttft_ms={"count": 1200, "p50": 80.0})
    assert "dify_queueing" not in ids(findings(summary, make_rows()))  # exactly the bound is not over it


# -- 13. the order --
def test_findings_come_critical_then_warn_then_info_each_in_the_order_looked_for():
    summary = make_summary(requests={"ok": MIN_REQUESTS_FOR_P99 // 2, "not_sent": 3},
                           ttft_ms={"p99": TTFT_P50 * TAIL_RATIO * 2}, errors={"rate_limited": 4},
                           load={"clock_bound_ms_max": CLOCK_BOUND_MS * 3})
    rows = make_rows(ttft_p95_ms=rising_ttft(SECONDS))
    found = findings(summary, rows)
    # (no long_tail: with too few requests for a p99, the p99 is the maximum)
    assert ids(found) == ["rate_limited", "not_sent", "queue_building", "clock_bound", "few_requests"]
    ranks = [SEVERITIES.index(f["severity"]) for f in found]
    assert ranks == sorted(ranks)
    for finding in found:
        assert_renders(finding)


def test_rows_may_come_as_any_iterable():
    rows = make_rows(ttft_p95_ms=rising_ttft(SECONDS))
    assert findings(make_summary(), iter(rows)) == findings(make_summary(), rows)


# -- 14. every finding has its words --
def _produced_ids() -> set[str]:
    return set(re.findall(r'_finding\(\s*"(\w+)"', inspect.getsource(findings_module)))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_source_produces_the_ids_the_tests_know():
    assert {"capacity_knee", "queue_building", "error_burst", "client_saturated", "dify_queueing"} <= _produced_ids()


@pytest.mark.parametrize("id_", sorted(_produced_ids()))
def test_every_finding_has_its_words_in_english_and_chinese_with_the_same_placeholders(id_):
    for table in (en.FINDINGS, zh.FINDINGS):
        assert id_ in table
        assert set(table[id_]) >= {"title", "evidence", "suggestion"}
        assert all(isinstance(table[id_][part], str) and table[id_][part] for part in ("title", "evidence",
                                                                                        "suggestion"))
    for part in ("title", "evidence", "suggestion"):
        assert _fields(en.FINDINGS[id_][part]) == _fields(zh.FINDINGS[id_][part]), part


def test_the_tables_have_no_words_for_a_finding_that_is_never_made():
    assert set(en.FINDINGS) == set(zh.FINDINGS) == _produced_ids()


def test_a_total_outage_is_a_burst_even_in_a_run_that_failed_a_lot():
    """A run a third of whose requests failed: a window where every request failed is still a
    burst (BURST_OUTAGE_PCT), though no window can be BURST_RATIO times the run's share."""
    rows = make_rows(requests_ok=OK_PER_S * 6 // 10, requests_failed=OK_PER_S * 4 // 10)  # 40 % failed
    for row in rows[BURST_AT:BURST_AT + BURST_WINDOW_S]:
        row["requests_ok"], row["requests_failed"] = 0, OK_PER_S
    failed = sum(r["requests_failed"] for r in rows)
    ok = sum(r["requests_ok"] for r in rows)
    assert 100 * failed / (ok + failed) * BURST_RATIO > 100  # the ratio alone could never be met
    summary = make_summary(requests={"ok": ok, "failed": failed}, errors={"http_status": failed})
    (burst,) = [f for f in findings(summary, rows) if f["id"] == "error_burst"]
    assert burst["severity"] == "critical" and burst["evidence"]["failed_pct"] == 100.0
    assert (burst["from_s"], burst["to_s"]) == (rows[BURST_AT]["second"], rows[BURST_AT + BURST_WINDOW_S - 1]["second"] + 1)


def test_a_run_that_failed_throughout_has_no_burst():
    rows = make_rows(requests_ok=0, requests_failed=OK_PER_S)
    summary = make_summary(requests={"ok": 0, "failed": OK_PER_S * SECONDS}, errors={"http_status": OK_PER_S * SECONDS})
    assert [f["id"] for f in findings(summary, rows) if f["id"] == "error_burst"] == []


# -- what the records tell (the report's digest, or the run's): when errors came, who the slowest are --
def test_rate_limiting_is_marked_from_the_second_it_began():
    summary = make_summary(errors={"rate_limited": 12})
    (found,) = [f for f in findings(summary, make_rows(), {"errors": {"rate_limited": {"count": 12, "first": 31,
                                                                                          "last": 50}}})
                if f["id"] == "rate_limited"]
    assert (found["from_s"], found["to_s"]) == (31, None)


def test_timeouts_that_begin_late_in_the_run_are_said_to_cluster_after_that_second():
    total = SECONDS * OK_PER_S
    summary = make_summary(requests={"ok": total - 30, "failed": 30, "total": total}, errors={"timeout": 30})
    requests = {"errors": {"timeout": {"count": 30, "first": 44, "last": 58}}}
    (found,) = [f for f in findings(summary, make_rows(), requests) if f["id"].startswith("timeouts")]
    assert found["id"] == "timeouts_after" and (found["from_s"], found["to_s"]) == (44, 59)
    assert found["evidence"]["first_s"] == 44 and "44" in describe(found)["title"]
    early = {"errors": {"timeout": {"count": 30, "first": 3, "last": 58}}}
    assert [f["id"] for f in findings(summary, make_rows(), early) if f["id"].startswith("timeouts")] == ["timeouts"]


def _slowest(field: str, values: list) -> dict:
    return {"slowest": [{"request_id": i, field: v} for i, v in enumerate(values)]}


def test_the_slowest_requests_sharing_a_rare_dataset_is_a_finding():
    total = SECONDS * OK_PER_S
    summary = make_summary(datasets={"long-docs": {"requests": total // 10}, "chat": {"requests": total - total // 10}})
    found = [f for f in findings(summary, make_rows(), _slowest("dataset", ["long-docs"] * 8 + ["chat"] * 2))
             if f["id"] == "slowest_share"]
    assert [f["evidence"] for f in found] == [{"field": "dataset", "value": "long-docs", "count": 8, "of": 10,
                                               "share_pct": 10.0}]
    assert "long-docs" in describe(found[0], "zh")["evidence"]


def test_the_slowest_requests_sharing_a_common_dataset_is_no_finding():
    total = SECONDS * OK_PER_S
    summary = make_summary(datasets={"chat": {"requests": total}})
    assert [f for f in findings(summary, make_rows(), _slowest("dataset", ["chat"] * 10))
            if f["id"] == "slowest_share"] == []


def test_the_slowest_requests_from_one_thread_of_many_is_a_finding_and_too_few_tell_nothing():
    summary = make_summary()
    summary["run"]["load"]["threads"] = 20
    found = [f for f in findings(summary, make_rows(), _slowest("thread_id", [7] * 9 + [3]))
             if f["id"] == "slowest_share"]
    assert found and found[0]["evidence"]["field"] == "thread_id" and found[0]["evidence"]["share_pct"] == 5.0
    assert [f for f in findings(summary, make_rows(), _slowest("thread_id", [7] * 4))
            if f["id"] == "slowest_share"] == []


def test_usage_and_the_tokenizer_disagreeing_is_a_finding_and_agreeing_is_none():
    from sse_perf_tool.findings import TOKENS_CHECK_MIN, TOKENS_DISAGREE_PCT

    usage = 10_000
    off = int(usage * (1 + 1.5 * TOKENS_DISAGREE_PCT / 100))
    summary = make_summary(tokens={"sources": {"usage": 1200}, "check": {
        "requests": TOKENS_CHECK_MIN, "usage_tokens": usage, "tokenizer_tokens": off,
        "disagree_pct": 100.0 * (off - usage) / usage}})
    (found,) = [f for f in findings(summary, make_rows()) if f["id"] == "tokens_disagree"]
    assert found["evidence"]["pct"] == round(1.5 * TOKENS_DISAGREE_PCT, 1) and found["severity"] == "warn"
    assert str(off) in describe(found)["evidence"]
    near = make_summary(tokens={"check": {"requests": 50, "usage_tokens": usage, "tokenizer_tokens": usage + 100,
                                          "disagree_pct": 1.0}})
    few = make_summary(tokens={"check": {"requests": TOKENS_CHECK_MIN - 1, "usage_tokens": usage,
                                         "tokenizer_tokens": off, "disagree_pct": 15.0}})
    assert [f for s in (near, few) for f in findings(s, make_rows()) if f["id"] == "tokens_disagree"] == []


def test_a_gpu_drawing_its_power_limit_is_power_capped():
    from sse_perf_tool.findings import POWER_CAP_FRACTION

    limit = 700.0
    rows = make_rows(**{"gpu[local:0].power_limit_w": limit,
                        "gpu[local:0].power_w": lambda s: limit * POWER_CAP_FRACTION if 30 <= s < 40 else 0.6 * limit})
    (found,) = [f for f in findings(make_summary(), rows) if f["id"] == "power_capped"]
    assert (found["from_s"], found["to_s"]) == (30, 40) and found["chart"] == "gpu[local:0].power_w"
    assert found["evidence"] == {"device": "local:0", "seconds": 10, "limit_w": 700}
    assert "700 W" in describe(found)["evidence"] and describe(found, "zh")["title"]
    below = make_rows(**{"gpu[local:0].power_limit_w": limit, "gpu[local:0].power_w": 0.9 * limit})
    no_limit = make_rows(**{"gpu[local:0].power_w": limit})
    assert [f for rows in (below, no_limit) for f in findings(make_summary(), rows) if f["id"] == "power_capped"] == []


def test_a_long_tail_needs_enough_requests_for_its_p99():
    summary = make_summary(requests={"ok": MIN_REQUESTS_FOR_P99 - 1}, ttft_ms={"p99": TTFT_P50 * TAIL_RATIO * 2})
    assert "long_tail" not in ids(findings(summary, make_rows()))
