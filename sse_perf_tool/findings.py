"""What the numbers say: the run's findings, each with its evidence, from the summary and the
per-second rows (and, in them, the GPUs' and the server's metrics). Pure functions: no clock, no
I/O. Every threshold is a named constant here (docs/metrics.md lists them).

A finding is a dict: `id`, `severity` (critical, warn, info), `evidence` (the numbers that made
it, by name), `chart` (the timeseries column whose chart shows it, or None), `from_s` and `to_s`
(the seconds it covers, or None). Its words (title, evidence sentence, suggestion) come from
i18n FINDINGS by its id, in the output's language (`describe`).

Imports only the i18n tables.
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Iterable, Optional

from .i18n import table

SEVERITIES = ("critical", "warn", "info")

# a sweep's capacity knee: the first level after which output tokens/s rose less than this ...
KNEE_GAIN_PCT = 10.0
# ... while TTFT or E2E p95 rose more than this
KNEE_LATENCY_RISE_PCT = 20.0
# a queue building in one run (not a sweep): TTFT p95 in the last third of the measured seconds at least
# this many times the first third's
TREND_RATIO = 1.5
TREND_MIN_SECONDS = 15  # fewer measured seconds with a TTFT p95 tell no trend
# users added past capacity: from the second the active threads first doubled, and while they doubled
# again, tokens/s rose less than this above that second's
RAMP_FLAT_PCT = 10.0
RAMP_MIN_SECONDS = 4  # fewer seconds tell no ramp
# the server's side, from --gpu and --server-metrics
GPU_IDLE_PCT = 60.0  # requests wait in the server's queue while the GPUs are busy less than this
GPU_BUSY_PCT = 95.0  # compute-bound: the GPUs at least this busy ...
TPOT_RISE_PCT = 20.0  # ... while TPOT p50 rose more than this from the first third to the last
KV_FULL_FRACTION = 0.90  # memory-bound: KV cache above this with requests waiting or preempted
SERVER_MIN_SECONDS = 3  # a server-side finding needs at least this many seconds
COMPUTE_MIN_SECONDS = 6  # compute-bound needs a TPOT trend over at least this many seconds
GPU_MEMORY_NEAR_PCT = 95.0  # GPU memory used near its total
GPU_HOT_C = 85.0  # GPU temperature near throttling
POWER_CAP_FRACTION = 0.98  # power capped: drawing at least this share of the enforced power limit
# errors
BURST_WINDOW_S = 5  # error bursts are looked for in windows of this many seconds ...
BURST_RATIO = 3.0  # ... whose failed share is this many times the run's ...
BURST_MIN_PCT = 20.0  # ... and at least this (a window at least BURST_OUTAGE_PCT failed is a burst whatever
BURST_OUTAGE_PCT = 90.0  # the run's share, unless the whole run failed as much)
BURST_CRITICAL_PCT = 50.0  # a burst with at least this failed share is critical
TIMEOUTS_MIN_PCT = 1.0  # timeouts are a finding from this share of the requests
# the tail
TAIL_RATIO = 10.0  # TTFT p99 over ten times p50
SLOWEST_SHARE = 0.7  # this share of the slowest requests have the same dataset, thread or turn ...
SLOWEST_OVERALL_MAX = 0.5  # ... which has at most this share of all requests
SLOWEST_MIN = 5  # fewer slowest requests tell nothing
CLUSTER_AFTER = 0.5  # timeouts cluster when the first came after this share of the run
# trust
MIN_REQUESTS_FOR_P99 = 100  # fewer successful requests give no stable p99
TOKENS_DISAGREE_PCT = 5.0  # the tokenizer's count of answers the server counted differs from usage by more than this
TOKENS_CHECK_MIN = 5  # ... over at least this many answers checked
COLD_START_S = 5  # the first seconds ...
COLD_START_RATIO = 2.0  # ... with TTFT p95 this many times the rest's, and no warm-up asked for
CLOCK_BOUND_MS = 5.0  # distributed runs: a worker clock known no better than this
DIFY_QUEUE_MS = 500.0  # Dify: the client's TTFT p50 over Dify's own by more than this

_WAITING = re.compile(r"^server\[(vllm:num_requests_waiting|sglang:num_queue_reqs)(@[^\]]*)?\]$")
_KV = re.compile(r"^server\[(vllm:gpu_cache_usage_perc|vllm:kv_cache_usage_perc|sglang:token_usage)(@[^\]]*)?\]$")
_PREEMPT = re.compile(r"^server\[vllm:num_preemptions(_total)?(@[^\]]*)?\]$")
_GPU = re.compile(r"^gpu\[(?P<device>.+)\]\.(?P<metric>[^.\[\]]+)$")


def _d(value) -> dict:
    """A section of summary.json that should be an object: {} when it is not (a hand-edited file)."""
    return value if isinstance(value, dict) else {}


def _l(value) -> list:
    return value if isinstance(value, list) else []


def _num(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _finding(id_: str, severity: str, chart: Optional[str] = None, from_s=None, to_s=None, **evidence) -> dict:
    return {"id": id_, "severity": severity, "evidence": evidence, "chart": chart, "from_s": from_s, "to_s": to_s}


def _measured(rows: list[dict]) -> list[dict]:
    """The seconds of the measured load (warm-up and cooldown out)."""
    return [row for row in rows if row.get("phase") in (None, "", "measure")]


def _column(rows: list[dict], name: str) -> list[tuple[int, float]]:
    return [(int(row["second"]), v) for row in rows if (v := _num(row.get(name))) is not None]


def _thirds(points: list[tuple[int, float]]) -> tuple[list[float], list[float]]:
    third = len(points) // 3
    return [v for _, v in points[:third]], [v for _, v in points[-third:]] if third else []


# -- a sweep --
def _level_value(level: dict):
    return next(iter(_d(level.get("level")).values()), None)


def _dist(level: dict, family: str, stat: str = "p95") -> Optional[float]:
    return _num((level.get(family) or {}).get(stat))


def sweep_findings(summary: dict) -> list[dict]:
    levels = [lv for lv in _l(summary.get("levels")) if isinstance(lv, dict) and _level_value(lv) is not None]
    if len(levels) < 2:
        return []
    out = []
    kind = next(iter(levels[0]["level"]))
    for before, after in zip(levels, levels[1:]):
        tps0, tps1 = (_num(_d(lv.get("throughput")).get("output_tokens_per_s")) for lv in (before, after))
        if not tps0 or tps1 is None:
            continue
        gain = 100.0 * (tps1 - tps0) / tps0
        rises = {family: 100.0 * (b - a) / a for family in ("ttft_ms", "e2e_ms")
                 if (a := _dist(before, family)) and (b := _dist(after, family)) is not None}
        family, rise = max(rises.items(), key=lambda item: item[1], default=(None, None))
        if gain < KNEE_GAIN_PCT and rise is not None and rise > KNEE_LATENCY_RISE_PCT:
            out.append(_finding("capacity_knee", "warn", "output_tokens", before.get("from_s"), after.get("to_s"),
                                kind=kind, level=_level_value(before), next_level=_level_value(after),
                                tokens_per_s=round(tps0, 1), next_tokens_per_s=round(tps1, 1),
                                gain_pct=round(gain, 1), metric=family.replace("_ms", "_p95"),
                                rise_pct=round(rise, 1)))
            break
    if not summary.get("slo"):
        return out
    best = _d(summary.get("sweep")).get("best_level")
    highest = max(_level_value(lv) for lv in levels)
    if best is None:
        out.append(_finding("no_level_met", "critical", None, kind=kind, lowest=min(_level_value(lv) for lv in levels)))
    elif best == highest:
        out.append(_finding("all_levels_met", "info", None, kind=kind, level=best))
    else:
        out.append(_finding("best_level", "info", None, kind=kind, level=best))
    goodputs = [(i, g) for i, lv in enumerate(levels) if (g := _num(_d(lv.get("goodput")).get("requests_per_s")))
                is not None]
    if goodputs:
        at, value = max(goodputs, key=lambda item: item[1])
        if any(i > at and g < value for i, g in goodputs):  # it falls after the peak: more load, fewer good answers
            peak = levels[at]
            out.append(_finding("goodput_peak", "info", None, peak.get("from_s"), peak.get("to_s"), kind=kind,
                                level=_level_value(peak), goodput_rps=round(value, 2)))
    return out


# -- one run over time --
def trend_findings(rows: list[dict]) -> list[dict]:
    """A single run's trends (a sweep changes its load level by level: its knee says it)."""
    out = []
    measured = _measured(rows)
    if len({row.get("level") for row in measured if row.get("level") not in (None, "")}) > 1:
        return out
    ttft = _column(measured, "ttft_p95_ms")
    if len(ttft) >= TREND_MIN_SECONDS:
        first, last = _thirds(ttft)
        a, b = statistics.median(first), statistics.median(last)
        if a > 0 and b / a >= TREND_RATIO:
            out.append(_finding("queue_building", "warn", "ttft_p95_ms", ttft[-len(last)][0], ttft[-1][0] + 1,
                                first_ms=round(a, 1), last_ms=round(b, 1), ratio=round(b / a, 2)))
    active = _column(measured, "active_threads")
    tokens = dict(_column(measured, "output_tokens"))
    if len(active) >= RAMP_MIN_SECONDS and active[0][1] > 0:
        start_threads = active[0][1]
        doubled = next(((s, v) for s, v in active if v >= 2 * start_threads), None)
        if doubled is not None and tokens:
            # the token rate at the second the threads doubled, and the best of every second after
            later = [v for s, v in tokens.items() if s >= doubled[0]]
            at = tokens.get(doubled[0])
            final_threads = active[-1][1]
            if at and later and final_threads >= 2 * doubled[1] and max(later) < at * (1 + RAMP_FLAT_PCT / 100):
                out.append(_finding("ramp_past_capacity", "warn", "output_tokens", doubled[0], active[-1][0] + 1,
                                    threads=int(doubled[1]), final_threads=int(final_threads),
                                    tokens_per_s=round(at, 1), best_after=round(max(later), 1)))
    return out


