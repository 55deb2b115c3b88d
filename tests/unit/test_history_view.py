"""history_view.runs_table: the runs table fits 80 columns, says what it left out, --wide has all."""

from __future__ import annotations

import time

from sse_perf_tool.history_view import TABLE_WIDTH, runs_table
from sse_perf_tool.live import _cell_width


def _run(run_id, started_at=None, model="qwen2.5-14b-instruct-awq", api="openai-chat", status="completed"):
    return {"id": run_id, "started_at": started_at if started_at is not None else time.time() - 60 * run_id,
            "model_name": model, "api": api, "load_model": "closed", "threads": 16, "duration_s": 61.2,
            "requests_per_s": 12.345, "output_tokens_per_s": 1834.0, "ttft_p95_ms": 412.0, "tpot_p95_ms": 21.5,
            "e2e_p95_ms": 12_345.0, "success_pct": 99.5, "status": status}


def test_the_table_fits_80_columns_and_names_what_it_left_out():
    lines = runs_table([_run(i, status="interrupted" if i == 2 else "completed") for i in (120, 2, 1)])
    assert max(_cell_width(line) for line in lines) <= TABLE_WIDTH
    head = lines[0].split()
    assert head[:3] == ["id", "when", "model"] and head[-1] == "status" and "flavour" not in head
    assert "TTFT" in head and "succ%" in head and "req/s" in head
    assert [line.split()[0] for line in lines[1:4]] == ["120", "2", "1"]
    assert "interrupted" in lines[2] and "qwen2.5-14b-ins…" in lines[1]
    footer = " ".join(lines[4:])
    assert footer.startswith("left out to fit 80 columns: flavour, dur s") and "--wide shows every column" in footer


def test_wide_shows_every_column_and_leaves_nothing_out():
    lines = runs_table([_run(1)], wide=True)
    assert lines[0].split() == ["id", "when", "model", "flavour", "load", "dur", "s", "req/s", "tok/s", "TTFT",
                                "p95", "TPOT", "p95", "E2E", "p95", "succ%", "status"]
    assert "openai-chat" in lines[1] and "12.3s" in lines[1] and "21.5" in lines[1]
    assert len(lines) == 2


def test_narrow_cells_leave_out_only_what_does_not_fit():
    run = dict(_run(1, model="m", api="x"), duration_s=None, output_tokens_per_s=None, tpot_p95_ms=None,
               e2e_p95_ms=None, ttft_p95_ms=None, requests_per_s=None, success_pct=None, status="killed")
    lines = runs_table([run])
    assert "TPOT p95" in lines[0] and "E2E p95" in lines[0] and "tok/s" in lines[0]
    assert lines[2] == "left out to fit 80 columns: flavour, dur s; --wide shows every column"
    assert max(_cell_width(line) for line in lines) <= TABLE_WIDTH


def test_the_date_keeps_its_year_only_when_a_run_is_from_another_year():
    this_year = runs_table([_run(1)])[1].split()[1]
    assert len(this_year) == 5 and this_year[2] == "-"  # MM-DD
    old = time.mktime((time.localtime().tm_year - 1, 6, 1, 12, 0, 0, 0, 0, -1))
    lines = runs_table([_run(2), _run(1, started_at=old)])
    assert lines[1].split()[1].count("-") == 2 and lines[2].split()[1].startswith(str(time.localtime(old).tm_year))
