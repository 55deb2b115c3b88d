"""runner: the all-failed brake's judgement, and the open-loop race around the deadline (an arrival
claimed before it is sent). The runner's threads over longer real-time runs: tests/integration/test_runner.py."""

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

    def run(self, request_id, thread_id, query, key, scheduled_ns=None):
        rec = RequestRecord(request_id, thread_id, query, None, time.time(), time.perf_counter_ns(),
                            scheduled_ns=scheduled_ns)
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


def _outcome(request_id, kind=None):
    record = RequestRecord(request_id, 1, "q", None, 0.0, 0)
    record.ok = kind is None
    record.error_kind = kind
    record.error = None if kind is None else f"{kind.value} of request {request_id}"
    return record


def test_the_brake_judges_the_first_request_ids_not_the_first_to_finish():
    """64 threads behind a balancer with one bad replica: 20 fast failures with later ids must not
    stop a run whose first requests are still streaming; a success among the first ids turns the brake
    off for good; cancels and requests outside the first ids do not count."""
    from sse_perf_tool.runner import AllFailedBrake

    brake = AllFailedBrake(3)
    assert all(brake.judge(_outcome(n, ErrorKind.HTTP_STATUS), 1) is None for n in range(4, 40))  # later ids
    assert brake.judge(_outcome(2, ErrorKind.CANCELLED), 1) is None
    assert brake.judge(_outcome(1, ErrorKind.TIMEOUT), 1) is None
    assert brake.judge(_outcome(3), 1) is None  # one of the first three worked
    assert brake.judge(_outcome(2, ErrorKind.TIMEOUT), 1) is None  # and the brake stays off
    fresh = AllFailedBrake(3)
    assert fresh.judge(_outcome(12, ErrorKind.TIMEOUT), None) is None  # warm-up not over: nothing judged
    assert [fresh.judge(_outcome(n, ErrorKind.TIMEOUT), 11) for n in (12, 11)] == [None, None]
    reason = fresh.judge(_outcome(13, ErrorKind.HTTP_STATUS), 11)
    assert reason.startswith("each of the first 3 requests failed, 2 of them timeout: timeout of request 12")
    assert fresh.judge(_outcome(14, ErrorKind.TIMEOUT), 11) is None  # once


def test_an_arrival_due_before_the_deadline_is_sent_even_if_the_stop_comes_while_it_waits():
    """The open-loop race (a flaky `19 + 0 != 20`): a worker claimed an arrival due before the
    deadline, then saw the stop event while sleeping until it was due, and dropped it: its request
    id was used up, counted neither as sent nor as not sent. Shown deterministically by setting the
    stop event while the worker waits for its second arrival (due at 200 ms, deadline 300 ms)."""
    runner, records, _ = _runner(RunPlan(threads=1, duration_s=0.3, rate=5.0, arrival="constant"), work_s=0.001)
    runner.start()
    time.sleep(0.1)  # arrival 1 (0 ms) is done; the worker sleeps until arrival 2 (200 ms)
    runner.stop_event.set()  # as run() does at the deadline, here early: the worker is still waiting
    for thread in runner._threads:
        thread.join(2.0)
    assert runner.issued == 2
    assert sorted(r.request_id for r in records) == [1, 2]
    assert len(records) + runner.not_sent() == runner.issued
    assert (records[1].sent_ns - runner.start_ns) / 1e9 >= 0.2  # it still waited for its instant


def test_an_arrival_dropped_by_a_cancel_before_it_was_due_is_not_counted_as_not_sent():
    """Ctrl-C at 100 ms while the worker waits for the arrival due at 200 ms: it is dropped, and it
    was not yet due when sending ended, so it is no `not_sent` either (k6's dropped iterations count
    only arrivals due while sending)."""
    runner, records, _ = _runner(RunPlan(threads=1, duration_s=5, rate=5.0, arrival="constant"), work_s=0.001)
    runner.start()
    time.sleep(0.1)
    runner.cancel()
    assert [r.request_id for r in records] == [1]
    assert runner.not_sent() == 0
