"""Comparing runs: runs loaded by history id or run folder into one shape, the main metrics with
their directions, the change against the baseline (the first run), better/worse verdicts, the
regression gate, and the terminal table.

Pure except `load_runs` (the history database and run folders). Imports config (ConfigError),
storage and rebuild (run folders), live (terminal cell widths), the metric registry (which
figures, their directions and labels) and i18n (the strings) only; never report or cli.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from . import metrics as registry
from .compare_findings import diff_lines, findings_diff
from .i18n import tables
from .config import ConfigError
from .live import _cell_width, _pad, fmt_ms, wrap_cells

HIGHER, LOWER = registry.HIGHER, registry.LOWER
SAME_PCT = 1.0  # a change within +-1 % is "same": run-to-run noise, not a difference
_EPS = 1e-9  # float noise: 220 vs 200 is exactly +10 %, not 10.000000000000002


@dataclass(frozen=True)
class Metric:
    """One main figure: where it lives in summary.json and which way is better."""

    name: str
    path: tuple
    direction: str
    unit: str  # "ms", "%", "req/s", "tok/s", "tok/J", "" (a count)
    optional: bool = False  # only shown when a run has a value


def _compared() -> tuple[Metric, ...]:
    """The figures compare shows, from the metric registry: the whole-run "head" figures, each
    distribution's compared statistics, then the "tail" figures."""
    def figures(place: str) -> list[Metric]:
        return [Metric(f.name, f.path, f.direction, f.unit, f.optional) for f in registry.FIGURES if f.compare == place]
    stats = [Metric(m.stat_name(stat), (m.field, stat), m.direction, m.unit) for m, stat in registry.stat_columns("compare")]
    return tuple(figures("head") + stats + figures("tail"))


def _labels(lang: str) -> dict:
    """The terminal's name of each compared figure: 'TTFT p95 ms', '首字 p95 ms', 'tok/s/req p50'."""
    out = {f.name: f.label[lang] for f in registry.FIGURES if f.compare}
    for m, stat in registry.stat_columns("compare"):
        out[m.stat_name(stat)] = f"{m.short[lang]} {stat}" + (" ms" if m.unit == "ms" else "")
    return out


METRICS = _compared()
METRIC_BY_NAME = {m.name: m for m in METRICS}

TERMINAL = {lang: {**strings, **_labels(lang)} for lang, strings in tables("COMPARE").items()}


# ---------------------------------------------------------------- loading


@dataclass
class Run:
    """One run to compare, whatever it came from. `timeseries` and `records` read lazily (the
    HTML report needs them, the terminal table does not)."""

    label: str
    summary: dict
    run_id: Optional[int] = None
    run_dir: Optional[str] = None
    load_timeseries: Callable[[], list] = field(default=lambda: [], repr=False)
    load_records: Callable[[], Iterable[dict]] = field(default=lambda: (), repr=False)

    def timeseries(self) -> list[dict]:
        return list(self.load_timeseries())

    def records(self) -> Iterable[dict]:
        return self.load_records()


_ID_TEXT = re.compile(r"^#?\d+$")


def is_folder_target(text: str) -> bool:
    """A run folder (or a path meant as one) rather than a history id: an existing folder, a
    summary.json, or anything with a path separator; '12' and '#12' are ids."""
    path = Path(text)
    if path.is_dir() or (path.name == "summary.json" and path.is_file()):
        return True
    if _ID_TEXT.match(text.strip()):
        return False
    return "/" in text or os.sep in text or path.exists()