# -- the server's side --
def server_findings(rows: list[dict], summary: dict) -> list[dict]:
    out = []
    measured = _measured(rows)
    columns = {key for row in measured for key in row}
    util = sorted(c for c in columns if (m := _GPU.match(c)) and m["metric"] == "util_pct")
    waiting = sorted(c for c in columns if _WAITING.match(c))
    kv = sorted(c for c in columns if _KV.match(c))
    preempt = sorted(c for c in columns if _PREEMPT.match(c))

    def mean_util(row) -> Optional[float]:
        values = [v for c in util if (v := _num(row.get(c))) is not None]
        return sum(values) / len(values) if values else None

    if util and waiting:
        seconds = [(int(row["second"]), u, w) for row in measured
                   if (u := mean_util(row)) is not None and (w := sum(_num(row.get(c)) or 0 for c in waiting)) > 0]
        idle = [s for s in seconds if s[1] < GPU_IDLE_PCT]
        if len(idle) >= SERVER_MIN_SECONDS and len(idle) >= len(seconds) / 2:
            out.append(_finding("scheduler_bound", "warn", waiting[0], idle[0][0], idle[-1][0] + 1,
                                seconds=len(idle), gpu_util_pct=round(statistics.mean(s[1] for s in idle), 1),
                                waiting=round(statistics.mean(s[2] for s in idle), 1)))
    if kv:
        full, previous = [], {}
        for row in measured:  # the preemption counters count from the server's start: what grew this second
            preempted = any((v := _num(row.get(c))) is not None and c in previous and v > previous[c]
                            for c in preempt)
            previous.update({c: v for c in preempt if (v := _num(row.get(c))) is not None})
            if max((_num(row.get(c)) or 0) for c in kv) > KV_FULL_FRACTION \
                    and (sum(_num(row.get(c)) or 0 for c in waiting) > 0 or preempted):
                full.append(int(row["second"]))
        if len(full) >= SERVER_MIN_SECONDS:
            out.append(_finding("memory_bound", "warn", kv[0], full[0], full[-1] + 1, seconds=len(full),
                                kv_limit_pct=round(100 * KV_FULL_FRACTION)))
    if util:
        busy = [(int(row["second"]), u) for row in measured if (u := mean_util(row)) is not None]
        tpot = _column(measured, "tpot_p50_ms")
        if len(busy) >= COMPUTE_MIN_SECONDS and len(tpot) >= COMPUTE_MIN_SECONDS and statistics.mean(u for _, u in busy) >= GPU_BUSY_PCT:
            first, last = _thirds(tpot)
            a, b = statistics.median(first), statistics.median(last)
            if a > 0 and 100 * (b - a) / a > TPOT_RISE_PCT:
                out.append(_finding("compute_bound", "warn", "tpot_p50_ms", tpot[0][0], tpot[-1][0] + 1,
                                    gpu_util_pct=round(statistics.mean(u for _, u in busy), 1),
                                    tpot_first_ms=round(a, 2), tpot_last_ms=round(b, 2)))
    for device in sorted({m["device"] for c in columns if (m := _GPU.match(c))}):
        power, limit = f"gpu[{device}].power_w", f"gpu[{device}].power_limit_w"
        capped = [int(row["second"]) for row in measured if (p := _num(row.get(power))) is not None
                  and (cap := _num(row.get(limit))) and p >= POWER_CAP_FRACTION * cap]
        if len(capped) >= SERVER_MIN_SECONDS:
            out.append(_finding("power_capped", "warn", power, capped[0], capped[-1] + 1, device=device,
                                seconds=len(capped), limit_w=round(max(_num(r.get(limit)) or 0 for r in measured))))
    for device, info in _d(summary.get("gpu")).items():
        info = _d(info)
        used, total = _num(info.get("mem_used_mib_max")), _num(info.get("mem_total_mib"))
        if used and total and 100 * used / total >= GPU_MEMORY_NEAR_PCT:
            out.append(_finding("gpu_memory_near_full", "warn", f"gpu[{device}].mem_used_mib", device=device,
                                used_mib=round(used), total_mib=round(total)))
        temp = _num(info.get("temp_c_max"))
        if temp is not None and temp >= GPU_HOT_C:
            out.append(_finding("gpu_hot", "warn", f"gpu[{device}].temp_c", device=device, temp_c=round(temp)))
    return out


