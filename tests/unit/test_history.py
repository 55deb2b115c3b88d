"""history: the SQLite database on its own (round trip, listing, a held lock, the recorder turning
itself off, migration, newer record fields) and the `sse-perf history` sub-command where it needs
no run (no database, a broken import, a bad --limit). Real SQLite files in tmp folders; runs,
concurrent writers and SIGKILL are in tests/integration/test_history.py."""

import sqlite3

import pytest

from history_rows import history_record, run_section
from sse_perf_tool.cli import main
from sse_perf_tool.history import MIGRATIONS, SCHEMA_VERSION, History, HistoryError, HistoryRecorder


# -- the database --------------------------------------------------------------------------

def test_a_run_round_trips_with_its_records_and_time_series(tmp_path):
    db = History(str(tmp_path / "h.db"))
    run_id = db.begin_run(tmp_path, run_section())
    db.add_records(run_id, [history_record(1), history_record(2, ok=False)])
    summary = {"run": {"ended_at": 5.0, "duration_s": 4.0}, "requests": {"total": 2, "success_rate_pct": 50.0},
               "throughput": {"requests_per_s": 0.25}, "ttft_ms": {"p95": 99.0}, "slo": [{"met": False}]}
    db.finish_run(run_id, "completed", summary, [{"second": 0, "requests_ok": 1}, {"second": 1, "requests_ok": 0}])
    run = db.get_run(run_id)
    assert run["status"] == "completed" and run["summary"] == summary
    assert run["success_pct"] == 50.0 and run["ttft_p95_ms"] == 99.0 and run["requests_per_s"] == 0.25
    assert run["options"] == {"api_key": "app-…9f3a"}
    records = list(db.records(run_id))
    assert [r["request_id"] for r in records] == [1, 2]
    assert records[0]["itl_ms"] == [1.0, 2.5] and records[0]["ok"] is True and records[1]["ok"] is False
    assert [row["second"] for row in db.timeseries(run_id)] == [0, 1]
    assert db.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_list_filters_by_model_time_and_limit_newest_first(tmp_path):
    db = History(str(tmp_path / "h.db"))
    ids = [db.begin_run(tmp_path, dict(run_section(m), started_at=t)) for m, t in
           (("qwen-7b", 1000.0), ("llama", 2000.0), ("Qwen-14b", 3000.0))]
    assert [r["id"] for r in db.list_runs()] == ids[::-1]
    assert [r["model_name"] for r in db.list_runs(model="qwen")] == ["Qwen-14b", "qwen-7b"]
    assert [r["id"] for r in db.list_runs(since=1500.0)] == [ids[2], ids[1]]
    assert len(db.list_runs(limit=1)) == 1


