"""A run killed with SIGKILL (a real `python -m sse_perf_tool --demo` process, killed once its first
records are on disk) is still reported, compared and imported: its summary and time series are
rebuilt from records.jsonl, marked incomplete, and its history row reads `killed`. The rebuild on
its own (scripted records): tests/unit/test_rebuild.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sse_perf_tool.history import History
from waiting import wait_until

DEMO = ["--demo", "--demo-mock", "ttft_ms=50,itl_ms=5,tokens=20", "--threads", "2"]
REBUILT_LINE = "rebuilt summary and time series from records.jsonl (the run did not finish)"


def _start(base: Path, duration_s: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sse_perf_tool", *DEMO, "--duration", str(duration_s),
                             "--output-dir", str(base), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"), text=True)


def _folder(base: Path):
    folders = [p for p in base.iterdir() if p.is_dir()]
    return folders[0] if len(folders) == 1 else None


def _finished_lines(folder: Path) -> int:
    """Whole lines of records.jsonl (a line being written has no newline yet)."""
    try:
        return (folder / "records.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def _wait_for_records(proc: subprocess.Popen, base: Path, count: int) -> Path:
    assert wait_until(lambda: proc.poll() is not None or (_folder(base) is not None
                                                         and _finished_lines(_folder(base)) >= count),
                      timeout_s=60, poll_s=0.05), "no records within 60 s"
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
    return _folder(base)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)  # reaped: its pid is gone
    proc.stderr.close()


@dataclass
class Killed:
    base: Path  # the output folder: the run folder and history.db
    folder: Path
    records: list

    @property
    def db(self) -> Path:
        return self.base / "history.db"


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Killed:
    """One demo run of 5 s on 2 threads (about 13 requests/s), killed with SIGKILL once 20 records
    were flushed (some 1.5 s in: more than one second of rows).
    Tests that change the folder work on copies (`fresh`, `killed_copy`)."""
    base = tmp_path_factory.mktemp("killed")
    proc = _start(base, 5)
    try:
        folder = _wait_for_records(proc, base, 20)
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    return Killed(base, folder, records)


@pytest.fixture
def fresh(killed, tmp_path) -> Path:
    """The killed run's folder copied, without a history database beside it."""
    target = tmp_path / killed.folder.name
    shutil.copytree(killed.folder, target)
    return target


@pytest.fixture
def killed_copy(killed, tmp_path) -> Killed:
    """The killed run's output folder (run folder and history.db) copied, its row pointed at the copy."""
    base = tmp_path / "out"
    shutil.copytree(killed.base, base)
    copy = Killed(base, base / killed.folder.name, killed.records)
    with sqlite3.connect(copy.db) as con:
        con.execute("UPDATE runs SET run_dir = ?", (str(copy.folder.resolve()),))
    return copy


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- what the kill leaves ------------------------------------------------------------------------

def test_the_kill_leaves_whole_records_and_a_consistent_database_but_no_summary(killed):
    names = {p.name for p in killed.folder.iterdir()}
    assert "records.jsonl" in names and "summary.json" not in names and "timeseries.csv" not in names
    assert len(killed.records) >= 20 and all(isinstance(r, dict) for r in killed.records)
    with sqlite3.connect(killed.db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]  # as the process left it


def test_history_shows_the_killed_run_as_killed(killed, cli):
    code, out, _ = cli(["history", "--json", "--history", killed.db])
    assert code == 0
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "killed" and run["run_dir"] == str(killed.folder.resolve())
    code, out, _ = cli(["history", "--history", killed.db])
    assert code == 0 and out.splitlines()[1].split()[-1] == "killed"
    code, out, _ = cli(["history", "show", "1", "--history", killed.db])
    assert code == 0 and "status: killed" in out and f"sse-perf report {killed.folder.resolve()}" in out


# -- sse-perf report -----------------------------------------------------------------------------

