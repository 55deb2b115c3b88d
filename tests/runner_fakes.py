"""A fake tester that sleeps instead of streaming, and a Runner built on it that collects its
records. Shared by tests/unit/test_runner.py (scripted clock) and tests/integration/test_runner.py
(real time)."""

import threading
import time

from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.runner import Runner


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


def make_runner(plan, work_s=0.01, log=None, clock=None):
    """A Runner over FakeTesters taking `work_s` each, keys k1/k2 in turn; returns (runner, the
    records it delivered, the testers it made). `clock` replaces the runner's perf-counter clock."""
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
    extra = {} if clock is None else {"clock": clock}
    runner = Runner(plan, make, next_query=lambda: "q", next_key=lambda: next(keys), sink=sink, **extra)
    return runner, records, testers
