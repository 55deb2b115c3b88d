"""The live per-second table and the final summary table on the terminal (en / zh).

Formatting (rows and summaries in, strings out) and LiveTable, the aggregator's terminal sink.
Imports only the metric registry (metrics.py: which statistics the tables show, and their labels).
"""

from __future__ import annotations

import sys

from typing import Optional

from . import metrics
from .metrics import DISTRIBUTIONS

_LIVE = metrics.stat_columns("live")  # (metric, stat) of the per-second table's latency columns
HEADERS = {
    "en": ("time", "threads", "ok", "fail", "tok/s", *(f"{m.short['en']} {s}" for m, s in _LIVE), "succ%", "GPU%"),
    "zh": ("时间", "线程", "成功", "失败", "tok/s", *(f"{m.short['zh']}{s}" for m, s in _LIVE), "成功率", "GPU%"),
}
# column widths in terminal cells: 75 columns, 80 with the GPU column (with four latency columns)
WIDTHS = (5, 7, 5, 4, 7, *(8 for _ in _LIVE), 6, 4)


def _cell_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return " " * max(0, width - _cell_width(text)) + text


def fmt_ms(value: Optional[float]) -> str:
    """Milliseconds, switching to seconds past 10 s so columns stay narrow."""
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}s"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def fmt_value(value: Optional[float], unit: str) -> str:
    """A distribution's value in its unit: fmt_ms for ms, one decimal for a rate."""
    if unit == "ms":
        return fmt_ms(value)
    return "-" if value is None else f"{value:.1f}"


def _columns(gpu: bool) -> int:
    return len(WIDTHS) if gpu else len(WIDTHS) - 1


class LiveTable:
    """The terminal's sink of the aggregator: one row a second (a header every 20 rows) unless quiet,
    and the self-check's warnings always. The terminal may go away (`sse-perf ... | head`): then it
    stops printing, and the run goes on measuring."""

    def __init__(self, out=None, quiet: bool = False, lang: str = "en", show_gpu: bool = False):
        self.out = sys.stdout if out is None else out
        self.quiet = quiet
        self.lang = lang
        self.show_gpu = show_gpu
        self._printed = 0

    def second(self, row: dict, live: dict) -> None:
        if self.quiet:
            return
        if self._printed % 20 == 0:
            self._print(header_line(self.lang, self.show_gpu))
        self._print(row_line(row, live["total_threads"], live["tokens_per_s"], live["gpu_util_pct"], self.show_gpu))
        self._printed += 1

    def warning(self, text: str) -> None:
        self._print(text)

    def _print(self, line: str) -> None:
        if self.out is None:
            return
        try:
            print(line, file=self.out, flush=True)
        except (OSError, ValueError):
            self.out = None
            self.quiet = True


def header_line(lang: str = "en", gpu: bool = False) -> str:
    headers = HEADERS.get(lang, HEADERS["en"])[: _columns(gpu)]
    return " ".join(_pad(h, w) for h, w in zip(headers, WIDTHS))


def row_line(row: dict, total_threads: int, tokens_per_s: Optional[float],
             gpu_util_pct: Optional[float] = None, gpu: bool = False) -> str:
    success = row.get("success_rate_pct")
    cells = (
        f"{row['second'] + 1}s",
        f"{row.get('active_threads') or 0}/{total_threads}",
        str(row["requests_ok"]),
        str(row["requests_failed"]),
        "-" if tokens_per_s is None else f"{tokens_per_s:.0f}",
        *(fmt_value(row.get(m.stat_name(stat)), m.unit) for m, stat in _LIVE),
        "-" if success is None else f"{success:.1f}",
        "-" if gpu_util_pct is None else f"{gpu_util_pct:.0f}",
    )
    return " ".join(_pad(c, w) for c, w in zip(cells[: _columns(gpu)], WIDTHS))