def test_a_lock_held_past_the_busy_timeout_is_a_clear_history_error(tmp_path):
    path = str(tmp_path / "h.db")
    History(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        db = History(path, timeout_s=0.2)
        with pytest.raises(HistoryError, match="locked"):
            db.begin_run(tmp_path, run_section())
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_recorder_turns_itself_off_after_a_failure_and_says_why(tmp_path):
    path = str(tmp_path / "h.db")
    db = History(path, timeout_s=0.2)
    run_id = db.begin_run(tmp_path, run_section())
    recorder = HistoryRecorder(db, run_id, batch_size=2)
    recorder.add(history_record(1))
    recorder.add(history_record(2))  # flushed
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        recorder.add(history_record(3))
        recorder.add(history_record(4))  # this flush meets the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert recorder.written == 2 and recorder.failure and "locked" in recorder.failure
    recorder.add(history_record(5))
    recorder.flush()
    assert db.count_records(run_id) == 2


# -- migration -----------------------------------------------------------------------------

def test_a_schema_1_database_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[1](con)
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO runs (started_at, status, model_name, requests_per_s) VALUES (1.0, 'completed', 'old', 2.5)")
    con.execute("INSERT INTO requests (run_id, request_id, ok) VALUES (1, 1, 1)")
    con.close()
    db = History(str(path))
    assert db.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (run,) = db.list_runs()
    assert run["model_name"] == "old" and run["requests_per_s"] == 2.5 and run["status"] == "completed"
    assert db.count_records(1) == 1 and db.timeseries(1) == []
    new_id = db.begin_run(tmp_path, run_section())  # the new columns work
    assert db.get_run(new_id)["host"]


def test_history_without_a_database_says_so(tmp_path, capsys):
    assert main(["history", "--output-dir", str(tmp_path)]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out
    assert main(["history", "show", "1", "--output-dir", str(tmp_path)]) == 2


def test_import_refuses_a_broken_summary_and_leaves_no_half_run(tmp_path, capsys):
    target = tmp_path / "h.db"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "records.jsonl").write_text('{"request_id": 1, "ok": true}\n')
    for body in ("{not json", "[1, 2]"):
        (folder / "summary.json").write_text(body)
        assert main(["history", "import", str(folder), "--history", str(target)]) == 2
    (folder / "summary.json").write_text('{"run": {"started_at": 1.0}}')
    (folder / "records.jsonl").write_text('{"request_id": 1, "ok": true}\n[1, 2]\n')
    assert main(["history", "import", str(folder), "--history", str(target)]) == 2
    assert History(str(target)).list_runs() == []


def test_record_fields_newer_than_the_database_become_columns(tmp_path):
    path = tmp_path / "h.db"
    History(str(path)).close()
    with sqlite3.connect(path) as con:  # an older requests table, without the newest field
        con.execute("ALTER TABLE requests DROP COLUMN warmup")
    db = History(str(path))
    run_id = db.begin_run(tmp_path, run_section())
    db.add_records(run_id, [dict(history_record(1), warmup=True)])
    assert next(db.records(run_id))["warmup"] is True


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_history_limit_must_be_at_least_one(tmp_path, capsys, limit):
    """`--limit 0` and negative limits once listed every run; they are usage errors (exit 2)."""
    code = main(["history", "--history", str(tmp_path / "h.db"), "--limit", limit])
    err = capsys.readouterr().err
    assert code == 2 and "--limit" in err and "at least 1" in err and len(err.strip().splitlines()) == 1


# -- a run left `running` by a process that is gone ------------------------------------------

def _dead_pid() -> int:
    """The pid of a real process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def test_a_running_row_whose_process_is_gone_reads_as_killed(tmp_path, capsys):
    import json
    import os

    path = tmp_path / "h.db"
    db = History(str(path))
    gone = db.begin_run(tmp_path / "a", run_section("gone"))
    alive = db.begin_run(tmp_path / "b", run_section("alive"))  # this process: still running
    db.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), gone))
    assert db.get_run(gone)["status"] == "killed" and db.get_run(alive)["status"] == "running"
    assert db.get_run(alive)["pid"] == os.getpid()
    # computed when read: the database still says running
    assert db.db.execute("SELECT status FROM runs WHERE id = ?", (gone,)).fetchone()[0] == "running"
    db.close()
    assert main(["history", "--json", "--history", str(path)]) == 0
    listed = {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)["runs"]}
    assert listed == {gone: "killed", alive: "running"}
    assert main(["history", "--history", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in table[1:3]] == ["running", "killed"]


def test_a_stale_heartbeat_reads_as_killed_on_any_machine(tmp_path):
    """Another host's run (its pid means nothing here), or a pid reused since: the heartbeat decides."""
    import time

    from sse_perf_tool.history import STALE_S

    db = History(str(tmp_path / "h.db"))
    run_id = db.begin_run(tmp_path, run_section())
    db.db.execute("UPDATE runs SET host = 'elsewhere', heartbeat_at = ? WHERE id = ?", (time.time() - 5, run_id))
    assert db.get_run(run_id)["status"] == "running"
    db.db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - STALE_S - 1, run_id))
    assert db.get_run(run_id)["status"] == "killed"
    db.db.execute("UPDATE runs SET heartbeat_at = NULL WHERE id = ?", (run_id,))  # an older sse-perf's row
    assert db.get_run(run_id)["status"] == "running"


