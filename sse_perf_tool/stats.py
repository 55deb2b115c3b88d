"""Pure statistics: the whole-run summary's figures (per level, per dataset) and the per-second
series, fed one record at a time. Never reads a clock.

Imports metrics (which distributions exist, which have a per-second series or are kept per
dataset), values (percentiles and the bounded `Values`, re-exported here) and slo (the per-request
bounds of goodput); no I/O, no threads.
"""

from __future__ import annotations

from typing import Iterable, Optional

from . import metrics
from .slo import meets_bounds
from .records import ErrorKind
from .values import (EXACT_LIMIT, LARGEST_BUCKETED, PERCENTILES, RELATIVE_STEP, SMALLEST_BUCKETED,
                     Values, distribution, percentile)

__all__ = ["Figures", "RunFigures", "summarise", "TimeSeries", "TIMESERIES_COLUMNS", "mark_phases",
           "DIST_FIELDS", "DATASET_FIELDS",
           # re-exported from values.py, where they live
           "EXACT_LIMIT", "LARGEST_BUCKETED", "PERCENTILES", "RELATIVE_STEP", "SMALLEST_BUCKETED",
           "Values", "distribution", "percentile"]


# -- whole run -------------------------------------------------------------------------

TOP_ERRORS = 5  # the most frequent error messages in summary.top_errors
TOP_MESSAGES_KEPT = 200  # distinct messages counted; later new ones count as OTHER_MESSAGES
MESSAGE_CHARS = 300
OTHER_MESSAGES = "(other messages)"
DIST_FIELDS = tuple(m.field for m in metrics.DISTRIBUTIONS)  # summary.json's distributions, in order
DATASET_FIELDS = metrics.fields(dataset=True)
_POOLED = frozenset(metrics.fields(pooled=True))


class _Tally:
    """Counts and latency values of one group of records (the run, or one dataset)."""

    def __init__(self, metrics: tuple):
        self.values = {name: Values() for name in metrics}
        self.total = self.ok = self.tokens_ok = self.good = self.empty = self.paused = self.cancelled = 0
        self.abandoned = 0
        self.errors: dict[str, int] = {}
        self.by_status: dict[str, int] = {}  # failed requests by their non-2xx HTTP status
        self.price, self.priced, self.currencies = 0.0, 0, set()  # the server's own prices (Dify)
        self.stops = {"ok": 0, "failed": 0}  # cancelled Dify generations stopped at the server, or not
        self.redirected = 0  # requests that followed a redirect (--follow-redirects)
        self.messages: dict[str, int] = {}  # failed requests by their error message (bounded: TOP_MESSAGES_KEPT)
        self.finish_reasons: dict[str, int] = {}  # over every request ("none": no finish_reason came)
        self.token_sources: dict[str, int] = {}  # over successful requests
        self.check = [0, 0, 0]  # usage checked against the tokenizer: requests, usage's tokens, the tokenizer's

    def add(self, rec: dict, good: bool) -> None:
        self.total += 1
        reason = rec.get("finish_reason") or "none"
        self.finish_reasons[reason] = self.finish_reasons.get(reason, 0) + 1
        self.redirected += bool(rec.get("redirects"))
        stop = rec.get("stop_sent")
        if stop is not None:
            self.stops["ok" if stop else "failed"] += 1
        price = rec.get("server_total_price")
        if price is not None:
            self.price += price
            self.priced += 1
            self.currencies.add(rec.get("server_currency") or "?")
        if not rec.get("ok"):
            kind = rec.get("error_kind") or "unknown"
            if kind == "paused":  # waiting for a human on purpose: neither ok nor failed
                self.paused += 1
                return
            if kind == "abandoned":  # a --cancel-rate user gave up on purpose: neither ok nor failed
                self.abandoned += 1
                return
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if kind == "cancelled":  # stopped by sse-perf (Ctrl-C, the end of the run): not the server's failure
                self.cancelled += 1
                return
            message = str(rec.get("error") or kind)[:MESSAGE_CHARS]
            if message in self.messages or len(self.messages) < TOP_MESSAGES_KEPT:
                self.messages[message] = self.messages.get(message, 0) + 1
            else:
                self.messages[OTHER_MESSAGES] = self.messages.get(OTHER_MESSAGES, 0) + 1
            status = rec.get("http_status")
            if status is not None and not 200 <= status < 300:
                self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            return
        self.ok += 1
        if rec.get("chunks") == 0:
            self.empty += 1  # a proper answer with no text: ok, 0 tokens, no TTFT
        source = rec.get("token_source") or "none"
        self.token_sources[source] = self.token_sources.get(source, 0) + 1
        checked = rec.get("tokenizer_tokens")
        if checked is not None and source == "usage":
            self.check[0] += 1
            self.check[1] += rec.get("output_tokens") or 0
            self.check[2] += checked
        self.good += good
        self.tokens_ok += rec.get("output_tokens") or 0
        for name, values in self.values.items():
            if name in _POOLED:
                values.extend(rec.get(name) or ())
                continue
            value = rec.get(name)
            if value is not None:
                values.append(value)

    def requests(self) -> dict:
        ran = self.total - self.paused - self.cancelled - self.abandoned  # the requests that ran to an end: ok or failed
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": ran - self.ok,
            "success_rate_pct": (100.0 * self.ok / ran) if ran else None,
            "empty": self.empty,
            "paused": self.paused,
            "cancelled": self.cancelled,
            **({"abandoned": self.abandoned} if self.abandoned else {}),
            **({"stops": dict(self.stops)} if any(self.stops.values()) else {}),
            **({"redirected": self.redirected} if self.redirected else {}),
        }

    def cost(self) -> Optional[dict]:
        """The server's own prices summed (Dify's usage.total_price), when it gave any."""
        if not self.priced:
            return None
        currency = next(iter(self.currencies)) if len(self.currencies) == 1 else "mixed"
        return {"total_price": self.price, "currency": currency, "priced_requests": self.priced}


