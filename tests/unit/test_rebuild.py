"""rebuild: summary.json and timeseries.csv of a run that did not finish, from scripted records.jsonl
lines in a tmp folder (what the records tell: counts, seconds, tokens, phases, sweeps; the history
row's options; what is never overwritten; a run still going). A real killed run:
tests/integration/test_killed_runs.py."""

from __future__ import annotations

import json

import pytest

from sse_perf_tool import rebuild as rb
from sse_perf_tool.rebuild import REASON, RebuildError, needs_rebuild, rebuild_folder
from sse_perf_tool.storage import load_summary, load_timeseries

T0 = 1_800_000_000.0


def rec(request_id, sent_s, total_ms=400.0, ok=True, ttft_ms=100.0, gaps=(100.0, 100.0, 100.0), tokens=4,
        thread=1, **extra):
    """One records.jsonl object sent `sent_s` after T0; its events at ttft then each gap."""
    return {"request_id": request_id, "thread_id": thread, "query": "q", "dataset": None, "started_at": T0 + sent_s,
            "ok": ok, "error_kind": None if ok else "timeout", "error": None, "http_status": 200,
            "ttfb_ms": ttft_ms, "ttft_ms": ttft_ms if ok else None, "ttfo_ms": ttft_ms if ok else None,
            "e2e_ms": ttft_ms + sum(gaps) if ok else None, "total_ms": total_ms, "itl_ms": list(gaps) if ok else [],
            "tpot_ms": sum(gaps) / (tokens - 1) if ok and tokens > 1 else None, "chunks": len(gaps) + 1 if ok else 0,
            "output_tokens": tokens if ok else 0, "token_source": "usage", "output_chars": 10, "queue_ms": 0.0,
            "level": None, "warmup": False, **extra}


