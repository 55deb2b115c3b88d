"""What `sse-perf history` prints and exports: the runs table, one run's summary, CSV/JSON exports.

Pure formatting over History's dicts; imports live (terminal tables), storage (CSV fields) and the
metric registry (the statistics kept per run) only.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
import time
from typing import Iterable, Optional

from . import metrics as registry
from .live import _cell_width, _pad, fmt_value, summary_lines
from .storage import REQUESTS_CSV_FIELDS

_STATS = registry.stat_columns("history")  # (metric, stat) kept as columns of each run
LIST_FIELDS = ("id", "started_at", "model_name", "api", "load_model", "threads", "rate", "duration_s",
               "requests_total", "requests_per_s", "output_tokens_per_s", *(m.stat_name(s) for m, s in _STATS),
               "success_pct", "status", "run_dir")
TABLE_WIDTH = 80  # the runs table fits a terminal of 80 columns; `history --wide` shows every column
_CAPS = {"model": 16, "flavour": 13, "load": 9, "status": 11}  # the widest a text cell gets
_LEFT = ("when", "model", "flavour", "load", "status")  # text columns, left-aligned (the rest are numbers)
# the columns left out first when the table would be wider than TABLE_WIDTH, in this order
_DROP_ORDER = ("flavour", "dur s", *(f"{m.short['en']} {s}" for m, s in _STATS[1:]), "tok/s")


def run_json(run: dict) -> dict:
    """One run for `history --json`: the listed fields, nothing secret (options are masked already)."""
    out = {name: run.get(name) for name in LIST_FIELDS}
    out["slo_met"] = None if not run.get("slo") else all(v.get("met") for v in run["slo"])
    return out


def load_label(run: dict) -> str:
    """'16 thr', '4 r/s', or 'sweep' in a few characters."""
    summary = run.get("summary") or {}
    sweep = ((summary.get("run") or {}).get("load") or {}).get("sweep")
    if sweep:
        return f"sweep {sweep.get('kind', '')[:3]}"
    if run.get("load_model") == "open" and run.get("rate") is not None:
        return f"{run['rate']:g} r/s"
    return "-" if run.get("threads") is None else f"{run['threads']} thr"


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _fit(text: Optional[str], width: int) -> str:
    text = text or "-"
    if _cell_width(text) > width:
        while _cell_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (width - _cell_width(text))


def _row_cells(run: dict, with_year: bool) -> dict:
    started = run.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M", time.localtime(started)) \
        if started else "-"
    return {"id": str(run["id"]), "when": when, "model": run.get("model_name") or "-", "flavour": run.get("api") or "-",
            "load": load_label(run), "dur s": _num(run.get("duration_s"), ".0f"),
            "req/s": _num(run.get("requests_per_s"), ".2f"), "tok/s": _num(run.get("output_tokens_per_s"), ".0f"),
            **{f"{m.short['en']} {s}": fmt_value(run.get(m.stat_name(s)), m.unit) for m, s in _STATS},
            "succ%": _num(run.get("success_pct"), ".1f"), "status": run.get("status") or "-"}


def runs_table(runs: Iterable[dict], wide: bool = False) -> list[str]:
    """The runs as a table, a row each. Each column is as wide as its widest cell (text cells
    capped); the table fits TABLE_WIDTH columns by leaving out flavour, duration, the later
    latency columns and tok/s in that order, and says which it left out. `wide`: every column.
    The date drops the year when every run is from this year."""
    runs = list(runs)
    this_year = time.localtime().tm_year
    with_year = any(time.localtime(r["started_at"]).tm_year != this_year for r in runs if r.get("started_at"))
    rows = [_row_cells(run, with_year) for run in runs]
    heads = list(_row_cells({"id": 0}, with_year))
    widths = {h: max([_cell_width(h)] + [_cell_width(r[h]) for r in rows]) for h in heads}
    widths.update({h: min(widths[h], cap) for h, cap in _CAPS.items() if h in widths})
    shown, left_out = list(heads), []
    for head in _DROP_ORDER:
        if wide or sum(widths[h] for h in shown) + len(shown) - 1 <= TABLE_WIDTH:
            break
        shown.remove(head)
        left_out.append(head)

    def line(cells: dict) -> str:
        return " ".join(_fit(cells[h], widths[h]) if h in _LEFT else _pad(cells[h], widths[h]) for h in shown).rstrip()

    lines = [line({h: h for h in heads})] + [line(r) for r in rows]
    if left_out:
        lines += textwrap.wrap(f"left out to fit {TABLE_WIDTH} columns: {', '.join(left_out)}; "
                               "--wide shows every column", width=TABLE_WIDTH)
    return lines


def show_lines(run: dict, stored_requests: int, lang: str = "en") -> list[str]:
    """`history show ID`: the run's facts and its summary as printed at the end of the run."""
    lines = [f"run #{run['id']}  status: {run['status']}  requests stored: {stored_requests}",
             f"folder: {run.get('run_dir') or '-'}"]
    summary = run.get("summary")
    if summary is None:
        if run.get("status") == "running":
            lines.append("no summary yet: the run is still running; its finished requests are stored as it goes")
        else:
            folder = run.get("run_dir") or "RUN_DIR"
            lines.append("no summary: the run did not finish (its process is gone: killed or crashed); its finished "
                         "requests are stored")
            lines.append(f"`sse-perf report {folder}` rebuilds its summary from records.jsonl, "
                         f"`sse-perf history import {folder}` completes this run's entry")
        return lines
    reason = (summary.get("run") or {}).get("incomplete_reason") if isinstance(summary.get("run"), dict) else None
    if reason:
        lines.append(f"incomplete: {reason}")
    return lines + summary_lines(summary, lang)


def export_csv(records: Iterable[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REQUESTS_CSV_FIELDS)
    for record in records:
        writer.writerow("" if record.get(f) is None else
                        ("true" if record[f] is True else "false" if record[f] is False else record[f])
                        for f in REQUESTS_CSV_FIELDS)
    return buffer.getvalue()


def export_json(run: dict, records: Iterable[dict]) -> str:
    body = {"run": run_json(run), "summary": run.get("summary"), "records": list(records)}
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"
