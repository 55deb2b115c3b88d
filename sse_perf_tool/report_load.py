"""The load-model views of the HTML report (issue 5): load facts, SLO verdicts, goodput, sweep
levels with their capacity curves, the load generator's self-check, and the warm-up / cooldown /
level / saturation bands of the time charts.

Pure functions from summary.json and timeseries rows to view dicts of raw numbers (report.py
and the template format them). Imports only the metric registry (metrics.py: the per-level
statistics, the capacity curves, the labels); report.py imports from here.
Every key is optional: a run folder without the issue-5 (or self-check) fields gives None or []
everywhere.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from . import metrics as registry
from .metrics import STATS

LEVEL_KINDS = ("threads", "rate")
CURVES = registry.select(curve=True)  # y of the capacity curves, in this order
LEVEL_STATS = registry.stat_columns("level")  # (metric, stat) columns of the per-level table
PRETTY_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
RATE_METRICS = {"output_tokens_per_s": "unit_tps"}  # any other '/s' metric counts requests


def finite(value: Any) -> Optional[float]:
    """A float for a finite number, else None (bools, strings, NaN and inf are not values)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _plain(value: float) -> str:
    """16.0 -> '16', 2.5 -> '2.5': a level as people write it."""
    return f"{value:g}"


def _family_label(family: str, t: dict) -> str:
    metric = registry.BY_KEY.get(family)
    if metric is None:
        return family
    return metric.label[t.get("lang", "en")] if metric.open_loop else metric.short["en"]



# ---------------------------------------------------------------- load model facts


def load_section(summary: dict) -> dict:
    return _dict(_dict(summary.get("run")).get("load"))


def sweep_kind(summary: dict) -> str:
    """'threads' or 'rate': from summary.sweep, the run's load.sweep, else the first level's key."""
    for source in (_dict(summary.get("sweep")), _dict(load_section(summary).get("sweep"))):
        if source.get("kind") in LEVEL_KINDS:
            return source["kind"]
    levels = summary.get("levels")
    if isinstance(levels, list) and levels:
        level = _dict(_dict(levels[0]).get("level"))
        for kind in LEVEL_KINDS:
            if kind in level:
                return kind
    return "threads"


def level_of(entry: dict) -> tuple[str, Optional[float]]:
    """A levels[] entry's (kind, value): {"level": {"threads": 4}} -> ("threads", 4.0)."""
    level = _dict(entry.get("level"))
    for kind in LEVEL_KINDS:
        if kind in level:
            return kind, finite(level[kind])
    return "threads", None


def level_label(kind: str, value: Optional[float], t: dict) -> str:
    """'16 threads', '1 thread', '2.5 req/s'."""
    if value is None:
        return "—"
    if kind == "rate":
        return t["level_rate"].format(n=_plain(value))
    return t["level_thread" if value == 1 else "level_threads"].format(n=_plain(value))


