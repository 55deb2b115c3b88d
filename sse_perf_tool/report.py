"""The self-contained HTML report: summary + time series + records -> one HTML file.

Imports `stats`, `report_i18n`, `report_load` (the load-model views: SLOs, sweeps, warm-up,
self-check), `masking` and the self-check's limits from `selfcheck` only (Jinja2 lazily, inside the functions, so that `sse-perf --help` stays fast). Chart.js, its
zoom plugin and Hammer.js ship in `sse_perf_tool/assets/` and are inlined; the output references
no external URL.
"""

from __future__ import annotations

import csv
import functools
import heapq
import itertools
import json
import math
import re
import time
from array import array
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from . import report_load
from .masking import mask_option
from .report_i18n import LANGS, strings
from .report_load import finite as _finite
from .selfcheck import CPU_LIMIT_FRACTION, LAG_LIMIT_MS, PROBE_SLEEP_S, SUSTAINED_S
from .stats import Values, percentile

__all__ = ["LANGS", "render_report", "write_report", "load_timeseries", "load_records"]

NULL = "—"
TEMPLATE_NAME = "report.html.j2"
APP_JS_NAME = "report_app.js"
VENDORED = (  # load order matters: the zoom plugin reads the globals Chart and Hammer
    ("hammer", "hammer.min.js", "2.0.8"),
    ("chartjs", "chart.umd.min.js", "4.6.1"),
    ("zoom", "chartjs-plugin-zoom.min.js", "2.2.0"),
)

FIXED_COLUMNS = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed",
    "output_tokens", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms",
    "e2e_p50_ms", "e2e_p95_ms", "success_rate_pct",
)
LOAD_COLUMNS = ("phase", "level")  # issue 5: drawn as bands on every time chart, not as series
CLIENT_COLUMNS = ("client.lag_p50_ms", "client.lag_p99_ms", "client.cpu_pct")  # the self-check's
TEXT_COLUMNS = ("phase",)  # timeseries.csv cells kept as text
RUN_KEYS = ("started_at", "ended_at", "duration_s", "api", "base_url", "threads", "ramp_up_s",
            "model_name", "interrupted", "config", "tool_version")
