"""live_feed: each second as a Server-Sent Event for the watching browsers, the replay a late or
reconnecting browser is sent, dropping a browser that stopped reading, and the Prometheus metrics."""

from __future__ import annotations

import json
import math
import queue
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sse_perf_tool.gpu.base import Sample
from sse_perf_tool.live import HEADERS, row_cells
from sse_perf_tool.live_feed import LiveFeed, LiveMetrics, Watcher, sse_message
from sse_perf_tool.records import RequestRecord
from sse_perf_tool.stats import TIMESERIES_COLUMNS

GPU_UTIL = "gpu[local:0].util_pct"


def _row(second: int, **changes) -> dict:
    """One per-second row with every TIMESERIES_COLUMNS column, as the aggregator hands it on."""
    row = dict.fromkeys(TIMESERIES_COLUMNS)
    row.update(second=second, active_threads=2, requests_started=3, requests_ok=2, requests_failed=1,
               output_tokens=40, ttft_p50_ms=120.5, ttft_p95_ms=180.0, tpot_p50_ms=12.25, tpot_p95_ms=20.0,
               e2e_p50_ms=900.0, e2e_p95_ms=1500.0, success_rate_pct=66.66666, phase="measure")
    row.update(changes)
    return row


def _live(tokens_per_s=321.4, gpu_util_pct=None, total_threads=4) -> dict:
    return {"tokens_per_s": tokens_per_s, "gpu_util_pct": gpu_util_pct, "total_threads": total_threads}


def _parse(message: bytes) -> dict:
    """One SSE message: {"event": name or None, "id": int or None, "data": the JSON}; checks its frame."""
    assert isinstance(message, bytes)
    text = message.decode("utf-8")
    assert text.endswith("\n\n"), "a message ends with a blank line"
    lines = text[:-2].split("\n")
    fields: dict = {"event": None, "id": None}
    data_lines = []
    for line in lines:
        name, sep, value = line.partition(": ")
        assert sep, f"a field line is 'name: value' (got {line!r})"
        if name == "data":
            data_lines.append(value)
        elif name == "event":
            fields["event"] = value
        elif name == "id":
            fields["id"] = int(value)
        else:
            raise AssertionError(f"unexpected field {name!r}")
    assert len(data_lines) == 1, "one data: line of JSON"
    fields["data"] = json.loads(data_lines[0])
    return fields


def _drain(watcher: Watcher) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(watcher.queue.get_nowait())
        except queue.Empty:
            return out


def _kinds(messages: list[bytes]) -> list:
    """("row", second) / ("warning", text) / ("view",) / ("end",) per message, to compare orders."""
    out = []
    for message in messages:
        parsed = _parse(message)
        if parsed["event"] is None:
            out.append(("row", parsed["id"]))
        elif parsed["event"] == "warning":
            out.append(("warning", parsed["data"]["text"]))
        else:
            out.append((parsed["event"],))
    return out


def _rows_of(messages: list[bytes]) -> list[int]:
    return [kind[1] for kind in _kinds(messages) if kind[0] == "row"]


def _metric_samples(feed: LiveFeed) -> dict:
    """{(sample name, ((label, value), ...)): value} of the feed's /metrics text."""
    out = {}
    for family in text_string_to_metric_families(feed.metrics.text().decode("utf-8")):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _record(**changes) -> dict:
    row = RequestRecord(1, 1, "q", None, 0.0, 0).to_dict()
    row.update(changes)
    return row


# -- each second's message ------------------------------------------------------------------

def test_a_second_is_one_sse_event_with_its_second_as_id_and_one_json_data_line():
    feed = LiveFeed()
    watcher, _ = feed.watch()
    row = _row(7)
    feed.second(row, _live())
    messages = _drain(watcher)
    rows = [m for m in messages if _parse(m)["event"] is None]
    assert len(rows) == 1
    assert rows[0].startswith(b"id: 7\ndata: ")
    parsed = _parse(rows[0])
    assert parsed["id"] == 7
    assert set(parsed["data"]) == {"second", "row", "live", "cells"}
    assert parsed["data"]["second"] == 7
    assert parsed["data"]["row"] == row
    assert parsed["data"]["live"] == _live()


def test_the_cells_are_the_terminal_rows_cells_under_its_headers():
    feed = LiveFeed()
    watcher, _ = feed.watch()
    row, live = _row(4, ttft_p50_ms=12_345.0, success_rate_pct=None), _live(tokens_per_s=None, gpu_util_pct=87.4)
    feed.second(row, live)
    data = _parse(_drain(watcher)[-1])["data"]
    expected = row_cells(row, live["total_threads"], live["tokens_per_s"], live["gpu_util_pct"])
    assert data["cells"] == [[label, cell] for label, cell in zip(HEADERS["en"], expected)]
    assert len(data["cells"]) == len(HEADERS["en"]) == len(expected)
    assert dict(data["cells"])["time"] == "5s"


