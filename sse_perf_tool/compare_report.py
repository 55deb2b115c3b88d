"""The self-contained HTML comparison report: the comparison of compare.py plus each run's time
series and records -> one HTML file in the run report's look (its CSS, Chart.js inlined, CSP).

Imports compare (metric specs, formatting of changes), metrics (the distributions' names, which get a
CDF and a sweep curve), html_page (the HTML pipeline it shares with
the run report: templates, Jinja2, the inlined Chart.js, the CSP, safe JSON), report_format
(fmt_seconds, fmt_time), stats and i18n (its strings, in i18n/en.py and i18n/zh.py, gathered in STRINGS).
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Optional

from . import __version__, metrics
from .i18n import tables
from .compare import DIFF_KEYS, METRIC_BY_NAME, SAME_PCT, arrow, fmt_change, is_regression
from .html_page import VERSIONS, render_page
from .report_format import fmt_seconds, fmt_time
from .stats import percentile

TEMPLATE_NAME = "compare.html.j2"
APP_JS_NAME = "compare_app.js"
NULL = "—"

# One colour per run, the same in every chart; no green or red first (those mean better/worse).
RUN_COLORS = ("#2563eb", "#ea7c0c", "#7c3aed", "#0d9488", "#db2777", "#ca8a04", "#0891b2", "#64748b",
              "#16a34a", "#dc2626")
CDF_POINTS = 300  # points per CDF line at most (exact steps below that many requests)
GPU_UTIL_SUFFIX = ".util_pct"

STRINGS: dict[str, dict[str, str]] = {lang: dict(t) for lang, t in tables("COMPARE_REPORT").items()}
CDF_METRICS = metrics.select(cdf=True)  # one CDF chart and one sweep curve (p95) each


def _metric_strings(lang: str) -> dict:
    """The distributions' names from the metric registry: 'm_<stat name>' for the table, the CDF
    and the sweep-curve titles, and the glossary line naming them."""
    t = STRINGS[lang]
    out = {f"m_{m.stat_name(stat)}": m.title(lang, stat) for m, stat in metrics.stat_columns("compare")}
    out.update({f"cdf_{m.key}": m.title(lang) for m in CDF_METRICS})
    out.update({f"curve_{m.key}": t["curve_vs"].format(metric=f"{m.label[lang]} p95") for m in CDF_METRICS})
    names = ("、" if lang == "zh" else ", ").join(m.short["en"] for m in metrics.DISTRIBUTIONS if not m.open_loop)
    out["g_metrics"] = t["g_metrics_of"].format(names=names)
    return out


for _lang in STRINGS:
    STRINGS[_lang].update(_metric_strings(_lang))
LANGS = tuple(STRINGS)

# the bars: throughput, the latencies kept per run (history's), tokens per joule
BAR_METRICS = ("output_tokens_per_s", "requests_per_s", *(m.stat_name(s) for m, s in metrics.stat_columns("history")),
               "output_tokens_per_joule")
TS_CHARTS = (("tps", "chart_tps", ""), ("ttft", "chart_ttft", "ms"), ("ok", "chart_ok", ""),
             ("gpu", "chart_gpu", "%"))
DIST_FAMILIES = tuple(m.key for m in CDF_METRICS)


def strings(lang: str) -> dict:
    if lang not in STRINGS:
        raise ValueError(f"unknown language {lang!r} (choose from {', '.join(LANGS)})")
    return STRINGS[lang]


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _round(value: Optional[float], digits: int = 2) -> Any:
    return None if value is None else round(value, digits)


def fmt_metric(value: Optional[float], unit: str) -> str:
    """A metric value for the table: thousands separators, decimals by size."""
    if value is None:
        return NULL
    if unit == "":
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:.2f}" if 99.0 < value < 100.0 else f"{value:.1f}"
    if unit == "tok/J":
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if unit == "ms":
        return f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.1f}"


# ---------------------------------------------------------------- view model


def _table(comparison: dict, t: dict) -> list[dict]:
    threshold = comparison.get("threshold_pct")
    rows = []
    for m in comparison["metrics"]:
        spec = METRIC_BY_NAME[m["name"]]
        present = [abs(v) for v in m["values"] if v is not None]
        top = max(present) if present else None
        values = m["values"]
        best = None  # the best value of the row, starred; none when every run has the same
        candidates = [v for v in values if v is not None]
        if len(set(candidates)) > 1:
            best = max(candidates) if spec.direction == "higher" else min(candidates)
        cells = []
        for i, (value, change, word) in enumerate(zip(values, m["change_pct"], m["verdict"])):
            regression = (threshold is not None and i > 0
                          and is_regression(spec.direction, change, threshold))
            cells.append({
                "text": fmt_metric(value, spec.unit),
                "change": fmt_change(change) if i > 0 and change is not None else "",
                "arrow": arrow(change, values[0], value) if i > 0 and word else "",
                "verdict": word or "", "verdict_text": t[f"v_{word}"] if word else "",
                "regression": regression,
                "bar": round(100.0 * abs(value) / top, 1) if value is not None and top else 0,
                "best": value is not None and value == best,
            })
        rows.append({"name": m["name"], "label": t[f"m_{m['name']}"], "direction": spec.direction,
                     "direction_text": t["dir_higher" if spec.direction == "higher" else "dir_lower"],
                     "cells": cells})
    return rows


def _settings_rows(comparison: dict, t: dict) -> list[dict]:
    runs = comparison["runs"]

    def source(run: dict) -> str:
        if run.get("id") is not None:
            return t["source_history"].format(id=run["id"])
        return f"{t['source_folder']} {run.get('run_dir') or ''}".strip()

    def plain(value: Any) -> str:
        if value is None or value == "":
            return NULL
        number = _finite(value)
        return f"{number:g}" if number is not None else str(value)

    specs = (("set_source", None, source), ("set_load", "load", plain), ("set_requests", "requests", plain),
             ("set_max_tokens", "max_tokens", plain), ("set_dataset", "dataset", plain),
             ("set_warmup", "warmup", plain), ("set_duration", "duration_s", fmt_seconds),
             ("set_api", "api", plain), ("set_base_url", "base_url", plain), ("set_model", "model", plain),
             ("set_started", "started_at", fmt_time))
    rows = []
    for label, key, fmt in specs:
        texts = [fmt(run) if key is None else fmt(run["settings"].get(key)) for run in runs]
        if key == "warmup" and all(text == NULL for text in texts):
            continue
        differs = len(set(texts)) > 1 and key not in (None, "started_at", "duration_s")
        rows.append({"label": t[label], "key": key or "source", "texts": texts, "differs": differs,
                     "explains": key in DIFF_KEYS and differs})
    return rows


def _gpu_util_mean(row: dict) -> Optional[float]:
    values = [v for k, v in row.items() if isinstance(k, str) and k.startswith("gpu[")
              and k.endswith(GPU_UTIL_SUFFIX) and _finite(v) is not None]
    return round(sum(values) / len(values), 2) if values else None


def _series(rows: list[dict]) -> dict:
    """One run's per-second series: x = second + 0.5 (second k covers [k, k+1))."""
    xs, tps, ttft, ok, gpu = [], [], [], [], []
    for i, row in enumerate(rows):
        second = _finite(row.get("second"))
        xs.append((second if second is not None else i) + 0.5)
        tps.append(_round(_finite(row.get("output_tokens"))))
        ttft.append(_round(_finite(row.get("ttft_p95_ms"))))
        ok.append(_round(_finite(row.get("requests_ok"))))
        gpu.append(_gpu_util_mean(row))
    return {"x": xs, "cols": {"tps": tps, "ttft": ttft, "ok": ok, "gpu": gpu}}


