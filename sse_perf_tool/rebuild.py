"""A run folder whose run did not finish (killed, crashed): summary.json and timeseries.csv rebuilt
from records.jsonl with the code the run itself uses (`stats.RunFigures`, `summary.complete_summary`,
`stats.TimeSeries`, `stats.mark_phases`), so that `sse-perf report`, `compare` and `history import`
take the folder. The summary is marked `run.incomplete` with `run.incomplete_reason`.

What the records tell, and what they do not:

- `run.started_at` is the history row's start when the run is in the history database, else the
  first request's send; `ended_at` the last request's end; `duration_s` first send to last finish
  of the measured requests (per level, summed, as the run counts it). `api`, `base_url`, `config`,
  `load` and the SLOs come from the history row; without one they are null (`threads` is the
  highest thread id seen, the load model `open` when any request waited in a queue).
- The per-second rows count from second 0 = that start. Each request's instants are derived from
  its `started_at` and its ms fields (end = `started_at` + `total_ms`; token events = `ttft_ms` then
  the `itl_ms` gaps); the latencies are the ones recorded. A request whose event instants are gone
  (no `itl_ms` list matching its `chunks`) has its tokens in its end second. `active_threads` is
  the number of requests in flight at each second's end (the ones lost in flight at the kill are not
  counted); `phase` and `level` come from when the warm-up and each level's requests were sent.
- Not rebuilt: the client self-check (`client` null), GPU and server telemetry, open-loop arrivals
  that were never sent (`not_sent` null), the server tokenizer's counts.

Imports storage and report_records (reading and writing the folder), stats, summary and slo (the
figures), and history lazily (the run's row); never cli.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from .report_load import finite as _finite
from .report_records import RecordStream
from .stats import TIMESERIES_COLUMNS, RunFigures, TimeSeries, mark_phases
from .storage import load_summary, load_timeseries, write_summary, write_timeseries
from .summary import complete_summary, with_findings

SUMMARY, TIMESERIES, RECORDS = "summary.json", "timeseries.csv", "records.jsonl"
REASON = ("rebuilt from records.jsonl: the run did not finish (killed or crashed); requests in flight when "
          "it ended are missing, and so is what the run measured beside its records (the client self-check, "
          "GPU and server telemetry, open-loop arrivals not sent)")
_NS = 1_000_000_000
_LATE_S = 60  # a second's latencies are kept this long after later ends for records written out of order


class RebuildError(ValueError):
    """Nothing to rebuild from (one line)."""


@dataclass
class Rebuilt:
    """What `rebuild_folder` made: the summary and the per-second rows (rebuilt, or the folder's own
    where it had them), which files were rebuilt and which of those were written to the folder."""

    run_dir: Path
    summary: dict
    timeseries: list
    rebuilt: tuple  # of SUMMARY, TIMESERIES
    written: tuple = ()
    not_written: Optional[str] = None  # why the rebuilt files stayed in memory
    skipped_lines: int = 0  # records.jsonl lines that were not records (a torn last line)
    history_row: Optional[dict] = field(default=None, repr=False)
    restored: bool = False  # summary.json is the history database's copy (the run finished there)

    @property
    def still_running(self) -> bool:
        return _still_running(self.history_row)

    def line(self) -> str:
        """One line for the terminal: what was rebuilt, and why."""
        what = " and ".join(n for f, n in ((SUMMARY, "summary"), (TIMESERIES, "time series")) if f in self.rebuilt)
        if self.still_running:
            row = self.history_row or {}
            return (f"the run is still running (pid {row.get('pid')} on {row.get('host')}): {what} of the requests "
                    f"finished so far, from records.jsonl (summary.json and timeseries.csv are left to the run)")
        if self.restored:
            text = "restored summary.json from the history database"
            if TIMESERIES in self.rebuilt:
                text += "; rebuilt time series from records.jsonl"
        else:
            why = "the run did not finish" if SUMMARY in self.rebuilt else f"{TIMESERIES} was missing"
            text = f"rebuilt {what} from records.jsonl ({why})"
        if self.not_written:
            text += f"; not written to the folder: {self.not_written}"
        return text


def needs_rebuild(run_dir: Path) -> bool:
    """records.jsonl is there, summary.json or timeseries.csv is not."""
    run_dir = Path(run_dir)
    return (run_dir / RECORDS).is_file() and not all((run_dir / n).is_file() for n in (SUMMARY, TIMESERIES))


_LOOKUP = object()


def rebuild_folder(run_dir: Path, history_row: Any = _LOOKUP, *, history_path: Optional[Path] = None,
                   write: bool = True) -> Optional[Rebuilt]:
    """Rebuild what `run_dir` lacks of summary.json and timeseries.csv from its records.jsonl; None
    when it lacks neither. `history_row`: the run's row in the history database (`History.find_run`),
    None for none; by default looked up in `history_path` (default: the folder's parent's history.db).

    With `write`, the rebuilt files are written into the folder (atomically, and never over a file
    that is there by then), so that later readers find them; not while the history says the run is
    still running. A folder that cannot be written keeps them in memory (`not_written` says why).
    """
    run_dir = Path(run_dir)
    if not (run_dir / RECORDS).is_file():
        raise RebuildError(f"{run_dir} has no {RECORDS} to rebuild its summary from")
    want = tuple(n for n in (SUMMARY, TIMESERIES) if not (run_dir / n).is_file())
    if not want:
        return None
    if history_row is _LOOKUP:
        history_row = find_history_row(run_dir, history_path)
    scan = _scan(RecordStream(run_dir / RECORDS))
    options = _dict((history_row or {}).get("options"))
    kind, values = _sweep(options, scan)
    slos = _slos(options)
    summary = None if SUMMARY in want else _existing_summary(run_dir)
    restored = SUMMARY in want and isinstance((history_row or {}).get("summary"), dict)
    if restored:  # the run finished (its row has its summary); only the folder lost the file
        summary = history_row["summary"]
    # second 0: the run's own start where its summary or its history row tells it, else the first send
    begun = _finite(_dict(summary.get("run")).get("started_at")) if summary is not None else \
        _finite((history_row or {}).get("started_at"))
    known = [t for t in (scan.t0, begun) if t is not None]
    start = min(known) if known else _folder_time(run_dir)  # no request finished: the folder's name
    figures = RunFigures(_bounds(slos), per_level=kind is not None) if summary is None else None
    series = TimeSeries(0) if TIMESERIES in want and start is not None else None
    records = RecordStream(run_dir / RECORDS)
    in_flight = _feed(records, start, figures, series)
    levels = _levels(scan, start)
    rows = None
    if TIMESERIES in want:
        rows = _rows(series, in_flight, levels) if series is not None else []
    if figures is not None:
        summary = _summary(scan, start, history_row, options, figures, levels, kind, values, slos)
        reason = REASON
        if _still_running(history_row):
            reason = reason.replace("the run did not finish (killed or crashed)", "the run is still running")
        if records.skipped:
            reason += f"; {records.skipped} line(s) of records.jsonl were not records (a torn last line)"
        summary["run"]["incomplete_reason"] = reason
        with_findings(summary, rows if rows is not None else _existing_timeseries(run_dir))
    out = Rebuilt(run_dir, summary, rows if rows is not None else _existing_timeseries(run_dir), want,
                  skipped_lines=records.skipped, history_row=history_row, restored=restored)
    if write and not out.still_running:
        _write(out, rows)
    return out


def find_history_row(run_dir: Path, history_path: Optional[Path] = None) -> Optional[dict]:
    """The run's row in the history database: in `history_path` when given and it has one, else in
    the history.db beside the folder (where a run writes it by default). None when there is no such
    database, no row for this folder, or the database cannot be read."""
    from .history import History, HistoryError

    default = Path(run_dir).resolve().parent / "history.db"
    paths = [Path(history_path)] if history_path is not None else []
    paths += [default] if all(p.resolve() != default for p in paths) else []
    for path in paths:
        if not path.is_file():
            continue
        try:
            db = History(str(path))
        except HistoryError:
            continue
        try:
            row = db.find_run(Path(run_dir))
        except HistoryError:
            row = None
        finally:
            db.close()
        if row is not None:
            return row
    return None


# ---------------------------------------------------------------- the records, twice


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _folder_time(run_dir: Path) -> Optional[float]:
    """<YYYYmmdd-HHMMSS>[-<model-name>] (local time, as storage.run_folder_name makes it) -> Unix seconds."""
    try:
        return time.mktime(time.strptime(Path(run_dir).resolve().name[:15], "%Y%m%d-%H%M%S"))
    except (ValueError, OverflowError):
        return None


def _still_running(row: Optional[dict]) -> bool:
    return bool(row) and row.get("status") == "running"


def _end_offset_ms(rec: dict) -> float:
    """Send -> end of one request in ms: `total_ms` (stream closed or failure), else the last instant known."""
    for name in ("total_ms", "e2e_ms", "ttfb_ms"):
        value = _finite(rec.get(name))
        if value is not None:
            return max(0.0, value)
    return 0.0


class _Level:
    __slots__ = ("first_sent", "measure_first", "warm", "last_end", "window")

    def __init__(self):
        self.first_sent = self.measure_first = self.last_end = None
        self.warm = False  # any warm-up request in this level
        self.window = None  # [first send, last end] of its measured requests (the run's duration)


class _Scan:
    """The first pass: when things happened (Unix seconds), nothing kept per request."""

    def __init__(self):
        self.t0 = None  # the first send
        self.levels: dict = {}  # level value (None outside sweeps) -> _Level
        self.max_thread = 0
        self.queued = False  # a request waited for a free thread: the load was an open loop
        self.count = 0


def _scan(records: Iterable[dict]) -> _Scan:
    scan = _Scan()
    for rec in records:
        scan.count += 1
        thread = rec.get("thread_id")
        if isinstance(thread, int) and not isinstance(thread, bool):
            scan.max_thread = max(scan.max_thread, thread)
        if (_finite(rec.get("queue_ms")) or 0.0) > 0.0:
            scan.queued = True
        sent = _finite(rec.get("started_at"))
        if sent is None:
            continue
        end = sent + _end_offset_ms(rec) / 1000.0
        scan.t0 = sent if scan.t0 is None else min(scan.t0, sent)
        level = scan.levels.get(rec.get("level"))
        if level is None:
            level = scan.levels[rec.get("level")] = _Level()
        level.first_sent = sent if level.first_sent is None else min(level.first_sent, sent)
        level.last_end = end if level.last_end is None else max(level.last_end, end)
        if rec.get("warmup"):
            level.warm = True
            continue
        level.measure_first = sent if level.measure_first is None else min(level.measure_first, sent)
        if level.window is None:
            level.window = [sent, end]
        else:
            level.window[0], level.window[1] = min(level.window[0], sent), max(level.window[1], end)
    return scan


class _Instants:
    """What `stats.TimeSeries` reads of a request, from its records.jsonl object: instants in ns after
    second 0, derived from `started_at` and the ms fields; every other attribute (the latencies of the
    per-second percentiles) is the record's own value."""

    __slots__ = ("_rec", "sent_ns", "ended_ns", "ok", "output_tokens", "token_times_ns")

    def __init__(self, rec: dict, sent_s: float):
        self._rec = rec
        self.sent_ns = int(round(sent_s * _NS))
        self.ended_ns = self.sent_ns + int(round(_end_offset_ms(rec) * 1e6))
        self.ok = bool(rec.get("ok"))
        tokens = rec.get("output_tokens")
        self.output_tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
        self.token_times_ns = self._token_times()

    def _token_times(self) -> list:
        """First token at `ttft_ms`, then one event per `itl_ms` gap; [] when they do not add up to
        `chunks` (TimeSeries then counts the tokens in the end second)."""
        rec = self._rec
        ttft, gaps, chunks = _finite(rec.get("ttft_ms")), rec.get("itl_ms"), rec.get("chunks")
        if ttft is None or not isinstance(gaps, list) or not isinstance(chunks, int) or chunks != len(gaps) + 1:
            return []
        at = self.sent_ns + ttft * 1e6
        times = [int(round(at))]
        for gap in gaps:
            gap = _finite(gap)
            if gap is None:
                return []
            at += gap * 1e6
            times.append(int(round(at)))
        return times

    def __getattr__(self, name: str):
        return self._rec.get(name)