def load_facts(summary: dict, warmup_excluded: int, t: dict) -> list[tuple[str, str]]:
    """(label, text) pairs for the header's run facts: load model, arrivals, seed, sweep, warm-up.
    `warmup_excluded`: warm-up requests the records show, used when the summary lacks the count."""
    load = load_section(summary)
    facts: list[tuple[str, str]] = []
    model = load.get("model")
    if model in ("open", "closed"):
        facts.append((t["fact_load"], t["load_" + model]))
    if model == "open":
        rate, arrival = finite(load.get("rate")), load.get("arrival")
        parts = [t.get("arrival_" + str(arrival), str(arrival))] if arrival else []
        if rate is not None:
            parts.append(t["rate_per_s"].format(rate=_plain(rate)))
        if parts:
            facts.append((t["fact_arrivals"], " · ".join(parts)))
        if load.get("seed") is not None:
            facts.append((t["fact_seed"], str(load["seed"])))
    processes = finite(load.get("processes"))
    if load.get("backend") == "ray":
        nodes = load.get("nodes") if isinstance(load.get("nodes"), list) else []
        text = t["ray_fact"].format(n=int(finite(load.get("workers")) or 0), nodes=len(nodes))
        bound = finite(load.get("clock_bound_ms_max"))
        facts.append((t["fact_ray"], text + " · " + (t["ray_clock_bound"].format(ms=f"{bound:.2f}")
                                                      if bound is not None else t["ray_one_clock"])))
    elif processes is not None and processes > 1:
        facts.append((t["fact_processes"], t["processes_fact"].format(n=int(processes))))
    sweep = _dict(load.get("sweep")) or _dict(summary.get("sweep"))
    values = [_plain(v) for v in map(finite, sweep.get("values") or []) if v is not None] \
        if isinstance(sweep.get("values"), list) else []
    if values:
        kind = sweep_kind(summary)
        text = t["sweep_fact"].format(kind=t["sweep_kind_" + kind], values=" · ".join(values))
        cooldown = finite(sweep.get("cooldown_s"))
        if cooldown:
            text += " · " + t["sweep_cooldown"].format(s=_plain(cooldown))
        facts.append((t["fact_sweep"], text))
    counted = finite(_dict(summary.get("requests")).get("warmup"))
    excluded = int(counted) if counted is not None else warmup_excluded
    warmup_s, warmup_n = finite(load.get("warmup_s")), finite(load.get("warmup_requests"))
    if excluded or warmup_s or warmup_n:
        parts = []
        if warmup_s:
            parts.append(t["warmup_seconds" + ("_level" if values else "")].format(s=_plain(warmup_s)))
        if warmup_n:
            parts.append(t["warmup_first"].format(n=f"{int(warmup_n):,}"))
        parts.append(t["warmup_excluded"].format(n=f"{excluded:,}"))
        facts.append((t["fact_warmup"], " · ".join(parts)))
    return facts


def workers_view(summary: dict) -> list[dict]:
    """One row per worker (--processes, --ray): where it ran, its clock against this machine's, and
    its own self-check (CPU of its core, worst lag, the second from which it was the limit)."""
    load = load_section(summary)
    listed = [w for w in load.get("worker_list") or [] if isinstance(w, dict)]
    checks = _dict(summary.get("client")).get("workers")
    checks = {c.get("worker"): c for c in checks if isinstance(c, dict)} if isinstance(checks, list) else {}
    rows = []
    for number, worker in enumerate(listed, start=1):
        check = _dict(checks.get(number))
        rows.append({"worker": number, "where": str(worker.get("where") or check.get("where") or "—"),
                     "versions": " · ".join(f"{name} {worker[key]}" for key, name in
                                            (("sse_perf", "sse-perf"), ("ray", "Ray"), ("python", "Python"))
                                            if worker.get(key)),
                     "offset_ms": finite(worker.get("clock_offset_ms")), "bound_ms": finite(worker.get("clock_bound_ms")),
                     "cpu_pct": finite(check.get("cpu_pct_mean")), "lag_ms": finite(check.get("lag_ms_p99_max")),
                     "saturated_from": finite(check.get("saturated_from_s"))})
    return rows


def stopped_early(summary: dict) -> Optional[str]:
    reason = _dict(summary.get("run")).get("stopped_early")
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


def not_sent(summary: dict) -> int:
    value = finite(_dict(summary.get("requests")).get("not_sent"))
    return int(value) if value and value > 0 else 0


def is_open_loop(summary: dict) -> bool:
    return load_section(summary).get("model") == "open"


# ---------------------------------------------------------------- SLOs and goodput


def _unit(verdict: dict, t: dict) -> str:
    """The unit shown beside an SLO's value and limit: ms, %, s, req/s or tok/s."""
    unit = verdict.get("unit")
    if unit in ("ms", "%", "s"):
        return unit
    metric = str(verdict.get("metric") or "")
    family = registry.BY_KEY.get(metric.rpartition("_")[0])
    if family is not None and family.unit == "tok/s":
        return t["unit_tps"]
    if unit == "/s" or metric in ("requests_per_s", "output_tokens_per_s", "goodput"):
        return t[RATE_METRICS.get(metric, "unit_rps")]
    return str(unit or "")


def slo_rows(verdicts: Any, t: dict) -> list[dict]:
    """summary.json `slo` list -> table rows; entries that are not objects are skipped."""
    rows = []
    for verdict in verdicts if isinstance(verdicts, list) else []:
        if not isinstance(verdict, dict):
            continue
        met = verdict.get("met")
        rows.append({"expr": str(verdict.get("expr") or verdict.get("metric") or "?"),
                     "metric": str(verdict.get("metric") or ""),
                     "op": PRETTY_OPS.get(verdict.get("op"), str(verdict.get("op") or "")),
                     "limit": finite(verdict.get("limit")), "value": finite(verdict.get("value")),
                     "unit": _unit(verdict, t), "met": met if isinstance(met, bool) else None})
    return rows