def test_report_rebuilds_the_summary_and_time_series_and_renders(fresh, killed, cli):
    code, out, err = cli(["report", fresh])
    assert code == 0, err
    assert err.strip() == f"sse-perf report: {REBUILT_LINE}"
    assert out.strip() == f"report: {fresh / 'report.html'}"
    records = killed.records
    ok = [r for r in records if r["ok"]]
    summary = json.loads((fresh / "summary.json").read_text(encoding="utf-8"))
    run = summary["run"]
    assert run["incomplete"] is True and run["interrupted"] is True
    assert run["incomplete_reason"].startswith("rebuilt from records.jsonl: the run did not finish (killed or crashed)")
    assert summary["requests"]["total"] == len(records) and summary["requests"]["ok"] == len(ok)
    assert summary["requests"]["failed"] == len(records) - len(ok) and summary["requests"]["warmup"] == 0
    assert summary["throughput"]["output_tokens_total"] == sum(r["output_tokens"] for r in ok)
    assert summary["ttft_ms"]["count"] == len(ok)
    assert summary["ttft_ms"]["max"] == max(r["ttft_ms"] for r in ok)
    assert run["started_at"] == min(r["started_at"] for r in records)  # no history beside this copy
    assert run["ended_at"] == pytest.approx(max(r["started_at"] + r["total_ms"] / 1000 for r in records))
    assert run["api"] is None and run["threads"] == 2
    rows = _read_csv(fresh / "timeseries.csv")
    assert sum(int(r["requests_started"]) for r in rows) == len(records)
    assert sum(int(r["requests_ok"]) for r in rows) == len(ok)
    assert sum(int(r["output_tokens"]) for r in rows) == summary["throughput"]["output_tokens_total"]
    assert len(rows) >= 2 and {r["phase"] for r in rows} == {"measure"}
    assert int(rows[0]["active_threads"]) == 2  # in flight at the end of second 0: both threads' requests
    html = (fresh / "report.html").read_text(encoding="utf-8")
    assert 'id="incomplete"' in html and 'id="interrupted-badge"' in html and "killed or crashed" in html

    # again: the rebuilt files are the folder's now, read as they are, never rewritten
    before = {name: (fresh / name).read_bytes() for name in ("summary.json", "timeseries.csv")}
    code, _, err = cli(["report", fresh, "--lang", "zh", "-o", fresh / "zh.html"])
    assert code == 0 and err == ""
    assert {name: (fresh / name).read_bytes() for name in before} == before
    assert 'id="incomplete"' in (fresh / "zh.html").read_text(encoding="utf-8")


def test_report_takes_the_run_section_from_the_history_row(killed_copy, cli):
    code, _, err = cli(["report", killed_copy.folder])
    assert code == 0, err
    run = json.loads((killed_copy.folder / "summary.json").read_text(encoding="utf-8"))["run"]
    assert run["api"] == "dify-chat" and run["base_url"].startswith("http://127.0.0.1:")
    assert run["config"]["threads"] == 2 and run["load"]["model"] == "closed" and run["incomplete"] is True
    with sqlite3.connect(killed_copy.db) as con:
        started = con.execute("SELECT started_at FROM runs").fetchone()[0]
    assert run["started_at"] == started <= min(r["started_at"] for r in killed_copy.records)


# -- sse-perf compare ----------------------------------------------------------------------------

def test_compare_takes_the_killed_folder(fresh, killed, tmp_path, cli):
    other = tmp_path / "other" / fresh.name
    shutil.copytree(fresh, other)
    code, out, err = cli(["compare", fresh, other, "--json", "--html", tmp_path / "compare.html"])
    assert code == 0, err
    comparison = json.loads(out)  # the rebuild's lines went to stderr
    assert [r["run_dir"] for r in comparison["runs"]] == [str(fresh), str(other)]
    assert err.count(REBUILT_LINE) == 2
    by_name = {m["name"]: m for m in comparison["metrics"]}
    summary = json.loads((fresh / "summary.json").read_text(encoding="utf-8"))
    assert by_name["requests_per_s"]["values"] == [summary["throughput"]["requests_per_s"]] * 2
    assert by_name["requests_per_s"]["verdict"] == [None, "same"]
    assert (fresh / "summary.json").is_file() and (tmp_path / "compare.html").is_file()
    code, out, err = cli(["compare", fresh, other, "--json"])  # the second time, nothing to rebuild
    assert code == 0 and REBUILT_LINE not in err


# -- sse-perf history import ---------------------------------------------------------------------

