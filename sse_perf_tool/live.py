"""The live per-second table and the final summary table on the terminal (en / zh).

Formatting (rows and summaries in, strings out) and LiveTable, the aggregator's terminal sink.
Imports the metric registry (metrics.py: which statistics the tables show, and their labels) and
i18n (the strings, i18n/en.py and i18n/zh.py).
"""

from __future__ import annotations

import re
import sys

from typing import Optional

from . import metrics
from .i18n import LANGS, table, tables
from .metrics import DISTRIBUTIONS

_LIVE = metrics.stat_columns("live")  # (metric, stat) of the per-second table's latency columns


def _headers(lang: str) -> tuple:
    t = table("TERMINAL", lang)
    sep = "" if lang == "zh" else " "  # 首字p50: the terminal's narrow Chinese columns
    return (t["h_time"], t["h_threads"], t["h_ok"], t["h_fail"], "tok/s",
            *(f"{m.short[lang]}{sep}{s}" for m, s in _LIVE), t["h_succ"], "GPU%")


HEADERS = {lang: _headers(lang) for lang in LANGS}
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
        if self._printed == 0:  # what the columns are, once
            self._print(table("TERMINAL", self.lang if self.lang in LANGS else "en")["legend"])
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
    cells = row_cells(row, total_threads, tokens_per_s, gpu_util_pct)
    return " ".join(_pad(c, w) for c, w in zip(cells[: _columns(gpu)], WIDTHS))


def row_cells(row: dict, total_threads: int, tokens_per_s: Optional[float],
              gpu_util_pct: Optional[float] = None) -> tuple:
    """The live table's cells of one second, as the terminal prints them (HEADERS names them)."""
    success = row.get("success_rate_pct")
    return (
        f"{row['second'] + 1}s",
        f"{row.get('active_threads') or 0}/{total_threads}",
        str(row["requests_ok"]),
        str(row["requests_failed"]),
        "-" if tokens_per_s is None else f"{tokens_per_s:.0f}",
        *(fmt_value(row.get(m.stat_name(stat)), m.unit) for m, stat in _LIVE),
        "-" if success is None else f"{success:.1f}",
        "-" if gpu_util_pct is None else f"{gpu_util_pct:.0f}",
    )


SUMMARY_LABELS = tables("TERMINAL")  # i18n/en.py, i18n/zh.py


def summary_lines(summary: dict, lang: str = "en") -> list[str]:
    """The final table: counts, throughput, and one line per latency distribution."""
    t = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    req, thr, run = summary["requests"], summary["throughput"], summary.get("run", {})
    success = req["success_rate_pct"]

    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [f"== {t['title']} =="]
    if run.get("incomplete"):  # rebuilt from records.jsonl: the process was killed or crashed
        lines.append(f"!! {t['incomplete']}")
    elif run.get("interrupted"):
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
    for entry in summary.get("top_errors") or ():
        message = entry["message"] if len(entry["message"]) <= 100 else entry["message"][:99] + "…"
        lines.append(f"  {entry['count']}× {message}")
    if summary.get("errors_by_status"):
        lines.append(f"{t['by_status']}: " + ", ".join(f"{k}={v}" for k, v in summary["errors_by_status"].items()))
    if req.get("paused"):
        lines.append(f"{t['paused']}: {req['paused']}")
    if req.get("abandoned"):
        lines.append(f"{t['abandoned']}: {req['abandoned']}")
    if req.get("redirected"):
        lines.append(t["redirected"].format(n=req["redirected"]))
    stops = req.get("stops")
    if stops:
        lines.append(t["stops"].format(ok=stops.get("ok", 0), failed=stops.get("failed", 0)))
    if req.get("empty"):
        lines.append(f"{t['empty']}: {req['empty']}")
    if summary.get("finish_reasons"):
        lines.append(f"{t['finish']}: " + ", ".join(f"{k}={v}" for k, v in summary["finish_reasons"].items()))
    note = (summary.get("tokens") or {}).get("note")
    if note:
        lines.append(f"!! {t['note']}: {note}")
    cols = ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")
    open_loop = (run.get("load") or {}).get("model") == "open"
    shown = [m for m in DISTRIBUTIONS if (open_loop or not m.open_loop) and m.field in summary
             and (not m.optional or (summary[m.field] or {}).get("count"))]
    for unit in dict.fromkeys(["ms"] + [m.unit for m in shown]):  # one block per unit, ms first
        label = f"{t['metric']} ({unit})"
        lines.append(label + " " * max(0, 14 - _cell_width(label)) + "".join(f"{c:>8}" for c in cols))
        for m in (m for m in shown if m.unit == unit):
            dist = summary[m.field] or {}
            cells = [str(dist.get("count", 0))] + [fmt_value(dist.get(c), m.unit) for c in cols[1:]]
            lines.append(f"{m.short['en']:<14}" + "".join(f"{c:>8}" for c in cells))  # 78 columns
    return [wrapped for line in lines + load_lines(summary, lang) for wrapped in _fit_80(line)]