def _by_count(counts: dict) -> dict:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _dataset_counts(tally: _Tally) -> dict:
    counts = tally.requests()
    return {"requests": counts.pop("total"), **counts}


class Figures:
    """The figures of summary.json for one group of records (a run, or one sweep level), kept as the
    records come (bounded: `Values` folds beyond its exact limit), so that nothing has to read
    records.jsonl again to know what the run already saw.

    Warm-up records are counted apart and excluded from every figure. Latency distributions are
    over successful requests only; `itl_ms` pools every gap of every successful request.
    Throughput divides by the measured duration (first send to last finish); output tokens count
    successful requests, as vLLM's bench serve does. Goodput counts the successful requests that
    meet every per-request bound (`slo.request_bounds`), over the same duration.
    """

    def __init__(self, bounds: Optional[dict] = None, with_datasets: bool = True):
        self.bounds = bounds or {}
        self.run = _Tally(DIST_FIELDS)
        self.datasets: Optional[dict[str, _Tally]] = {} if with_datasets else None
        self.turns: Optional[dict[int, _Tally]] = {} if with_datasets else None  # --turns: by conversation turn
        self.warmup = 0

    def add(self, rec: dict) -> None:
        """One records.jsonl object (docs/run-folder.md field names)."""
        if rec.get("warmup"):
            self.warmup += 1
            return
        good = bool(rec.get("ok")) and meets_bounds(rec, self.bounds)
        self.run.add(rec, good)
        if self.datasets is None:
            return
        for groups, key in ((self.datasets, rec.get("dataset")), (self.turns, rec.get("conversation_turn"))):
            if key is not None:
                tally = groups.get(key)
                if tally is None:
                    tally = groups[key] = _Tally(DATASET_FIELDS)
                tally.add(rec, good)

    def summary(self, duration_s: Optional[float]) -> dict:
        run, bounds = self.run, self.bounds
        rate = (lambda n: n / duration_s) if duration_s else (lambda n: None)
        summary = {
            "requests": dict(run.requests(), warmup=self.warmup),
            "errors": dict(sorted(run.errors.items(), key=lambda kv: (-kv[1], kv[0]))),
            "errors_by_status": _by_count(run.by_status),
            "top_errors": [{"message": m, "count": n} for m, n in list(_by_count(run.messages).items())[:TOP_ERRORS]],
            "throughput": {  # every finished request: the load the server answered (goodput is apart)
                "requests_per_s": rate(run.total),
                "ok_requests_per_s": rate(run.ok),
                "output_tokens_total": run.tokens_ok,
                "output_tokens_per_s": rate(run.tokens_ok),
            },
        }
        if set(run.finish_reasons) != {"none"} and run.finish_reasons:  # only flavours that report them
            summary["finish_reasons"] = _by_count(run.finish_reasons)
        summary["tokens"] = {"sources": _by_count(run.token_sources)}
        if run.check[0]:
            n, usage, counted = run.check
            summary["tokens"]["check"] = {"requests": n, "usage_tokens": usage, "tokenizer_tokens": counted,
                                          "disagree_pct": 100.0 * (counted - usage) / usage if usage else None}
        if run.cost() is not None:
            summary["cost"] = run.cost()
        for name in DIST_FIELDS:
            summary[name] = run.values[name].distribution()
        summary["goodput"] = {
            "requests_per_s": rate(run.good),
            "pct": (100.0 * run.good / run.total) if run.total else None,
            "bounds": {field: limit for field, (_, limit) in bounds.items()},
        }
        for section, groups in (("datasets", self.datasets), ("turns", self.turns)):
            if groups:  # per dataset; per conversation turn (later turns carry longer prompts)
                summary[section] = {
                    str(name): dict(_dataset_counts(tally), output_tokens_per_s=rate(tally.tokens_ok),
                                    **{m: tally.values[m].distribution() for m in DATASET_FIELDS})
                    for name, tally in sorted(groups.items())
                }
        return summary


