"""The time-series charts of the HTML report: which chart each timeseries.csv column is drawn
in (fixed load and latency charts, GPU metrics one line per GPU, server metrics, the self-check's
client lag and CPU with dashed limits, anything else under "Other") and the compact column
data the page's script draws from. Also the report's colour palette.

Imports `metrics` (which distributions have a per-second chart), `report_format` (fmt_int,
fmt_lag), `report_load.finite`, `report_capacity` (requests finished per second) and the
self-check's limits from `selfcheck`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from . import metrics
from .report_capacity import finished_per_second
from .report_format import fmt_int, fmt_lag
from .report_load import finite as _finite
from .selfcheck import CPU_LIMIT_FRACTION, LAG_LIMIT_MS, PROBE_SLEEP_S

_CHARTED = metrics.select(chart=True)  # one latency chart each, its `series` stats as lines
FIXED_COLUMNS = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed", "output_tokens",
    *(m.stat_name(stat) for m in metrics.select(series=True) for stat in m.series), "success_rate_pct",
)
LOAD_COLUMNS = ("phase", "level")  # issue 5: drawn as bands on every time chart, not as series
CLIENT_COLUMNS = ("client.lag_p50_ms", "client.lag_p99_ms", "client.cpu_pct")  # the self-check's
GPU_COLUMN = re.compile(r"^gpu\[(?P<device>.+)\]\.(?P<metric>[^.\[\]]+)$")
SERVER_COLUMN = re.compile(r"^server\[(?P<name>.+)\]$")
GPU_METRIC_ORDER = ("util_pct", "mem_used_mib", "temp_c", "power_w", "sm_clock_mhz", "energy_j")
UTIL_MEAN_COL = "@gpu_util_mean_pct"  # derived series key; '@' never starts a timeseries.csv column
LAG_LIMIT_COL, CPU_LIMIT_COL = "@client_lag_limit_ms", "@client_cpu_limit_pct"  # dashed limit lines
OFFERED_COL, FINISHED_COL = "@offered_per_s", "@finished_per_s"  # open loop: due vs sent vs finished
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


def timeseries_view(rows: list[dict], t: dict, cores: Optional[int] = None,
                    open_loop: bool = False, offered: Optional[dict] = None) -> tuple[list[dict], dict]:
    """Chart groups for the template and the compact data for the script.

    Fixed columns get fixed charts; any other column is charted too: gpu[...] grouped by
    metric (one line per GPU), server[...] grouped by metric name, anything else under
    "Other". A telemetry or extra column without a single value is not drawn (and a chart
    left without series is not there at all); GPU memory total is drawn only as a dashed
    reference in the memory-used chart. The self-check's client.* columns get their own group
    with dashed limit lines (the CPU one needs the usable `cores`). `offered` (open loop:
    {"rates": the rate due in each row, "note": its subtitle}) adds the offered-vs-achieved chart:
    the rate due (dashed), the requests sent and the requests finished in each second.
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
    # open loop: the busy threads are the requests in flight, not a load that was set
    busy = ("chart_in_flight", "series_in_flight") if open_loop else ("chart_active_threads", "series_active_threads")
    add_chart(load, t[busy[0]], [s("active_threads", t[busy[1]], PURPLE)],
              step=True, keep_empty=True)
    if offered is not None:
        derived[OFFERED_COL], derived[FINISHED_COL] = offered["rates"], finished_per_second(rows)
        add_chart(load, t["chart_offered"], [s(OFFERED_COL, t["series_offered"], GREY, dash=True),
                                             s("requests_started", t["series_sent"], BLUE),
                                             s(FINISHED_COL, t["series_finished"], GREEN)],
                  unit=t["unit_rps"], legend=True, keep_empty=True, subtitle=offered.get("note", ""))
    add_chart(load, t["chart_requests"], [s("requests_ok", t["series_ok"], GREEN),
                                          s("requests_failed", t["series_failed"], RED)],
              type="bar", stacked=True, legend=True, keep_empty=True)
    add_chart(load, t["chart_tokens"], [s("output_tokens", t["series_tokens"], TEAL)], fill=True, keep_empty=True)
    add_chart(load, t["chart_success"], [s("success_rate_pct", t["series_success"], GREEN)],
              ymax=100, unit="%", keep_empty=True)
    latency: list[dict] = []
    for m in _CHARTED:
        lines = [s(m.stat_name(stat), t["series_" + stat], colour) for stat, colour in zip(m.series, (BLUE, ORANGE))]
        add_chart(latency, m.title(t["lang"]), lines, unit=m.unit, keep_empty=True)

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
    limits = dict(gpu_metrics.pop("power_limit_w", []))  # device -> column: dashed in the power chart
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
        if metric == "power_w":
            series += [s(limits[device], t["series_power_limit"].format(device=device), device_color(device),
                         ref=True, dash=True) for device, _ in device_cols if limits.get(device) in with_values]
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


def live_view(rows: list[dict], t: dict, cores: Optional[int] = None) -> dict:
    """The report's time charts for the live view, drawn point by point as rows arrive: the chart
    groups with their titles, and how the page computes each derived series from a row
    (`derive`: {col: {"const": value}} for a limit line, {"mean": [columns]} for the GPUs' mean
    utilisation). The charts are those of `timeseries_view` for the rows so far (the live view has
    no offered-load chart: the report draws it from the whole schedule)."""
    groups, data = timeseries_view(rows, t, cores)
    used = {series["col"] for chart in data["charts"] for series in chart["series"]}
    derive: dict[str, dict] = {}
    for col in used:
        if col == UTIL_MEAN_COL:
            derive[col] = {"mean": sorted(c for c in data["cols"] if (m := GPU_COLUMN.match(c))
                                          and m["metric"] == "util_pct")}
        elif col in (LAG_LIMIT_COL, CPU_LIMIT_COL):
            values = data["cols"].get(col) or [None]
            derive[col] = {"const": values[0]}
    specs = {chart["id"]: chart for chart in data["charts"]}
    return {"groups": [{"title": group["title"],
                        "charts": [dict(specs[chart["id"]], title=chart["title"], subtitle=chart["subtitle"])
                                   for chart in group["charts"]]} for group in groups],
            "derive": derive}
