"""The run folder: records.jsonl, requests.csv, timeseries.csv, summary.json writers and loaders.

Imports records (field names) only. Writers flush as they go, so a crash loses at most
the requests in flight; timeseries.csv and summary.json are written whole or not at all
(`write_atomic`), and a rebuild (rebuild.py) never replaces the ones a run wrote (`exclusive`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .records import RECORD_FIELDS

REQUESTS_CSV_FIELDS = tuple(f for f in RECORD_FIELDS if f != "itl_ms")


class OutputError(OSError):
    """The output folder cannot be created or written."""


def run_folder_name(started_at: float, model_name: Optional[str]) -> str:
    name = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
    if model_name:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("._") or "run"
        name += "-" + safe[:80]
    return name


def check_writable(output_dir: str) -> Path:
    """Create the parent folder if needed and prove a file can be written there."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".sse-perf-write-test-{time.time_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder cannot be written: {output_dir} ({exc.strerror or exc})") from None
    return path


def create_run_dir(output_dir: str, started_at: float, model_name: Optional[str]) -> Path:
    """OUTPUT_DIR/<YYYYmmdd-HHMMSS>[-<model-name>]/, with -2, -3 ... if that name is taken."""
    parent = check_writable(output_dir)
    base = run_folder_name(started_at, model_name)
    for n in range(1, 1000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"run folder cannot be created: {candidate} ({exc.strerror or exc})") from None
    raise OutputError(f"too many run folders named {base} in {parent}")


class RecordWriter:
    """Appends each finished request to records.jsonl and requests.csv, flushed at once. As the
    aggregator's sink (`record`), a failure (disk full, folder removed) stops the writing and is kept
    in `error`; the run goes on measuring."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.error: Optional[str] = None
        self._jsonl = open(run_dir / "records.jsonl", "a", encoding="utf-8")
        self._csv_file = open(run_dir / "requests.csv", "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(REQUESTS_CSV_FIELDS)
        self.count = 0

    def write(self, record: dict) -> None:
        self._jsonl.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._jsonl.flush()
        self._csv.writerow(_csv_cell(record[f]) for f in REQUESTS_CSV_FIELDS)
        self._csv_file.flush()
        self.count += 1

    def record(self, row: dict) -> None:
        if self.error is not None:
            return
        try:
            self.write(row)
        except OSError as exc:
            self.error = f"records could not be written: {exc}"

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()


class CsvAppender:
    """A CSV file written row by row and flushed each time (gpu.csv)."""

    def __init__(self, path: Path, fields: Iterable[str]):
        self.fields = tuple(fields)
        self._file = open(path, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(self.fields)

    def write(self, row: dict) -> None:
        self._csv.writerow(_csv_cell(_format_number(row.get(f))) for f in self.fields)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def load_records(run_dir: Path) -> Iterator[dict]:
    """Stream records.jsonl; a torn last line (a crash mid-write) is skipped."""
    path = Path(run_dir) / "records.jsonl"
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def write_timeseries(run_dir: Path, rows: Iterable[dict], columns: Iterable[str], *,
                     exclusive: bool = False) -> Optional[Path]:
    """timeseries.csv, written whole or not at all (a temporary file renamed into place), so a
    reader never sees half a file. `exclusive`: never replace an existing one (None when there was)."""
    columns = list(columns)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_format_number(row.get(c)) for c in columns)
    return write_atomic(Path(run_dir) / "timeseries.csv", buffer.getvalue(), exclusive=exclusive)


def write_atomic(path: Path, text: str, *, exclusive: bool = False) -> Optional[Path]:
    """Write `text` to a temporary file beside `path`, then rename it into place: readers see the
    old file or the new one, never a part. `exclusive`: an existing `path` is left alone (returns
    None), checked by the link itself where the file system has hard links, so a run writing the
    same file at that moment is never overwritten."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if not exclusive:
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path)  # fails if path exists: no window between the check and the write
        except FileExistsError:
            return None
        except OSError:  # no hard links here (some network and FUSE file systems): check, then rename
            if path.exists():
                return None
            os.replace(tmp, path)
        return path
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def _format_number(value):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return value


def load_timeseries(run_dir: Path) -> list[dict]:
    """timeseries.csv -> rows of float|None ('second' as int; text columns such as `phase` as str)."""
    rows = []
    with open(Path(run_dir) / "timeseries.csv", encoding="utf-8", newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {}
            for key, value in raw.items():
                row[key] = _parse_cell(value)
            if row.get("second") is not None:
                row["second"] = int(row["second"])
            rows.append(row)
    return rows


def _parse_cell(value):
    if value in ("", None):
        return None
    try:
        return float(value)
    except ValueError:
        return value


def write_summary(run_dir: Path, summary: dict, *, exclusive: bool = False) -> Optional[Path]:
    """summary.json, written whole or not at all; `exclusive`: never replace an existing one (None
    when there was)."""
    text = json.dumps(summary, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    return write_atomic(Path(run_dir) / "summary.json", text, exclusive=exclusive)


def load_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