def slo_view(summary: dict, t: dict) -> Optional[dict]:
    """The verdict table and the headline ("All SLOs met" / "1 of 3 SLOs missed"); None without SLOs."""
    rows = slo_rows(summary.get("slo"), t)
    if not rows:
        return None
    met = sum(1 for row in rows if row["met"] is True)
    total = len(rows)
    view = {"rows": rows, "met": met, "total": total, "missed": total - met, "all_met": met == total,
            "headline": t["slo_all_met"] if met == total else t["slo_missed"].format(missed=total - met, total=total),
            "scope": ""}
    levels = summary.get("levels")
    if isinstance(levels, list) and levels:
        sweep = sweep_view_best(summary)
        kind = sweep_kind(summary)
        if sweep is not None:
            view["scope"] = t["slo_scope_best"].format(level=level_label(kind, sweep, t))
        else:
            view["scope"] = t["slo_scope_first"].format(level=level_label(kind, level_of(_dict(levels[0]))[1], t))
    return view


def goodput_view(summary: dict, t: dict) -> Optional[dict]:
    """Goodput requests/s and % with the per-request bounds it used; None when there is no
    goodput or nothing bounds it (no SLO given: goodput would only repeat the ok rate)."""
    goodput = _dict(summary.get("goodput"))
    rps, pct = finite(goodput.get("requests_per_s")), finite(goodput.get("pct"))
    bounds = _dict(goodput.get("bounds"))
    verdicts = slo_rows(summary.get("slo"), t)
    if (rps is None and pct is None) or not (bounds or verdicts):
        return None
    items = []
    for field, limit in bounds.items():
        limit = finite(limit)
        metric = registry.BY_FIELD.get(str(field))
        if limit is None or metric is None:
            continue
        ops = [row["op"] for row in verdicts if row["metric"].rpartition("_")[0] == metric.key]
        default = "<" if metric.direction == registry.LOWER else "≥"
        items.append({"label": _family_label(metric.key, t), "op": ops[0] if ops else default, "value": limit,
                      "unit": metric.unit})
    return {"rps": rps, "pct": pct, "bounds": items}


# ---------------------------------------------------------------- sweep


def sweep_view_best(summary: dict) -> Optional[float]:
    """summary.sweep.best_level; without a `sweep` section, the highest level meeting its SLOs."""
    sweep = summary.get("sweep")
    if isinstance(sweep, dict):
        return finite(sweep.get("best_level"))
    levels = summary.get("levels") if isinstance(summary.get("levels"), list) else []
    meeting = [level_of(e)[1] for e in levels if isinstance(e, dict) and e.get("meets_slo") is True]
    meeting = [v for v in meeting if v is not None]
    return max(meeting) if meeting else None


def _dist(entry: dict, metric: registry.Metric, stat: str) -> Optional[float]:
    return finite(_dict(entry.get(metric.field)).get(stat))


def _curve_stat(metric: registry.Metric, verdicts: list[dict]) -> str:
    """The statistic a capacity curve plots: the registry's (p95), unless every SLO on that family
    uses another one (ttft_p99<1s): then that one, so that the limit line and the points measure
    the same thing."""
    stats = {row["metric"].rpartition("_")[2] for row in verdicts
             if row["metric"].rpartition("_")[0] == metric.key}
    stats &= set(STATS)
    return stats.pop() if len(stats) == 1 else metric.curve[0]