def load_folder(text: str) -> Run:
    """A run folder (or its summary.json) -> Run labelled by the folder name. A folder whose run did
    not finish (records.jsonl, no summary.json) is read through its rebuilt summary and time series
    (rebuild.py; `sse-perf compare` rebuilds and writes them first and says so)."""
    from .rebuild import RebuildError, needs_rebuild, rebuild_folder
    from .storage import load_records, load_summary, load_timeseries

    path = Path(text)
    if path.name == "summary.json" and path.is_file():
        path = path.parent
    if not path.is_dir():
        raise ConfigError(f"no such run folder: {text}")
    rows = None
    if not (path / "summary.json").is_file():
        if not (path / "records.jsonl").is_file():
            raise ConfigError(f"{text} is not a run folder (no summary.json)")
        try:
            rebuilt = rebuild_folder(path, write=False)
        except (RebuildError, OSError) as exc:
            raise ConfigError(str(exc)) from None
        summary, rows = rebuilt.summary, rebuilt.timeseries
    else:
        try:
            summary = load_summary(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path / 'summary.json'} cannot be read: {exc}") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path / 'summary.json'} is not a run summary")

    def timeseries() -> list[dict]:
        if rows is not None:
            return rows
        if (path / "timeseries.csv").is_file():
            return load_timeseries(path)
        if not needs_rebuild(path):
            return []
        try:  # a summary without its time series: the series from the records
            rebuilt = rebuild_folder(path, write=False)
        except (RebuildError, OSError):
            return []
        return rebuilt.timeseries if rebuilt is not None else []

    def records() -> Iterator[dict]:
        if (path / "records.jsonl").is_file():
            yield from load_records(path)

    return Run(label=path.resolve().name, summary=summary, run_dir=str(path), load_timeseries=timeseries,
               load_records=records)


def model_label(summary: dict, model_name: Optional[str] = None) -> str:
    """--model-name, else the --model option, else the API flavour."""
    run = _dict(summary.get("run"))
    config = _dict(run.get("config"))
    for value in (model_name, run.get("model_name"), config.get("model"), run.get("api")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "run"


def load_history_run(db, text: str, resolve_id: Callable[[Any, str], int]) -> Run:
    """A run of the history database by id (ConfigError naming the closest ids if unknown)."""
    run_id = resolve_id(db, text.strip().lstrip("#"))
    row = db.get_run(run_id)
    summary = row.get("summary") if row else None
    if not isinstance(summary, dict):
        status = row.get("status") if row else "unknown"
        raise ConfigError(f"run #{run_id} has no summary (status: {status}): it did not finish, so it cannot be compared")
    return Run(label=f"#{run_id} {model_label(summary, row.get('model_name'))}", summary=summary, run_id=run_id,
               run_dir=row.get("run_dir"), load_timeseries=lambda: db.timeseries(run_id),
               load_records=lambda: db.records(run_id))


def load_runs(targets: list[str], open_history: Callable[[], Any],
              resolve_id: Callable[[Any, str], int]) -> list[Run]:
    """Targets (history ids and run folders, mixed) -> Runs in the order given; labels made unique.
    `open_history()` is called only when an id is given (it raises ConfigError when there is
    no database)."""
    runs = []
    for text in targets:
        if is_folder_target(text):
            runs.append(load_folder(text))
        else:
            runs.append(load_history_run(open_history(), text, resolve_id))
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} ({seen[run.label]})"
    return runs


# ---------------------------------------------------------------- settings


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _plain(value: Any) -> str:
    number = _finite(value)
    return "-" if value is None else (f"{number:g}" if number is not None else str(value))


def load_text(summary: dict) -> str:
    """'2 threads', 'open loop 4 req/s poisson', 'sweep threads 1,4,16'."""
    run = _dict(summary.get("run"))
    load = _dict(run.get("load"))
    sweep = _dict(load.get("sweep")) or _dict(summary.get("sweep"))
    if sweep:
        values = ",".join(_plain(v) for v in sweep.get("values") or ())
        return f"sweep {sweep.get('kind', 'threads')} {values}".rstrip()
    if load.get("model") == "open" and load.get("rate") is not None:
        return f"open loop {_plain(load['rate'])} req/s {load.get('arrival') or ''}".rstrip()
    threads = load.get("threads", run.get("threads"))
    return "-" if threads is None else f"{_plain(threads)} thread{'' if threads == 1 else 's'}"