def _feed(records: Iterable[dict], start: Optional[float], figures: Optional[RunFigures],
          series: Optional[TimeSeries]) -> dict:
    """The second pass: every record to the summary's figures and the per-second series. Returns the
    in-flight changes per second ({second: +started -ended}) for `active_threads`."""
    latest, in_flight = 0, {}
    for rec in records:
        if figures is not None:
            figures.add(rec)
        if series is None or start is None:
            continue
        sent = _finite(rec.get("started_at"))
        if sent is None:
            continue
        request = _Instants(rec, sent - start)
        series.add(request)
        # in flight at the end of second k when sent <= k + 1 < ended
        first = max(0, math.ceil(request.sent_ns / _NS) - 1)
        last = math.ceil(request.ended_ns / _NS) - 2
        if last >= first:
            in_flight[first] = in_flight.get(first, 0) + 1
            in_flight[last + 1] = in_flight.get(last + 1, 0) - 1
        end_second = request.ended_ns // _NS
        if end_second > latest:  # records come in finish order: free the raw values of long-closed seconds
            latest = end_second
            series.finalise_until(latest - _LATE_S)
    return in_flight


def _levels(scan: _Scan, start: Optional[float]) -> list[dict]:
    """One phase per level in the order they ran (by first send), in seconds after `start`: the
    shape `stats.mark_phases` and `summary.build_summary` take."""
    if start is None:
        return []
    out = []
    for value, level in sorted(scan.levels.items(), key=lambda kv: kv[1].first_sent):
        to_s = level.last_end - start
        warm_to = None
        if level.warm:
            warm_to = to_s if level.measure_first is None else level.measure_first - start
        window = level.window
        out.append({"value": value, "from_s": level.first_sent - start, "to_s": to_s, "warmup_to_s": warm_to,
                    "duration_s": None if window is None else max(0.0, window[1] - window[0])})
    return out