def _fit_80(line: str) -> list[str]:
    """A line of prose longer than a terminal's 80 columns, wrapped at words (the tables are
    narrower already)."""
    if _cell_width(line) <= 80:
        return [line]
    return wrap_cells(line, 80, "   " if line.startswith("!! ") else "    ")


_UNITS = re.compile(r"\s+|[\u2e80-\U0010ffff]|[^\s\u2e80-\U0010ffff]+")  # spaces, one wide character, a word


def wrap_cells(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    """`text` wrapped to `width` terminal cells: at spaces, and between two wide (CJK) characters,
    which count two cells each (textwrap counts characters, so Chinese lines came out twice as
    wide). `first` starts the first line, `indent` the others. A word wider than a line is kept whole."""
    lines, line, empty, spaced = [], first, True, False
    for match in _UNITS.finditer(text):
        piece = match.group()
        if piece.isspace():
            spaced = True
            continue
        sep = " " if spaced and not empty else ""
        if not empty and _cell_width(line) + len(sep) + _cell_width(piece) > width:
            lines.append(line.rstrip())
            line, empty, sep = indent, True, ""
        line += sep + piece
        empty, spaced = False, False
    if not empty or not lines:
        lines.append(line.rstrip())
    return lines


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
    lines += _server_lines(summary, t)
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
    lines += _dataset_lines(summary, t, "turns", "turn")
    lines += _client_lines(summary.get("client"), t, load.get("threads"))
    if run.get("stopped_early"):
        lines.append(f"!! {t['stopped']}: {run['stopped_early']}")
    return lines


def _server_lines(summary: dict, t: dict) -> list[str]:
    """The server's own timings beside the client's (Dify's usage), and the run's cost."""
    lines, lang = [], t.get("lang", "en")
    for m in (m for m in DISTRIBUTIONS if m.client):
        server, client = summary.get(m.field) or {}, summary.get(metrics.metric(m.client).field) or {}
        if server.get("count") and server.get("p50") is not None and client.get("p50") is not None:
            lines.append(t["server_vs_client"].format(
                server=m.label[lang], s=fmt_ms(server["p50"]), client=metrics.metric(m.client).short["en"],
                c=fmt_ms(client["p50"]), d=fmt_ms(client["p50"] - server["p50"])))
    cost = summary.get("cost")
    if cost:
        lines.append(f"{t['cost']}: {cost['total_price']:.6g} {cost['currency']} "
                     f"({t['priced'].format(n=cost['priced_requests'])})")
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
        others = client.get("others_cpu_pct_max")
        lines.append("!! " + t["busy"].format(s=client["machine_busy_from_s"], cores=client.get("machine_cores", "?"),
                                              load="-" if load is None else f"{load:.1f}",
                                              others="-" if others is None else f"{others:.0f}"))
    return lines


_DATASET = metrics.select(dataset=True)
DATASET_STAT = "p95"  # the statistic of the datasets table


def _dataset_lines(summary: dict, t: dict, section: str = "datasets", title: str = "dataset") -> list[str]:
    """One row per dataset (or per conversation turn: section "turns")."""
    datasets = summary.get(section)
    if not datasets:
        return []
    head = (t[title], t["requests"], t["succ"], *(f"{m.short['en']} {DATASET_STAT}" for m in _DATASET), "tok/s")
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


FINDINGS_SHOWN = 3  # the terminal names the most severe findings; the report has them all


def findings_lines(summary: dict, lang: str = "en") -> list[str]:
    """The run's most severe findings (summary.json `findings`), wrapped to 80 columns, and how many
    more the report lists."""
    from .findings import describe

    found = summary.get("findings") or []
    if not found:
        return []
    t = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    lines = [f"{t['findings']}:"]
    for finding in found[:FINDINGS_SHOWN]:
        words = describe(finding, lang)
        text = f"{words['title']}: {words['evidence']}. {words['suggestion']}"
        lines += wrap_cells(text, 80, "      ", f"  [{t['sev_' + finding['severity']]}] ")
    if len(found) > FINDINGS_SHOWN:
        lines.append("  " + t["findings_more"].format(n=len(found) - FINDINGS_SHOWN))
    return lines
