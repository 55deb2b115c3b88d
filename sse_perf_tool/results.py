"""A finished run's results, after summary.json is written: report.html rendered from what the
run kept in memory (records.jsonl is not read back), and the closing lines on the terminal (the
summary, the run folder, the report, the history entry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .config import RunConfig
from .console import say


def report_inputs(digest, figures) -> dict:
    """What the report needs beyond summary.json and timeseries.csv, from what the run kept in
    memory (so records.jsonl is not read back): the digest the aggregator fed, and the histograms
    of the run's own distributions."""
    from .report_records import HIST_METRICS, histogram_of

    values = figures.whole.run.values
    return {"digest": digest, "histograms": {m.key: histogram_of(values[m.field]) for m in HIST_METRICS}}


def write_report(cfg: RunConfig, run_dir: Path, err, inputs: Optional[dict] = None) -> Optional[Path]:
    """report.html (or --html-report); None when the report cannot be rendered here (no Jinja2) or
    failed, which is said and costs the run nothing (its records and summary are already safe)."""
    try:
        from .report import write_report as render_to_file
    except ImportError:
        return None
    try:
        return render_to_file(run_dir, Path(cfg.html_report) if cfg.html_report else None, lang=cfg.lang,
                              **(inputs or {}))
    except Exception as exc:  # the records and summary are already safe; say what failed, keep the exit code
        say(f"warning: report.html could not be written: {type(exc).__name__}: {exc}", err)
        return None


def say_closing(summary: dict, lang: str, run_dir: Path, report_path: Optional[Path],
                history_line: Optional[str], out) -> None:
    """The summary on the terminal, then where the run folder, the report and the history entry are."""
    from .live import SUMMARY_LABELS, findings_lines, summary_lines

    labels = SUMMARY_LABELS.get(lang, SUMMARY_LABELS["en"])
    say("", out)
    for line in summary_lines(summary, lang) + findings_lines(summary, lang):
        say(line, out)
    say(f"{labels['folder']}: {run_dir}", out)
    if report_path:
        say(f"{labels['report']}: {report_path}", out)
    if history_line:
        say(history_line, out)
