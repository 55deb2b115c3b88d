"""What `sse-perf history` prints and exports: the runs table, one run's summary, CSV/JSON exports.

Pure formatting over History's dicts; imports live (terminal tables), storage (CSV fields) and the
metric registry (the statistics kept per run) only.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Iterable, Optional

from . import metrics as registry
from .live import _cell_width, _pad, fmt_value, summary_lines
from .storage import REQUESTS_CSV_FIELDS

_STATS = registry.stat_columns("history")  # (metric, stat) kept as columns of each run
LIST_FIELDS = ("id", "started_at", "model_name", "api", "load_model", "threads", "rate", "duration_s",
               "requests_total", "requests_per_s", "output_tokens_per_s", *(m.stat_name(s) for m, s in _STATS),
               "success_pct", "status", "run_dir")
_HEAD = ("id", "when", "model", "flavour", "load", "dur s", "req/s", "tok/s",
         *(f"{m.short['en']} {s}" for m, s in _STATS), "succ%", "status")
_WIDTHS = (4, 16, 14, 12, 9, 6, 7, 7, *(8 for _ in _STATS), 6, 11)
_RIGHT = range(5, 9 + len(_STATS))  # the numeric columns, right-aligned


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


def runs_table(runs: Iterable[dict]) -> list[str]:
    lines = [" ".join(_pad(h, w) if i == 0 or i in _RIGHT else _fit(h, w) for i, (h, w) in enumerate(zip(_HEAD, _WIDTHS))).rstrip()]
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["started_at"])) if run.get("started_at") else "-"
        cells = (
            str(run["id"]), when, run.get("model_name"), run.get("api"), load_label(run),
            _num(run.get("duration_s"), ".0f"), _num(run.get("requests_per_s"), ".2f"),
            _num(run.get("output_tokens_per_s"), ".0f"), *(fmt_value(run.get(m.stat_name(s)), m.unit) for m, s in _STATS),
            _num(run.get("success_pct"), ".1f"), run.get("status") or "-",
        )
        lines.append(" ".join(_pad(c, w) if i == 0 or i in _RIGHT else _fit(c, w)
                              for i, (c, w) in enumerate(zip(cells, _WIDTHS))).rstrip())
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