def _rows(series: TimeSeries, in_flight: dict, levels: list[dict]) -> list[dict]:
    """The per-second rows as the run writes them: TimeSeries' rows, the requests in flight as
    `active_threads`, and each second's phase and level."""
    rows = series.rows()
    active = 0
    for row in rows:
        active += in_flight.get(row["second"], 0)
        row["active_threads"] = active
    return mark_phases(rows, levels or [{"value": None, "from_s": 0.0, "to_s": 0.0, "warmup_to_s": None}])


# ---------------------------------------------------------------- the summary


def _sweep(options: dict, scan: _Scan) -> tuple:
    """(kind, planned values) of a sweep, or (None, ()): from the run's options when the history
    knows them, else from the records' levels (an open loop, a request that queued, sweeps rates)."""
    for kind in ("threads", "rate"):
        planned = options.get(f"sweep_{kind}")
        if isinstance(planned, (list, tuple)) and planned:
            return kind, tuple(planned)
    seen = [value for value in scan.levels if value is not None]
    if not seen:
        return None, ()
    return ("rate" if scan.queued else "threads"), ()


def _slos(options: dict) -> tuple:
    """The run's --slo, when the history knows it (unreadable: none)."""
    text = options.get("slo")
    if not isinstance(text, str) or not text.strip():
        return ()
    from .config import ConfigError
    from .slo import parse_slos

    try:
        return parse_slos(text)
    except ConfigError:
        return ()