def test_history_import_completes_the_killed_runs_own_row(killed_copy, cli):
    code, out, err = cli(["history", "import", killed_copy.folder, "--history", killed_copy.db])
    assert code == 0, err
    assert REBUILT_LINE in err
    assert out.strip() == (f"imported {killed_copy.folder} as run #1 (the killed run's own row, its summary and "
                           "requests filled in; its status stays killed)")
    code, out, _ = cli(["history", "--json", "--history", killed_copy.db])
    (run,) = json.loads(out)["runs"]
    records = killed_copy.records
    assert run["status"] == "killed" and run["requests_total"] == len(records) and run["requests_per_s"] > 0
    db = History(str(killed_copy.db))
    try:
        assert db.count_records(1) == len(records)  # every line of records.jsonl, the last batch too
        assert len(db.timeseries(1)) >= 1
        assert db.get_run(1)["summary"]["run"]["incomplete"] is True
    finally:
        db.close()
    code, out, _ = cli(["history", "show", "1", "--history", killed_copy.db])
    assert code == 0 and "incomplete: rebuilt from records.jsonl" in out


def test_history_import_into_another_database_adds_a_killed_run(fresh, killed, tmp_path, cli):
    code, out, err = cli(["history", "import", fresh, "--history", tmp_path / "other.db"])
    assert code == 0, err
    assert out.strip() == f"imported {fresh} as run #1"
    code, out, _ = cli(["history", "--json", "--history", tmp_path / "other.db"])
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "killed" and run["requests_total"] == len(killed.records)


# -- a run that is still going ---------------------------------------------------------------------

def test_a_run_still_going_is_reported_so_far_and_its_folder_left_alone(tmp_path, cli):
    """Its history row says running and its process is alive: the report shows the requests so far,
    nothing is written into the folder but report.html, and import waits for the run to end."""
    proc = _start(tmp_path, 60)
    try:
        folder = _wait_for_records(proc, tmp_path, 3)
        code, out, err = cli(["report", folder, "-o", tmp_path / "so-far.html"])
        assert code == 0, err
        assert f"the run is still running (pid {proc.pid} on " in err
        assert "summary.json and timeseries.csv are left to the run" in err
        assert not (folder / "summary.json").exists() and not (folder / "timeseries.csv").exists()
        html = (tmp_path / "so-far.html").read_text(encoding="utf-8")
        assert 'id="incomplete"' in html and "the run is still running" in html
        code, _, err = cli(["history", "import", folder, "--history", tmp_path / "history.db"])
        assert code == 2 and "still running" in err
    finally:
        if proc.poll() is None:
            _kill(proc)
    code, out, err = cli(["report", folder])  # killed now: rebuilt and written
    assert code == 0 and REBUILT_LINE in err and (folder / "summary.json").is_file()


# -- the same figures as the run's own -------------------------------------------------------------

def test_a_rebuilt_summary_has_the_figures_the_run_itself_wrote(tmp_path, cli):
    """A run that finished, its summary.json and timeseries.csv taken away: the rebuild from its
    records gives the same counts and distributions (the same code over the same records), and
    the same rates up to the clock they are timed by."""
    from sse_perf_tool.rebuild import rebuild_folder
    from sse_perf_tool.stats import DIST_FIELDS

    code, _, err = cli([*DEMO, "--requests", "12", "--output-dir", tmp_path, "--quiet", "--no-history"])
    assert code == 0, err
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    own = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    own_rows = _read_csv(folder / "timeseries.csv")
    (folder / "summary.json").rename(tmp_path / "own-summary.json")
    (folder / "timeseries.csv").rename(tmp_path / "own-timeseries.csv")
    rebuilt = rebuild_folder(folder, None)
    summary = rebuilt.summary
    for key in ("requests", "errors", "errors_by_status", "goodput", *DIST_FIELDS):
        if key == "goodput":
            assert summary[key]["pct"] == own[key]["pct"]
            continue
        assert summary[key] == own[key], key
    assert summary["tokens"]["sources"] == own["tokens"]["sources"]
    assert summary["run"]["duration_s"] == pytest.approx(own["run"]["duration_s"], rel=1e-3)
    for key in ("requests_per_s", "output_tokens_per_s"):
        assert summary["throughput"][key] == pytest.approx(own["throughput"][key], rel=1e-3)
    rows = _read_csv(folder / "timeseries.csv")
    for column in ("requests_started", "requests_ok", "requests_failed", "output_tokens"):
        assert sum(int(r[column]) for r in rows) == sum(int(r[column]) for r in own_rows), column