def sweep_view(summary: dict, t: dict) -> Optional[dict]:
    """The per-level table, the best level in words and the capacity-curve data; None when not a sweep."""
    levels = [e for e in summary.get("levels") or [] if isinstance(e, dict)] \
        if isinstance(summary.get("levels"), list) else []
    if not levels:
        return None
    kind = sweep_kind(summary)
    best = sweep_view_best(summary)
    verdicts = slo_rows(summary.get("slo"), t)
    has_slo = bool(verdicts) or any(isinstance(e.get("slo"), list) and e["slo"] for e in levels) \
        or any(isinstance(e.get("meets_slo"), bool) for e in levels)
    rows = []
    for entry in levels:
        _, value = level_of(entry)
        req, thr, good = _dict(entry.get("requests")), _dict(entry.get("throughput")), _dict(entry.get("goodput"))
        level_verdicts = slo_rows(entry.get("slo"), t)
        meets = entry.get("meets_slo")
        rows.append({
            "label": level_label(kind, value, t), "short": _plain(value) if value is not None else "?",
            "value": value, "requests": finite(req.get("total")), "success": finite(req.get("success_rate_pct")),
            "rps": finite(thr.get("requests_per_s")), "tps": finite(thr.get("output_tokens_per_s")),
            "stats": [_dist(entry, m, stat) for m, stat in LEVEL_STATS],
            "goodput_rps": finite(good.get("requests_per_s")), "goodput_pct": finite(good.get("pct")),
            "meets": meets if isinstance(meets, bool) else None,
            "slo_met": sum(1 for v in level_verdicts if v["met"] is True), "slo_total": len(level_verdicts),
            "best": best is not None and value == best,
        })
    best_label = level_label(kind, best, t) if best is not None else None
    if best_label:
        sentence, tone = t["best_level"].format(level=best_label), "good"
    elif has_slo:
        sentence, tone = t["best_none"], "bad"
    else:
        sentence, tone = t["best_no_slo"], ""
    charts, chart_data = [], []
    for metric in CURVES:
        stat = _curve_stat(metric, verdicts)
        title = t["curve_title"].format(metric=_family_label(metric.key, t), stat=stat)
        limits = [{"value": row["limit"], "text": f"SLO {row['expr']}"} for row in verdicts
                  if row["metric"].rpartition("_")[0] == metric.key and row["limit"] is not None]
        charts.append({"id": f"cap-{metric.key}", "title": title})
        chart_data.append({"id": f"cap-{metric.key}", "y_title": title, "stat": stat, "limits": limits,
                           "ys": [_dist(entry, metric, stat) for entry in levels]})
    data = {
        "points": [{"label": r["label"], "short": r["short"], "tps": r["tps"], "rps": r["rps"],
                    "met": r["meets"], "best": r["best"]} for r in rows],
        "charts": chart_data,
        "x_titles": {"tps": t["curve_x_tps"], "rps": t["curve_x_rps"]},
        "i18n": {"best": t["curve_best"], "met": t["slo_met"], "missed": t["slo_missed_badge"]},
    }
    heads = [f"{m.short['en']} {stat}" for m, stat in LEVEL_STATS]
    return {"kind": kind, "rows": rows, "stat_heads": heads, "best": best, "best_label": best_label, "sentence": sentence,
            "tone": tone, "has_slo": has_slo, "charts": charts, "data": data}


# ---------------------------------------------------------------- self-check of the load generator


def saturated_from(summary: dict) -> Optional[float]:
    """summary.client.saturated_from_s: the second from which sse-perf's own delay is in the timings."""
    since = finite(_dict(summary.get("client")).get("saturated_from_s"))
    return None if since is None else (int(since) if since.is_integer() else since)


def _column_max(rows: list[dict], column: str) -> Optional[float]:
    values = [v for v in (finite(row.get(column)) for row in rows) if v is not None]
    return max(values) if values else None