def test_the_recorder_writes_a_heartbeat_every_few_seconds(tmp_path):
    from sse_perf_tool.history import HEARTBEAT_S

    db = History(str(tmp_path / "h.db"))
    run_id = db.begin_run(tmp_path, run_section())
    now = [1000.0]
    recorder = HistoryRecorder(db, run_id, clock=lambda: now[0])
    beat = lambda: db.db.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (run_id,)).fetchone()[0]  # noqa: E731
    first = beat()
    assert first is not None  # begin_run wrote the first one
    now[0] += HEARTBEAT_S / 2
    recorder.tick()
    assert beat() == first
    now[0] += HEARTBEAT_S
    recorder.tick()
    assert beat() == now[0]
    db.finish_run(run_id, "completed", {"run": {}})
    now[0] += HEARTBEAT_S
    recorder.tick()  # a finished run's row is left alone
    assert beat() == now[0] - HEARTBEAT_S and recorder.failure is None


def test_a_database_without_the_heartbeat_column_gains_it_and_keeps_its_version(tmp_path):
    path = tmp_path / "h.db"
    History(str(path)).close()
    with sqlite3.connect(path) as con:
        con.execute("ALTER TABLE runs DROP COLUMN heartbeat_at")
        con.execute("INSERT INTO runs (started_at, status, pid, host) VALUES (1.0, 'running', 1, 'elsewhere')")
    db = History(str(path))
    assert db.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.get_run(1)["status"] == "running" and db.get_run(1)["heartbeat_at"] is None


def test_a_rebuilt_summary_imports_as_killed(tmp_path):
    from sse_perf_tool.history import status_of

    assert status_of({"run": {"incomplete": True, "interrupted": True}}) == "killed"
    assert status_of({"run": {"interrupted": True}}) == "interrupted"


def test_importing_a_killed_runs_folder_completes_its_own_row(tmp_path):
    """The folder of a run this database saw die: its row (same folder, no summary) gets the summary
    and every record of records.jsonl, and keeps its id; no second row."""
    import json

    folder = tmp_path / "run"
    folder.mkdir()
    db = History(str(tmp_path / "h.db"))
    other = db.begin_run(tmp_path / "other", run_section("other"))
    run_id = db.begin_run(folder, run_section("killed"))
    db.add_records(run_id, [history_record(1)])  # the last batch never made it
    db.db.execute("UPDATE runs SET pid = ? WHERE id IN (?, ?)", (_dead_pid(), run_id, other))
    (folder / "records.jsonl").write_text("".join(json.dumps(history_record(i)) + "\n" for i in (1, 2, 3)))
    summary = {"run": {"incomplete": True, "interrupted": True, "started_at": 1.0, "ended_at": 9.0},
               "requests": {"total": 3, "ok": 3, "success_rate_pct": 100.0}}
    assert db.import_run_dir(folder, summary, [{"second": 0, "requests_ok": 3}]) == run_id
    run = db.get_run(run_id)
    assert run["status"] == "killed" and run["summary"] == summary and run["pid"] is None
    assert [r["request_id"] for r in db.records(run_id)] == [1, 2, 3] and db.timeseries(run_id) == [
        {"second": 0, "requests_ok": 3}]
    assert len(db.list_runs()) == 2 and db.get_run(other)["summary"] is None
    # once completed, the folder imports as a new run like any other
    assert db.import_run_dir(folder, summary, []) not in (run_id, other)


def test_a_process_that_exited_but_was_not_reaped_is_gone_too(tmp_path):
    """A zombie (dead, its parent has not waited for it; pid 1 in a container may never) still
    answers kill(pid, 0): /proc says it is dead."""
    import subprocess
    import sys
    from pathlib import Path

    from waiting import wait_until

    if not Path("/proc/self/stat").is_file():
        pytest.skip("no /proc here")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat")
        assert wait_until(lambda: stat.read_bytes().rsplit(b")", 1)[1][1:2] == b"Z", timeout_s=10)
        db = History(str(tmp_path / "h.db"))
        run_id = db.begin_run(tmp_path, run_section())
        db.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (proc.pid, run_id))
        assert db.get_run(run_id)["status"] == "killed"
    finally:
        proc.wait(10)
