"""runner with its threads in real time (a fake tester that sleeps): duration, request cap, one
request per thread, grace and cancel, open-loop schedules and not_sent, warm-up, levels, early stop
and the all-failed brake. Ramp-up and the open-loop race, deterministically: tests/unit/test_runner.py."""

import threading
import time

from runner_fakes import FakeTester, make_runner
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.runner import RunPlan, Runner


def test_duration_zero_sends_exactly_one_request_per_thread():
    runner, records, testers = make_runner(RunPlan(threads=5))
    runner.run()
    assert sorted(r.thread_id for r in records) == [1, 2, 3, 4, 5]
    assert sorted(r.request_id for r in records) == [1, 2, 3, 4, 5]
    assert all(t.closed for t in testers)


def test_request_cap_is_exact_across_threads():
    runner, records, _ = make_runner(RunPlan(threads=4, requests=23), work_s=0.001)
    runner.run()
    assert len(records) == 23
    assert sorted(r.request_id for r in records) == list(range(1, 24))


def test_duration_stops_sending_and_lets_in_flight_finish():
    """Each thread sends until a claim comes at or after the 0.3 s deadline: the run lasts at least
    its duration, then stops, and every request claimed was sent and finished ok within grace
    (none cancelled, none lost)."""
    runner, records, _ = make_runner(RunPlan(threads=2, duration_s=0.3), work_s=0.05)
    t0 = time.monotonic()
    runner.run()
    assert time.monotonic() - t0 >= 0.3  # a lower bound: no machine is too fast for it
    assert not runner.alive()
    assert records and all(r.ok for r in records)  # finished within grace: none cancelled
    assert len(records) == runner.issued


def test_grace_period_cancels_requests_that_outlive_it():
    runner, records, _ = make_runner(RunPlan(threads=2, duration_s=0.1, grace_s=0.1), work_s=5.0)
    runner.run()  # the 5 s requests end only if the end of grace cancels them
    assert not runner.alive()
    assert len(records) == 2 and all(r.error_kind == ErrorKind.CANCELLED for r in records)


def test_cancel_stops_sending_at_once_and_marks_in_flight_cancelled():
    runner, records, _ = make_runner(RunPlan(threads=3, duration_s=60), work_s=30)
    runner.start()
    time.sleep(0.1)
    runner.cancel()  # the 30 s requests end only if the cancel aborts them
    assert not runner.alive()
    assert len(records) == 3 and all(r.error_kind == ErrorKind.CANCELLED for r in records)


def test_run_returns_when_the_last_worker_ends_not_at_its_next_look():
    """Workers that are done in a millisecond: run() with a 30 s look interval returns as they end
    (before, it slept out its interval before seeing them gone)."""
    runner, records, _ = make_runner(RunPlan(threads=3), work_s=0.001)
    done = threading.Event()
    threading.Thread(target=lambda: (runner.run(poll_s=30.0), done.set()), daemon=True).start()
    assert done.wait(10.0), "run() waited for its next look"
    assert len(records) == 3 and not runner.alive()


def test_every_tester_is_made_before_any_request_is_sent():
    """The threads begin together: every thread is started and has made its tester (its connection
    pool) before the first request goes out, so no first request waits behind another's set-up."""
    made, made_when_sent = [], []
    lock = threading.Lock()

    class Counting(FakeTester):
        def run(self, request_id, *args, **kwargs):
            with lock:
                made_when_sent.append(len(made))
            return super().run(request_id, *args, **kwargs)

    def make(index):
        time.sleep(0.02 if index == 1 else 0.0)  # the first thread's tester is the slowest to make
        with lock:
            made.append(index)
        return Counting(index, 0.0)

    Runner(RunPlan(threads=8), make, lambda: "q", lambda: None, sink=lambda r: None).run()
    assert sorted(made) == list(range(1, 9))
    assert made_when_sent == [8] * 8, "a request went out before every tester was made"


def test_a_tester_that_cannot_be_made_does_not_hold_the_others():
    """One thread's make_tester fails: the others still begin and send, and the failure is reported."""
    def make(index):
        if index == 2:
            raise RuntimeError("no tester")
        return FakeTester(index, 0.0)

    runner = Runner(RunPlan(threads=3), make, lambda: "q", lambda: None, sink=lambda r: None)
    done = threading.Event()
    threading.Thread(target=lambda: (runner.run(), done.set()), daemon=True).start()
    assert done.wait(10.0), "the run waited for the tester that failed"
    assert runner.issued == 2 and runner.worker_errors == ["worker 2: RuntimeError: no tester"]


def test_keys_are_taken_in_turn():
    log = []
    runner, _, _ = make_runner(RunPlan(threads=1, requests=4), work_s=0.0, log=log)
    runner.run()
    assert [k for _, _, k in log] == ["k1", "k2", "k1", "k2"]


def test_a_worker_bug_is_reported_not_swallowed():
    def make(index):
        raise RuntimeError("boom")

    runner = Runner(RunPlan(threads=2), make, lambda: "q", lambda: None, sink=lambda r: None)
    runner.run()
    assert len(runner.worker_errors) == 2 and "boom" in runner.worker_errors[0]


# -- open loop, warm-up, levels, early stop ------------------------------------------------