SUMMARY_LABELS = {
    "en": {
        "title": "Summary", "requests": "requests", "ok": "ok", "failed": "failed", "success": "success rate",
        "duration": "duration", "rps": "requests/s", "tps": "output tokens/s", "tokens": "output tokens",
        "errors": "errors", "metric": "metric", "folder": "run folder", "report": "report",
        "interrupted": "interrupted by the user: partial results",
        "stopped": "stopped early", "warmup": "warm-up requests excluded from every figure",
        "open": "open loop", "closed": "closed loop", "arrivals": "arrivals", "in_flight": "at most {n} in flight",
        "not_sent": "{n} scheduled requests were never sent: all {threads} threads were busy (the server "
                    "did not keep up, or --threads is too low); the latencies above understate the wait",
        "goodput": "goodput", "of_requests": "of requests within", "no_bounds": "no per-request bound",
        "slo": "SLO", "met": "met", "missed": "MISSED", "level": "level", "succ": "succ%",
        "best": "highest level within the SLOs", "none_met": "no level met the SLOs",
        "dataset": "dataset", "threads": "threads", "rate": "req/s", "rate_level": "rate",
        "client": "load generator: lag p50 {p50} ms, p99 {p99} ms; CPU mean {mean}%, max {max}% ({cores} usable core(s))",
        "saturated": "the load generator was saturated from {s} s on: latencies after that include sse-perf's own "
                     "delay; use fewer threads, or more worker processes (--processes) on a machine with spare cores",
        "saturated_one": "the load generator was saturated from {s} s on: latencies after that include sse-perf's "
                         "own delay; run it on a machine with spare cores",
        "busy": "the machine was busy with other work from {s} s on (load average up to {load} on {cores} cores "
                "while sse-perf used little CPU): latencies include that delay; stop the other work or use a "
                "quieter machine",
        "empty": "empty answers (ok, no text, 0 tokens)", "finish": "finish reasons", "note": "note",
    },
    "zh": {
        "title": "汇总", "requests": "请求数", "ok": "成功", "failed": "失败", "success": "成功率",
        "duration": "时长", "rps": "请求/秒", "tps": "输出 tokens/秒", "tokens": "输出 tokens",
        "errors": "错误", "metric": "指标", "folder": "结果目录", "report": "报告",
        "interrupted": "用户中断：结果不完整",
        "stopped": "提前停止", "warmup": "个预热请求不计入任何统计",
        "open": "开环", "closed": "闭环", "arrivals": "到达", "in_flight": "最多 {n} 个并发",
        "not_sent": "{n} 个计划请求未能发出：{threads} 个线程全部忙碌（服务跟不上，或 --threads 太少）；"
                    "上面的延迟低估了等待",
        "goodput": "有效吞吐", "of_requests": "的请求满足", "no_bounds": "无单请求上限",
        "slo": "SLO", "met": "达标", "missed": "未达标", "level": "档位", "succ": "成功率",
        "best": "满足 SLO 的最高档位", "none_met": "没有档位满足 SLO",
        "dataset": "数据集", "threads": "线程", "rate": "请求/秒", "rate_level": "速率",
        "client": "压测端自检：调度延迟 p50 {p50} ms，p99 {p99} ms；CPU 平均 {mean}%，最高 {max}%（可用 {cores} 核）",
        "saturated": "压测端从第 {s} 秒起已饱和：之后的延迟包含 sse-perf 自身的延迟；请减少线程，或在有空闲 CPU 的机器上用更多工作进程（--processes）",
        "saturated_one": "压测端从第 {s} 秒起已饱和：之后的延迟包含 sse-perf 自身的延迟；请在有空闲 CPU 的机器上运行",
        "busy": "从第 {s} 秒起本机被其他任务占用（{cores} 核，负载最高 {load}，而 sse-perf 自身 CPU 很低）：延迟包含这部分等待；"
                "请停止其他任务或换一台空闲的机器",
        "empty": "空回答（成功、无文本、0 tokens）", "finish": "结束原因", "note": "注意",
    },
}


