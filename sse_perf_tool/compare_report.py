"""The self-contained HTML comparison report: the comparison of compare.py plus each run's time
series and records -> one HTML file in the run report's look (its CSS, Chart.js inlined, CSP).

Imports compare (metric specs, formatting of changes), metrics (the distributions' names, which get a
CDF and a sweep curve), html_page (the HTML pipeline it shares with
the run report: templates, Jinja2, the inlined Chart.js, the CSP, safe JSON), report_format
(fmt_seconds, fmt_time) and stats. Strings of every language live in STRINGS.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Optional

from . import __version__, metrics
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

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "sse-perf comparison",
        "runs_n": "{n} runs",
        "baseline": "baseline",
        "nav_summary": "Main figures", "nav_settings": "Settings", "nav_timeseries": "Over time",
        "nav_distributions": "Distributions", "nav_sweep": "Sweep curves", "nav_glossary": "How to read",
        "sec_summary": "Main figures",
        "table_hint": "Changes are against the baseline, {base}. Green = better, red = worse by each metric's "
                      "direction; a change within ±1 % counts as the same. The bar in each cell compares the "
                      "value with the largest of its row.",
        "col_metric": "Metric",
        "dir_higher": "higher is better", "dir_lower": "lower is better",
        "m_requests_per_s": "Requests/s", "m_output_tokens_per_s": "Output tokens/s",
        "m_goodput_requests_per_s": "Goodput (requests/s)", "m_success_rate_pct": "Success rate (%)",
        "m_failed_requests": "Failed requests",
        "m_output_tokens_per_joule": "Output tokens per joule",
        "v_better": "better", "v_worse": "worse", "v_same": "same",
        "gate_passed": "No regression beyond {pct} %",
        "gate_failed": "{n} regression(s) beyond {pct} %",
        "regression": "regression (> {pct} %)",
        "regressions_title": "Worse than the baseline by more than {pct} %:",
        "sec_settings": "Settings",
        "settings_hint": "Highlighted rows differ between the runs.",
        "differ_banner": "The runs' settings differ ({items}): some differences may come from the settings, "
                         "not from the models.",
        "set_source": "Source", "set_load": "Load", "set_requests": "Requests", "set_max_tokens": "max_tokens",
        "set_dataset": "Workload", "set_duration": "Duration", "set_api": "API flavour", "set_base_url": "Target",
        "set_model": "Model", "set_started": "Started", "set_warmup": "Warm-up",
        "source_history": "history run #{id}", "source_folder": "run folder",
        "sec_timeseries": "Over time",
        "ts_hint": "x = seconds since each run started, one line per run. Second k is drawn at k + ½.",
        "chart_tps": "Output tokens/s", "chart_ttft": "TTFT p95 (ms) of the requests finished each second",
        "chart_ok": "Requests finished ok per second", "chart_gpu": "GPU utilisation (%, mean over GPUs)",
        "smoothing": "Smoothing", "smooth_off": "off", "smooth_n": "{n} s",
        "no_series": "No run has a time series.",
        "sec_distributions": "Distributions",
        "dist_hint": "Share of successful requests (warm-up excluded) at or below each latency. A curve further "
                     "left is faster; the horizontal gap at the 50 % and 95 % lines is the difference in p50 and p95.",
        "cdf_y": "requests ≤ x", "cdf_clipped": "x axis cut at {x} ms (long tail)",
        "no_records": "No successful request to draw.",
        "sec_sweep": "Sweep curves",
        "sweep_hint": "One line per run, one point per level: x = output tokens/s, y = latency p95. A curve "
                      "further right and lower serves more tokens at lower latency. A run that is not a sweep "
                      "is one point.",
        "curve_vs": "{metric} vs output tokens/s", "curve_x": "output tokens/s", "curve_y": "ms",
        "level_threads": "{n} thr", "level_rate": "{n} r/s",
        "bars_title": "At a glance",
        "sec_glossary": "How to read",
        "g_change": "Change = (run − baseline) / baseline × 100. No change is shown when the baseline is 0 or "
                    "has no value.",
        "g_direction": "Throughput, success rate, goodput and tokens per joule: higher is better. Latencies and "
                       "failed requests: lower is better.",
        "g_same": "Run-to-run noise: a change within ±1 % is shown as the same.",
        "g_gate": "sse-perf compare --baseline ID NEW --fail-on-regression 10% exits with code 99 when any "
                  "main metric of NEW is worse than the baseline by more than 10 %.",
        "g_metrics_of": "Definitions of {names} as in each run report's glossary (docs/metrics.md).",
        "generated": "Generated by sse-perf {version} at {when}.",
        "bundled": "Charts: Chart.js {chartjs} (MIT), inlined: the file needs no network.",
    },
    "zh": {
        "title": "sse-perf 对比报告",
        "runs_n": "{n} 次运行",
        "baseline": "基线",
        "nav_summary": "主要指标", "nav_settings": "设置", "nav_timeseries": "随时间变化",
        "nav_distributions": "分布", "nav_sweep": "扫描曲线", "nav_glossary": "阅读说明",
        "sec_summary": "主要指标",
        "table_hint": "变化均相对基线 {base}。绿色 = 更好，红色 = 更差（按各指标的方向）；±1 % 以内视为持平。"
                      "单元格中的条形表示该值相对本行最大值的大小。",
        "col_metric": "指标",
        "dir_higher": "越高越好", "dir_lower": "越低越好",
        "m_requests_per_s": "请求/秒", "m_output_tokens_per_s": "输出 tokens/秒",
        "m_goodput_requests_per_s": "有效吞吐（请求/秒）", "m_success_rate_pct": "成功率（%）",
        "m_failed_requests": "失败请求", "m_output_tokens_per_joule": "每焦耳输出 tokens",
        "v_better": "更好", "v_worse": "更差", "v_same": "持平",
        "gate_passed": "没有超过 {pct} % 的退化",
        "gate_failed": "{n} 项退化超过 {pct} %",
        "regression": "退化（> {pct} %）",
        "regressions_title": "比基线差超过 {pct} % 的指标：",
        "sec_settings": "设置",
        "settings_hint": "高亮的行在各次运行之间不同。",
        "differ_banner": "各次运行的设置不同（{items}）：部分差异可能来自设置，而不是模型。",
        "set_source": "来源", "set_load": "负载", "set_requests": "请求数", "set_max_tokens": "max_tokens",
        "set_dataset": "请求内容", "set_duration": "时长", "set_api": "接口类型", "set_base_url": "目标",
        "set_model": "模型", "set_started": "开始时间", "set_warmup": "预热",
        "source_history": "历史记录 #{id}", "source_folder": "结果目录",
        "sec_timeseries": "随时间变化",
        "ts_hint": "横轴 = 各次运行开始后的秒数，每次运行一条线。第 k 秒画在 k + ½ 处。",
        "chart_tps": "输出 tokens/秒", "chart_ttft": "每秒完成请求的首字 TTFT p95（ms）",
        "chart_ok": "每秒成功完成的请求", "chart_gpu": "GPU 利用率（%，各 GPU 平均）",
        "smoothing": "平滑", "smooth_off": "关", "smooth_n": "{n} 秒",
        "no_series": "没有运行带时间序列。",
        "sec_distributions": "分布",
        "dist_hint": "不超过各延迟值的成功请求占比（不含预热）。曲线越靠左越快；在 50 % 与 95 % 线上的水平距离就是 p50 与 p95 的差。",
        "cdf_y": "请求 ≤ x", "cdf_clipped": "横轴截止于 {x} ms（长尾）",
        "no_records": "没有可画的成功请求。",
        "sec_sweep": "扫描曲线",
        "sweep_hint": "每次运行一条线，每个档位一个点：横轴 = 输出 tokens/秒，纵轴 = 延迟 p95。曲线越靠右、越低，"
                      "说明在更低延迟下输出更多 tokens。非扫描的运行显示为一个点。",
        "curve_vs": "{metric} 与输出 tokens/秒", "curve_x": "输出 tokens/秒", "curve_y": "ms",
        "level_threads": "{n} 线程", "level_rate": "{n} 请求/秒",
        "bars_title": "一目了然",
        "sec_glossary": "阅读说明",
        "g_change": "变化 = （本次 − 基线）/ 基线 × 100。基线为 0 或无值时不显示变化。",
        "g_direction": "吞吐、成功率、有效吞吐和每焦耳 tokens：越高越好。延迟和失败请求：越低越好。",
        "g_same": "运行间的噪声：±1 % 以内的变化显示为持平。",
        "g_gate": "sse-perf compare --baseline ID NEW --fail-on-regression 10% 在 NEW 的任一主要指标比基线差超过 "
                  "10 % 时以退出码 99 结束。",
        "g_metrics_of": "{names} 的定义与单次运行报告的说明相同（docs/metrics.md）。",
        "generated": "由 sse-perf {version} 于 {when} 生成。",
        "bundled": "图表：Chart.js {chartjs}（MIT），已内嵌：无需网络。",
    },
}
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
        same_pct=SAME_PCT,
    )
