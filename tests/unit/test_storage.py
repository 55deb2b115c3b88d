"""storage: run folder naming, flushed record files, time series round trip, torn lines."""

import json

import pytest

from sse_perf_tool.records import RECORD_FIELDS, RequestRecord
from sse_perf_tool.storage import (
    OutputError, RecordWriter, check_writable, create_run_dir, load_records, load_timeseries, write_timeseries,
)


def test_run_dir_name_and_collisions(tmp_path):
    a = create_run_dir(str(tmp_path), 1_700_000_000, "Qwen 7B/int4")
    b = create_run_dir(str(tmp_path), 1_700_000_000, "Qwen 7B/int4")
    assert a.name.endswith("-Qwen_7B_int4") and b.name == a.name + "-2"


def test_unwritable_parent_is_an_output_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError):
        check_writable(str(f / "sub"))


def test_records_are_flushed_as_written(tmp_path):
    w = RecordWriter(tmp_path)
    w.write(RequestRecord(1, 1, "你好, \"x\"", None, 1.0, 0).to_dict())
    # readable before close: a crash loses at most the requests in flight
    line = (tmp_path / "records.jsonl").read_text(encoding="utf-8")
    assert json.loads(line)["query"] == "你好, \"x\""
    assert (tmp_path / "requests.csv").read_text(encoding="utf-8").count("\n") == 2
    w.close()


def test_torn_last_line_is_skipped(tmp_path):
    rec = RequestRecord(1, 1, "q", None, 1.0, 0).to_dict()
    (tmp_path / "records.jsonl").write_text(json.dumps(rec) + "\n" + '{"request_id": 2, "qu')
    loaded = list(load_records(tmp_path))
    assert len(loaded) == 1 and tuple(loaded[0]) == RECORD_FIELDS


def test_timeseries_round_trip_keeps_nulls(tmp_path):
    rows = [{"second": 0, "a": 1.23456, "b": None}, {"second": 1, "a": 2, "b": 0.0}]
    write_timeseries(tmp_path, rows, ["second", "a", "b"])
    back = load_timeseries(tmp_path)
    assert back == [{"second": 0, "a": 1.235, "b": None}, {"second": 1, "a": 2.0, "b": 0.0}]


def test_summary_and_timeseries_are_written_whole_and_exclusive_writes_never_replace(tmp_path):
    from sse_perf_tool.storage import load_summary, write_summary

    assert write_summary(tmp_path, {"run": {"n": 1}}) == tmp_path / "summary.json"
    assert write_summary(tmp_path, {"run": {"n": 2}}, exclusive=True) is None  # a run's own file stays
    assert load_summary(tmp_path) == {"run": {"n": 1}}
    assert write_summary(tmp_path, {"run": {"n": 3}}) is not None and load_summary(tmp_path) == {"run": {"n": 3}}
    assert write_timeseries(tmp_path, [{"second": 0}], ["second"], exclusive=True) == tmp_path / "timeseries.csv"
    assert write_timeseries(tmp_path, [{"second": 5}], ["second"], exclusive=True) is None
    assert load_timeseries(tmp_path) == [{"second": 0}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json", "timeseries.csv"]  # no temporary left