def folder_with(tmp_path, records, name="20270115-080000-m"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def test_the_summary_counts_what_the_records_hold_and_says_it_is_incomplete(tmp_path):
    records = [rec(1, 0.0), rec(2, 0.2, thread=2), rec(3, 0.5, ok=False, total_ms=200.0), rec(4, 1.1)]
    folder = folder_with(tmp_path, records)
    assert needs_rebuild(folder)
    out = rebuild_folder(folder, None)
    assert out.written == ("summary.json", "timeseries.csv") and out.rebuilt == out.written
    assert out.line() == "rebuilt summary and time series from records.jsonl (the run did not finish)"
    summary = load_summary(folder)
    assert summary == out.summary
    run = summary["run"]
    assert run["incomplete"] is True and run["incomplete_reason"] == REASON and run["interrupted"] is True
    assert run["started_at"] == T0 and run["ended_at"] == pytest.approx(T0 + 1.5)
    assert run["duration_s"] == pytest.approx(1.5)  # first send to last finish
    assert run["api"] is None and run["base_url"] is None and run["config"] == {} and run["threads"] == 2
    assert summary["requests"] == {"total": 4, "ok": 3, "failed": 1, "success_rate_pct": 75.0, "empty": 0,
                                   "paused": 0, "cancelled": 0, "warmup": 0, "not_sent": 0}
    assert summary["errors"] == {"timeout": 1} and summary["client"] is None
    assert summary["throughput"]["output_tokens_total"] == 12
    assert summary["throughput"]["requests_per_s"] == pytest.approx(4 / 1.5)  # every finished request
    assert summary["throughput"]["ok_requests_per_s"] == pytest.approx(3 / 1.5)
    assert summary["ttft_ms"]["count"] == 3 and summary["e2e_ms"]["p50"] == 400.0
    assert not needs_rebuild(folder) and rebuild_folder(folder, None) is None


def test_per_second_rows_from_the_records_instants(tmp_path):
    """Second 0 = the first send. Tokens go to the seconds their events arrived in (ttft, then the
    gaps); a record whose gaps do not add up to its chunks has its tokens in its end second."""
    records = [
        rec(1, 0.0, total_ms=1500.0, gaps=(500.0, 500.0, 200.0)),  # events at 0.1, 0.6, 1.1, 1.3 s
        rec(2, 0.5, total_ms=2000.0, itl_ms=None),  # its instants gone: its tokens at its end, 2.5 s
        rec(3, 1.2, ok=False, total_ms=100.0),
    ]
    folder = folder_with(tmp_path, records)
    rebuild_folder(folder, None)
    rows = load_timeseries(folder)
    assert [r["second"] for r in rows] == [0, 1, 2]
    assert [r["requests_started"] for r in rows] == [2, 1, 0]
    assert [r["requests_ok"] for r in rows] == [0, 1, 1] and [r["requests_failed"] for r in rows] == [0, 1, 0]
    assert [r["output_tokens"] for r in rows] == [2, 2, 4]
    assert [r["active_threads"] for r in rows] == [2, 1, 0]  # in flight at each second's end
    assert rows[1]["e2e_p50_ms"] == 1300.0 and rows[2]["ttft_p50_ms"] == 100.0  # the recorded latencies
    assert [r["success_rate_pct"] for r in rows] == [None, 50.0, 66.667]  # cumulative, 3 decimals in the file
    assert {r["phase"] for r in rows} == {"measure"} and {r["level"] for r in rows} == {None}


def test_warm_up_and_sweep_levels_come_from_the_records(tmp_path):
    records = [rec(1, 0.0, warmup=True, level=1), rec(2, 1.0, level=1), rec(3, 2.0, level=1),
               rec(4, 4.0, level=2, warmup=True), rec(5, 5.0, level=2), rec(6, 5.5, level=2, thread=2)]
    folder = folder_with(tmp_path, records)
    summary = rebuild_folder(folder, None).summary
    assert summary["requests"]["warmup"] == 2 and summary["requests"]["total"] == 4
    assert summary["sweep"]["kind"] == "threads" and [b["level"] for b in summary["levels"]] == [
        {"threads": 1}, {"threads": 2}]
    first, second = summary["levels"]
    assert (first["from_s"], first["warmup_to_s"], first["to_s"]) == (0.0, 1.0, pytest.approx(2.4))
    assert first["requests"]["total"] == 2 and second["requests"]["total"] == 2
    assert summary["run"]["duration_s"] == pytest.approx((2.4 - 1.0) + (5.9 - 5.0))  # the levels' windows
    rows = load_timeseries(folder)
    assert [(r["phase"], r["level"]) for r in rows] == [  # a level ends with its last request
        ("warmup", 1.0), ("measure", 1.0), ("cooldown", None), ("cooldown", None), ("warmup", 2.0), ("measure", 2.0)]


def test_an_open_loop_is_seen_in_the_queue_and_its_not_sent_is_unknown(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.0, queue_ms=3.0, level=2.5), rec(2, 0.4, level=2.5)])
    summary = rebuild_folder(folder, None).summary
    assert summary["run"]["load"]["model"] == "open" and summary["sweep"]["kind"] == "rate"
    assert summary["requests"]["not_sent"] is None and summary["levels"][0]["requests"]["not_sent"] is None


def test_the_history_row_gives_the_run_section_its_options_and_slos(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.5), rec(2, 0.7)])
    options = {"api": "openai-chat", "base_url": "http://h:8000/v1", "threads": 8, "ramp_up_s": 2.0,
               "model_name": "qwen", "rate": None, "sweep_rate": [], "sweep_threads": [], "processes": 1,
               "seed": 7, "warmup_s": 0.0, "warmup_requests": 0, "slo": "ttft_p95<50ms", "api_key": "sk-…ab12"}
    row = {"id": 3, "status": "killed", "started_at": T0, "api": "openai-chat", "base_url": "http://h:8000/v1",
           "threads": 8, "model_name": "qwen", "options": options, "summary": None, "pid": 1, "host": "h"}
    summary = rebuild_folder(folder, row).summary
    run = summary["run"]
    assert (run["api"], run["base_url"], run["threads"], run["ramp_up_s"], run["model_name"]) == (
        "openai-chat", "http://h:8000/v1", 8, 2.0, "qwen")
    assert run["config"] == options and run["load"]["seed"] == 7 and run["load"]["model"] == "closed"
    assert run["started_at"] == T0  # the run's own start: the rows' second 0 is the run's
    assert [r["requests_started"] for r in load_timeseries(folder)] == [2, 0]
    (verdict,) = summary["slo"]
    assert verdict["met"] is False and verdict["value"] == 100.0
    assert summary["goodput"]["pct"] == 0.0