def summary_lines(summary: dict, lang: str = "en") -> list[str]:
    """The final table: counts, throughput, and one line per latency distribution."""
    t = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    req, thr, run = summary["requests"], summary["throughput"], summary.get("run", {})
    success = req["success_rate_pct"]

    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [f"== {t['title']} =="]
    if run.get("interrupted"):
        lines.append(f"!! {t['interrupted']}")
    lines.append(
        f"{t['requests']}: {req['total']}  {t['ok']}: {req['ok']}  {t['failed']}: {req['failed']}  "
        f"{t['success']}: {num(success, '.2f')}%"
    )
    lines.append(
        f"{t['duration']}: {num(run.get('duration_s'), '.2f')} s  {t['rps']}: {num(thr['requests_per_s'], '.2f')}  "
        f"{t['tps']}: {num(thr['output_tokens_per_s'], '.1f')}  {t['tokens']}: {thr['output_tokens_total']}"
    )
    if summary.get("errors"):
        lines.append(f"{t['errors']}: " + ", ".join(f"{k}={v}" for k, v in summary["errors"].items()))
    if req.get("empty"):
        lines.append(f"{t['empty']}: {req['empty']}")
    if summary.get("finish_reasons"):
        lines.append(f"{t['finish']}: " + ", ".join(f"{k}={v}" for k, v in summary["finish_reasons"].items()))
    note = (summary.get("tokens") or {}).get("note")
    if note:
        lines.append(f"!! {t['note']}: {note}")
    cols = ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")
    label = t["metric"] + " (ms)"
    lines.append(label + " " * max(1, 14 - _cell_width(label)) + "".join(f"{c:>9}" for c in cols))
    open_loop = (run.get("load") or {}).get("model") == "open"
    shown = [m for m in DISTRIBUTIONS if (open_loop or not m.open_loop) and m.field in summary]
    for m in sorted(shown, key=lambda m: m.unit != "ms"):  # the ms rows under "(ms)", then the others
        dist = summary[m.field] or {}
        cells = [str(dist.get("count", 0))] + [fmt_value(dist.get(c), m.unit) for c in cols[1:]]
        lines.append(f"{m.short['en']:<14}" + "".join(f"{c:>9}" for c in cells))
    return lines + load_lines(summary, lang)


def _slo_value(verdict: dict) -> str:
    value, unit = verdict.get("value"), verdict.get("unit")
    if value is None:
        return "-"
    if unit == "ms":
        return fmt_ms(value) + ("" if value >= 10_000 else " ms")
    return f"{value:.2f}{'%' if unit == '%' else '/s'}"


def load_lines(summary: dict, lang: str = "en") -> list[str]:
    """Below the latency table: the load model, warm-up, dropped arrivals, goodput, SLO verdicts,
    the sweep's levels, the datasets, and an early stop."""
    t = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    run = summary.get("run") or {}
    load = run.get("load") or {}
    req = summary.get("requests") or {}
    lines = []
    if load.get("model") == "open" and load.get("rate") is not None:
        lines.append(f"{t['open']}: {load['rate']:g} {t['rate']} {load.get('arrival')} {t['arrivals']} "
                     f"(seed {load.get('seed')}), {t['in_flight'].format(n=load.get('threads'))}")
    if req.get("warmup"):
        lines.append(f"{req['warmup']} {t['warmup']}")
    if req.get("not_sent"):
        lines.append("!! " + t["not_sent"].format(n=req["not_sent"], threads=load.get("threads")))
    lines += _sweep_lines(summary, t)
    goodput = summary.get("goodput") or {}
    if summary.get("slo") is not None and goodput:
        bounds = goodput.get("bounds") or {}
        within = ", ".join(_bound_text(k, v) for k, v in bounds.items()) or t["no_bounds"]
        rps, pct = goodput.get("requests_per_s"), goodput.get("pct")
        lines.append(f"{t['goodput']}: {'-' if rps is None else f'{rps:.2f}'} {t['rate']} "
                     f"({'-' if pct is None else f'{pct:.1f}'}% {t['of_requests']} {within})")
    for verdict in summary.get("slo") or ():
        mark = t["met"] if verdict["met"] else t["missed"]
        lines.append(f"{t['slo']} {verdict['expr']:<28} {_slo_value(verdict):>12}  {mark}")
    lines += _dataset_lines(summary, t)
    lines += _client_lines(summary.get("client"), t, load.get("threads"))
    if run.get("stopped_early"):
        lines.append(f"!! {t['stopped']}: {run['stopped_early']}")
    return lines


def _bound_text(field: str, limit: float) -> str:
    """'ttft 800 ms', 'request_tps 20.00/s': one goodput bound, by its record field."""
    m = metrics.BY_FIELD.get(field)
    if m is None:
        return f"{field} {limit:g}"
    return f"{m.key} {_slo_value({'value': limit, 'unit': m.unit})}"