def workload_text(config: dict) -> str:
    """What was sent: the datasets, the param file, else the query."""
    datasets = config.get("datasets")
    if datasets:
        return ", ".join(str(d) for d in datasets) if isinstance(datasets, (list, tuple)) else str(datasets)
    if config.get("param_file"):
        return str(config["param_file"])
    query = config.get("query")
    if isinstance(query, str):
        flat = " ".join(query.split())
        return f"query {flat[:40]}{'…' if len(flat) > 40 else ''}"
    return "-"


def settings_of(summary: dict) -> dict:
    """The settings that explain differences between runs (and where each ran)."""
    run = _dict(summary.get("run"))
    config = _dict(run.get("config"))
    load = _dict(run.get("load"))
    return {
        "load": load_text(summary),
        "threads": load.get("threads", run.get("threads")),
        "rate": load.get("rate"),
        "max_tokens": config.get("max_tokens"),
        "dataset": workload_text(config),
        "requests": config.get("requests"),
        "duration_s": _finite(run.get("duration_s")),
        "api": run.get("api"),
        "base_url": run.get("base_url"),
        "model": config.get("model"),
        "started_at": _finite(run.get("started_at")),
        "warmup": load.get("warmup_s") or load.get("warmup_requests"),
    }


DIFF_KEYS = ("load", "max_tokens", "dataset")  # settings that change the numbers by themselves


def differing_settings(settings: list[dict]) -> list[tuple[str, list]]:
    """[(name, values per run)] of the DIFF_KEYS whose values are not all equal."""
    out = []
    for key in DIFF_KEYS:
        values = [s.get(key) for s in settings]
        if len({repr(v) for v in values}) > 1:
            out.append(("threads/rate" if key == "load" else key, values))
    return out


def settings_line(settings: dict) -> str:
    parts = [settings["load"]]
    if settings.get("requests"):
        parts[0] += f", {_plain(settings['requests'])} requests"
    if settings.get("max_tokens") is not None:
        parts[0] += f", max_tokens {_plain(settings['max_tokens'])}"
    parts.append("-" if settings.get("duration_s") is None else f"{settings['duration_s']:.1f} s")
    parts.append(f"{settings.get('api') or '-'} {settings.get('base_url') or '-'}")
    if settings.get("model"):
        parts.append(f"model {settings['model']}")
    parts.append(settings["dataset"])
    return " · ".join(parts)


# ---------------------------------------------------------------- the comparison


def metric_value(summary: dict, metric: Metric) -> Optional[float]:
    value: Any = summary
    for key in metric.path:
        value = _dict(value).get(key)
    return _finite(value)


def change_pct(baseline: Optional[float], value: Optional[float]) -> Optional[float]:
    """(value - baseline) / |baseline| in percent; None when either is missing or the baseline is 0."""
    if baseline is None or value is None or baseline == 0:
        return None
    return (value - baseline) / abs(baseline) * 100.0


def verdict(direction: str, baseline: Optional[float], value: Optional[float]) -> Optional[str]:
    """'better', 'worse' or 'same' (within +-1 %) by the metric's direction; None when unknown.
    From a baseline of 0 there is no percentage, but 0 -> 3 failures is still worse."""
    if baseline is None or value is None:
        return None
    change = change_pct(baseline, value)
    if change is None:  # baseline 0
        if value == 0:
            return "same"
        up = value > 0
    else:
        if abs(change) <= SAME_PCT + _EPS:
            return "same"
        up = change > 0
    return "better" if up == (direction == HIGHER) else "worse"


def worse_by_pct(direction: str, change: Optional[float]) -> Optional[float]:
    """How much worse than the baseline, in percent (negative = better); None when unknown."""
    if change is None:
        return None
    return -change if direction == HIGHER else change


def is_regression(direction: str, change: Optional[float], threshold_pct: float) -> bool:
    """Worse than the baseline by more than the threshold (exactly at it is not a regression)."""
    worse = worse_by_pct(direction, change)
    return worse is not None and worse > threshold_pct + _EPS


