"""runner: ramp-up spacing, duration, request cap, one request per thread, cancel."""

import threading
import time

from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.runner import RunPlan, Runner


class FakeTester:
    """Takes `work_s` per request; `abort()` ends the request in flight at once as cancelled."""

    def __init__(self, index, work_s=0.01, log=None):
        self.index = index
        self.work_s = work_s
        self.events_received = 0
        self.log = log if log is not None else []
        self._abort = threading.Event()
        self._in_flight = None
        self.closed = False

    def run(self, request_id, thread_id, query, key):
        rec = RequestRecord(request_id, thread_id, query, None, time.time(), time.perf_counter_ns())
        self._in_flight = rec
        self.log.append((thread_id, time.monotonic(), key))
        aborted = self._abort.wait(self.work_s)
        rec.ended_ns = time.perf_counter_ns()
        rec.ok = not aborted
        if aborted:
            rec.error_kind = ErrorKind.CANCELLED
        self.events_received += 1
        self._in_flight = None
        return rec

    def abort(self):
        self._abort.set()

    def take_in_flight(self):
        return None

    def close(self):
        self.closed = True


def _runner(plan, work_s=0.01, log=None):
    records = []
    lock = threading.Lock()
    testers = []

    def make(index):
        t = FakeTester(index, work_s, log)
        testers.append(t)
        return t

    def sink(rec):
        with lock:
            records.append(rec)

    keys = iter(["k1", "k2"] * 10_000)
    runner = Runner(plan, make, next_query=lambda: "q", next_key=lambda: next(keys), sink=sink)
    return runner, records, testers


def test_duration_zero_sends_exactly_one_request_per_thread():
    runner, records, testers = _runner(RunPlan(threads=5))
    runner.run()
    assert sorted(r.thread_id for r in records) == [1, 2, 3, 4, 5]
    assert sorted(r.request_id for r in records) == [1, 2, 3, 4, 5]
    assert all(t.closed for t in testers)


def test_request_cap_is_exact_across_threads():
    runner, records, _ = _runner(RunPlan(threads=4, requests=23), work_s=0.001)
    runner.run()
    assert len(records) == 23
    assert sorted(r.request_id for r in records) == list(range(1, 24))


def test_duration_stops_sending_and_lets_in_flight_finish():
    runner, records, _ = _runner(RunPlan(threads=2, duration_s=0.3), work_s=0.05)
    t0 = time.monotonic()
    runner.run()
    elapsed = time.monotonic() - t0
    assert 0.3 <= elapsed < 2.0
    assert records and all(r.ok for r in records)  # finished within grace: none cancelled


def test_grace_period_cancels_requests_that_outlive_it():
    runner, records, _ = _runner(RunPlan(threads=2, duration_s=0.1, grace_s=0.1), work_s=5.0)
    t0 = time.monotonic()
    runner.run()
    assert time.monotonic() - t0 < 3.0
    assert len(records) == 2 and all(r.error_kind == ErrorKind.CANCELLED for r in records)


def test_ramp_up_starts_threads_evenly():
    log = []
    runner, records, _ = _runner(RunPlan(threads=4, ramp_up_s=0.6), work_s=0.001, log=log)
    t0 = time.monotonic()
    runner.run()
    starts = {thread: at - t0 for thread, at, _ in log}
    # thread i starts at ramp * (i-1) / threads: 0, 0.15, 0.3, 0.45 s
    for thread, expected in ((1, 0.0), (2, 0.15), (3, 0.3), (4, 0.45)):
        assert expected - 0.01 <= starts[thread] < expected + 0.25


def test_cancel_stops_sending_at_once_and_marks_in_flight_cancelled():
    runner, records, _ = _runner(RunPlan(threads=3, duration_s=60), work_s=30)
    runner.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    runner.cancel()
    assert time.monotonic() - t0 < 2.5
    assert not runner.alive()
    assert len(records) == 3 and all(r.error_kind == ErrorKind.CANCELLED for r in records)


def test_keys_are_taken_in_turn():
    log = []
    runner, _, _ = _runner(RunPlan(threads=1, requests=4), work_s=0.0, log=log)
    runner.run()
    assert [k for _, _, k in log] == ["k1", "k2", "k1", "k2"]


def test_a_worker_bug_is_reported_not_swallowed():
    def make(index):
        raise RuntimeError("boom")

    runner = Runner(RunPlan(threads=2), make, lambda: "q", lambda: None, sink=lambda r: None)
    runner.run()
    assert len(runner.worker_errors) == 2 and "boom" in runner.worker_errors[0]