def client_view(summary: dict, rows: list[dict], lag_limit_ms: float, cpu_fraction: float) -> Optional[dict]:
    """summary.json `client` for the header facts, the lag card and the saturation banner; None
    without the section. `cpu_limit` (percent of one core) = cpu_fraction x usable cores x 100,
    None when the cores are unknown. When saturated, `lag_peak` and `cpu_peak` are the highest
    lag p99 and CPU of the saturated seconds (the whole run's figures without a time series).
    `tone`: 'bad' when saturated, 'good' with lag p99 within the limit, 'warn' above it."""
    client = _dict(summary.get("client"))
    if not client:
        return None
    cores = finite(client.get("cores_usable"))
    cores = int(cores) if cores is not None and cores >= 1 else None
    view: dict[str, Any] = {
        "lag_p50": finite(client.get("lag_ms_p50")), "lag_p99": finite(client.get("lag_ms_p99")),
        "cpu_mean": finite(client.get("cpu_pct_mean")), "cpu_max": finite(client.get("cpu_pct_max")),
        "cores": cores, "lag_limit": lag_limit_ms, "cpu_limit": cpu_fraction * 100.0 * cores if cores else None,
        "saturated_from": saturated_from(summary), "lag_peak": None, "cpu_peak": None,
        "busy_from": finite(client.get("machine_busy_from_s")), "load_max": finite(client.get("load_avg_max")),
        "machine_cores": finite(client.get("machine_cores")),
    }
    if view["busy_from"] is not None:  # our own CPU while the machine was busy: the evidence it was not us
        busy = [row for row in rows if (finite(row.get("second")) or 0) >= view["busy_from"]]
        cpu = _column_max(busy, "client.cpu_pct")
        view["busy_cpu"] = view["cpu_max"] if cpu is None else cpu
    if view["saturated_from"] is not None:
        after = [row for row in rows if (finite(row.get("second")) or 0) >= view["saturated_from"]]
        lag, cpu = _column_max(after, "client.lag_p99_ms"), _column_max(after, "client.cpu_pct")
        view["lag_peak"] = view["lag_p99"] if lag is None else lag
        view["cpu_peak"] = view["cpu_max"] if cpu is None else cpu
        view["tone"] = "bad"
    elif view["lag_p99"] is None:
        view["tone"] = ""
    else:
        view["tone"] = "good" if view["lag_p99"] <= lag_limit_ms else "warn"
    return view


# ---------------------------------------------------------------- bands of the time charts


def _runs(rows: list[dict], key) -> list[tuple[Any, int, int]]:
    """Maximal runs of consecutive seconds with the same key(row) (None ends a run):
    (key, first second, last second + 1)."""
    out: list[tuple[Any, int, int]] = []
    for row in rows:
        second = row.get("second")
        if not isinstance(second, int):
            continue
        value = key(row)
        if value is not None and out and out[-1][0] == value and out[-1][2] == second:
            out[-1] = (value, out[-1][1], second + 1)
        elif value is not None:
            out.append((value, second, second + 1))
    return out


def bands(rows: list[dict], summary: dict, t: dict) -> Optional[dict]:
    """Shaded x ranges of the time charts, in seconds of the run: warm-up and cooldown seconds
    (timeseries `phase`), the sweep levels (timeseries `level`; without those columns, the
    levels' from_s/to_s/warmup_to_s) and, with key `saturated` only when there is one, the
    seconds from the load generator's saturation to the end. None when the run has none of them."""
    kind = sweep_kind(summary)
    levels: list[dict] = []
    warmup: list[dict] = []
    cooldown: list[dict] = []
    if any(row.get("phase") is not None or finite(row.get("level")) is not None for row in rows):
        for value, lo, hi in _runs(rows, lambda row: finite(row.get("level"))):
            levels.append({"from": lo, "to": hi, "label": level_label(kind, value, t), "short": _plain(value)})
        for phase, lo, hi in _runs(rows, lambda row: row.get("phase") if row.get("phase") in ("warmup", "cooldown")
                                   else None):
            (warmup if phase == "warmup" else cooldown).append({"from": lo, "to": hi})
    elif isinstance(summary.get("levels"), list):
        for entry in summary["levels"]:
            entry = _dict(entry)
            lo, hi, warm = finite(entry.get("from_s")), finite(entry.get("to_s")), finite(entry.get("warmup_to_s"))
            _, value = level_of(entry)
            if lo is None or hi is None or hi <= lo or value is None:
                continue
            levels.append({"from": lo, "to": hi, "label": level_label(kind, value, t), "short": _plain(value)})
            if warm is not None and warm > lo:
                warmup.append({"from": lo, "to": min(warm, hi)})
    since = saturated_from(summary)
    end = max((row["second"] for row in rows if isinstance(row.get("second"), int)), default=None)
    saturated = [{"from": since, "to": end + 1}] if since is not None and end is not None and since < end + 1 else []
    if not (levels or warmup or cooldown or saturated):
        return None
    view = {"levels": levels, "warmup": warmup, "cooldown": cooldown,
            "i18n": {"warmup": t["band_warmup"], "cooldown": t["band_cooldown"]}}
    if saturated:  # a run folder without the self-check gets the same data as before
        view["saturated"] = saturated
    return view