class RunFigures:
    """The whole run's Figures and, in a sweep, one per level (by the record's `level`); fed one
    record at a time by the aggregator while the run goes, or from a run folder's records."""

    def __init__(self, bounds: Optional[dict] = None, per_level: bool = False):
        self.whole = Figures(bounds)
        self.bounds = bounds
        self.levels: Optional[dict] = {} if per_level else None

    def add(self, rec: dict) -> None:
        self.whole.add(rec)
        if self.levels is not None:
            level = rec.get("level")
            figures = self.levels.get(level)
            if figures is None:
                figures = self.levels[level] = Figures(self.bounds, with_datasets=False)
            figures.add(rec)

    record = add  # as the aggregator's sink

    def level(self, value) -> Figures:
        """A level's figures (empty ones for a level without records)."""
        if self.levels is None:
            raise ValueError("these figures are not kept per level")
        return self.levels.get(value) or Figures(self.bounds, with_datasets=False)

    @classmethod
    def from_records(cls, records: Iterable[dict], bounds: Optional[dict] = None, per_level: bool = False) -> "RunFigures":
        figures = cls(bounds, per_level)
        for rec in records:
            figures.add(rec)
        return figures


def summarise(records: Iterable[dict], duration_s: Optional[float], bounds: Optional[dict] = None) -> dict:
    """The figures of summary.json from records.jsonl objects, in one pass (see Figures)."""
    figures = Figures(bounds)
    for rec in records:
        figures.add(rec)
    return figures.summary(duration_s)


# -- per second ------------------------------------------------------------------------

_SERIES = metrics.select(series=True)  # the distributions with a per-second series
TIMESERIES_COLUMNS = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed", "output_tokens",
    *(m.stat_name(stat) for m in _SERIES for stat in m.series), "success_rate_pct",
    "phase", "level",  # warmup | measure | cooldown; the sweep level of that second
)
_NS = 1_000_000_000


class _Second:
    __slots__ = ("active", "started", "ok", "failed", "tokens", "lat", "final", "extra")

    def __init__(self):
        self.active = None
        self.started = self.ok = self.failed = self.tokens = 0
        self.extra = None  # {column: [sum, count]} for telemetry samples taken in this second
        self.lat = {m.field: [] for m in _SERIES}  # raw values until the second is final
        self.final = None  # {"ttft_p50_ms": ..., ...} once finalised


class TimeSeries:
    """Per-second buckets (docs/metrics.md, "Per second"). Second k covers [k, k+1) s after `start_ns`.

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
        if record.error_kind is ErrorKind.ABANDONED:  # a --cancel-rate user gave up: neither ok nor failed
            return
        if not record.ok:
            end_row.failed += 1
            return
        end_row.ok += 1
        if end_row.final is None:
            for name, values in end_row.lat.items():
                value = getattr(record, name)
                if value is not None:
                    values.append(value)
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
        for m in _SERIES:
            ordered = sorted(row.lat[m.field])
            for stat in m.series:
                out[m.stat_name(stat)] = percentile(ordered, float(stat[1:]))
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


def mark_phases(rows: list[dict], phases: list[dict]) -> list[dict]:
    """Fill each row's `phase` (warmup | measure | cooldown) and `level` from the run's phases.

    `phases`: one dict per level in run order, {"from_s", "to_s", "warmup_to_s" or None, "value"},
    in seconds after the run's start. A second belongs to the phase holding its midpoint; seconds
    between levels are cooldown, seconds after the last level belong to it (late finishes).
    """
    for row in rows:
        mid = row["second"] + 0.5
        phase, level = "measure", None
        for index, p in enumerate(phases):
            last = index == len(phases) - 1
            if mid < p["from_s"]:
                phase, level = "cooldown", None
                break
            if mid < p["to_s"] or last:
                level = p["value"]
                warm_to = p.get("warmup_to_s")
                phase = "warmup" if warm_to is not None and mid < warm_to else "measure"
                break
        row["phase"], row["level"] = phase, level
    return rows
