"""Worker threads: ramp-up, duration, request cap, warm-up, open-loop arrivals, stop and cancel.
Hands records to a sink.

Imports arrivals only (testers and records come in through callables); statistics live in the aggregator.
Closed loop (default): each thread sends its next request when the previous one ends.
Open loop (`rate`): requests are due on an arrival schedule independent of responses; the
threads cap how many are in flight, and a request that waits for a free thread keeps its
scheduled instant, so its queue time counts (no coordinated omission).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from . import collector
from .arrivals import arrival_offsets_ns

_NS = 1_000_000_000
RETRY_AFTER_LIMIT_S = 60.0  # the longest Retry-After a virtual user waits out
ALL_FAILED_STOP = 20  # a run whose first 20 measured requests all failed is stopped (unless --keep-going)
MAKE_TESTERS_WAIT_S = 10.0  # how long the threads wait for every tester to be made before they begin anyway


class AllFailedBrake:
    """The brake on a misconfigured run: when each of the first `limit` measured requests (by request
    id, not by the order they finish in: a few fast failures must not stop a run whose first requests
    are still streaming) failed, the run stops with one line naming the most frequent error. Cancels
    are the tool's own and do not count. One for the whole run (sweep levels included); called from
    worker threads."""

    def __init__(self, limit: int = ALL_FAILED_STOP):
        self.limit = limit
        self._base: Optional[int] = None  # the first measured request id of the run
        self._failed = 0
        self._done = False  # tripped, or a request of the first `limit` succeeded
        self._errors: dict[str, list] = {}  # error_kind -> [count, first message]
        self._lock = threading.Lock()

    def judge(self, record, first_measured_id: Optional[int]) -> Optional[str]:
        """The reason to stop, once, when the last of the first `limit` measured requests came back
        failed like all the others; else None."""
        kind = getattr(record.error_kind, "value", record.error_kind)
        with self._lock:
            if self._done or first_measured_id is None:
                return None
            if self._base is None:
                self._base = first_measured_id
            if not self._base <= record.request_id < self._base + self.limit or kind in ("cancelled", "abandoned"):
                return None
            if record.ok:
                self._done = True  # something works: the brake is off for the rest of the run
                return None
            self._failed += 1
            entry = self._errors.setdefault(kind or "unknown", [0, record.error or kind])
            entry[0] += 1
            if self._failed < self.limit:
                return None
            self._done = True
            top_kind, (count, message) = max(self._errors.items(), key=lambda item: item[1][0])
        return (f"each of the first {self.limit} requests failed, {count} of them {top_kind}: {message} "
                "(check the URL, --api, the key and options; --keep-going runs on anyway)")


@dataclass(frozen=True)
class RunPlan:
    threads: int = 1
    ramp_up_s: float = 0.0
    duration_s: float = 0.0  # 0 = one request per thread, unless `requests` is set
    requests: Optional[int] = None  # measured requests (warm-up ones come on top)
    grace_s: float = 30.0  # after the duration, in-flight requests get this long, then are cancelled
    cancel_wait_s: float = 2.0  # after a cancel, how long to wait before claiming stragglers
    rate: Optional[float] = None  # open loop: requests per second (None = closed loop)
    arrival: str = "poisson"
    seed: Optional[int] = None
    warmup_s: float = 0.0  # the first S seconds are warm-up; --duration counts after them
    warmup_requests: int = 0  # the first N requests are warm-up; --duration counts after them
    first_request_id: int = 1  # sweeps: request ids go on across levels
    level: Optional[float] = None  # sweeps: the level value stamped on every record
    schedule: Optional[tuple] = None  # --trace: the arrivals' offsets (ns), in order; the run ends after the last

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or self.schedule is not None


class Runner:
    """Owns the worker threads. `run()` blocks in the calling thread; KeyboardInterrupt passes
    through it to the caller, who then calls `cancel()`."""

    def __init__(
        self,
        plan: RunPlan,
        make_tester: Callable[[int], object],
        next_query: Callable[[], object],
        next_key: Callable[[], Optional[str]],
        sink: Callable[[object], None],
        brake: Optional["AllFailedBrake"] = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        honor_retry_after: bool = False,
    ):
        self.plan = plan
        self.make_tester = make_tester
        self.next_query = next_query
        self.next_key = next_key
        self._sink = sink
        self.brake = brake
        self.clock = clock
        # --honor-retry-after: a closed-loop virtual user told to wait (HTTP 429 with Retry-After) waits
        self.honor_retry_after = honor_retry_after and not plan.open_loop
        self.start_ns: Optional[int] = None
        self.measure_start_ns: Optional[int] = None  # end of warm-up: when the first measured request was due
        self.first_measured_id: Optional[int] = None
        self.stopped_early: Optional[str] = None
        self.stop_event = threading.Event()
        self.testers: dict[int, object] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._issued = 0
        self._active = 0
        self._in_flight = 0
        self._schedule = None
        if plan.open_loop:
            self._schedule = iter(plan.schedule) if plan.schedule is not None else \
                arrival_offsets_ns(plan.rate, plan.arrival, plan.seed)
        self._pending_offset: Optional[int] = None  # the next arrival not yet claimed
        self._not_sent: Optional[int] = None
        self._sending_ended_ns: Optional[int] = None  # set by a cancel (Ctrl-C, early stop, end of grace)
        self._abandoned: list[int] = []  # scheduled instants of arrivals claimed, then dropped by a cancel
        self._cancel_event = threading.Event()  # set by cancel(): a worker waiting out an arrival's instant wakes
        self.worker_errors: list[str] = []
        self._gate = threading.Event()  # opened once every worker thread has made its tester
        self._made = threading.Semaphore(0)  # one release per worker thread whose tester is made (or failed)
        self._left = 0  # worker threads not yet ended
        self._all_ended = threading.Event()  # the last one has: run() returns at once, not at its next look

    # -- observed by the aggregator --
    @property
    def active_threads(self) -> int:
        """Closed loop: live worker threads. Open loop: requests in flight (threads busy)."""
        return self._in_flight if self.plan.open_loop else self._active

    @property
    def issued(self) -> int:
        return self._issued

    def live_events(self) -> int:
        return sum(t.events_received for t in list(self.testers.values()))

    @property
    def deadline_ns(self) -> Optional[int]:
        """When sending stops: --duration after the end of warm-up (None: no time limit, or warm-up
        by request count not over yet)."""
        if self.plan.duration_s <= 0 or self.measure_start_ns is None:
            return None
        return self.measure_start_ns + int(self.plan.duration_s * _NS)

    # -- control --
    def start(self, start_ns: Optional[int] = None) -> None:
        self.start_ns = self.clock() if start_ns is None else start_ns
        if self.plan.warmup_requests <= 0:
            self.measure_start_ns = self.start_ns + int(self.plan.warmup_s * _NS)
        # Every thread and its tester are made first and then they begin together: a thread started
        # while the earlier ones already send and read waits for the interpreter lock behind them.
        # At 128 threads started one by one the first requests went out over 160 ms; with the
        # threads made first, over 21-28 ms; at 64 threads, the testers made in the race too, the
        # first answers still came over 80-300 ms, against 60-70 ms for an asyncio client.
        self._gate.clear()
        self._left += self.plan.threads
        for index in range(1, self.plan.threads + 1):
            thread = threading.Thread(target=self._worker, args=(index,), name=f"sse-perf-worker-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        until = time.monotonic() + MAKE_TESTERS_WAIT_S
        for _ in range(self.plan.threads):  # a tester that takes longer begins when it is made
            if not self._made.acquire(timeout=max(0.0, until - time.monotonic())):
                break
        self._gate.set()

    def run(self, poll_s: float = 0.05, should_stop: Callable[[], Optional[str]] = lambda: None) -> None:
        """Start (if needed) and wait for the workers; apply the duration's end and the grace period.
        `should_stop` returns a reason to stop early (e.g. the error rate), or None. The garbage
        collector runs with the load's settings meanwhile (collector.py)."""
        with collector.for_the_load():
            self._run(poll_s, should_stop)

    def _run(self, poll_s: float, should_stop: Callable[[], Optional[str]]) -> None:
        if self.start_ns is None:
            self.start()
        grace_deadline = None
        while self.alive():
            if self._all_ended.wait(poll_s):  # interruptible by Ctrl-C, unlike a long join
                for thread in self._threads:
                    thread.join(1.0)  # each has ended its work; only its last steps are left
            if self.stopped_early:  # the brake, from a worker's record: no new request was sent since
                self.cancel()
                return
            reason = should_stop()
            if reason:
                self.stopped_early = reason
                self.cancel()
                return
            now = self.clock()
            deadline = self.deadline_ns
            if deadline is not None and grace_deadline is None and now >= deadline:
                self.stop_event.set()  # no new requests; those in flight may finish
                grace_deadline = now + int(self.plan.grace_s * _NS)
            if grace_deadline is not None and now >= grace_deadline:
                self.cancel()
                return

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def cancel(self) -> None:
        """Stop sending at once; in-flight requests end as `cancelled` within cancel_wait_s."""
        if self._sending_ended_ns is None:
            self._sending_ended_ns = self.clock()
        self._cancel_event.set()
        self.stop_event.set()
        for tester in list(self.testers.values()):
            tester.abort()
        end = time.monotonic() + self.plan.cancel_wait_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        for tester in list(self.testers.values()):
            record = tester.take_in_flight()
            if record is not None:
                self.sink(record)

    def not_sent(self) -> int:
        """Open loop, after the run: measured arrivals due before the deadline (or before sending
        stopped) that were never sent because every thread was busy (k6's dropped iterations)."""
        if not self.plan.open_loop or self.start_ns is None or not self.stop_event.is_set():
            return 0  # only known once sending has stopped (counting consumes the schedule)
        if self._not_sent is not None:
            return self._not_sent
        deadline = self.deadline_ns
        if self._sending_ended_ns is not None and (deadline is None or self._sending_ended_ns < deadline):
            deadline = self._sending_ended_ns  # stopped early or cancelled: later arrivals were never due
        count = 0
        with self._lock:
            for due in self._abandoned:  # claimed, then dropped by the cancel before they were sent
                measured = self.measure_start_ns is None or due >= self.measure_start_ns
                count += measured and (deadline is None or due < deadline)
            offset = self._pending_offset
            issued = self._issued
            while True:
                if offset is None:
                    offset = next(self._schedule)
                if deadline is None or self.start_ns + offset >= deadline:
                    break
                if self._cap_reached(issued + count):
                    break
                measured = self.measure_start_ns is None or self.start_ns + offset >= self.measure_start_ns
                count += measured  # warm-up arrivals are excluded, like every warm-up figure
                offset = None
            self._pending_offset = offset
        self._not_sent = count
        return count

    def sink(self, record) -> None:
        """Stamp the level and the warm-up flag (warm-up is a prefix of the request ids), pass on."""
        record.level = self.plan.level
        first = self.first_measured_id
        record.warmup = first is None or record.request_id < first
        if self.brake is not None and not record.warmup:
            reason = self.brake.judge(record, first)
            if reason and self.stopped_early is None:
                self.stopped_early = reason
                if self._sending_ended_ns is None:
                    self._sending_ended_ns = self.clock()  # sending ends here, not at run()'s next poll
                self.stop_event.set()  # decided in the worker thread itself: no request is sent after it
        self._sink(record)

    # -- the workers --
    def _measured_issued(self, issued: int) -> int:
        """How many of the first `issued` requests are measured (warm-up is a prefix of the ids)."""
        first = self.first_measured_id
        if first is None:
            return 0
        return issued - (first - self.plan.first_request_id)

    def _cap_reached(self, issued: int) -> bool:
        """--requests counts measured requests; warm-up ones (by seconds or by count) come on top."""
        plan = self.plan
        if plan.requests is None:
            return False
        if plan.warmup_requests > 0:
            return issued >= plan.requests + plan.warmup_requests
        return self._measured_issued(issued) >= plan.requests

    def _claim(self) -> Optional[tuple[int, Optional[int]]]:
        """The next (request id, scheduled instant or None), or None when the run is over."""
        plan = self.plan
        with self._lock:
            if self.stop_event.is_set():
                return None
            if self._cap_reached(self._issued):
                return None
            scheduled_ns = None
            if plan.open_loop:
                if self._pending_offset is None:
                    self._pending_offset = next(self._schedule, None)
                    if self._pending_offset is None:  # a trace's last arrival has gone: the run ends
                        return None
                due = self.start_ns + self._pending_offset
            else:
                due = self.clock()
            deadline = self.deadline_ns
            if deadline is not None and due >= deadline:
                return None
            if plan.open_loop:
                scheduled_ns, self._pending_offset = due, None
            self._issued += 1
            request_id = plan.first_request_id + self._issued - 1
            if self.first_measured_id is None and self._is_measured(due):
                self.first_measured_id = request_id
                if self.measure_start_ns is None:
                    self.measure_start_ns = due
            return request_id, scheduled_ns

    def _wait_until_due(self, scheduled_ns: int) -> bool:
        """Open loop: sleep until a claimed arrival is due; False when it must not be sent after all.
        The deadline can pass while a worker waits for an arrival due before it (the poll that sets
        the stop event is late, or this thread was): that arrival is still sent, as it was due. After a
        cancel (Ctrl-C, an early stop, the end of grace) it is dropped and counted as not sent."""
        wait_s = (scheduled_ns - self.clock()) / _NS
        if wait_s <= 0 or not self.stop_event.wait(wait_s):
            return True
        if self._sending_ended_ns is not None or self.stopped_early:
            with self._lock:
                self._abandoned.append(scheduled_ns)
            return False
        remaining_s = (scheduled_ns - self.clock()) / _NS
        if remaining_s > 0 and self._cancel_event.wait(remaining_s):  # due before the deadline: wait it out
            with self._lock:
                self._abandoned.append(scheduled_ns)
            return False
        return True

    def _is_measured(self, due_ns: int) -> bool:
        plan = self.plan
        if plan.warmup_requests > 0:
            return self._issued > plan.warmup_requests
        return due_ns >= self.start_ns + int(plan.warmup_s * _NS)

    def _worker(self, index: int) -> None:
        # The tester is made before the gate opens: its first request then costs what every later
        # one does (its connection pool and the reader already there), so the threads' first
        # requests go out together instead of one after another behind the interpreter lock.
        tester = None
        try:
            tester = self.make_tester(index)
            self.testers[index] = tester
        except Exception as exc:  # a bug, not a server fault: keep it visible, stop this worker only
            self.worker_errors.append(f"worker {index}: {type(exc).__name__}: {exc}")
        finally:
            self._made.release()
        self._gate.wait()
        if tester is None:
            self._end_worker(None)
            return
        plan = self.plan
        delay = 0.0 if plan.open_loop else plan.ramp_up_s * (index - 1) / plan.threads
        if delay > 0:
            wake_ns = self.start_ns + int(delay * _NS)
            remaining = (wake_ns - self.clock()) / _NS
            if remaining > 0 and self.stop_event.wait(remaining):
                self._end_worker(tester)
                return
        one_each = plan.duration_s <= 0 and plan.requests is None and not plan.open_loop
        with self._lock:
            self._active += 1
        waited_ms = None
        try:
            while True:
                claim = self._claim()
                if claim is None:
                    break
                request_id, scheduled_ns = claim
                if scheduled_ns is not None and not self._wait_until_due(scheduled_ns):
                    break
                with self._lock:
                    self._in_flight += 1
                try:
                    record = tester.run(request_id, index, self.next_query(), self.next_key(), scheduled_ns)
                finally:
                    with self._lock:
                        self._in_flight -= 1
                if record is not None:
                    record.retry_wait_ms, waited_ms = waited_ms, None
                    self.sink(record)
                    if self.honor_retry_after and record.retry_after_s:
                        started = self.clock()
                        if self.stop_event.wait(min(record.retry_after_s, RETRY_AFTER_LIMIT_S)):
                            break
                        waited_ms = (self.clock() - started) / 1e6  # recorded on the next request
                if one_each:
                    break
        except Exception as exc:  # a bug, not a server fault: keep it visible, stop this worker only
            self.worker_errors.append(f"worker {index}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active -= 1
            self._end_worker(tester)

    def _end_worker(self, tester) -> None:
        if tester is not None:
            tester.close()
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._all_ended.set()
