"""What load went in and what came out, outside a sweep's capacity curves: the open loop's
offered rate second by second (the line the report draws beside the requests sent and
finished), and throughput by concurrency (the per-second rows grouped by how many requests
were in flight).

Pure functions from summary.json and timeseries rows to lists and view dicts of raw numbers.
Imports `report_load` (the load-model readers) only.
"""

from __future__ import annotations

from typing import Optional

from .report_load import finite, is_open_loop, level_of, load_section

MIN_POINTS = 2  # a chart of throughput by concurrency needs two concurrencies to say anything


def _spans(summary: dict, rows: list[dict]) -> list[tuple[float, float, float]]:
    """(from_s, to_s, rate) of each stretch in which arrivals were due. A run for a duration
    sends until that duration (each sweep level for that long after its start); a run for a
    number of requests until the last second that sent one."""
    load = load_section(summary)
    config = (summary.get("run") or {}).get("config") if isinstance(summary.get("run"), dict) else None
    duration = finite((config or {}).get("duration_s")) or 0.0
    rate = finite(load.get("rate"))
    sent = [finite(row.get("second")) for row in rows if (finite(row.get("requests_started")) or 0) > 0]
    last_sent = max((s for s in sent if s is not None), default=None)
    levels = summary.get("levels") if isinstance(summary.get("levels"), list) else []
    spans = []
    for entry in (e for e in levels if isinstance(e, dict)):
        kind, value = level_of(entry)
        start = finite(entry.get("from_s"))
        level_rate = value if kind == "rate" else rate
        end = start + duration if start is not None and duration else finite(entry.get("to_s"))
        if start is not None and end is not None and level_rate is not None:
            spans.append((start, end, level_rate))
    if levels:
        return spans
    if rate is None:
        return []
    end = duration if duration else (last_sent + 1 if last_sent is not None else 0.0)
    return [(0.0, end, rate)]


def offered_rates(summary: dict, rows: list[dict]) -> Optional[list]:
    """Open loop: per row, the arrival rate due in that second (the configured `--rate`, or the
    sweep level's rate; 0 where none was due: cooldowns, late finishes). None for a closed loop."""
    if not is_open_loop(summary):
        return None
    spans = _spans(summary, rows)
    if not spans:
        return None
    out = []
    for row in rows:
        second = finite(row.get("second"))
        if second is None:
            out.append(None)
            continue
        mid = second + 0.5
        out.append(next((rate for start, end, rate in spans if start <= mid < end), 0.0))
    return out


def finished_per_second(rows: list[dict]) -> list:
    """Per row, the requests that finished in it (ok and failed)."""
    out = []
    for row in rows:
        ok, failed = finite(row.get("requests_ok")), finite(row.get("requests_failed"))
        out.append(None if ok is None and failed is None else int((ok or 0) + (failed or 0)))
    return out


def concurrency_view(summary: dict, rows: list[dict]) -> Optional[dict]:
    """Throughput by concurrency: the measured seconds grouped by the requests in flight at their
    end (`active_threads`), each group's mean output tokens/s and requests finished per second.
    Warm-up and cooldown seconds, seconds with nothing in flight and the run's last second (it
    ends part-way) are left out. None for a sweep (its capacity curves say this per level) or a
    run without a time series. `points` is [] below MIN_POINTS concurrencies; `only` then names
    the one there was."""
    if isinstance(summary.get("levels"), list) and summary["levels"]:
        return None
    if not rows:
        return None
    groups: dict[int, list[tuple[float, float]]] = {}
    for row in rows[:-1]:
        active = finite(row.get("active_threads"))
        if active is None or active < 1 or row.get("phase") in ("warmup", "cooldown"):
            continue
        tokens = finite(row.get("output_tokens")) or 0.0
        finished = (finite(row.get("requests_ok")) or 0.0) + (finite(row.get("requests_failed")) or 0.0)
        groups.setdefault(int(round(active)), []).append((tokens, finished))
    points = [{"c": c, "seconds": len(v), "tps": round(sum(t for t, _ in v) / len(v), 2),
               "rps": round(sum(f for _, f in v) / len(v), 3)} for c, v in sorted(groups.items())]
    only = points[0]["c"] if len(points) == 1 else None
    return {"points": points if len(points) >= MIN_POINTS else [], "only": only,
            "open_loop": is_open_loop(summary)}
