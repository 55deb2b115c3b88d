"""What the HTML report reads from a run folder: timeseries.csv rows (`load_timeseries`),
records.jsonl streamed once (`RecordStream`, `load_records`), and everything gathered from the
records in that one pass (`RecordDigest`: pre-binned histograms, the slowest requests, error
examples, per-dataset figures, token sources), never the records themselves. During a run the
digest is one of the aggregator's sinks (without histograms: those come from the run's own
distributions, `histogram_of`), so the report never reads records.jsonl back.

Imports `metrics` (which distributions get a histogram, a dataset column, a slowest table),
`stats` (percentile, Values), `report_format.shorten` and `report_load.finite`.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import math
from array import array
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from . import metrics
from .report_format import shorten
from .report_load import finite as _finite
from .stats import Values, percentile

TEXT_COLUMNS = ("phase",)  # timeseries.csv cells kept as text
TOP_N = 10
QUERY_CELL_CHARS = 80
QUERY_TITLE_CHARS = 400
EXAMPLE_CHARS = 300
EXAMPLES_PER_KIND = 3
HIST_TARGET_BINS = 40
HIST_SAMPLE = 20000


# ---------------------------------------------------------------- loading


def load_timeseries(path: Path) -> list[dict]:
    """timeseries.csv -> one dict per row: 'second' an int, `phase` text, every other cell a
    float or None.

    Empty, non-numeric and non-finite cells are None ("no value"), never 0.
    """
    rows: list[dict] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for key, cell in raw.items():
                if key is None:  # a row longer than the header
                    continue
                if key in TEXT_COLUMNS:
                    row[key] = cell or None
                    continue
                value: Optional[float]
                try:
                    value = float(cell) if cell not in (None, "") else None
                except ValueError:
                    value = None
                if value is not None and not math.isfinite(value):
                    value = None
                row[key] = value
            second = row.get("second")
            row["second"] = int(second) if second is not None else len(rows)
            rows.append(row)
    return rows


class RecordStream:
    """Iterates records.jsonl lazily and counts lines that are not JSON objects.

    A run killed mid-write can leave a torn last line; the report skips it and says so.
    """

    def __init__(self, path: Path):
        self.path = path
        self.skipped = 0

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        loads = json.loads
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = loads(line)
                except json.JSONDecodeError:
                    self.skipped += 1
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    self.skipped += 1


def load_records(path: Path) -> Iterator[dict]:
    """records.jsonl streamed one record at a time (never the whole file in memory)."""
    return iter(RecordStream(Path(path)))


# ---------------------------------------------------------------- record aggregation


def _round(value: Optional[float], digits: int = 2) -> Any:
    if value is None:
        return None
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return round(value, digits)


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= raw."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    exponent = math.floor(math.log10(raw))
    base = 10.0 ** exponent
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * base * (1 + 1e-9):
            return factor * base
    return 10.0 * base


def bin_plan(lo: float, p99: float, hi: float) -> dict:
    """Bin edges for values in [lo, hi] whose 99th percentile is p99.

    Bins of a 'nice' width (1, 2, 2.5, 5 x 10^k) from the minimum; when the tail beyond p99
    is long, the bins stop near p99 and the rest is counted in an overflow bin.
    """
    clip = hi > p99 * 1.25 and hi > lo and p99 > lo
    upper = p99 if clip else hi
    span = upper - lo
    width = _nice_step(span / HIST_TARGET_BINS if span > 0 else max(abs(lo) / 20, 0.001))
    first = math.floor(lo / width)
    bins = max(1, math.ceil(upper / width) - first) if clip else math.floor(hi / width) - first + 1
    return {"first": first, "width": width, "bins": max(1, bins), "clip": clip}


class Binner:
    """Counts values into a `bin_plan` as they stream by: C-level map/Counter, no storage,
    ~5 million ITL gaps in about half a second."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.counter: Counter = Counter()
        self._divide = plan["width"].__rtruediv__

    def add_many(self, values) -> None:
        """`values`: finite numbers only (the caller filters; see RecordDigest.add)."""
        self.counter.update(map(math.floor, map(self._divide, values)))

    def add_weighted(self, pairs) -> None:
        """(value, count) pairs, e.g. stats.Values.weighted()."""
        divide, counter = self._divide, self.counter
        for value, count in pairs:
            counter[math.floor(divide(value))] += count

    def result(self) -> Optional[dict]:
        plan = self.plan
        first, bins, clip = plan["first"], plan["bins"], plan["clip"]
        counts = [0] * bins
        overflow = 0
        for key, count in self.counter.items():
            index = key - first
            if index < 0:
                index = 0
            if index >= bins:
                if clip:
                    overflow += count
                    continue
                index = bins - 1
            counts[index] += count
        n = sum(counts) + overflow
        if n == 0:
            return None
        return {"lo": _round(first * plan["width"], 6), "width": _round(plan["width"], 6),
                "counts": counts, "overflow": overflow, "n": n}