# -- errors --
def error_findings(rows: list[dict], summary: dict, requests: Optional[dict] = None) -> list[dict]:
    out = []
    measured = _measured(rows)
    ok = sum(_num(r.get("requests_ok")) or 0 for r in measured)
    failed = sum(_num(r.get("requests_failed")) or 0 for r in measured)
    errors = _d(summary.get("errors"))
    statuses = _d(summary.get("errors_by_status"))
    if failed and ok + failed:
        run_pct = 100.0 * failed / (ok + failed)
        worst = None
        for i in range(max(0, len(measured) - BURST_WINDOW_S + 1)):
            window = measured[i:i + BURST_WINDOW_S]
            w_ok = sum(_num(r.get("requests_ok")) or 0 for r in window)
            w_failed = sum(_num(r.get("requests_failed")) or 0 for r in window)
            if not w_ok + w_failed:
                continue
            pct = 100.0 * w_failed / (w_ok + w_failed)
            bar = max(BURST_MIN_PCT, min(BURST_RATIO * run_pct, BURST_OUTAGE_PCT))
            if pct >= bar and pct > run_pct and (worst is None or pct > worst[0]):
                worst = (pct, int(window[0]["second"]), int(window[-1]["second"]) + 1, int(w_failed))
        if worst is not None:
            out.append(_finding("error_burst", "critical" if worst[0] >= BURST_CRITICAL_PCT else "warn", "requests_failed",
                                worst[1], worst[2], failed_pct=round(worst[0], 1), run_failed_pct=round(run_pct, 1),
                                failed=worst[3], kinds=dict(errors), statuses=dict(statuses)))
    seen = _d(_d(requests).get("errors"))  # kind -> {count, first, last}: the second each kind was first and last seen
    limited = errors.get("rate_limited") or statuses.get("429") or 0
    if limited:
        first = _d(seen.get("rate_limited")).get("first")
        out.append(_finding("rate_limited", "critical", "requests_failed", first, None, requests=int(limited)))
    timeouts = _num(errors.get("timeout")) or 0
    total = _num(_d(summary.get("requests")).get("total")) or (ok + failed)
    if timeouts and total and 100.0 * timeouts / total >= TIMEOUTS_MIN_PCT:
        entry = _d(seen.get("timeout"))
        first, last = _num(entry.get("first")), _num(entry.get("last"))
        length = len(measured) or None
        pct = round(100.0 * timeouts / total, 1)
        if first is not None and last is not None and length and first >= CLUSTER_AFTER * length:
            out.append(_finding("timeouts_after", "warn", "requests_failed", int(first), int(last) + 1,
                                requests=int(timeouts), pct=pct, first_s=int(first), last_s=int(last)))
        else:
            out.append(_finding("timeouts", "warn", "requests_failed", requests=int(timeouts), pct=pct))
    return out