def latency_values(records: Iterable[dict]) -> dict[str, list[float]]:
    """The CDF metrics' values of the successful, non-warm-up requests (as in every summary figure)."""
    out: dict[str, list[float]] = {family: [] for family in DIST_FAMILIES}
    for record in records:
        if not isinstance(record, dict) or record.get("warmup") or record.get("ok") is not True:
            continue
        for family in DIST_FAMILIES:
            value = _finite(record.get(metrics.metric(family).field))
            if value is not None:
                out[family].append(value)
    return out


def cdf_points(values: list[float], max_points: int = CDF_POINTS) -> dict:
    """The empirical CDF as [x ms, y %] points: exact steps up to `max_points` requests, else
    `max_points` evenly spaced ranks (drawn as a line)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return {"points": [], "stepped": False, "n": 0}
    if n <= max_points:
        ranks = list(range(n))
    else:
        ranks = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    points = [[round(ordered[0], 2), 0.0]] + [[round(ordered[r], 2), round(100.0 * (r + 1) / n, 3)] for r in ranks]
    return {"points": points, "stepped": n <= max_points, "n": n}


def _cdf_view(per_run: list[dict[str, list[float]]], t: dict) -> list[dict]:
    charts = []
    for family in DIST_FAMILIES:
        series = [cdf_points(values[family]) for values in per_run]
        p99s = [percentile(sorted(values[family]), 99) for values in per_run if values[family]]
        tops = [max(values[family]) for values in per_run if values[family]]
        xmax = None
        if p99s and max(tops) > 3 * max(p99s):  # a long tail would squash every curve to the left
            xmax = round(1.1 * max(p99s), 1)
        charts.append({"id": f"cdf-{family}", "title": t[f"cdf_{family}"], "series": series, "xmax": xmax,
                       "note": t["cdf_clipped"].format(x=f"{xmax:,.0f}") if xmax is not None else "",
                       "has_data": any(s["n"] for s in series)})
    return charts


def _level_short(entry: dict, t: dict) -> str:
    """'16 thr' or '2.5 r/s': a point's label on the sweep curves."""
    level = entry.get("level") if isinstance(entry.get("level"), dict) else {}
    for kind in ("rate", "threads"):
        if kind in level and _finite(level[kind]) is not None:
            return t[f"level_{kind}"].format(n=f"{level[kind]:g}")
    return "?"