def histogram(values: array) -> Optional[dict]:
    """Pre-binned histogram of an array of floats (the browser gets bins, never values)."""
    n = len(values)
    if n == 0:
        return None
    if n <= 4 * HIST_SAMPLE:
        ordered = sorted(values)
        lo, hi = ordered[0], ordered[-1]
    else:  # p99 from a strided sample: the edges need not be exact, the counts are
        ordered = sorted(values[:: n // HIST_SAMPLE])
        lo, hi = min(values), max(values)
    binner = Binner(bin_plan(lo, percentile(ordered, 99), hi))
    binner.add_many(values)
    return binner.result()


def histogram_of(values: Values) -> Optional[dict]:
    """The histogram of one of the run's own distributions: exactly `histogram` while its values
    are exact; once folded, its buckets' centres (within 0.005 %) counted into the plan of its
    min, p99 and max."""
    if values.buckets is None:
        return histogram(values.exact)
    dist = values.distribution()
    binner = Binner(bin_plan(dist["min"], dist["p99"], dist["max"]))
    binner.add_weighted(values.weighted())
    return binner.result()


HIST_METRICS = metrics.select(histogram=True)
HIST_FIELDS = tuple(m.key for m in HIST_METRICS)
ROW_FIELDS = metrics.fields(dataset=True)  # the latencies of a slowest-requests row
_TOP_FIELDS = metrics.fields(slowest=True)


def summary_binners(summary: dict) -> dict:
    """Streaming binners for the histograms whose min, p99 and max the summary gives (then no
    value is stored, so the report's memory does not grow with the run); the others collect."""
    return {m.key: binner for m in HIST_METRICS if (binner := _binner(summary, m.field)) is not None}


def _binner(summary: dict, field: str) -> Optional[Binner]:
    dist = summary.get(field) if isinstance(summary.get(field), dict) else {}
    lo, p99, hi = _finite(dist.get("min")), _finite(dist.get("p99")), _finite(dist.get("max"))
    if not dist.get("count") or lo is None or p99 is None or hi is None or not lo <= p99 <= hi:
        return None
    return Binner(bin_plan(lo, p99, hi))


class _Top:
    """The `TOP_N` records with the highest value of one field, kept in a min-heap."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, dict]] = []
        self.tiebreak = itertools.count()

    def offer(self, value: float, make_row) -> None:
        if len(self.heap) < TOP_N:
            heapq.heappush(self.heap, (value, -next(self.tiebreak), make_row()))
        elif value > self.heap[0][0]:
            heapq.heapreplace(self.heap, (value, -next(self.tiebreak), make_row()))

    def rows(self) -> list[dict]:
        return [row for _, _, row in sorted(self.heap, key=lambda item: (-item[0], -item[1]))]


class _Dataset:
    """One dataset's counts and latencies (for run folders whose summary.json lacks `datasets`),
    bounded like the summary's own distributions (stats.Values)."""

    __slots__ = ("requests", "ok", "failed", "values", "tokens")

    def __init__(self, with_values: bool) -> None:
        self.requests = self.ok = self.failed = self.tokens = 0
        self.values = {name: Values() for name in ROW_FIELDS} if with_values else None


class RecordDigest:
    """Everything the report needs from records.jsonl, gathered in one streaming pass.

    Memory: the histograms' bins (or, without binners, 8 bytes per value), the top-10 heaps,
    three example messages per error kind and per-dataset stats.Values (bounded); never the
    records themselves. As the aggregator's sink during a run (`histograms=False`), only the
    bounded parts: the run's own figures give the histograms and the datasets.
    """

    def __init__(self, run_started_at: Optional[float], binners: Optional[dict] = None, histograms: bool = True):
        self.run_started_at = run_started_at
        self.binners = binners or {}  # name in HIST_FIELDS -> Binner; those not here collect values
        self.histograms = histograms  # False: collect no latencies (the run's figures have them)
        self.first_started_at: Optional[float] = None
        self.count = 0
        self.values = {name: array("d") for name in HIST_FIELDS}
        self.tops = {name: _Top() for name in _TOP_FIELDS}  # the slowest requests by each field
        self.errors: dict[str, dict] = {}
        self.datasets: dict[Optional[str], _Dataset] = {}
        self.any_dataset = False
        self.token_sources: Counter = Counter()
        self.warmup = 0  # warm-up records seen (and skipped)
        self.paused = 0  # Dify workflows paused for human input (neither ok nor failed)

    def record(self, record: dict) -> None:  # as the aggregator's sink
        self.add(record)

    def add_all(self, records: Iterable[dict]) -> "RecordDigest":
        for record in records:
            self.add(record)
        return self

    @property
    def origin(self) -> Optional[float]:
        """Second 0 of the run: run.started_at, else the earliest request start."""
        return self.run_started_at if self.run_started_at is not None else self.first_started_at

    def _row(self, record: dict) -> dict:
        query = record.get("query")
        return {
            "request_id": record.get("request_id"),
            "thread_id": record.get("thread_id"),
            "started_at": _finite(record.get("started_at")),
            **{name: _finite(record.get(name)) for name in ROW_FIELDS},
            "tokens": record.get("output_tokens"),
            "dataset": record.get("dataset"),
            "conversation_turn": record.get("conversation_turn"),
            "query": shorten(query, QUERY_CELL_CHARS),
            "query_full": shorten(query, QUERY_TITLE_CHARS),
        }

    def top_rows(self, top: "_Top") -> list[dict]:
        origin = self.origin
        rows = [dict(row) for row in top.rows()]  # the heap's own rows stay as they are (asked again later)
        for row in rows:
            started = row.pop("started_at")
            row["start_s"] = None if started is None or origin is None else started - origin
        return rows

    def for_findings(self) -> dict:
        """What findings.py reads from the records: when each error kind was first and last seen, and
        the slowest requests by E2E."""
        top = self.tops.get("e2e_ms")
        return {"errors": {kind: {k: e[k] for k in ("count", "first", "last")} for kind, e in self.error_entries().items()},
                "slowest": self.top_rows(top) if top is not None else []}

    def error_entries(self) -> dict[str, dict]:
        """Errors by kind; first/last = the second of the run in which such a request ended
        (started_at + total_ms - run start)."""
        origin = self.origin
        out = {}
        for kind, entry in self.errors.items():
            row = {"count": entry["count"], "examples": entry["examples"], "first": None, "last": None}
            if origin is not None and entry["first_end"] is not None:
                row["first"] = max(0, math.floor(entry["first_end"] - origin))
                row["last"] = max(0, math.floor(entry["last_end"] - origin))
            out[kind] = row
        return out

    def add(self, record: dict) -> None:
        self.count += 1
        started = _finite(record.get("started_at"))
        if started is not None and (self.first_started_at is None or started < self.first_started_at):
            self.first_started_at = started
        if record.get("warmup"):  # sent during warm-up: excluded from every statistic, as in stats
            self.warmup += 1
            return
        ok = record.get("ok") is True
        dataset_name = record.get("dataset")
        if dataset_name is not None:
            dataset_name = str(dataset_name)
            self.any_dataset = True
        dataset = self.datasets.get(dataset_name)
        if dataset is None:
            dataset = self.datasets[dataset_name] = _Dataset(self.histograms)
        dataset.requests += 1
        tokens = record.get("output_tokens")
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            dataset.tokens += tokens
        source = record.get("token_source")
        if source:
            self.token_sources[str(source)] += 1

        if not ok and record.get("error_kind") == "paused":  # waiting for a human on purpose: not an error
            self.paused += 1
            return
        if not ok:
            dataset.failed += 1
            kind = str(record.get("error_kind") or "unknown")
            entry = self.errors.get(kind)
            if entry is None:
                entry = self.errors[kind] = {"count": 0, "first_end": None, "last_end": None, "examples": []}
            entry["count"] += 1
            if started is not None:
                ended = started + (_finite(record.get("total_ms")) or 0.0) / 1000.0
                if entry["first_end"] is None or ended < entry["first_end"]:
                    entry["first_end"] = ended
                if entry["last_end"] is None or ended > entry["last_end"]:
                    entry["last_end"] = ended
            message = record.get("error")
            if message and len(entry["examples"]) < EXAMPLES_PER_KIND:
                text = shorten(message, EXAMPLE_CHARS)
                if text not in entry["examples"]:
                    entry["examples"].append(text)
            return

        dataset.ok += 1
        for name, top in self.tops.items():
            value = _finite(record.get(name))
            if value is not None:
                top.offer(value, lambda: self._row(record))
        if not self.histograms:
            return
        for name, values in dataset.values.items():
            value = _finite(record.get(name))
            if value is not None:
                values.append(value)
        for m in HIST_METRICS:
            value = record.get(m.field)
            if not m.pooled:
                value = _finite(value)
                if value is not None:
                    self._collect(m.key, (value,))
            elif value and isinstance(value, list):
                try:  # C-level check: a null, a string, NaN or inf inside makes the sum fail or not finite
                    clean = math.isfinite(sum(value))
                except TypeError:
                    clean = False
                if not clean:
                    value = [v for v in map(_finite, value) if v is not None]
                self._collect(m.key, value)

    def _collect(self, name: str, values) -> None:
        binner = self.binners.get(name)
        if binner is not None:
            binner.add_many(values)
        else:
            self.values[name].extend(values)

    def histogram(self, name: str) -> Optional[dict]:
        binner = self.binners.get(name)
        if binner is not None:
            return binner.result()
        return histogram(self.values[name])
