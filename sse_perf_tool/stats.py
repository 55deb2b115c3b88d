"""Pure statistics: percentiles, distributions, the whole-run summary. Never reads a clock.

Imports only from the standard library and `records` field names; no I/O, no threads.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

PERCENTILES = (50, 90, 95, 99)
DIST_KEYS = ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")


def percentile(sorted_values: Sequence[float], pct: float) -> Optional[float]:
    """Linear interpolation between closest ranks (numpy's default, 'linear').

    `sorted_values` must be sorted ascending. None for an empty sequence.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return float(sorted_values[0])
    rank = (n - 1) * pct / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def distribution(values: Iterable[float]) -> dict:
    """count, mean, min, p50, p90, p95, p99, max. With no values: count 0 and None elsewhere."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return {key: (0 if key == "count" else None) for key in DIST_KEYS}
    out = {"count": n, "mean": math.fsum(ordered) / n, "min": float(ordered[0])}
    for pct in PERCENTILES:
        out[f"p{pct}"] = percentile(ordered, pct)
    out["max"] = float(ordered[-1])
    return out


# -- whole run -------------------------------------------------------------------------

LATENCY_METRICS = ("ttfb_ms", "ttft_ms", "ttfo_ms", "tpot_ms", "itl_ms", "e2e_ms")


def summarise(records: Iterable[dict], duration_s: Optional[float]) -> dict:
    """The figures of summary.json from records.jsonl objects (CONTRACT.md field names).

    Latency distributions are over successful requests only; `itl_ms` pools every gap of every
    successful request. Throughput divides by the measured duration (first send to last finish);
    output tokens count successful requests, as vLLM's bench serve does.
    """
    from array import array

    values = {name: array("d") for name in LATENCY_METRICS}
    total = ok = tokens_ok = 0
    errors: dict[str, int] = {}
    for rec in records:
        total += 1
        if not rec.get("ok"):
            kind = rec.get("error_kind") or "unknown"
            errors[kind] = errors.get(kind, 0) + 1
            continue
        ok += 1
        tokens_ok += rec.get("output_tokens") or 0
        for name in LATENCY_METRICS:
            if name == "itl_ms":
                values[name].extend(rec.get("itl_ms") or ())
                continue
            value = rec.get(name)
            if value is not None:
                values[name].append(value)
    rate = (lambda n: n / duration_s) if duration_s else (lambda n: None)
    summary = {
        "requests": {
            "total": total,
            "ok": ok,
            "failed": total - ok,
            "success_rate_pct": (100.0 * ok / total) if total else None,
        },
        "errors": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "throughput": {
            "requests_per_s": rate(ok),
            "output_tokens_total": tokens_ok,
            "output_tokens_per_s": rate(tokens_ok),
        },
    }
    for name in LATENCY_METRICS:
        summary[name] = distribution(values[name])
    return summary


# -- per second ------------------------------------------------------------------------

TIMESERIES_COLUMNS = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed", "output_tokens",
    "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "e2e_p50_ms", "e2e_p95_ms", "success_rate_pct",
)
_NS = 1_000_000_000


class _Second:
    __slots__ = ("active", "started", "ok", "failed", "tokens", "lat", "final", "extra")

    def __init__(self):
        self.active = None
        self.started = self.ok = self.failed = self.tokens = 0
        self.extra = None  # {column: [sum, count]} for telemetry samples taken in this second
        self.lat = {"ttft": [], "tpot": [], "e2e": []}  # raw values until the second is final
        self.final = None  # {"ttft_p50_ms": ..., ...} once finalised


class TimeSeries:
    """Per-second buckets (METRICS.md, "Per second"). Second k covers [k, k+1) s after `start_ns`.

    Memory grows with the run's seconds, not its requests: latency values are kept only until a
    second is finalised, then reduced to its percentiles. Fed RequestRecord objects; pure (the
    caller says which second to finalise; no clock is read here).
    """

    def __init__(self, start_ns: int):
        self.start_ns = start_ns
        self._rows: list[_Second] = []
        self.extra_columns: dict[str, None] = {}  # telemetry columns in first-seen order

    def add_values(self, at_ns: int, values: dict) -> None:
        """Telemetry readings taken at `at_ns` (GPU, server metrics): each column's cell is the
        mean of the readings in that second. Readings from before the start are dropped."""
        if at_ns < self.start_ns:
            return
        row = self._row(self._second(at_ns))
        if row.extra is None:
            row.extra = {}
        for column, value in values.items():
            self.extra_columns.setdefault(column)
            if value is None:
                continue
            acc = row.extra.setdefault(column, [0.0, 0])
            acc[0] += value
            acc[1] += 1

    def _second(self, ns: int) -> int:
        return max(0, (ns - self.start_ns) // _NS)

    def _row(self, second: int) -> _Second:
        rows = self._rows
        while len(rows) <= second:
            rows.append(_Second())
        return rows[second]

    def add(self, record) -> None:
        self._row(self._second(record.sent_ns)).started += 1
        end_row = self._row(self._second(record.ended_ns if record.ended_ns is not None else record.sent_ns))
        if not record.ok:
            end_row.failed += 1
            return
        end_row.ok += 1
        if end_row.final is None:
            for key, value in (("ttft", record.ttft_ms), ("tpot", record.tpot_ms), ("e2e", record.e2e_ms)):
                if value is not None:
                    end_row.lat[key].append(value)
        self._add_tokens(record)

    def _add_tokens(self, record) -> None:
        """Spread the request's output tokens over the seconds its token events arrived in."""
        times = record.token_times_ns
        tokens = record.output_tokens
        if not times or tokens <= 0:
            if tokens > 0:
                self._row(self._second(record.ended_ns)).tokens += tokens
            return
        per_event, extra = divmod(tokens, len(times))
        start, ns = self.start_ns, _NS
        current, count = None, 0
        for i, t in enumerate(times):
            second = (t - start) // ns
            share = per_event + (1 if i < extra else 0)
            if second != current:
                if current is not None:
                    self._row(max(0, current)).tokens += count
                current, count = second, 0
            count += share
        self._row(max(0, current)).tokens += count

    def set_active(self, second: int, active: int) -> None:
        self._row(second).active = active

    def _percentiles(self, row: _Second) -> dict:
        if row.final is not None:
            return row.final
        out = {}
        for key in ("ttft", "tpot", "e2e"):
            ordered = sorted(row.lat[key])
            out[f"{key}_p50_ms"] = percentile(ordered, 50)
            out[f"{key}_p95_ms"] = percentile(ordered, 95)
        return out

    def finalise_until(self, second: int) -> None:
        """Reduce every second < `second` to its percentiles and free its raw values."""
        for row in self._rows[: max(0, second)]:
            if row.final is None:
                row.final = self._percentiles(row)
                row.lat = None

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, second: int, cumulative: tuple[int, int] | None = None) -> dict:
        """One row with the fixed columns. `cumulative` = (ok, finished) through this second."""
        r = self._row(second)
        out = {
            "second": second,
            "active_threads": r.active,
            "requests_started": r.started,
            "requests_ok": r.ok,
            "requests_failed": r.failed,
            "output_tokens": r.tokens,
        }
        out.update(self._percentiles(r))
        for column in self.extra_columns:
            acc = r.extra.get(column) if r.extra else None
            out[column] = acc[0] / acc[1] if acc else None
        if cumulative is not None:
            ok, finished = cumulative
            out["success_rate_pct"] = 100.0 * ok / finished if finished else None
        return out

    def rows(self, length: Optional[int] = None) -> list[dict]:
        """All rows, with the cumulative success rate; `length` pads/truncates to that many seconds."""
        n = len(self._rows) if length is None else length
        out, ok, finished = [], 0, 0
        for second in range(n):
            r = self._row(second)
            ok += r.ok
            finished += r.ok + r.failed
            out.append(self.row(second, (ok, finished)))
        return out
