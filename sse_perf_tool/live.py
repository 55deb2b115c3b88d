"""The live per-second table and the final summary table on the terminal (en / zh).

Pure formatting: takes rows and summaries, returns strings. Imports nothing from the package.
"""

from __future__ import annotations

from typing import Optional

HEADERS = {
    "en": ("time", "threads", "ok", "fail", "tok/s", "TTFT p50", "TTFT p95", "TPOT p50", "E2E p95", "succ%", "GPU%"),
    "zh": ("时间", "线程", "成功", "失败", "tok/s", "首字p50", "首字p95", "每字p50", "总耗p95", "成功率", "GPU%"),
}
# column widths in terminal cells: 75 columns, 80 with the GPU column
WIDTHS = (5, 7, 5, 4, 7, 8, 8, 8, 8, 6, 4)


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


def _columns(gpu: bool) -> int:
    return len(WIDTHS) if gpu else len(WIDTHS) - 1


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
        fmt_ms(row.get("ttft_p50_ms")),
        fmt_ms(row.get("ttft_p95_ms")),
        fmt_ms(row.get("tpot_p50_ms")),
        fmt_ms(row.get("e2e_p95_ms")),
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
    },
    "zh": {
        "title": "汇总", "requests": "请求数", "ok": "成功", "failed": "失败", "success": "成功率",
        "duration": "时长", "rps": "请求/秒", "tps": "输出 tokens/秒", "tokens": "输出 tokens",
        "errors": "错误", "metric": "指标", "folder": "结果目录", "report": "报告",
        "interrupted": "用户中断：结果不完整",
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
    cols = ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")
    label = t["metric"] + " (ms)"
    lines.append(label + " " * max(1, 14 - _cell_width(label)) + "".join(f"{c:>9}" for c in cols))
    for name in ("ttfb_ms", "ttft_ms", "ttfo_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        dist = summary.get(name) or {}
        cells = [str(dist.get("count", 0))] + [fmt_ms(dist.get(c)) for c in cols[1:]]
        lines.append(f"{name[:-3].upper():<14}" + "".join(f"{c:>9}" for c in cells))
    return lines
