"""A finished run's folder, loaded for the assertions of the CLI tests (test_cli_load.py,
test_worker_pool.py): summary.json, records.jsonl sorted by request id, timeseries.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

RUN_FILES = ("records.jsonl", "timeseries.csv", "summary.json", "requests.csv", "report.html")


class Run:
    """One run folder, loaded: summary.json, records.jsonl (sorted by request id), timeseries.csv."""

    def __init__(self, path: Path):
        self.path = path
        self.summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        lines = (path / "records.jsonl").read_text(encoding="utf-8").splitlines()
        self.records = sorted((json.loads(line) for line in lines if line.strip()), key=lambda r: r["request_id"])
        with open(path / "timeseries.csv", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            self.ts_columns = list(reader.fieldnames or ())
            self.timeseries = list(reader)


def only_run(parent: Path) -> Run:
    dirs = sorted(p for p in Path(parent).iterdir() if p.is_dir())
    assert len(dirs) == 1, dirs
    return Run(dirs[0])
