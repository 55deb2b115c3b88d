"""history with real runs: concurrent writers and processes, SIGKILL, a corrupt or newer database
under a run, --no-history and --history, and the `sse-perf history` sub-command over three demo
runs. The database on its own: tests/unit/test_history.py."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from history_rows import history_record, run_section
from sse_perf_tool.cli import main
from sse_perf_tool.history import SCHEMA_VERSION, History

FAST_DEMO = "ttft_ms=5,itl_ms=1,tokens=8"  # the demo's own server, fast: these tests are about files, not latency


def _run_cli(args):
    return main([str(a) for a in args])


def test_two_writers_at_once_both_succeed(tmp_path):
    """Two runs writing the same database concurrently (WAL + busy timeout): nothing is lost."""
    path = str(tmp_path / "h.db")
    History(path).close()  # created and migrated once
    errors = []

    def writer(name):
        try:
            db = History(path)
            run_id = db.begin_run(tmp_path, run_section(name))
            for batch in range(20):
                db.add_records(run_id, [history_record(batch * 10 + i) for i in range(10)])
            db.finish_run(run_id, "completed", {"run": {}}, [])
            db.close()
        except Exception as exc:  # collected and asserted below: a lost write must fail the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    db = History(path)
    runs = db.list_runs()
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    assert all(db.count_records(r["id"]) == 200 for r in runs)


def test_two_processes_run_at_once_into_one_history(tmp_path):
    """Two real sse-perf processes, one history.db: both runs recorded completely. (Started together,
    each runs for 1 s after its start-up: they write the database at the same time.)"""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", FAST_DEMO, "--threads", "4",
           "--duration", "1", "--quiet", "--output-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd + ["--model-name", f"p{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, text=True) for i in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "warning" not in err
    db = History(str(tmp_path / "history.db"))
    runs = db.list_runs()
    assert sorted(r["model_name"] for r in runs) == ["p0", "p1"]
    for run in runs:
        assert run["status"] == "completed"
        folder = Path(run["run_dir"])
        lines = (folder / "records.jsonl").read_text().splitlines()
        assert db.count_records(run["id"]) == len(lines) == run["requests_total"]


def test_a_run_killed_with_sigkill_keeps_its_finished_requests(tmp_path):
    """SIGKILL mid-run: no chance to clean up. The requests written in batches are in the database,
    and the run is not `completed` (it reads as `killed` once its process is gone)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", FAST_DEMO, "--threads",
                             "8", "--duration", "60", "--output-dir", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    path = tmp_path / "history.db"
    stored = 0
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stored < 10:
            time.sleep(0.3)
            if path.is_file():
                try:
                    with sqlite3.connect(path) as con:
                        stored = con.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0  # tables not created yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stored >= 10
    db = History(str(path))
    (run,) = db.list_runs()
    assert run["status"] == "killed"
    assert run["summary"] is None
    assert db.count_records(run["id"]) >= stored
    records = list(db.records(run["id"]))
    assert all(r["ok"] for r in records) and len({r["request_id"] for r in records}) == len(records)


# -- faults: the run goes on, exit code unchanged -----------------------------------------

def _demo_run(tmp_path, *extra):
    return _run_cli(["--demo", "--demo-mock", FAST_DEMO, "--threads", "2", "--requests", "4", "--quiet",
                     "--output-dir", tmp_path, *extra])


def test_a_corrupt_database_warns_and_the_run_still_writes_everything(tmp_path, capsys):
    (tmp_path / "history.db").write_bytes(b"this is not a database at all" * 100)
    assert _demo_run(tmp_path) == 0
    err = capsys.readouterr().err
    assert "corrupt" in err and "not recorded in the history" in err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()


def test_a_database_from_a_newer_schema_is_left_alone(tmp_path, capsys):
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    assert _demo_run(tmp_path) == 0
    assert "newer than this sse-perf" in capsys.readouterr().err
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
        assert con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] == 0


def test_no_history_writes_no_database(tmp_path):
    assert _demo_run(tmp_path, "--no-history") == 0
    assert not (tmp_path / "history.db").exists()


def test_history_path_option_moves_the_database(tmp_path):
    target = tmp_path / "elsewhere" / "runs.db"
    assert _demo_run(tmp_path, "--history", target) == 0
    assert target.is_file() and not (tmp_path / "history.db").exists()
    assert History(str(target)).list_runs()[0]["status"] == "completed"


# -- the sub-command -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for threads, name in ((1, "small"), (2, "medium"), (4, "qwen-large")):
        assert main(["--demo", "--demo-mock", FAST_DEMO, "--threads", str(threads), "--requests", str(threads * 2), "--quiet",
                     "--output-dir", str(out), "--model-name", name]) == 0
    return out


