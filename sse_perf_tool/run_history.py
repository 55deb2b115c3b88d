"""This run's entry in the history database: begun before the first request (its sink records
each request as it ends), finished with the summary and the per-second rows. A history that
cannot be used costs a warning, never the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import RunConfig
from .console import say
from .i18n import LANGS, table


@dataclass
class HistoryRun:
    db: object  # history.History
    run_id: int
    recorder: object  # history.HistoryRecorder, one of the aggregator's sinks


def open_history(cfg: RunConfig, run_dir: Path, run_section: dict, err) -> Optional[HistoryRun]:
    """The history database, with this run begun in it; None (after a warning) when it cannot be used."""
    if cfg.no_history:
        return None
    from .history import History, HistoryError, HistoryRecorder, default_history_path

    path = cfg.history or default_history_path(cfg.output_dir)
    try:
        db = History(path)
    except HistoryError as exc:
        say(f"warning: {exc}; this run is not recorded in the history", err)
        return None
    try:
        run_id = db.begin_run(run_dir, run_section)
    except HistoryError as exc:
        say(f"warning: {exc}; this run is not recorded in the history", err)
        db.close()
        return None
    return HistoryRun(db, run_id, HistoryRecorder(db, run_id))


def finish_history(history: Optional[HistoryRun], summary: dict, rows: list, err, lang: str = "en") -> Optional[str]:
    """Finish the run's entry (its status from the summary) and close the database; returns the
    line that says where it is, None when there is none."""
    if history is None:
        return None
    from .history import HistoryError, status_of

    status = status_of(summary)
    try:
        if history.recorder.failure:  # some requests are missing from the database: say so, keep the rest
            say(f"warning: {history.recorder.failure}", err)
            summary = dict(summary, history_incomplete=True)
        history.db.finish_run(history.run_id, status, summary, rows)
        t = table("TERMINAL", lang if lang in LANGS else "en")
        return t["history_line"].format(id=history.run_id, path=history.db.path)
    except HistoryError as exc:
        say(f"warning: {exc}; this run's history entry is incomplete", err)
        return None
    finally:
        history.db.close()