# -- the tail, and whether the numbers can be trusted --
def trust_findings(summary: dict, rows: list[dict]) -> list[dict]:
    out = []
    ttft = _d(summary.get("ttft_ms"))
    p50, p99 = _num(ttft.get("p50")), _num(ttft.get("p99"))
    enough = (_num(_d(summary.get("requests")).get("ok")) or 0) >= MIN_REQUESTS_FOR_P99  # else p99 is the max
    if enough and p50 and p99 is not None and p99 > TAIL_RATIO * p50:
        out.append(_finding("long_tail", "warn", "ttft_p95_ms", p50_ms=round(p50, 1), p99_ms=round(p99, 1),
                            ratio=round(p99 / p50, 1)))
    client = _d(summary.get("client"))
    if client.get("saturated_from_s") is not None:
        out.append(_finding("client_saturated", "critical", "client.lag_p99_ms", client["saturated_from_s"], None,
                            second=client["saturated_from_s"], lag_p99_ms=_round(client.get("lag_ms_p99")),
                            cpu_pct_max=_round(client.get("cpu_pct_max"))))
    elif client.get("machine_busy_from_s") is not None:
        out.append(_finding("machine_busy", "warn", "client.lag_p99_ms", client["machine_busy_from_s"], None,
                            second=client["machine_busy_from_s"]))
    ok = _d(summary.get("requests")).get("ok") or 0
    if 0 < ok < MIN_REQUESTS_FOR_P99:
        out.append(_finding("few_requests", "info", None, ok=ok, needed=MIN_REQUESTS_FOR_P99))
    check = _d(_d(summary.get("tokens")).get("check"))
    disagree = _num(check.get("disagree_pct"))
    if disagree is not None and (_num(check.get("requests")) or 0) >= TOKENS_CHECK_MIN \
            and abs(disagree) > TOKENS_DISAGREE_PCT:
        out.append(_finding("tokens_disagree", "warn", None, pct=round(disagree, 1), requests=int(check["requests"]),
                            usage=check.get("usage_tokens"), tokenizer=check.get("tokenizer_tokens")))
    load = _d(_d(summary.get("run")).get("load"))
    not_sent = _d(summary.get("requests")).get("not_sent") or 0
    if not_sent:
        out.append(_finding("not_sent", "critical", None, requests=int(not_sent)))
    bound = _num(load.get("clock_bound_ms_max"))
    if bound is not None and bound > CLOCK_BOUND_MS:
        out.append(_finding("clock_bound", "warn", None, bound_ms=round(bound, 1)))
    if not load.get("warmup_s") and not load.get("warmup_requests"):
        ttft_rows = _column(_measured(rows), "ttft_p95_ms")
        first = [v for s, v in ttft_rows if s < COLD_START_S]
        rest = [v for s, v in ttft_rows if s >= COLD_START_S]
        if first and len(rest) >= COLD_START_S and max(first) > COLD_START_RATIO * statistics.median(rest):
            out.append(_finding("cold_start", "info", "ttft_p95_ms", 0, COLD_START_S, first_ms=round(max(first), 1),
                                rest_ms=round(statistics.median(rest), 1)))
    server_ttft = _num(_d(summary.get("server_ttft_ms")).get("p50"))
    if server_ttft is not None and p50 is not None and p50 - server_ttft > DIFY_QUEUE_MS:
        out.append(_finding("dify_queueing", "warn", "ttft_p95_ms", client_ms=round(p50, 1),
                            server_ms=round(server_ttft, 1), outside_ms=round(p50 - server_ttft, 1)))
    return out