def parse_threshold(text: str) -> float:
    """'10%', '10', '2.5 %' -> percent. ValueError with one line otherwise."""
    raw = str(text).strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"expected a percentage such as 10% or 10 (got {text!r})") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"the threshold must be a percentage of 0 or more (got {text!r})")
    return value


def _shown(metric: Metric, summaries: list[dict], values: list) -> bool:
    if metric.name == "goodput_requests_per_s":  # without SLO bounds goodput is just ok requests/s
        return any(_dict(_dict(s.get("goodput")).get("bounds")) or s.get("slo") for s in summaries) \
            and any(v is not None for v in values)
    return not metric.optional or any(v is not None for v in values)


def compare_runs(runs: list[Run], threshold_pct: Optional[float] = None) -> dict:
    """The comparison as plain data (the `--json` output): runs, one entry per shown metric with
    values, change % and verdicts per run (None for the baseline), and the regressions beyond
    `threshold_pct` (empty when no threshold is given)."""
    summaries = [r.summary for r in runs]
    settings = [settings_of(s) for s in summaries]
    metrics, regressions = [], []
    for metric in METRICS:
        values = [metric_value(s, metric) for s in summaries]
        if not _shown(metric, summaries, values):
            continue
        base = values[0]
        changes = [None] + [change_pct(base, v) for v in values[1:]]
        verdicts = [None] + [verdict(metric.direction, base, v) for v in values[1:]]
        metrics.append({"name": metric.name, "direction": metric.direction, "unit": metric.unit,
                        "values": values, "change_pct": changes, "verdict": verdicts})
        if threshold_pct is None:
            continue
        for i, change in enumerate(changes[1:], start=1):
            if is_regression(metric.direction, change, threshold_pct):
                regressions.append({"run": runs[i].label, "run_index": i, "metric": metric.name,
                                    "baseline": base, "value": values[i], "change_pct": change})
    return {
        "runs": [{"label": r.label, "id": r.run_id, "run_dir": r.run_dir,
                  "model_name": _dict(r.summary.get("run")).get("model_name"), "settings": s}
                 for r, s in zip(runs, settings)],
        "baseline": runs[0].label,
        "metrics": metrics,
        "settings_differ": [{"setting": name, "values": values} for name, values in differing_settings(settings)],
        "threshold_pct": threshold_pct,
        "regressions": regressions,
        "findings": findings_diff(runs),
    }


# ---------------------------------------------------------------- the terminal table