def test_the_cells_are_labelled_in_the_feeds_language():
    feed = LiveFeed(lang="zh")
    watcher, _ = feed.watch()
    row, live = _row(0), _live()
    feed.second(row, live)
    data = _parse(_drain(watcher)[-1])["data"]
    assert [label for label, _ in data["cells"]] == list(HEADERS["zh"])
    assert [cell for _, cell in data["cells"]] == list(row_cells(row, 4, 321.4, None))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_nan_or_infinite_value_is_sent_as_null_and_the_message_is_valid_json(bad):
    feed = LiveFeed()
    watcher, _ = feed.watch()
    feed.second(_row(0, ttft_p50_ms=bad, **{"client.lag_p99_ms": bad}), _live(tokens_per_s=bad))
    message = _drain(watcher)[-1]
    assert b"NaN" not in message and b"Infinity" not in message
    data = _parse(message)["data"]
    assert data["row"]["ttft_p50_ms"] is None
    assert data["row"]["client.lag_p99_ms"] is None
    assert data["live"]["tokens_per_s"] is None
    assert dict(data["cells"])["TTFT p50"] == "-", "not measured, as the terminal shows it"


def test_sse_message_keeps_a_newline_in_the_data_inside_its_one_data_line():
    message = sse_message({"text": "line one\nline two\r\n\n"}, event="warning")
    assert message.count(b"\n\n") == 1 and message.endswith(b"\n\n")
    parsed = _parse(message)
    assert parsed == {"event": "warning", "id": None, "data": {"text": "line one\nline two\r\n\n"}}


def test_sse_message_names_the_event_before_its_id():
    assert sse_message({"a": 1}, event="view", event_id=3) == b'event: view\nid: 3\ndata: {"a":1}\n\n'
    assert sse_message({"a": 1}, event_id=0) == b'id: 0\ndata: {"a":1}\n\n'
    assert sse_message({"a": 1}) == b'data: {"a":1}\n\n'


# -- what a watcher is sent -----------------------------------------------------------------

def _fed(seconds, warnings_after=()):
    """A feed given rows 0..seconds-1, a warning "w<N>" right after each row N in warnings_after."""
    feed = LiveFeed()
    for second in range(seconds):
        feed.second(_row(second), _live())
        if second in warnings_after:
            feed.warning(f"w{second}")
    return feed


def test_a_watcher_is_sent_the_view_first_then_everything_after_the_second_it_last_saw():
    feed = _fed(5, warnings_after=(1, 2, 4))
    _, replay = feed.watch(last_id=2)
    assert _kinds(replay) == [("view",), ("warning", "w2"), ("row", 3), ("row", 4), ("warning", "w4")]


def test_a_watcher_with_no_last_id_is_sent_everything_kept():
    feed = _fed(4, warnings_after=(0, 3))
    _, replay = feed.watch(None)
    assert _kinds(replay) == [("view",), ("row", 0), ("warning", "w0"), ("row", 1), ("row", 2), ("row", 3),
                              ("warning", "w3")]


def test_a_last_id_older_than_anything_kept_is_sent_everything_kept():
    feed = LiveFeed(max_kept=3)
    for second in range(10):
        feed.second(_row(second), _live())
    _, everything = feed.watch(None)
    _, replay = feed.watch(last_id=-5)
    assert replay == everything
    assert _kinds(replay)[0] == ("view",) and _rows_of(replay) == sorted(_rows_of(replay))


def test_a_watcher_that_saw_the_last_second_is_sent_only_the_view():
    feed = _fed(3)
    _, replay = feed.watch(last_id=2)
    assert _kinds(replay) == [("view",)]


def test_replay_and_live_messages_join_without_a_gap_or_a_duplicate():
    feed = LiveFeed()
    for second in range(4):
        feed.second(_row(second), _live())
    feed.warning("before")
    watcher, replay = feed.watch(last_id=1)
    feed.warning("after")
    for second in range(4, 8):
        feed.second(_row(second), _live())
    received = replay + _drain(watcher)
    assert _rows_of(received) == [2, 3, 4, 5, 6, 7]
    assert [k for k in _kinds(received) if k[0] == "warning"] == [("warning", "before"), ("warning", "after")]
    assert _kinds(received)[0] == ("view",)
    assert len(received) == len(set(received)), "no message both replayed and queued"