def _dist(block: dict, family: str) -> Optional[float]:
    dist = block.get(metrics.metric(family).field)
    return _round(_finite(dist.get("p95"))) if isinstance(dist, dict) else None


def _tps(block: dict) -> Optional[float]:
    thr = block.get("throughput")
    return _round(_finite(thr.get("output_tokens_per_s"))) if isinstance(thr, dict) else None


def _sweep_view(runs: list, t: dict) -> Optional[dict]:
    """Curves when any run is a sweep: one line per run, a point per level; other runs one point."""
    summaries = [run.summary for run in runs]
    if not any(isinstance(s.get("levels"), list) and s["levels"] for s in summaries):
        return None
    lines = []
    for summary in summaries:
        levels = summary.get("levels") if isinstance(summary.get("levels"), list) else []
        blocks = [(b, _level_short(b, t)) for b in levels if isinstance(b, dict)]
        if not blocks:  # not a sweep: one point, labelled by its load
            load = (summary.get("run") or {}).get("load") or {}
            if load.get("model") == "open" and _finite(load.get("rate")) is not None:
                short = t["level_rate"].format(n=f"{load['rate']:g}")
            elif _finite(load.get("threads", (summary.get("run") or {}).get("threads"))) is not None:
                short = t["level_threads"].format(n=f"{load.get('threads', summary['run'].get('threads')):g}")
            else:
                short = ""
            blocks = [(summary, short)]
        lines.append([{"x": _tps(block), "label": label, **{f: _dist(block, f) for f in DIST_FAMILIES}}
                      for block, label in blocks])
    charts = [{"id": f"sweep-{family}", "family": family, "title": t[f"curve_{family}"]} for family in DIST_FAMILIES]
    return {"charts": charts, "lines": lines}


def _bars(table: list[dict], comparison: dict, t: dict) -> list[dict]:
    by_name = {m["name"]: m for m in comparison["metrics"]}
    out = []
    for name in BAR_METRICS:
        m = by_name.get(name)
        if m is None or all(v is None for v in m["values"]):
            continue
        spec = METRIC_BY_NAME[name]
        out.append({"id": f"bar-{name}", "title": t[f"m_{name}"], "direction": spec.direction,
                    "direction_text": t["dir_higher" if spec.direction == "higher" else "dir_lower"],
                    "values": [_round(v, 3) for v in m["values"]],
                    "texts": [fmt_metric(v, spec.unit) for v in m["values"]],
                    "changes": [fmt_change(c) if c is not None else "" for c in m["change_pct"]],
                    "verdicts": [v or "" for v in m["verdict"]]})
    return out


def _regressions(comparison: dict, t: dict, colors: list[str]) -> list[dict]:
    """The regressions grouped by run: [{"run", "color", "metrics": ["TTFT p95 (ms) +21.0 % (200 → 242)"]}]."""
    out: dict[int, dict] = {}
    for r in comparison["regressions"]:
        spec = METRIC_BY_NAME[r["metric"]]
        entry = out.setdefault(r["run_index"], {"run": f"[{r['run_index'] + 1}] {r['run']}",
                                                 "color": colors[r["run_index"]], "metrics": []})
        entry["metrics"].append(f"{t['m_' + r['metric']]} {fmt_change(r['change_pct'])} "
                              f"({fmt_metric(r['baseline'], spec.unit)} → {fmt_metric(r['value'], spec.unit)})")
    return list(out.values())