def _bounds(slos: tuple) -> dict:
    from .slo import request_bounds

    return request_bounds(slos) if slos else {}


def _load_section(options: dict, scan: _Scan, kind: Optional[str], values: tuple) -> dict:
    """summary.json's `run.load`, from the options (as run_info makes it) or what the records show."""
    if options:
        open_loop = options.get("rate") is not None or bool(options.get("sweep_rate"))
        return {
            "model": "open" if open_loop else "closed", "threads": options.get("threads"),
            "processes": options.get("processes"), "rate": options.get("rate"),
            "arrival": options.get("arrival") if open_loop else None, "seed": options.get("seed"),
            "warmup_s": options.get("warmup_s") or None, "warmup_requests": options.get("warmup_requests") or None,
            "sweep": None if kind is None else {"kind": kind, "values": list(values),
                                                 "cooldown_s": options.get("cooldown_s")},
        }
    return {"model": "open" if scan.queued else "closed", "threads": scan.max_thread or None, "processes": None,
            "rate": None, "arrival": None, "seed": None, "warmup_s": None, "warmup_requests": None,
            "sweep": None if kind is None else {"kind": kind, "values": list(values), "cooldown_s": None}}


def _summary(scan: _Scan, start: Optional[float], row: Optional[dict], options: dict, figures: RunFigures,
             levels: list[dict], kind: Optional[str], values: tuple, slos: tuple) -> dict:
    row = row or {}
    load = _load_section(options, scan, kind, values)
    ends = [lv["to_s"] for lv in levels]
    windows = [lv["duration_s"] for lv in levels if lv["duration_s"] is not None]
    duration = sum(windows) if windows else None
    run = {
        "started_at": start,
        "ended_at": None if start is None or not ends else start + max(ends),
        "duration_s": duration,
        "api": row.get("api") or options.get("api"),
        "base_url": row.get("base_url") or options.get("base_url"),
        "threads": row.get("threads") or options.get("threads") or (scan.max_thread or None),
        "ramp_up_s": options.get("ramp_up_s"),
        "model_name": row.get("model_name") or options.get("model_name"),
        "load": load,
        "interrupted": True,
        "tool_version": None,
        "config": options,
        "stopped_early": None,
        "request_id_prefix": None,
        "incomplete": True,
        "incomplete_reason": REASON,
    }
    not_sent = None if load["model"] == "open" else 0  # open loop: arrivals never sent are not recorded
    sweep_levels = None
    if kind is not None:
        sweep_levels = [dict(lv, not_sent=not_sent) for lv in levels if lv["value"] is not None]
    return complete_summary(run, figures, duration, slos, sweep_levels, kind, values, not_sent=not_sent,
                            client=None)


