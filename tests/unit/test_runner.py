"""runner, without real time: the all-failed brake's judgement, the open-loop race around the
deadline (an arrival claimed before it is sent) and the ramp-up schedule, with a scripted clock and
instrumented stop events. The runner's threads in real time: tests/integration/test_runner.py."""

import threading

import pytest

from runner_fakes import make_runner
from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.runner import RunPlan


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


# -- the open-loop race around the deadline, deterministically ----------------------------------
# A worker claims an arrival, then waits on the runner's stop event until the arrival is due. The
# stop (the deadline, or a cancel) can come while it waits. Found as a flaky `19 + 0 != 20`: the
# worker saw the stop and dropped the arrival, whose request id was then counted neither as sent
# nor as not sent. Here the runner's clock is scripted and its stop event instrumented: the worker
# is held inside that wait until the test has moved the clock and stopped the run, so the
# interleaving is the same on every run and on any machine.

MS = 1_000_000  # ns
HANG_S = 10.0  # bounds against a hang only; nothing below waits for real time to pass


class ScriptedClock:
    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now


class HeldStopEvent(threading.Event):
    """The runner's stop event. The first timed wait on it (a worker waiting for an arrival's
    instant) records its timeout, says so through `waiting`, and returns only once the event is
    set: the worker sees the stop while it waits, whatever the scheduler does."""

    def __init__(self):
        super().__init__()
        self.waiting = threading.Event()
        self.timeouts: list[float] = []

    def wait(self, timeout=None):
        if timeout is None or self.waiting.is_set():
            return super().wait(timeout)
        self.timeouts.append(timeout)
        self.waiting.set()
        return super().wait(HANG_S)


class RecordedEvent(threading.Event):
    """The runner's cancel event: records each timed wait and answers at once (no cancel came)."""

    def __init__(self):
        super().__init__()
        self.timeouts: list[float] = []

    def wait(self, timeout=None):
        self.timeouts.append(timeout)
        return self.is_set()


def _held_open_loop(duration_s: float):
    """One thread, constant arrivals at 5/s (due at 0, 200, 400 ms ...), the clock at 0: the worker
    sends arrival 1 at once and is then held waiting for arrival 2 (due at 200 ms)."""
    clock = ScriptedClock()
    runner, records, _ = make_runner(RunPlan(threads=1, duration_s=duration_s, rate=5.0, arrival="constant"),
                                 work_s=0.0, clock=clock)
    runner.stop_event = HeldStopEvent()
    runner._cancel_event = RecordedEvent()
    runner.start()
    assert runner.stop_event.waiting.wait(HANG_S), "the worker never waited for arrival 2"
    assert [r.request_id for r in records] == [1]
    assert runner.stop_event.timeouts == [pytest.approx(0.2)]  # from 0 ms until arrival 2 is due
    return runner, records, clock


def _join(runner) -> None:
    for thread in runner._threads:
        thread.join(HANG_S)
    assert not runner.alive()


@pytest.mark.parametrize("stop_at_ms, waits_out_s", [
    pytest.param(300, [], id="stop-at-the-deadline-after-it-was-due"),
    pytest.param(100, [pytest.approx(0.1)], id="stop-before-it-was-due"),
])
def test_an_arrival_due_before_the_deadline_is_sent_even_if_the_stop_comes_while_it_waits(stop_at_ms, waits_out_s):
    """Deadline 300 ms. The stop event is set (as run() does at the deadline) while the worker waits
    for arrival 2, due at 200 ms, before the deadline: arrival 2 is still sent, so every claimed
    request id is either sent or not sent (2 + 0 == 2). Stopped at 300 ms it is already due and
    goes at once; stopped at 100 ms the worker first waits out the 100 ms left (on the cancel
    event, which a cancel would cut short)."""
    runner, records, clock = _held_open_loop(duration_s=0.3)
    clock.now = stop_at_ms * MS
    runner.stop_event.set()
    _join(runner)
    assert runner.issued == 2
    assert sorted(r.request_id for r in records) == [1, 2]
    assert runner.not_sent() == 0  # arrival 3 (400 ms) was due after the deadline
    assert len(records) + runner.not_sent() == runner.issued
    assert runner._cancel_event.timeouts == waits_out_s


@pytest.mark.parametrize("cancel_at_ms, not_sent", [
    pytest.param(100, 0, id="cancel-before-it-was-due"),
    pytest.param(250, 1, id="cancel-after-it-was-due"),
])
def test_an_arrival_dropped_by_a_cancel_is_not_sent_and_counted_only_if_it_was_due(cancel_at_ms, not_sent):
    """A cancel (Ctrl-C, an early stop) while the worker waits for arrival 2 (due at 200 ms): it is
    dropped. Cancelled at 100 ms it was not yet due when sending ended, so it is no `not_sent`
    either (k6's dropped iterations count only arrivals due while sending); cancelled at 250 ms
    (the worker was late) it was due, never sent, and counts as not sent: 1 + 1 == 2."""
    runner, records, clock = _held_open_loop(duration_s=5)
    clock.now = cancel_at_ms * MS
    runner.cancel()
    _join(runner)
    assert [r.request_id for r in records] == [1]
    assert runner.issued == 2
    assert runner.not_sent() == not_sent


# -- ramp-up ---------------------------------------------------------------------------------------

class RecordingStopEvent(threading.Event):
    """The runner's stop event: records each timed wait (by worker thread) and answers at once as
    a wait that ran out would (no stop came), so no real time passes."""

    def __init__(self):
        super().__init__()
        self.timeouts: dict[str, float] = {}

    def wait(self, timeout=None):
        if timeout is None:
            return super().wait()
        self.timeouts[threading.current_thread().name] = timeout
        return self.is_set()


def test_ramp_up_starts_threads_evenly():
    """--ramp-up 0.6 with 4 threads: thread i waits ramp * (i-1) / threads after the start (0,
    0.15, 0.3, 0.45 s) before its first request; the clock is scripted at the start instant, so
    the waits asked for are exactly those."""
    clock = ScriptedClock()
    log = []
    runner, records, _ = make_runner(RunPlan(threads=4, ramp_up_s=0.6), work_s=0.0, log=log, clock=clock)
    runner.stop_event = RecordingStopEvent()
    runner.run()
    assert runner.stop_event.timeouts == {f"sse-perf-worker-{i}": pytest.approx(0.15 * (i - 1)) for i in (2, 3, 4)}
    assert sorted(thread for thread, _, _ in log) == [1, 2, 3, 4]  # one request each, once its wait was over