# ---------------------------------------------------------------- render


def render_compare(comparison: dict, runs: list, lang: str = "en") -> str:
    """The whole HTML document. `comparison` from compare.compare_runs, `runs` the compare.Run
    objects in the same order (time series and records are read here, records streamed once)."""
    t = strings(lang)
    colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(runs))]
    run_views = [{"label": run.label, "color": color, "index": i + 1, "baseline": i == 0}
                 for i, (run, color) in enumerate(zip(runs, colors))]
    table = _table(comparison, t)

    series = [_series(run.timeseries()) for run in runs]
    has_gpu = any(any(v is not None for v in s["cols"]["gpu"]) for s in series)
    ts_charts = [{"id": f"ts-{key}", "key": key, "title": t[title], "unit": unit}
                 for key, title, unit in TS_CHARTS if key != "gpu" or has_gpu]
    has_ts = any(s["x"] for s in series)
    longest = max((s["x"][-1] for s in series if s["x"]), default=0)
    smoothing = [1, 5, 15] if longest >= 30 else [1, 3, 5]
    smooth_default = 5 if longest >= 60 else 1  # a minute of per-second values is noisy to overlay

    dists = _cdf_view([latency_values(run.records()) for run in runs], t)
    sweep = _sweep_view(runs, t)
    bars = _bars(table, comparison, t)

    threshold = comparison.get("threshold_pct")
    gate = None
    if threshold is not None:
        pct = f"{threshold:g}"
        n = len(comparison["regressions"])
        gate = {"ok": n == 0, "text": t["gate_passed"].format(pct=pct) if n == 0 else t["gate_failed"].format(n=n, pct=pct),
                "cell": t["regression"].format(pct=pct), "title": t["regressions_title"].format(pct=pct),
                "entries": _regressions(comparison, t, colors)}
    differ = comparison["settings_differ"]
    differ_text = None
    if differ:
        items = "; ".join(f"{d['setting']}: " + " / ".join("—" if v is None else str(v) for v in d["values"])
                          for d in differ)
        differ_text = t["differ_banner"].format(items=items)

    data = {
        "lang": lang, "locale": "zh-CN" if lang == "zh" else "en-US",
        "runs": [{"label": r["label"], "color": r["color"]} for r in run_views],
        "ts": {"charts": ts_charts, "runs": series, "smoothing": smooth_default},
        "cdf": [{"id": c["id"], "series": c["series"], "xmax": c["xmax"], "title": c["title"]} for c in dists if c["has_data"]],
        "bars": bars,
        "sweep": sweep,
        "i18n": {"cdf_y": t["cdf_y"], "curve_x": t["curve_x"], "baseline": t["baseline"],
                 **{f"v_{k}": t[f"v_{k}"] for k in ("better", "worse", "same")}},
    }
    return render_page(
        TEMPLATE_NAME, vendored=["chartjs"], app_js=APP_JS_NAME, data=data,
        t=t, lang=lang, runs=run_views, table=table, base_label=runs[0].label,
        settings_rows=_settings_rows(comparison, t), differ_text=differ_text, gate=gate,
        ts_charts=ts_charts, has_ts=has_ts, smoothing=smoothing, smooth_default=smooth_default,
        dists=dists, sweep=sweep, bars=bars,
        footer_generated=t["generated"].format(version=__version__, when=fmt_time(time.time())),
        footer_bundled=t["bundled"].format(chartjs=VERSIONS["chartjs"]),
        same_pct=SAME_PCT, findings=_findings_view(comparison, lang),
    )


def _findings_view(comparison: dict, lang: str) -> list[dict]:
    """Per compared run, its findings new, gone and unchanged against the baseline, in `lang`."""
    from .findings import describe

    def words(f: dict) -> dict:
        try:
            return dict(describe(f, lang), severity=f["severity"])
        except (KeyError, IndexError, ValueError):  # no words for it in this version: its stored title
            return {"title": f.get("title") or f["id"], "evidence": "", "suggestion": "", "severity": f["severity"]}

    return [{"run": entry["run"], "new": [words(f) for f in entry["new"]], "gone": [words(f) for f in entry["gone"]],
             "unchanged": [words(f) for f in entry["unchanged"]]} for entry in comparison.get("findings") or ()]