def slowest_findings(summary: dict, requests: Optional[dict]) -> list[dict]:
    """The slowest requests (by E2E) share a dataset, a thread or a conversation turn that most
    requests do not have."""
    slowest = [r for r in _l(_d(requests).get("slowest")) if isinstance(r, dict)]
    if len(slowest) < SLOWEST_MIN:
        return []
    total = _num(_d(summary.get("requests")).get("total")) or 0
    threads = _num(_d(_d(summary.get("run")).get("load")).get("threads")) or _num(_d(summary.get("run")).get("threads"))
    out = []
    for field, section in (("dataset", "datasets"), ("conversation_turn", "turns"), ("thread_id", None)):
        values = [r.get(field) for r in slowest if r.get(field) is not None]
        if not values:
            continue
        value = max(set(values), key=values.count)
        count = values.count(value)
        if count < SLOWEST_SHARE * len(slowest):
            continue
        if section is not None:
            share = (_num(_d(_d(summary.get(section)).get(str(value))).get("requests")) or 0) / total if total else None
        else:
            share = 1 / threads if threads else None
        if share is None or share > SLOWEST_OVERALL_MAX:
            continue
        out.append(_finding("slowest_share", "warn", None, field=field, value=str(value), count=count,
                            of=len(slowest), share_pct=round(100 * share, 1)))
    return out