def test_history_lists_runs_newest_first(three_runs, capsys):
    capsys.readouterr()
    assert main(["history", "--output-dir", str(three_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["id", "when"]
    assert [line.split()[0] for line in lines[1:4]] == ["3", "2", "1"]
    assert "qwen-large" in lines[1] and "completed" in lines[1] and "4 thr" in lines[1]
    assert lines[4].startswith("left out to fit 80 columns: ") and max(map(len, lines)) <= 80
    assert main(["history", "--output-dir", str(three_runs), "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert len(wide) == 4 and "flavour" in wide[0] and "dify-chat" in wide[1]


def test_history_json_has_the_contract_fields(three_runs, capsys):
    capsys.readouterr()
    assert main(["history", "--output-dir", str(three_runs), "--json", "--model", "QWEN"]) == 0
    body = json.loads(capsys.readouterr().out)
    (run,) = body["runs"]
    assert run["id"] == 3 and run["model_name"] == "qwen-large" and run["status"] == "completed"
    for key in ("started_at", "api", "threads", "duration_s", "requests_per_s", "output_tokens_per_s",
                "ttft_p95_ms", "tpot_p95_ms", "success_pct"):
        assert key in run
    assert run["requests_total"] == 8 and run["success_pct"] == 100.0


def test_history_show_prints_the_summary(three_runs, capsys):
    capsys.readouterr()
    assert main(["history", "show", "2", "--output-dir", str(three_runs)]) == 0
    out = capsys.readouterr().out
    assert "run #2" in out and "requests stored: 4" in out and "== Summary ==" in out and "TTFT" in out


def test_unknown_run_id_exits_2_naming_the_closest_ids(three_runs, capsys):
    capsys.readouterr()
    assert main(["history", "show", "7", "--output-dir", str(three_runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown run id '7'" in err and "closest known: 1, 2, 3" in err
    assert main(["history", "export", "x", "--output-dir", str(three_runs)]) == 2


def test_export_csv_and_json_hold_every_record(three_runs, tmp_path, capsys):
    csv_path, json_path = tmp_path / "r.csv", tmp_path / "r.json"
    assert main(["history", "export", "3", "--output-dir", str(three_runs), "-o", str(csv_path)]) == 0
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("request_id,thread_id,query") and len(rows) == 1 + 8
    assert main(["history", "export", "3", "--format", "json", "--output-dir", str(three_runs),
                 "-o", str(json_path)]) == 0
    body = json.loads(json_path.read_text())
    assert body["run"]["id"] == 3 and len(body["records"]) == 8 and body["summary"]["requests"]["total"] == 8


def test_import_adds_a_run_folder_made_elsewhere(three_runs, tmp_path, capsys):
    folder = next(p for p in three_runs.iterdir() if p.name.endswith("-medium"))
    target = tmp_path / "other.db"
    assert main(["history", "import", str(folder), "--history", str(target)]) == 0
    db = History(str(target))
    (run,) = db.list_runs()
    assert run["model_name"] == "medium" and run["status"] == "completed" and db.count_records(run["id"]) == 4
    assert db.timeseries(run["id"])  # the per-second rows came along
    assert main(["history", "import", str(tmp_path), "--history", str(target)]) == 2  # not a run folder


def test_a_bad_since_is_refused(three_runs, capsys):
    assert main(["history", "--output-dir", str(three_runs), "--since", "yesterday-ish"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["history", "--output-dir", str(three_runs), "--since", "1d", "--json"]) == 0


def test_importing_the_same_folder_twice_does_not_make_a_duplicate(tmp_path, capsys):
    from sse_perf_tool import cli as entry

    out = tmp_path / "runs"
    assert entry.main(["--demo", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=4", "--requests", "3", "--quiet",
                       "--no-history", "--output-dir", str(out)]) == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    db = tmp_path / "h.db"
    assert entry.main(["history", "import", str(folder), "--history", str(db)]) == 0
    assert entry.main(["history", "import", str(folder), "--history", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "as run #1" in printed and "already in the history as run #1: not imported again" in printed
    assert entry.main(["history", "--history", str(db), "--json"]) == 0
    import json as _json

    assert len(_json.loads(capsys.readouterr().out)["runs"]) == 1


def _open_at(path: str, start: float, results) -> None:
    while time.time() < start:  # bounded: start is a fraction of a second away
        pass
    try:
        History(path).close()
        results.put("ok")
    except Exception as exc:  # sent back and asserted: a refused open must fail the test
        results.put(repr(exc))


def test_two_processes_opening_a_new_database_at_the_same_instant_both_get_it(tmp_path):
    """SQLite answers the second of two connections switching a new database to WAL at the same
    instant with "database is locked" at once, ignoring the busy timeout (two runs started together
    lost one run's history about a third of the time); History asks again until its timeout."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    outcomes = []
    for attempt in range(6):  # bounded; each attempt raced and failed about 40 % of the time before
        path = str(tmp_path / f"new-{attempt}.db")
        start = time.time() + 1.0  # after both have started (spawn)
        procs = [context.Process(target=_open_at, args=(path, start, results)) for _ in range(2)]
        for proc in procs:
            proc.start()
        outcomes += [results.get(timeout=30) for _ in procs]
        for proc in procs:
            proc.join(10)
    assert outcomes == ["ok"] * 12