def test_an_existing_summary_is_never_replaced_and_a_missing_series_is_rebuilt(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.0), rec(2, 1.0)])
    own = {"run": {"started_at": T0 - 2.0, "interrupted": False}, "requests": {"total": 2}}
    (folder / "summary.json").write_text(json.dumps(own), encoding="utf-8")
    out = rebuild_folder(folder, None)
    assert out.rebuilt == ("timeseries.csv",) and out.written == ("timeseries.csv",)
    assert out.line() == "rebuilt time series from records.jsonl (timeseries.csv was missing)"
    assert load_summary(folder) == own == out.summary
    assert [r["requests_started"] for r in load_timeseries(folder)] == [0, 0, 1, 1]  # from the run's own start


def test_a_file_that_appears_meanwhile_wins(tmp_path, monkeypatch):
    """A run finishing while the rebuild goes: its summary.json is kept and read."""
    folder = folder_with(tmp_path, [rec(1, 0.0)])
    theirs = {"run": {"interrupted": False}, "requests": {"total": 1}}
    real = rb._write

    def race(out, rows):
        (folder / "summary.json").write_text(json.dumps(theirs), encoding="utf-8")
        real(out, rows)

    monkeypatch.setattr(rb, "_write", race)
    out = rebuild_folder(folder, None)
    assert out.summary == theirs == load_summary(folder) and out.written == ("timeseries.csv",)


def test_a_folder_that_cannot_be_written_keeps_the_rebuild_in_memory(tmp_path, monkeypatch):
    folder = folder_with(tmp_path, [rec(1, 0.0)])

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(rb, "write_summary", refuse)
    out = rebuild_folder(folder, None)
    assert out.written == () and out.not_written == "Permission denied"
    assert out.summary["requests"]["total"] == 1 and out.line().endswith("not written to the folder: Permission denied")
    assert not (folder / "summary.json").exists()


def test_a_run_still_going_is_rebuilt_in_memory_only(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.0)])
    row = {"status": "running", "pid": 4242, "host": "box", "started_at": T0, "options": {}, "summary": None}
    out = rebuild_folder(folder, row)
    assert out.still_running and out.written == () and not (folder / "summary.json").exists()
    assert out.line().startswith("the run is still running (pid 4242 on box)")
    assert out.summary["run"]["incomplete_reason"].startswith("rebuilt from records.jsonl: the run is still running")


def test_a_finished_runs_summary_is_restored_from_its_history_row(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.0)])
    kept = {"run": {"started_at": T0, "interrupted": False}, "requests": {"total": 1}}
    out = rebuild_folder(folder, {"status": "completed", "summary": kept, "options": {}, "started_at": T0})
    assert load_summary(folder) == kept and out.restored
    assert out.line() == "restored summary.json from the history database; rebuilt time series from records.jsonl"


def test_a_torn_last_line_is_skipped_and_said(tmp_path):
    folder = folder_with(tmp_path, [rec(1, 0.0)])
    with open(folder / "records.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"request_id": 2, "qu')
    out = rebuild_folder(folder, None)
    assert out.summary["requests"]["total"] == 1 and out.skipped_lines == 1
    assert out.summary["run"]["incomplete_reason"].endswith("1 line(s) of records.jsonl were not records (a torn last line)")


def test_no_finished_request_still_rebuilds_an_empty_run(tmp_path):
    folder = folder_with(tmp_path, [], name="20270115-080000-empty")
    summary = rebuild_folder(folder, None).summary
    assert summary["requests"]["total"] == 0 and summary["run"]["duration_s"] is None
    assert summary["run"]["started_at"] is not None  # from the folder's name
    assert load_timeseries(folder) == []


def test_without_records_there_is_nothing_to_rebuild_from(tmp_path):
    with pytest.raises(RebuildError, match="no records.jsonl"):
        rebuild_folder(tmp_path, None)
    assert not needs_rebuild(tmp_path)


def test_the_row_is_looked_up_beside_the_folder(tmp_path):
    from sse_perf_tool.history import History

    folder = folder_with(tmp_path, [rec(1, 0.0)])
    db = History(str(tmp_path / "history.db"))
    db.begin_run(folder, {"started_at": T0 - 1, "api": "dify-chat", "model_name": "m", "config": {"threads": 3}})
    db.close()
    assert rb.find_history_row(folder)["api"] == "dify-chat"
    assert rb.find_history_row(folder, tmp_path / "elsewhere.db")["api"] == "dify-chat"  # falls back beside it
    summary = rebuild_folder(folder, write=False).summary  # looked up by default
    assert summary["run"]["api"] == "dify-chat" and summary["run"]["started_at"] == T0 - 1