def _round(value, digits: int = 1):
    value = _num(value)
    return None if value is None else round(value, digits)


def findings(summary: dict, rows: Iterable[dict] = (), requests: Optional[dict] = None) -> list[dict]:
    """Every finding of a run, the most severe first (then in the order they are looked for).
    `requests`, where the records were read: {"errors": {kind: {count, first, last}} (the seconds each
    kind was first and last seen), "slowest": the slowest requests by E2E (records' dataset,
    conversation_turn, thread_id)}."""
    rows = [row for row in rows if isinstance(row, dict) and _num(row.get("second")) is not None]  # a second each
    found = (sweep_findings(summary) + trend_findings(rows) + server_findings(rows, summary)
             + error_findings(rows, summary, requests) + slowest_findings(summary, requests)
             + trust_findings(summary, rows))
    return sorted(found, key=lambda f: SEVERITIES.index(f["severity"]))


def describe(finding: dict, lang: str = "en") -> dict:
    """The finding's title, evidence sentence and suggestion in `lang` (i18n FINDINGS)."""
    t = table("FINDINGS", lang)
    words = t[finding["id"]]
    evidence = dict(finding["evidence"])
    for key in ("kinds", "statuses"):
        if key in evidence:
            evidence[key] = ", ".join(f"{k} {v}" for k, v in evidence[key].items()) or "—"
    return {"title": words["title"].format(**evidence), "evidence": words["evidence"].format(**evidence),
            "suggestion": _sentence(words["suggestion"].format(**evidence))}


def _sentence(text: str) -> str:
    """A suggestion as a sentence of its own: its first letter upper case (Chinese has none)."""
    return text[:1].upper() + text[1:]