def fmt_value(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return fmt_ms(value)
    if unit == "":
        return f"{value:.0f}"
    if unit == "%":
        return f"{value:.2f}"
    if unit == "tok/J":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "tok/s":
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_change(change: Optional[float]) -> str:
    if change is None:
        return "-"
    if abs(change) >= 1000:
        return f"{change:+.0f}%"
    return f"{change:+.1f}%"


def arrow(change: Optional[float], baseline: Optional[float] = None, value: Optional[float] = None) -> str:
    """↑ the value went up, ↓ down, = unchanged (by the ±1 % band)."""
    if change is None:
        if baseline == 0 and value is not None and value != 0:
            return "↑" if value > 0 else "↓"
        return "="
    if abs(change) <= SAME_PCT + _EPS:
        return "="
    return "↑" if change > 0 else "↓"


def _fit(text: str, width: int) -> str:
    """Cut to `width` terminal cells with an ellipsis, then pad on the right."""
    if _cell_width(text) > width:
        while text and _cell_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text + " " * max(0, width - _cell_width(text))


def _wrap(text: str, indent: str) -> list[str]:
    """Prose past TABLE_WIDTH, wrapped at words with the continuation lines indented."""
    return wrap_cells(text, TABLE_WIDTH, indent)


_COLOURS = {"better": "\033[32m", "worse": "\033[31m", "same": "\033[2m"}
_RESET = "\033[0m"
TABLE_WIDTH = 80  # every line of the terminal comparison fits 80 columns
METRIC_W, BASE_W, VALUE_W, CHANGE_W, VERDICT_W = 15, 8, 8, 7, 8
OTHER_W = 2 + VALUE_W + 1 + CHANGE_W + 1 + VERDICT_W  # one compared run: value, change %, verdict
PER_BLOCK = max(1, (TABLE_WIDTH - METRIC_W - 1 - BASE_W) // (OTHER_W + 1))  # compared runs side by side


def _legend(index: int, label: str, label_w: int, settings: str) -> list[str]:
    """'  [2] label  settings' on one line when it fits, else the settings on wrapped lines below."""
    line = f"  [{index}] {_fit(label, label_w)}  {settings}"
    if _cell_width(line) <= TABLE_WIDTH:
        return [line]
    indent = " " * (len(f"  [{index}] "))
    return [f"  [{index}] {label}"] + wrap_cells(settings, TABLE_WIDTH, indent, first=indent)


def table_lines(comparison: dict, lang: str = "en", colour: bool = False) -> list[str]:
    """Run legend with settings, a warning when settings differ, then one row per metric: the
    baseline's value, and for each other run its value, change % and verdict. Every line fits
    TABLE_WIDTH columns: the columns are headed [1], [2]... as in the legend, and past PER_BLOCK
    compared runs the table continues in another block below (each with the baseline again)."""
    t = TERMINAL.get(lang, TERMINAL["en"])
    runs = comparison["runs"]
    lines = [t["runs"]]
    label_w = min(28, max(_cell_width(r["label"]) for r in runs))
    for i, run in enumerate(runs, start=1):
        lines += _legend(i, run["label"], label_w, settings_line(run["settings"]))
    if comparison["settings_differ"]:
        items = "; ".join(f"{d['setting']}: " + " / ".join(_plain(v) for v in d["values"])
                          for d in comparison["settings_differ"])
        lines += _wrap(t["differ"].format(items=items), "   ")
    others = list(range(1, len(runs)))
    for start in range(0, len(others), PER_BLOCK):
        block = others[start:start + PER_BLOCK]
        lines.append("")
        head = [_fit(t["metric"], METRIC_W), _pad("[1]", BASE_W)]
        head += ["  " + _pad(f"[{k + 1}]", VALUE_W) for k in block]
        lines.append(" ".join(head).rstrip())
        for m in comparison["metrics"]:
            cells = [_fit(t.get(m["name"], m["name"]), METRIC_W), _pad(fmt_value(m["values"][0], m["unit"]), BASE_W)]
            for k in block:
                value, change, word = m["values"][k], m["change_pct"][k], m["verdict"][k]
                mark = f"{arrow(change, m['values'][0], value)} {t[word]}" if word else ""
                tail = _pad(fmt_change(change), CHANGE_W) + " " + _fit(mark, VERDICT_W)
                if colour and word:
                    tail = _COLOURS[word] + tail + _RESET
                cells.append("  " + _pad(fmt_value(value, m["unit"]), VALUE_W) + " " + tail)
            lines.append(" ".join(cells).rstrip())
    lines += _wrap(t["note"], "  ")
    lines += diff_lines(comparison, t)
    return lines


def regression_lines(comparison: dict, lang: str = "en") -> list[str]:
    """The gate's verdict; [] when no threshold was given."""
    threshold = comparison.get("threshold_pct")
    if threshold is None:
        return []
    t = TERMINAL.get(lang, TERMINAL["en"])
    pct = f"{threshold:g}"
    regressions = comparison["regressions"]
    if not regressions:
        return [t["gate_passed"].format(pct=pct)]
    lines = [t["gate_failed"].format(n=len(regressions), pct=pct)]
    for r in regressions:
        unit = METRIC_BY_NAME[r["metric"]].unit
        lines.append(f"  {r['run']}: {t.get(r['metric'], r['metric'])} {fmt_change(r['change_pct'])} "
                     f"({fmt_value(r['baseline'], unit)} -> {fmt_value(r['value'], unit)})")
    return lines