# ---------------------------------------------------------------- the folder


def _existing_summary(run_dir: Path) -> dict:
    try:
        summary = load_summary(run_dir)
    except (OSError, ValueError) as exc:
        raise RebuildError(f"{run_dir / SUMMARY} cannot be read: {exc}") from None
    if not isinstance(summary, dict):
        raise RebuildError(f"{run_dir / SUMMARY} is not a run summary")
    return summary


def _existing_timeseries(run_dir: Path) -> list:
    try:
        return load_timeseries(run_dir)
    except (OSError, ValueError):
        return []


def _write(out: Rebuilt, rows: Optional[list]) -> None:
    """The rebuilt files into the folder, each whole or not at all, never over one there by now
    (a run that finished meanwhile: its own file is then read instead)."""
    written = []
    try:
        if SUMMARY in out.rebuilt:
            if write_summary(out.run_dir, out.summary, exclusive=True) is None:
                out.summary = _existing_summary(out.run_dir)
            else:
                written.append(SUMMARY)
        if TIMESERIES in out.rebuilt and rows is not None:
            columns = TIMESERIES_COLUMNS
            if write_timeseries(out.run_dir, rows, columns, exclusive=True) is None:
                out.timeseries = _existing_timeseries(out.run_dir)
            else:
                written.append(TIMESERIES)
    except OSError as exc:
        out.not_written = exc.strerror or str(exc)
    out.written = tuple(written)