_LEVEL = metrics.stat_columns("level")  # (metric, stat) of the sweep's per-level table


def _sweep_lines(summary: dict, t: dict) -> list[str]:
    levels = summary.get("levels")
    if not levels:
        return []
    sweep = summary.get("sweep") or {}
    kind = sweep.get("kind", "threads")
    head = (t["threads"] if kind == "threads" else t["rate_level"], "req/s", "tok/s",
            *(f"{m.short['en']} {s}" for m, s in _LEVEL), t["succ"], t["slo"])
    widths = (8, 8, 8, *(9 for _ in _LEVEL), 7, 7)
    lines = [" ".join(_pad(h, w) for h, w in zip(head, widths))]
    for block in levels:
        thr, req = block["throughput"], block["requests"]
        meets = block.get("meets_slo")
        cells = (
            f"{next(iter(block['level'].values())):g}",
            "-" if thr["requests_per_s"] is None else f"{thr['requests_per_s']:.2f}",
            "-" if thr["output_tokens_per_s"] is None else f"{thr['output_tokens_per_s']:.0f}",
            *(fmt_value((block.get(m.field) or {}).get(s), m.unit) for m, s in _LEVEL),
            "-" if req["success_rate_pct"] is None else f"{req['success_rate_pct']:.1f}",
            "-" if meets is None else (t["met"] if meets else t["missed"]),
        )
        lines.append(" ".join(_pad(c, w) for c, w in zip(cells, widths)))
    if any(b.get("meets_slo") is not None for b in levels):
        best = sweep.get("best_level")
        unit = t["threads"] if kind == "threads" else t["rate"]
        lines.append(f"{t['best']}: {best:g} {unit}" if best is not None else f"!! {t['none_met']}")
    return lines


def _client_lines(client: Optional[dict], t: dict, threads: Optional[int] = None) -> list[str]:
    """The self-check: sse-perf's own scheduling lag and CPU, and a plain warning when saturated."""
    if not client:
        return []

    def ms(value):
        return "-" if value is None else f"{value:.1f}"

    cpu_mean, cpu_max = client.get("cpu_pct_mean"), client.get("cpu_pct_max")
    line = t["client"].format(p50=ms(client.get("lag_ms_p50")), p99=ms(client.get("lag_ms_p99")),
                              mean="-" if cpu_mean is None else f"{cpu_mean:.0f}",
                              max="-" if cpu_max is None else f"{cpu_max:.0f}", cores=client.get("cores_usable", 1))
    lines = [line]
    if client.get("saturated_from_s") is not None:
        key = "saturated" if (threads or 0) >= 2 else "saturated_one"
        lines.append("!! " + t[key].format(s=client["saturated_from_s"]))
    if client.get("machine_busy_from_s") is not None:
        load = client.get("load_avg_max")
        lines.append("!! " + t["busy"].format(s=client["machine_busy_from_s"], cores=client.get("machine_cores", "?"),
                                              load="-" if load is None else f"{load:.1f}"))
    return lines


_DATASET = metrics.select(dataset=True)
DATASET_STAT = "p95"  # the statistic of the datasets table


def _dataset_lines(summary: dict, t: dict) -> list[str]:
    datasets = summary.get("datasets")
    if not datasets:
        return []
    head = (t["dataset"], t["requests"], t["succ"], *(f"{m.short['en']} {DATASET_STAT}" for m in _DATASET), "tok/s")
    widths = (16, 8, 7, *(9 for _ in _DATASET), 8)
    lines = [" ".join(_pad(h, w) if i else h + " " * max(0, w - _cell_width(h)) for i, (h, w) in enumerate(zip(head, widths)))]
    for name, d in datasets.items():
        label = name if _cell_width(name) <= 16 else name[:15] + "…"
        cells = (label, str(d["requests"]), "-" if d["success_rate_pct"] is None else f"{d['success_rate_pct']:.1f}",
                 *(fmt_value((d.get(m.field) or {}).get(DATASET_STAT), m.unit) for m in _DATASET),
                 "-" if d["output_tokens_per_s"] is None else f"{d['output_tokens_per_s']:.0f}")
        lines.append(label + " " * max(0, 16 - _cell_width(label)) + " "
                     + " ".join(_pad(c, w) for c, w in zip(cells[1:], widths[1:])))
    return lines