DIST_METRICS = (("ttfb_ms", "TTFB"), ("ttft_ms", "TTFT"), ("ttfo_ms", "TTFO"),
                ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2e_ms", "E2E"))
OPEN_LOOP_METRICS = (("queue_ms", "family_queue"), ("ttft_from_scheduled_ms", "family_ttft_from_scheduled"),
                     ("e2e_from_scheduled_ms", "family_e2e_from_scheduled"))  # (key, report_i18n key)
GPU_COLUMN = re.compile(r"^gpu\[(?P<device>.+)\]\.(?P<metric>[^.\[\]]+)$")
SERVER_COLUMN = re.compile(r"^server\[(?P<name>.+)\]$")
GPU_METRIC_ORDER = ("util_pct", "mem_used_mib", "temp_c", "power_w", "sm_clock_mhz", "energy_j")
UTIL_MEAN_COL = "@gpu_util_mean_pct"  # derived series key; '@' never starts a timeseries.csv column
LAG_LIMIT_COL, CPU_LIMIT_COL = "@client_lag_limit_ms", "@client_cpu_limit_pct"  # dashed limit lines
SERVER_TITLES = {  # Prometheus name -> report_i18n key of a readable title
    "vllm:num_requests_running": "srv_running", "sglang:num_running_reqs": "srv_running",
    "vllm:num_requests_waiting": "srv_waiting", "sglang:num_queue_reqs": "srv_waiting",
    "vllm:gpu_cache_usage_perc": "srv_kv_cache", "vllm:kv_cache_usage_perc": "srv_kv_cache",
    "sglang:token_usage": "srv_token_usage",
}

# Colour-blind friendly (Okabe-Ito based) palette; p50 blue, p95 orange everywhere.
BLUE, ORANGE, GREEN, RED, PURPLE, TEAL, YELLOW, GREY = (
    "#2563eb", "#ea7c0c", "#16a34a", "#dc2626", "#7c3aed", "#0d9488", "#ca8a04", "#64748b")
PALETTE = (BLUE, ORANGE, GREEN, PURPLE, TEAL, RED, YELLOW, "#db2777", "#0891b2", GREY)

TOP_N = 10
QUERY_CELL_CHARS = 80
QUERY_TITLE_CHARS = 400
EXAMPLE_CHARS = 300
EXAMPLES_PER_KIND = 3
HIST_TARGET_BINS = 40
HIST_SAMPLE = 20000


# ---------------------------------------------------------------- formatting helpers


def fmt_num(value: Any, digits: int = 1) -> str:
    """Thousands separators and `digits` decimals; '—' for null."""
    v = _finite(value)
    return NULL if v is None else f"{v:,.{digits}f}"


def fmt_int(value: Any) -> str:
    v = _finite(value)
    return NULL if v is None else f"{round(v):,}"


def fmt_pct(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NULL
    # 99.95 must not read as 100.0 % while requests failed
    text = f"{v:.2f}" if 99.0 < v < 100.0 else f"{v:.1f}"
    return f"{text} %"


def fmt_ms(value: Any) -> str:
    v = _finite(value)
    return NULL if v is None else f"{v:,.1f} ms"


def fmt_lag(value: Any) -> str:
    """Scheduling lag: 2 decimals below 1 ms, where a healthy probe wakes up."""
    v = _finite(value)
    return NULL if v is None else (f"{v:.2f} ms" if abs(v) < 1 else f"{v:,.1f} ms")


def fmt_seconds(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NULL
    text = f"{v:,.1f} s"
    if v >= 60:
        whole = int(round(v))
        h, rest = divmod(whole, 3600)
        m, s = divmod(rest, 60)
        text += f" ({h}:{m:02d}:{s:02d})" if h else f" ({m}:{s:02d})"
    return text


def fmt_unit(value: Any, unit: str) -> str:
    """A value in its unit: ms and % as everywhere in the report, rates with 2 decimals."""
    if unit == "ms":
        return fmt_ms(value)
    if unit == "%":
        return fmt_pct(value)
    text = fmt_num(value, 2)
    return f"{text} {unit}" if unit and text != NULL else text


def fmt_time(value: Any) -> str:
    """Unix seconds -> local date and time of the machine that renders, with its UTC offset."""
    v = _finite(value)
    if v is None:
        return NULL
    moment = datetime.fromtimestamp(v).astimezone()
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


def fmt_option(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_option(item) for item in value) if value else NULL
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def shorten(text: Any, limit: int) -> str:
    """One line, at most `limit` characters, with an ellipsis when cut."""
    if text is None:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


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


class _RecordStream:
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
    return iter(_RecordStream(Path(path)))


# ---------------------------------------------------------------- record aggregation


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


HIST_FIELDS = ("ttft", "tpot", "e2e", "itl")


def _binners(summary: dict) -> dict:
    """Streaming binners for the histograms whose min, p99 and max the summary gives (then no
    value is stored, so the report's memory does not grow with the run); the others collect."""
    return {name: binner for name in HIST_FIELDS if (binner := _binner(summary, f"{name}_ms")) is not None}


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
    """One dataset's counts and latencies, for run folders whose summary.json lacks `datasets`;
    bounded like the summary's own distributions (stats.Values)."""

    __slots__ = ("requests", "ok", "failed", "ttft", "tpot", "e2e", "tokens")

    def __init__(self) -> None:
        self.requests = self.ok = self.failed = self.tokens = 0
        self.ttft, self.tpot, self.e2e = Values(), Values(), Values()


class RecordDigest:
    """Everything the report needs from records.jsonl, gathered in one streaming pass.

    Memory: the histograms' bins (or, without binners, 8 bytes per value), the top-10 heaps,
    three example messages per error kind and per-dataset stats.Values (bounded); never the
    records themselves.
    """

    def __init__(self, run_started_at: Optional[float], binners: Optional[dict] = None):
        self.run_started_at = run_started_at
        self.binners = binners or {}  # name in HIST_FIELDS -> Binner; those not here collect values
        self.first_started_at: Optional[float] = None
        self.count = 0
        self.ttft, self.tpot, self.e2e, self.itl = array("d"), array("d"), array("d"), array("d")
        self.top_e2e, self.top_ttft = _Top(), _Top()
        self.errors: dict[str, dict] = {}
        self.datasets: dict[Optional[str], _Dataset] = {}
        self.any_dataset = False
        self.token_sources: Counter = Counter()
        self.warmup = 0  # warm-up records seen (and skipped)

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
            "ttft_ms": _finite(record.get("ttft_ms")),
            "tpot_ms": _finite(record.get("tpot_ms")),
            "e2e_ms": _finite(record.get("e2e_ms")),
            "tokens": record.get("output_tokens"),
            "dataset": record.get("dataset"),
            "query": shorten(query, QUERY_CELL_CHARS),
            "query_full": shorten(query, QUERY_TITLE_CHARS),
        }

    def top_rows(self, top: "_Top") -> list[dict]:
        origin = self.origin
        rows = top.rows()
        for row in rows:
            started = row.pop("started_at")
            row["start_s"] = None if started is None or origin is None else started - origin
        return rows

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
            dataset = self.datasets[dataset_name] = _Dataset()
        dataset.requests += 1
        tokens = record.get("output_tokens")
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            dataset.tokens += tokens
        source = record.get("token_source")
        if source:
            self.token_sources[str(source)] += 1

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
        ttft = _finite(record.get("ttft_ms"))
        tpot = _finite(record.get("tpot_ms"))
        e2e = _finite(record.get("e2e_ms"))
        if ttft is not None:
            self._collect("ttft", (ttft,))
            dataset.ttft.append(ttft)
            self.top_ttft.offer(ttft, lambda: self._row(record))
        if tpot is not None:
            self._collect("tpot", (tpot,))
            dataset.tpot.append(tpot)
        if e2e is not None:
            self._collect("e2e", (e2e,))
            dataset.e2e.append(e2e)
            self.top_e2e.offer(e2e, lambda: self._row(record))
        itl = record.get("itl_ms")
        if itl and isinstance(itl, list):
            try:  # C-level check: a null, a string, NaN or inf inside makes the sum fail or not finite
                clean = math.isfinite(sum(itl))
            except TypeError:
                clean = False
            if not clean:
                itl = [v for v in map(_finite, itl) if v is not None]
            self._collect("itl", itl)

    def _collect(self, name: str, values) -> None:
        binner = self.binners.get(name)
        if binner is not None:
            binner.add_many(values)
        else:
            getattr(self, name).extend(values)

    def histogram(self, name: str) -> Optional[dict]:
        binner = self.binners.get(name)
        if binner is not None:
            return binner.result()
        return histogram(getattr(self, name))


# ---------------------------------------------------------------- view model


def _round(value: Optional[float], digits: int = 2) -> Any:
    if value is None:
        return None
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return round(value, digits)


def _series_values(rows: list[dict], column: str) -> list:
    out = []
    append = out.append
    for row in rows:
        value = row.get(column)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            append(None)
        elif float(value).is_integer():
            append(int(value))
        else:
            append(round(value, 2))
    return out


def _unit_of(metric: str) -> str:
    for suffix, unit in (("_pct", "%"), ("_perc", ""), ("_mib", "MiB"), ("_mb", "MB"), ("_mhz", "MHz"),
                         ("_w", "W"), ("_c", "°C"), ("_ms", "ms"), ("_s", "s"), ("_seconds", "s"), ("_j", "J")):
        if metric.endswith(suffix):
            return unit
    return ""


def _server_title(name: str, t: dict) -> tuple[str, str, Any]:
    """(title, subtitle, suggested y max) of a server[...] column. Known vLLM/SGLang metrics get
    a readable title and keep the Prometheus name as subtitle; any other name is the title.
    `name@host:port` (second and later --server-metrics URLs) is matched on the part before '@'."""
    key = SERVER_TITLES.get(name.split("@", 1)[0])
    if key is None:
        return name, "", None
    return t[key], name, 1 if key in ("srv_kv_cache", "srv_token_usage") else None


def _mean_of_columns(rows: list[dict], columns: list[str]) -> list:
    """Per row, the mean of the columns that have a value there; None where none has one."""
    out = []
    for row in rows:
        values = [v for v in (_finite(row.get(c)) for c in columns) if v is not None]
        out.append(round(sum(values) / len(values), 2) if values else None)
    return out


def _column_max(rows: list[dict], column: str) -> Optional[float]:
    values = [v for v in (_finite(row.get(column)) for row in rows) if v is not None]
    return max(values) if values else None


def _with_memory_totals(rows, series, device_cols, totals, with_values, t, device_color, s):
    """GPU memory total is no chart of its own (a flat line): in the memory-used chart it is a
    dashed reference line per GPU when the used lines would keep at least a quarter of the
    chart's height; else (a nearly empty GPU) the total is only named in the subtitle, so the
    used lines are not squashed against the axis. Returns (series, subtitle note)."""
    measured = [(device, totals[device]) for device, _ in device_cols if totals.get(device) in with_values]
    if not measured:
        return series, ""
    total_max = [m for m in (_column_max(rows, col) for _, col in measured) if m is not None]
    used_max = [m for m in (_column_max(rows, col) for _, col in device_cols) if m is not None]
    if used_max and total_max and max(used_max) >= 0.25 * max(total_max):
        refs = [s(col, t["series_mem_total"].format(device=device), device_color(device), ref=True, dash=True)
                for device, col in measured]
        return series + refs, t["mem_total_dashed"]
    low, high = min(total_max), max(total_max)
    text = fmt_int(high) if round(low) == round(high) else f"{fmt_int(low)}–{fmt_int(high)}"
    return series, t["mem_total_is"].format(total=text)


def _timeseries_view(rows: list[dict], t: dict, cores: Optional[int] = None) -> tuple[list[dict], dict]:
    """Chart groups for the template and the compact data for the script.

    Fixed columns get fixed charts; any other column is charted too: gpu[...] grouped by
    metric (one line per GPU), server[...] grouped by metric name, anything else under
    "Other". A telemetry or extra column without a single value is not drawn (and a chart
    left without series is not there at all); GPU memory total is drawn only as a dashed
    reference in the memory-used chart. The self-check's client.* columns get their own group
    with dashed limit lines (the CPU one needs the usable `cores`).
    """
    columns: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    present = set(columns)
    with_values = {col for col in columns if any(_finite(row.get(col)) is not None for row in rows)}
    derived: dict[str, list] = {}  # computed series (not CSV columns): name -> values
    charts: list[dict] = []
    groups: list[dict] = []

    def add_chart(group: list, title: str, series: list[dict], *, keep_empty: bool = False, **opts: Any) -> None:
        series = [s for s in series if s["col"] in present or s["col"] in derived]
        if not keep_empty:  # nothing empty on the page: a series with no value is noise
            series = [s for s in series if s["col"] in with_values or s["col"] in derived]
        if not [s for s in series if not s.get("ref")]:
            return
        chart = {"id": f"ts-{len(charts)}", "title": title, "subtitle": opts.pop("subtitle", ""),
                 "type": "line", "stacked": False, "step": False, "fill": False,
                 "ymin": 0, "ymax": None, "unit": "", "legend": len(series) > 1, "series": series}
        chart.update(opts)
        charts.append(chart)
        group.append(chart)

    def s(col: str, label: str, color: str, **extra: Any) -> dict:
        return {"col": col, "label": label, "color": color, **extra}

    load: list[dict] = []
    add_chart(load, t["chart_active_threads"], [s("active_threads", t["series_active_threads"], PURPLE)],
              step=True, keep_empty=True)
    add_chart(load, t["chart_requests"], [s("requests_ok", t["series_ok"], GREEN),
                                          s("requests_failed", t["series_failed"], RED)],
              type="bar", stacked=True, legend=True, keep_empty=True)
    add_chart(load, t["chart_tokens"], [s("output_tokens", t["series_tokens"], TEAL)], fill=True, keep_empty=True)
    add_chart(load, t["chart_success"], [s("success_rate_pct", t["series_success"], GREEN)],
              ymax=100, unit="%", keep_empty=True)
    latency: list[dict] = []
    for key, title in (("ttft", "chart_ttft"), ("tpot", "chart_tpot"), ("e2e", "chart_e2e")):
        add_chart(latency, t[title], [s(f"{key}_p50_ms", t["series_p50"], BLUE),
                                      s(f"{key}_p95_ms", t["series_p95"], ORANGE)], unit="ms", keep_empty=True)

    gpu_metrics: dict[str, list[tuple[str, str]]] = {}
    devices: dict[str, int] = {}  # device -> colour index, the same in every GPU chart
    server: dict[str, list[tuple[str, str]]] = {}
    other: list[str] = []
    for column in columns:
        if column in FIXED_COLUMNS or column in LOAD_COLUMNS or column in CLIENT_COLUMNS:
            continue
        match = GPU_COLUMN.match(column)
        if match:
            gpu_metrics.setdefault(match["metric"], []).append((match["device"], column))
            devices.setdefault(match["device"], len(devices))
            continue
        match = SERVER_COLUMN.match(column)
        if match:
            server.setdefault(match["name"].split("@", 1)[0], []).append((match["name"], column))
            continue
        other.append(column)

    def device_color(device: str) -> str:
        return PALETTE[devices[device] % len(PALETTE)]

    gpu: list[dict] = []
    util_cols = [col for _, col in gpu_metrics.get("util_pct", []) if col in with_values]
    if util_cols and "output_tokens" in present:
        derived[UTIL_MEAN_COL] = _mean_of_columns(rows, util_cols)
        add_chart(gpu, t["chart_tokens_vs_util"],
                  [s("output_tokens", t["series_tokens"], TEAL, unit=""),
                   s(UTIL_MEAN_COL, t["series_util_mean" if len(util_cols) > 1 else "series_util"], ORANGE,
                     axis="y1", unit="%")],
                  keep_empty=True, legend=True, fill=True, y1={"max": 100, "unit": "%"},
                  subtitle=t["per_gpu_mean"] if len(util_cols) > 1 else "")
    totals = dict(gpu_metrics.pop("mem_total_mib", []))  # device -> column: a reference, not a chart
    ordered = sorted(gpu_metrics, key=lambda m: (GPU_METRIC_ORDER.index(m) if m in GPU_METRIC_ORDER
                                                else len(GPU_METRIC_ORDER), m))
    for metric in ordered:
        title = t.get(f"gpu_{metric}") or t["gpu_other"].format(metric=metric)
        device_cols = [(d, c) for d, c in gpu_metrics[metric] if c in with_values]
        series = [s(col, device, device_color(device)) for device, col in device_cols]
        subtitle = t["per_gpu"] if len(device_cols) > 1 else ""
        if metric == "mem_used_mib":
            series, note = _with_memory_totals(rows, series, device_cols, totals, with_values, t, device_color, s)
            subtitle = " · ".join(part for part in (subtitle, note) if part)
        add_chart(gpu, title, series, unit=_unit_of(metric), ymax=100 if metric.endswith("_pct") else None,
                  legend=True, subtitle=subtitle)
    server_charts: list[dict] = []
    for i, (base, items) in enumerate(server.items()):
        title, subtitle, ymax = _server_title(base, t)
        multi = len([c for _, c in items if c in with_values]) > 1
        add_chart(server_charts, title,
                  [s(col, name, PALETTE[(i + j) % len(PALETTE)]) for j, (name, col) in enumerate(items)],
                  legend=multi, subtitle=subtitle, ymax=ymax)
    client: list[dict] = []
    derived[LAG_LIMIT_COL] = [LAG_LIMIT_MS] * len(rows)
    add_chart(client, t["chart_client_lag"],
              [s("client.lag_p50_ms", t["series_p50"], BLUE), s("client.lag_p99_ms", t["series_p99"], ORANGE),
               s(LAG_LIMIT_COL, t["series_limit"], RED, ref=True, dash=True)], unit="ms", legend=True, ymax=LAG_LIMIT_MS * 1.2,
              subtitle=t["client_lag_sub"].format(sleep=f"{PROBE_SLEEP_S * 1000:g} ms", limit=fmt_lag(LAG_LIMIT_MS)))
    cpu_series, cpu_note = [s("client.cpu_pct", t["series_cpu"], PURPLE)], ""
    if cores:
        derived[CPU_LIMIT_COL] = [CPU_LIMIT_FRACTION * 100.0 * cores] * len(rows)
        cpu_series.append(s(CPU_LIMIT_COL, t["series_limit"], RED, ref=True, dash=True))
        cpu_note = t["client_cpu_sub"].format(limit=f"{CPU_LIMIT_FRACTION * 100.0 * cores:,.0f} %", cores=cores)
    add_chart(client, t["chart_client_cpu"], cpu_series, unit="%", legend=False, subtitle=cpu_note)
    other_charts: list[dict] = []
    for i, column in enumerate(other):
        add_chart(other_charts, column, [s(column, column, PALETTE[(i + 3) % len(PALETTE)])],
                  legend=False, unit=_unit_of(column))

    for key, items in (("group_load", load), ("group_latency", latency), ("group_gpu", gpu),
                       ("group_server", server_charts), ("group_client", client), ("group_other", other_charts)):
        if items:
            groups.append({"title": t[key], "charts": items})

    used = {series["col"] for chart in charts for series in chart["series"]}
    cols = {col: _series_values(rows, col) for col in columns if col in used}
    cols.update({col: values for col, values in derived.items() if col in used})
    data = {
        "x": [int(second) if (second := _finite(row.get("second"))) is not None else i
              for i, row in enumerate(rows)],
        "cols": cols,
        "charts": [{k: v for k, v in chart.items() if k not in ("title", "subtitle")} for chart in charts],
    }
    return groups, data


def _gpu_rows(summary: dict) -> list[dict]:
    """summary.json's `gpu` section, one row per GPU in its order; [] when absent."""
    section = summary.get("gpu")
    if not isinstance(section, dict):
        return []
    rows = []
    for device, entry in section.items():
        entry = entry if isinstance(entry, dict) else {}
        peak, total = _finite(entry.get("mem_used_mib_max")), _finite(entry.get("mem_total_mib"))
        rows.append({
            "device": str(device),
            "util_mean": _finite(entry.get("util_pct_mean")), "util_max": _finite(entry.get("util_pct_max")),
            "mem_peak": peak, "mem_total": total,
            "mem_pct": 100.0 * peak / total if peak is not None and total else None,
            "power_mean": _finite(entry.get("power_w_mean")), "temp_max": _finite(entry.get("temp_c_max")),
            "energy": _finite(entry.get("energy_j")), "samples": _finite(entry.get("samples")),
        })
    return rows


def _percentile_rows(summary: dict, t: dict) -> list[dict]:
    """One row per latency distribution; an open-loop run adds queue time and TTFT / E2E from
    the scheduled time (in a closed loop they repeat TTFT and E2E, so they are left out)."""
    metrics = list(DIST_METRICS)
    if report_load.is_open_loop(summary):
        metrics += [(key, t[label]) for key, label in OPEN_LOOP_METRICS]
    rows = []
    for key, label in metrics:
        dist = summary.get(key) if isinstance(summary.get(key), dict) else {}
        rows.append({"label": label, "key": key, "count": dist.get("count"),
                     **{k: dist.get(k) for k in ("mean", "min", "p50", "p90", "p95", "p99", "max")}})
    return rows


def _summary_dataset_rows(section: dict, digest: RecordDigest) -> list[dict]:
    """summary.json's `datasets` (the run's own figures, warm-up excluded); mean output tokens
    still come from the records."""
    rows = []
    for name, entry in sorted(section.items()):
        entry = entry if isinstance(entry, dict) else {}
        dists = {key: entry.get(key) if isinstance(entry.get(key), dict) else {}
                 for key in ("ttft_ms", "tpot_ms", "e2e_ms")}
        counted = digest.datasets.get(str(name))
        rows.append({
            "name": str(name), "requests": entry.get("requests"), "ok": entry.get("ok"), "failed": entry.get("failed"),
            "success_pct": _finite(entry.get("success_rate_pct")),
            "ttft_p50": dists["ttft_ms"].get("p50"), "ttft_p95": dists["ttft_ms"].get("p95"),
            "tpot_p50": dists["tpot_ms"].get("p50"), "e2e_p50": dists["e2e_ms"].get("p50"),
            "e2e_p95": dists["e2e_ms"].get("p95"), "tps": _finite(entry.get("output_tokens_per_s")),
            "tokens_mean": counted.tokens / counted.requests if counted and counted.requests else None,
        })
    return rows


def _dataset_rows(digest: RecordDigest, t: dict, summary: dict) -> list[dict]:
    section = summary.get("datasets")
    if isinstance(section, dict) and section:
        return _summary_dataset_rows(section, digest)
    if not digest.any_dataset:
        return []
    rows = []
    for name in sorted(digest.datasets, key=lambda n: (n is None, n or "")):
        ds = digest.datasets[name]
        ttft, tpot, e2e = ds.ttft.distribution(), ds.tpot.distribution(), ds.e2e.distribution()
        finished = ds.ok + ds.failed
        rows.append({
            "name": name if name is not None else t["no_dataset"],
            "requests": ds.requests, "ok": ds.ok, "failed": ds.failed,
            "success_pct": 100.0 * ds.ok / finished if finished else None,
            "ttft_p50": ttft["p50"], "ttft_p95": ttft["p95"], "tpot_p50": tpot["p50"],
            "e2e_p50": e2e["p50"], "e2e_p95": e2e["p95"],
            "tokens_mean": ds.tokens / ds.requests if ds.requests else None,
        })
    return rows


def _error_rows(digest: RecordDigest, summary: dict, t: dict) -> list[dict]:
    rows = {kind: dict(entry, kind=kind) for kind, entry in digest.error_entries().items()}
    summary_errors = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
    for kind, count in summary_errors.items():  # kinds the records lack (e.g. records truncated)
        if kind not in rows and _finite(count):
            rows[kind] = {"kind": kind, "count": int(count), "first": None, "last": None, "examples": []}
    for row in rows.values():
        row["meaning"] = t.get(f"err_{row['kind']}", "")
    return sorted(rows.values(), key=lambda r: (-r["count"], r["kind"]))


def _load_view(summary: dict, ts_rows: list[dict], digest: RecordDigest, t: dict) -> dict:
    """Everything of issue 5 (load model, warm-up, SLOs, goodput, sweep, bands) for the
    template; each part None or empty when the run folder lacks its fields."""
    slo = report_load.slo_view(summary, t)
    sweep = report_load.sweep_view(summary, t)
    req = summary.get("requests") if isinstance(summary.get("requests"), dict) else {}
    warmup = _finite(req.get("warmup"))
    bands = report_load.bands(ts_rows, summary, t)
    goodput = report_load.goodput_view(summary, t)
    if goodput:
        goodput["bounds_text"] = t["goodput_within"].format(
            bounds=", ".join(f"{b['label']} {b['op']} {fmt_ms(b['value'])}" for b in goodput["bounds"])) \
            if goodput["bounds"] else t["goodput_no_bounds"]
    open_loop = report_load.is_open_loop(summary)
    queue = summary.get("queue_ms") if open_loop and isinstance(summary.get("queue_ms"), dict) else None
    return {
        "facts": report_load.load_facts(summary, digest.warmup, t),
        "model": report_load.load_section(summary).get("model"),
        "stopped_early": report_load.stopped_early(summary),
        "not_sent": report_load.not_sent(summary),
        "warmup_excluded": int(warmup) if warmup is not None else digest.warmup,
        "slo": slo, "goodput": goodput, "sweep": sweep, "bands": bands, "open_loop": open_loop, "queue": queue,
    }


def _success_class(rate: Any, failed: Any) -> str:
    """Card colour: green with no failure, amber down to 99 %, red below."""
    rate = _finite(rate)
    if rate is None:
        return ""
    if not _finite(failed):
        return "card-good"
    return "card-warn" if rate >= 99.0 else "card-bad"


def _js_strings(t: dict) -> dict:
    keys = ("range_full", "range_shown", "second_n")
    return {key: t[key] for key in keys}


def script_json(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>', '&',
    U+2028 or U+2029 can end the element or confuse a parser; JSON.parse reads it back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# ---------------------------------------------------------------- templates and assets


def _package_dir(name: str):
    """A Traversable of sse_perf_tool/<name>, else the repo's top-level <name>/ (dev install)."""
    import importlib.resources  # lazily, like jinja2: keeps `sse-perf --help` fast

    packaged = importlib.resources.files("sse_perf_tool") / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def _templates_dir():
    return _package_dir("templates")


_BANNER_URL = re.compile(r"https?://")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.M)


@functools.lru_cache(maxsize=None)
def _asset(filename: str) -> str:
    """A vendored script ready to inline: no source-map line and no URL in its licence
    banners (the output must reference no external URL), nothing that ends a <script>."""
    text = (_package_dir("assets") / filename).read_text("utf-8")
    text = _SOURCE_MAP.sub("", text)

    def clean_comment(match: re.Match) -> str:
        return _BANNER_URL.sub("", match.group(0))

    text = re.sub(r"/\*!.*?\*/", clean_comment, text, flags=re.S)
    if _BANNER_URL.search(text):
        raise RuntimeError(f"vendored asset {filename} holds a URL outside its banner")
    return text.replace("</script", "<\\/script").rstrip() + "\n"


def _csp_hash(script: str) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2  # imported lazily: `sse-perf --help` must not pay for it

    base = _templates_dir()

    def load(name: str):
        path = base / name
        if not path.is_file():
            return None
        return path.read_text("utf-8"), None, lambda: True

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_num, fint=fmt_int, pct=fmt_pct, ms=fmt_ms, seconds=fmt_seconds,
                       when=fmt_time, option=fmt_option, unit_value=fmt_unit, lag=fmt_lag)
    return env


# ---------------------------------------------------------------- public API


def render_report(summary: dict, timeseries: list[dict], records: Iterable[dict], lang: str = "en",
                  *, skipped_lines: int = 0) -> str:
    """The complete self-contained HTML document of one run.

    `records` is consumed once, as a stream; `summary` supplies the headline figures (so a
    re-render shows the same numbers as the run), records the histograms, errors, datasets
    and slowest requests. Unknown summary sections are ignored.
    """
    from markupsafe import Markup  # ships with Jinja2

    t = strings(lang)
    summary = summary if isinstance(summary, dict) else {}
    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    run = {**dict.fromkeys(RUN_KEYS), **run}  # a partial summary renders with "—"
    req = summary.get("requests") if isinstance(summary.get("requests"), dict) else {}
    thr = summary.get("throughput") if isinstance(summary.get("throughput"), dict) else {}

    digest = RecordDigest(_finite(run.get("started_at")), _binners(summary)).add_all(records)
    if not isinstance(skipped_lines, int):
        skipped_lines = 0
    if isinstance(records, _RecordStream):
        skipped_lines += records.skipped

    ts_rows = list(timeseries or [])
    client = report_load.client_view(summary, ts_rows, LAG_LIMIT_MS, CPU_LIMIT_FRACTION)
    groups, ts_data = _timeseries_view(ts_rows, t, client["cores"] if client else None)
    load = _load_view(summary, ts_rows, digest, t)
    if load["bands"]:
        ts_data["bands"] = load["bands"]
    hist_specs = [("ttft", t["hist_ttft"], digest.histogram("ttft"), "hist_requests"),
                  ("tpot", t["hist_tpot"], digest.histogram("tpot"), "hist_requests"),
                  ("e2e", t["hist_e2e"], digest.histogram("e2e"), "hist_requests"),
                  ("itl", t["hist_itl"], digest.histogram("itl"), "hist_gaps")]
    histograms, hist_data = [], []
    for key, title, binned, count_label in hist_specs:
        histograms.append({"id": f"hist-{key}", "title": title, "has_data": binned is not None})
        if binned is not None:
            hist_data.append(dict(binned, id=f"hist-{key}", unit="ms", count_label=t[count_label],
                                  color={"ttft": BLUE, "tpot": PURPLE, "e2e": TEAL, "itl": ORANGE}[key]))

    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    options = [(str(name), fmt_option(mask_option(str(name), value))) for name, value in config.items()]
    source_total = sum(digest.token_sources.values())
    token_sources = [
        f"{t.get('token_source_' + name, name)} {100.0 * count / source_total:.0f} %"
        for name, count in digest.token_sources.most_common()
    ]
    errors_by_kind = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
    dist = {key: (summary.get(key) if isinstance(summary.get(key), dict) else {}) for key, _ in DIST_METRICS}
    failed = req.get("failed")
    cards = {
        "total": req.get("total"), "ok": req.get("ok"), "failed": failed,
        "success": req.get("success_rate_pct"), "rps": thr.get("requests_per_s"),
        "tps": thr.get("output_tokens_per_s"), "tokens_total": thr.get("output_tokens_total"),
        "ttft": dist["ttft_ms"], "tpot": dist["tpot_ms"], "e2e": dist["e2e_ms"],
        "success_class": _success_class(req.get("success_rate_pct"), failed),
        "error_kinds": sorted(((k, v) for k, v in errors_by_kind.items() if _finite(v)),
                              key=lambda kv: -kv[1])[:3],
    }

    datasets = _dataset_rows(digest, t, summary)
    gpu_rows = _gpu_rows(summary)
    energies = [row["energy"] for row in gpu_rows]
    gpu_energy = {
        "tokens_per_joule": _finite(thr.get("output_tokens_per_joule")),
        "total_j": sum(energies) if energies and None not in energies else None,  # type: ignore[arg-type]
    }

    data = {"lang": lang, "locale": "zh-CN" if lang == "zh" else "en-US",
            "i18n": _js_strings(t), "ts": ts_data, "hist": hist_data}
    if load["sweep"]:
        data["sweep"] = load["sweep"]["data"]
    app_js = (_templates_dir() / APP_JS_NAME).read_text("utf-8").replace("</script", "<\\/script")
    scripts = [_asset(filename) for _, filename, _ in VENDORED] + [app_js]
    csp = ("default-src 'none'; script-src " + " ".join(_csp_hash(s) for s in scripts)
           + "; style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none';"
           " base-uri 'none'; form-action 'none'")
    versions = {name: version for name, _, version in VENDORED}
    env = _environment()
    html = env.get_template(TEMPLATE_NAME).render(
        t=t, lang=lang, run=run, req=req, thr=thr, cards=cards, options=options,
        token_sources=token_sources, interrupted=bool(run.get("interrupted")),
        token_note=(summary.get("tokens") or {}).get("note") if isinstance(summary.get("tokens"), dict) else None,
        finish_reasons=[(str(k), v) for k, v in (summary.get("finish_reasons") or {}).items() if _finite(v)]
        if isinstance(summary.get("finish_reasons"), dict) else [],
        model_name=run.get("model_name"), model=config.get("model"),
        groups=groups, has_timeseries=bool(ts_data["x"]), histograms=histograms,
        percentile_rows=_percentile_rows(summary, t), errors=_error_rows(digest, summary, t),
        datasets=datasets, datasets_tps=any(d.get("tps") is not None for d in datasets),
        load=load, slowest_e2e=digest.top_rows(digest.top_e2e),
        slowest_ttft=digest.top_rows(digest.top_ttft), show_dataset_column=digest.any_dataset,
        skipped_lines=skipped_lines, gpu_rows=gpu_rows, gpu_energy=gpu_energy,
        has_gpu_series=any(GPU_COLUMN.match(col) for col in ts_data["cols"]), client=client,
        client_glossary=t["g_client"].format(
            sleep=f"{PROBE_SLEEP_S * 1000:g} ms", sustained=SUSTAINED_S, lag_limit=fmt_lag(LAG_LIMIT_MS),
            fraction=f"{CPU_LIMIT_FRACTION * 100:g} %") if client or set(CLIENT_COLUMNS) & set(ts_data["cols"]) else "",
        footer_generated=t["generated"].format(version=run.get("tool_version") or "?", when=fmt_time(time.time())),
        footer_bundled=t["bundled"].format(**versions),
        csp=csp, data_json=Markup(script_json(data)),
        scripts=[Markup(s) for s in scripts],
    )
    return html


def write_report(run_dir: Path, out_path: Optional[Path] = None, lang: str = "en") -> Path:
    """Render run_dir's summary.json, timeseries.csv and records.jsonl (streamed) into
    out_path, or run_dir/report.html; returns the path written."""
    run_dir = Path(run_dir)
    strings(lang)  # fail on a bad language before reading anything
    with open(run_dir / "summary.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    ts_path = run_dir / "timeseries.csv"
    timeseries = load_timeseries(ts_path) if ts_path.exists() else []
    records = _RecordStream(run_dir / "records.jsonl")
    html = render_report(summary, timeseries, records, lang=lang)
    target = Path(out_path) if out_path is not None else run_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
