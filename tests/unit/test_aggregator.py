"""aggregator: one thread writes every record, prints a row per second, tracks the run's span."""

import io
import json
import threading
import time

import pytest
from array import array

from sse_perf_tool.aggregator import Aggregator
from sse_perf_tool.live import LiveTable
from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.storage import RecordWriter

NS = 1_000_000_000


class ScriptedClock:
    def __init__(self, now=0):
        self.now = now

    def __call__(self):
        return self.now


def _rec(rid, sent_s, end_s, ok=True, tokens=4):
    r = RequestRecord(rid, 1, "q", None, 0.0, int(sent_s * NS))
    if ok:
        r.token_times_ns = array("q", [int((sent_s + 0.1) * NS), int(end_s * NS)])
        r.first_token_ns = r.first_answer_ns = r.token_times_ns[0]
        r.output_tokens = tokens
    else:
        r.error_kind = ErrorKind.TIMEOUT
    r.ended_ns = int(end_s * NS)
    r.ok = ok
    return r


def test_records_are_written_and_rows_printed(tmp_path):
    clock = ScriptedClock(0)
    out = io.StringIO()
    writer = RecordWriter(tmp_path)
    agg = Aggregator(0, [writer, LiveTable(out)], total_threads=2, active_threads=lambda: 2, clock=clock)
    agg.start()
    agg.submit(_rec(1, 0.0, 0.5))
    agg.submit(_rec(2, 0.2, 1.5, ok=False))
    time.sleep(0.2)
    clock.now = 2 * NS + 1  # two seconds have passed: rows for seconds 0 and 1 are due
    agg.submit(_rec(3, 1.0, 1.9))
    agg.close()
    writer.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("(per second:") and "succ% since the start" in lines[0], "the legend, once"
    assert lines[1].split()[:2] == ["time", "threads"]
    assert lines[2].split()[:4] == ["1s", "2/2", "1", "0"]
    assert lines[3].split()[:4] == ["2s", "2/2", "1", "1"]
    records = [json.loads(l) for l in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [r["request_id"] for r in records] == [1, 2, 3]
    assert agg.measured_duration_s == 1.9  # first send (0 s) to last finish (1.9 s)
    rows = agg.rows()
    assert [r["requests_ok"] for r in rows] == [1, 1]
    assert rows[1]["success_rate_pct"] == pytest.approx(200 / 3)


def test_quiet_prints_nothing(tmp_path):
    clock = ScriptedClock(0)
    out = io.StringIO()
    agg = Aggregator(0, [LiveTable(out, quiet=True)], total_threads=1, clock=clock)
    agg.start()
    clock.now = 3 * NS
    agg.submit(_rec(1, 0.0, 0.5))
    agg.close()
    assert out.getvalue() == ""
    assert agg.finished == 1


def test_chinese_headers(tmp_path):
    clock = ScriptedClock(0)
    out = io.StringIO()
    agg = Aggregator(0, [LiveTable(out, lang="zh")], total_threads=1, clock=clock)
    agg.start()
    clock.now = NS
    agg.submit(_rec(1, 0.0, 0.5))
    agg.close()
    assert "首字p50" in out.getvalue()


def test_the_queue_is_bounded_and_a_stopped_statistics_thread_never_blocks_a_worker(tmp_path, monkeypatch):
    """Records wait in a bounded queue (a saturated load generator waits instead of growing without
    end); when the statistics thread is not running, a full queue does not hang the worker."""
    import sse_perf_tool.aggregator as aggregator_module

    monkeypatch.setattr(aggregator_module, "QUEUE_MAX", 3)
    writer = RecordWriter(tmp_path)
    agg = Aggregator(0, [writer, LiveTable(io.StringIO())], total_threads=1, active_threads=lambda: 1, clock=ScriptedClock(0))
    worker = threading.Thread(target=lambda: [agg.submit(_rec(rid, 0.0, 0.5)) for rid in range(1, 6)], daemon=True)
    worker.start()
    worker.join(10.0)  # a bound against a hang only: a blocked submit would never return
    assert not worker.is_alive(), "a full queue with no statistics thread blocked the worker"
    assert agg.queue.qsize() == 3
    writer.close()


def test_a_backlog_is_taken_in_one_wake_up_and_every_record_is_written(tmp_path):
    """Hundreds of records waiting at once are all handled and written, in order, before close returns."""
    writer = RecordWriter(tmp_path)
    agg = Aggregator(0, [writer, LiveTable(io.StringIO())], total_threads=1, active_threads=lambda: 1, clock=ScriptedClock(0))
    for rid in range(1, 3001):
        agg.submit(_rec(rid, 0.0, 0.5))
    agg.start()
    agg.close()
    writer.close()
    ids = [json.loads(line)["request_id"] for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert ids == list(range(1, 3001))


def _second(at_s, lag, cpu, load=3.5, machine=None):
    from sse_perf_tool.selfcheck import ClientSecond, machine_cores

    return ClientSecond(int(at_s * NS), 0.1, lag, cpu, load, 95.0 * machine_cores() if machine is None else machine)


def test_lag_while_sse_perf_idles_warns_machine_busy_never_fewer_threads(tmp_path):
    """Issue 13: the lag came from other processes (sse-perf at ~2 % CPU): the warning says the
    machine is busy, with its load, and does not advise fewer threads."""
    out = io.StringIO()
    agg = Aggregator(0, [LiveTable(out, quiet=True)], total_threads=1, clock=ScriptedClock(0))
    for k in range(1, 5):
        agg._handle_client(_second(k, 12.0, 2.0))
    text = out.getvalue()
    assert "machine busy from 1 s" in text and "load average 3.5" in text and "other processes" in text
    assert "fewer threads" not in text and "saturated" not in text


def test_saturation_at_one_thread_does_not_advise_fewer_threads(tmp_path):
    out = io.StringIO()
    agg = Aggregator(0, [LiveTable(out, quiet=True)], total_threads=1, clock=ScriptedClock(0))
    for k in range(1, 5):
        agg._handle_client(_second(k, 12.0, 97.0))
    text = out.getvalue()
    assert "load generator saturated" in text and "fewer threads" not in text
    out2 = io.StringIO()
    agg2 = Aggregator(0, [LiveTable(out2, quiet=True)], total_threads=8, clock=ScriptedClock(0))
    for k in range(1, 5):
        agg2._handle_client(_second(k, 12.0, 97.0))
    assert "use fewer threads" in out2.getvalue()


class _Sink:
    """Every kind of sink hook, remembering what it got."""

    def __init__(self):
        self.rows, self.batches, self.ticks, self.error = [], [], 0, None

    def record(self, row):
        self.rows.append(row)

    def samples(self, batch, start_ns):
        self.batches.append((len(batch), start_ns))

    def tick(self):
        self.ticks += 1


def test_records_samples_and_ticks_go_to_every_sink_it_does_not_know_by_name():
    """The aggregator hands each record's records.jsonl object, each sample batch and each second's
    tick to its sinks; a sink may have only some hooks; a sink's own failure is its write_error."""
    from sse_perf_tool.gpu.base import Sample

    clock = ScriptedClock(0)
    full, only_records = _Sink(), type("OnlyRecords", (), {"record": lambda self, row: rows.append(row)})()
    rows = []
    agg = Aggregator(0, [full, None, only_records], total_threads=1, clock=clock)
    agg.start()
    agg.submit(_rec(1, 0.0, 0.5))
    agg.submit_samples([Sample(source="local", index=0, at_ns=NS // 2, values={"util_pct": 50.0})])
    time.sleep(0.2)
    clock.now = 1 * NS + 1
    agg.submit(_rec(2, 0.6, 0.9, ok=False))
    agg.close()
    assert [r["request_id"] for r in full.rows] == [1, 2] == [r["request_id"] for r in rows]
    assert full.rows[1]["error_kind"] == "timeout"
    assert full.batches == [(1, 0)]
    assert full.ticks >= 2  # one for second 1, one at the end
    assert agg.write_error is None
    full.error = "records could not be written: disk full"
    assert agg.write_error == "records could not be written: disk full"


def test_a_broken_sink_costs_the_other_sinks_nothing():
    class Broken:
        def record(self, row):
            raise KeyError("bug")

    good = _Sink()
    agg = Aggregator(0, [Broken(), good], total_threads=1, clock=ScriptedClock(0))
    agg.start()
    agg.submit(_rec(1, 0.0, 0.5))
    agg.close()
    assert [r["request_id"] for r in good.rows] == [1]
    assert agg.internal_error.startswith("aggregator sink Broken: KeyError")
    assert agg.rows()[0]["requests_ok"] == 1  # the statistics went on too


def test_a_sinks_attribute_named_like_a_hook_is_not_called():
    """A sink whose `warning` is its own text (the history recorder's once was) gets no warning
    call: the self-check's saturation warning reached None and ended a healthy run with exit 1."""
    class Texty(_Sink):
        warning = None  # not a method: not the warning hook

    out, texty = io.StringIO(), Texty()
    agg = Aggregator(0, [texty, LiveTable(out, quiet=True)], total_threads=8, clock=ScriptedClock(0))
    for k in range(1, 5):
        agg._handle_client(_second(k, 12.0, 97.0))
    assert "load generator saturated" in out.getvalue()
    assert agg.internal_error is None