def test_open_loop_sends_on_schedule_when_threads_are_free():
    """Constant arrivals at 50/s with idle threads: each request is sent at its scheduled instant."""
    runner, records, _ = make_runner(RunPlan(threads=4, rate=50.0, arrival="constant", requests=10), work_s=0.001)
    runner.run()
    records.sort(key=lambda r: r.request_id)
    assert [r.request_id for r in records] == list(range(1, 11))
    gaps = [b.scheduled_ns - a.scheduled_ns for a, b in zip(records, records[1:])]
    assert all(abs(g - 20_000_000) <= 1 for g in gaps)
    assert max(r.queue_ms for r in records) < 15.0  # only the sleep's wake-up lateness


def test_open_loop_keeps_the_scheduled_time_when_every_thread_is_busy():
    """Coordinated omission: 1 thread, 100 ms per request, 50 arrivals/s. Requests queue, and their
    queue time grows by about 80 ms per request instead of being hidden."""
    runner, records, _ = make_runner(RunPlan(threads=1, rate=50.0, arrival="constant", requests=6), work_s=0.1)
    runner.run()
    records.sort(key=lambda r: r.request_id)
    queues = [r.queue_ms for r in records]
    assert queues[0] < 15.0
    for before, after in zip(queues, queues[1:]):
        assert after - before >= 70.0  # 100 ms of work - 20 ms spacing, give or take the clock
    assert records[-1].sent_ns - records[-1].scheduled_ns >= 350_000_000


def test_open_loop_counts_arrivals_never_sent_at_the_deadline():
    """1 thread of 200 ms requests against 40 arrivals/s for 0.5 s: ~20 due, ~3 sent, the rest not sent."""
    runner, records, _ = make_runner(RunPlan(threads=1, rate=40.0, arrival="constant", duration_s=0.5, grace_s=5),
                                 work_s=0.2)
    runner.run()
    due = 20  # offsets 0, 25, ..., 475 ms are before the 500 ms deadline
    assert len(records) + runner.not_sent() == due
    assert runner.not_sent() >= 15


def test_warmup_seconds_flag_the_first_requests_and_extend_the_run():
    runner, records, _ = make_runner(RunPlan(threads=1, duration_s=0.3, warmup_s=0.2), work_s=0.02)
    t0 = time.monotonic()
    runner.run()
    assert time.monotonic() - t0 >= 0.5  # warm-up comes on top of the duration
    records.sort(key=lambda r: r.request_id)
    flags = [r.warmup for r in records]
    assert flags[0] is True and flags[-1] is False
    assert flags == sorted(flags, reverse=True)  # warm-up is a prefix
    first_measured = next(r for r in records if not r.warmup)
    assert first_measured.request_id == runner.first_measured_id
    assert runner.measure_start_ns - runner.start_ns == 200_000_000


def test_warmup_requests_come_on_top_of_the_request_cap():
    runner, records, _ = make_runner(RunPlan(threads=2, requests=5, warmup_requests=3), work_s=0.001)
    runner.run()
    assert len(records) == 8
    assert sorted(r.request_id for r in records if r.warmup) == [1, 2, 3]


def test_levels_stamp_records_and_continue_request_ids():
    runner, records, _ = make_runner(RunPlan(threads=2, requests=4, first_request_id=11, level=2), work_s=0.001)
    runner.run()
    assert sorted(r.request_id for r in records) == [11, 12, 13, 14]
    assert {r.level for r in records} == {2} and not any(r.warmup for r in records)


def test_should_stop_ends_the_run_early_with_its_reason():
    runner, records, _ = make_runner(RunPlan(threads=2, duration_s=30), work_s=0.01)
    calls = []

    def should_stop():
        calls.append(1)
        return "too many errors" if len(calls) > 3 else None

    runner.run(should_stop=should_stop)  # --duration 30: only the reason ends it
    assert runner.stopped_early == "too many errors"
    assert len(calls) == 4, "run() stopped at the first poll that gave a reason"
    assert not runner.alive()


class FailingTester(FakeTester):
    """Every request fails at once (a wrong key or path), as `kind`."""

    def __init__(self, index, kind=ErrorKind.HTTP_STATUS, log=None):
        super().__init__(index, 0.0, log)
        self.kind = kind

    def run(self, request_id, thread_id, query, key, scheduled_ns=None):
        rec = super().run(request_id, thread_id, query, key, scheduled_ns)
        rec.ok = False
        rec.error_kind = self.kind
        rec.error = "HTTP 401: Access token is invalid"
        return rec


def _failing_runner(plan, brake):
    records = []
    lock = threading.Lock()

    def sink(rec):
        with lock:
            records.append(rec)

    runner = Runner(plan, lambda index: FailingTester(index), next_query=lambda: "q", next_key=lambda: None,
                    sink=sink, brake=brake)
    return runner, records


def test_the_brake_stops_a_run_whose_first_20_requests_all_fail_before_a_21st_is_sent():
    """The stop is decided in the worker thread that finished the 20th failure, before it sends
    again: with one thread exactly 20 requests are sent, and the reason names the top error."""
    from sse_perf_tool.runner import AllFailedBrake

    runner, records = _failing_runner(RunPlan(threads=1, duration_s=30), AllFailedBrake(20))
    runner.run()  # --duration 30: only the brake ends it
    assert len(records) == 20 and runner.issued == 20
    assert runner.stopped_early.startswith("each of the first 20 requests failed, 20 of them http_status")
    assert "Access token is invalid" in runner.stopped_early


def test_without_a_brake_a_failing_run_runs_its_course():
    runner, records = _failing_runner(RunPlan(threads=2, requests=30), None)
    runner.run()
    assert len(records) == 30 and runner.stopped_early is None