def test_the_replay_starts_with_the_current_view():
    feed = LiveFeed()
    early, _ = feed.watch()
    for second in range(3):
        feed.second(_row(second), _live())
    feed.second(_row(3, **{GPU_UTIL: 55.0}), _live(gpu_util_pct=55.0))
    views = [m for m in _drain(early) if _parse(m)["event"] == "view"]
    _, replay = feed.watch(None)
    assert replay[0] == views[-1]
    assert GPU_UTIL in json.dumps(_parse(replay[0])["data"]), "the view of the GPU column that appeared"


def test_a_watcher_of_a_feed_with_no_second_yet_gets_an_empty_replay():
    feed = LiveFeed()
    watcher, replay = feed.watch(None)
    assert replay == []
    assert feed.watching() == 1 and not watcher.dropped


# -- the view event -------------------------------------------------------------------------

def test_the_view_is_sent_again_only_when_a_column_gets_its_first_value():
    feed = LiveFeed()
    watcher, _ = feed.watch()
    sent = {}
    for second in range(6):
        extra = {GPU_UTIL: 40.0 + second} if second >= 3 else {GPU_UTIL: None}
        feed.second(_row(second, **extra), _live(gpu_util_pct=extra[GPU_UTIL]))
        sent[second] = _kinds(_drain(watcher))
    assert sent[0] == [("view",), ("row", 0)], "the first second: the charts, then the row"
    assert sent[1] == [("row", 1)] and sent[2] == [("row", 2)]
    assert sent[3] == [("view",), ("row", 3)], "the GPU column's first value redraws the charts"
    assert sent[4] == [("row", 4)] and sent[5] == [("row", 5)]


def test_a_column_that_stays_null_does_not_resend_the_view():
    feed = LiveFeed()
    watcher, _ = feed.watch()
    for second in range(5):
        feed.second(_row(second, ttft_p50_ms=None), _live())
    views = [k for k in _kinds(_drain(watcher)) if k == ("view",)]
    assert len(views) == 1


# -- a watcher that stopped reading ---------------------------------------------------------

