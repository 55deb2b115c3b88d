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


def assert_refused(cli, server, out_dir: Path, extra: list, needle: str) -> None:
    """Bad usage: exit 2, one line on stderr naming the problem, no request sent, no run folder."""
    code, out, err = cli(["--base-url", server.base_url, "--no-history", "--output-dir", out_dir, *extra])
    assert code == 2, (out, err)
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert server.stats.snapshot()["requests"] == 0
    assert not out_dir.exists() or not any(p.is_dir() for p in out_dir.iterdir())