def test_a_watcher_that_never_reads_is_dropped_and_second_never_blocks():
    feed = LiveFeed(queue_max=4)
    stuck, _ = feed.watch()
    reader, _ = feed.watch()
    assert feed.watching() == 2
    read = []
    finished = threading.Event()

    def feed_many():
        for second in range(100):  # 25 times queue_max
            feed.second(_row(second), _live())
            read.extend(_drain(reader))
        finished.set()

    worker = threading.Thread(target=feed_many, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert finished.is_set(), "second() blocked on a watcher that does not read"
    assert stuck.dropped is True
    assert feed.dropped == 1
    assert feed.watching() == 1
    assert stuck.queue.qsize() <= 4, "nothing put beyond its bound"
    assert reader.dropped is False
    assert _rows_of(read) == list(range(100)), "the reader missed nothing"


def test_leave_unregisters_a_watcher_without_counting_it_dropped():
    feed = LiveFeed(queue_max=2)
    watcher, _ = feed.watch()
    feed.leave(watcher)
    assert feed.watching() == 0
    for second in range(10):
        feed.second(_row(second), _live())
    assert watcher.dropped is False and feed.dropped == 0
    assert watcher.queue.empty()
    feed.leave(watcher)  # twice: no error


# -- what is kept ---------------------------------------------------------------------------

def test_the_rows_kept_are_bounded_by_max_kept():
    feed = LiveFeed(max_kept=5)
    for second in range(20):
        feed.second(_row(second), _live())
    assert [row["second"] for row in feed.rows()] == [15, 16, 17, 18, 19]
    _, replay = feed.watch(None)
    assert _rows_of(replay) == [15, 16, 17, 18, 19], "a new watcher is sent the last max_kept seconds"


def test_a_reconnecting_watcher_within_the_kept_seconds_is_sent_only_what_it_missed():
    feed = LiveFeed(max_kept=5)
    for second in range(20):
        feed.second(_row(second), _live())
    _, replay = feed.watch(last_id=17)
    assert _rows_of(replay) == [18, 19]


# -- the end --------------------------------------------------------------------------------

def test_the_end_is_sent_to_every_watcher():
    feed = _fed(2)
    first, _ = feed.watch()
    second, _ = feed.watch()
    feed.end(3, "/tmp/run-1", "/tmp/run-1/report.html")
    for watcher in (first, second):
        messages = _drain(watcher)
        assert len(messages) == 1
        parsed = _parse(messages[0])
        assert parsed["event"] == "end" and parsed["id"] is None
        assert parsed["data"] == {"exit_code": 3, "run_dir": "/tmp/run-1", "report": "/tmp/run-1/report.html"}
    assert feed.ended


def test_a_watcher_after_the_end_gets_the_replay_and_the_end_and_is_not_registered():
    feed = _fed(3, warnings_after=(2,))
    feed.end(0, "/tmp/run-2", None)
    assert feed.watching() == 0
    watcher, replay = feed.watch(None)
    assert _kinds(replay) == [("view",), ("row", 0), ("row", 1), ("row", 2), ("warning", "w2"), ("end",)]
    assert _parse(replay[-1])["data"] == {"exit_code": 0, "run_dir": "/tmp/run-2", "report": None}
    assert feed.watching() == 0
    _, replay = feed.watch(last_id=2)
    assert _kinds(replay) == [("view",), ("warning", "w2"), ("end",)]
    assert feed.watching() == 0


def test_an_end_before_any_second_is_still_sent():
    feed = LiveFeed()
    feed.end(2, None, None)
    _, replay = feed.watch(None)
    assert _kinds(replay) == [("end",)]


# -- warnings -------------------------------------------------------------------------------

def test_a_warning_is_a_warning_event_after_the_last_second():
    feed = _fed(3)
    watcher, _ = feed.watch()
    feed.warning("!! load generator saturated from 1 s")
    parsed = _parse(_drain(watcher)[0])
    assert parsed["event"] == "warning" and parsed["id"] is None
    assert parsed["data"] == {"text": "!! load generator saturated from 1 s", "after": 2}


def test_a_warning_before_any_second_is_kept_and_replayed():
    feed = LiveFeed()
    feed.warning("early")
    _, replay = feed.watch(None)
    assert _kinds(replay) == [("warning", "early")]
    assert _parse(replay[0])["data"]["after"] == -1


@pytest.mark.parametrize("text", [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    '"quoted" \\ back\\slash & <b>bold</b>',
    "两行\n第二行 \u2028 é",
])
def test_a_warnings_text_is_carried_as_json_text_unchanged(text):
    feed = LiveFeed()
    watcher, _ = feed.watch()
    feed.warning(text)
    message = _drain(watcher)[0]
    assert _parse(message)["data"]["text"] == text
    _, replay = feed.watch(None)
    assert _parse(replay[0])["data"]["text"] == text


# -- Prometheus -----------------------------------------------------------------------------

def test_requests_are_counted_by_outcome_and_tokens_only_of_ok_requests():
    feed = LiveFeed()
    feed.record(_record(ok=True, output_tokens=20, ttft_ms=200.0, tpot_ms=10.0, e2e_ms=1000.0))
    feed.record(_record(ok=True, output_tokens=10, ttft_ms=100.0, tpot_ms=5.0, e2e_ms=500.0, warmup=True))
    feed.record(_record(ok=False, error_kind="timeout", output_tokens=7))
    feed.record(_record(ok=False, error_kind="timeout", output_tokens=3))
    feed.record(_record(ok=False, error_kind="http_status"))
    got = _metric_samples(feed)
    assert got[("sse_perf_requests_total", (("outcome", "ok"),))] == 2, "warm-up requests included"
    assert got[("sse_perf_requests_total", (("outcome", "timeout"),))] == 2
    assert got[("sse_perf_requests_total", (("outcome", "http_status"),))] == 1
    assert got[("sse_perf_output_tokens_total", ())] == 30, "ok requests' tokens only (warm-up's too)"


def test_the_latency_histograms_observe_only_ok_measured_requests_in_seconds():
    feed = LiveFeed()
    feed.record(_record(ok=True, output_tokens=20, ttft_ms=200.0, tpot_ms=10.0, e2e_ms=1000.0))
    feed.record(_record(ok=True, output_tokens=20, ttft_ms=40.0, tpot_ms=2.0, e2e_ms=3000.0))
    feed.record(_record(ok=True, output_tokens=10, ttft_ms=7000.0, tpot_ms=800.0, e2e_ms=9000.0, warmup=True))
    feed.record(_record(ok=False, error_kind="stream_error", ttft_ms=5000.0, e2e_ms=8000.0))
    feed.record(_record(ok=True, output_tokens=0, ttft_ms=None, tpot_ms=None, e2e_ms=None))
    got = _metric_samples(feed)
    for name, count, total in (("sse_perf_ttft_seconds", 2, 0.24), ("sse_perf_tpot_seconds", 2, 0.012),
                               ("sse_perf_e2e_seconds", 2, 4.0)):
        assert got[(f"{name}_count", ())] == count, name
        assert math.isclose(got[(f"{name}_sum", ())], total), name
        assert got[(f"{name}_bucket", (("le", "+Inf"),))] == count, name
    assert got[("sse_perf_ttft_seconds_bucket", (("le", "0.05"),))] == 1  # the 40 ms one
    assert got[("sse_perf_ttft_seconds_bucket", (("le", "0.25"),))] == 2
    assert got[("sse_perf_e2e_seconds_bucket", (("le", "1.0"),))] == 1
    assert got[("sse_perf_tpot_seconds_bucket", (("le", "0.0025"),))] == 1


def test_the_gauges_are_set_from_each_second():
    feed = LiveFeed()
    feed.second(_row(9, active_threads=3, **{"client.lag_p99_ms": 25.0, "client.cpu_pct": 87.5}),
                _live(tokens_per_s=456.0, total_threads=8))
    got = _metric_samples(feed)
    assert got[("sse_perf_active_threads", ())] == 3
    assert got[("sse_perf_threads", ())] == 8
    assert got[("sse_perf_output_tokens_per_second", ())] == 456.0
    assert got[("sse_perf_elapsed_seconds", ())] == 10
    assert math.isclose(got[("sse_perf_client_lag_p99_seconds", ())], 0.025)
    assert got[("sse_perf_client_cpu_percent", ())] == 87.5


def test_a_second_without_a_reading_keeps_the_last_one():
    feed = LiveFeed()
    feed.second(_row(0, **{"client.lag_p99_ms": 25.0, "client.cpu_pct": 50.0}), _live(tokens_per_s=100.0))
    feed.second(_row(1, active_threads=None, **{"client.lag_p99_ms": float("nan"), "client.cpu_pct": None}),
                _live(tokens_per_s=None))
    got = _metric_samples(feed)
    assert got[("sse_perf_output_tokens_per_second", ())] == 100.0
    assert math.isclose(got[("sse_perf_client_lag_p99_seconds", ())], 0.025)
    assert got[("sse_perf_client_cpu_percent", ())] == 50.0
    assert got[("sse_perf_active_threads", ())] == 0
    assert got[("sse_perf_elapsed_seconds", ())] == 2


def test_gpu_samples_set_one_gauge_per_gpu_and_metric_and_server_samples_are_ignored():
    feed = LiveFeed()
    feed.samples([Sample("local", 0, 1, {"util_pct": 55.0, "mem_used_mib": 1024.0, "temp_c": None}),
                  Sample("ssh://h1", 1, 1, {"util_pct": 12.0, "power_w": float("nan")}),
                  Sample("server", None, 1, {"vllm:num_requests_running": 7.0})], start_ns=0)
    feed.samples([Sample("local", 0, 2, {"util_pct": 60.0})], start_ns=0)
    got = _metric_samples(feed)
    gpu = {labels: value for (name, labels), value in got.items() if name == "sse_perf_gpu"}
    assert gpu == {
        (("gpu", "local:0"), ("metric", "util_pct")): 60.0,
        (("gpu", "local:0"), ("metric", "mem_used_mib")): 1024.0,
        (("gpu", "ssh://h1:1"), ("metric", "util_pct")): 12.0,
    }
    assert "vllm" not in feed.metrics.text().decode("utf-8")


def test_two_feeds_do_not_share_metrics():
    first, second = LiveFeed(), LiveFeed()
    first.record(_record(ok=True, output_tokens=5, ttft_ms=10.0))
    first.samples([Sample("local", 0, 1, {"util_pct": 99.0})], start_ns=0)
    first.second(_row(0, active_threads=6), _live())
    assert first.metrics.registry is not second.metrics.registry
    got = _metric_samples(second)
    assert ("sse_perf_requests_total", (("outcome", "ok"),)) not in got
    assert got[("sse_perf_output_tokens_total", ())] == 0
    assert got[("sse_perf_ttft_seconds_count", ())] == 0
    assert got[("sse_perf_active_threads", ())] == 0
    assert not [name for name, _ in got if name == "sse_perf_gpu"]
    assert _metric_samples(first)[("sse_perf_output_tokens_total", ())] == 5


def test_live_metrics_leave_the_global_registry_alone():
    from prometheus_client import REGISTRY

    LiveMetrics()
    LiveMetrics()  # a second one registers no duplicate
    assert not [family.name for family in REGISTRY.collect() if family.name.startswith("sse_perf")]
