"""Worker threads: ramp-up, duration, request cap, stop and cancel. Hands records to a sink.

Imports records and tester types only; statistics live in the aggregator. The closed loop:
each thread sends its next request when the previous one ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

_NS = 1_000_000_000


@dataclass(frozen=True)
class RunPlan:
    threads: int = 1
    ramp_up_s: float = 0.0
    duration_s: float = 0.0  # 0 = one request per thread, unless `requests` is set
    requests: Optional[int] = None  # total cap
    grace_s: float = 30.0  # after the duration, in-flight requests get this long, then are cancelled
    cancel_wait_s: float = 2.0  # after a cancel, how long to wait before claiming stragglers


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
        clock: Callable[[], int] = time.perf_counter_ns,
    ):
        self.plan = plan
        self.make_tester = make_tester
        self.next_query = next_query
        self.next_key = next_key
        self.sink = sink
        self.clock = clock
        self.start_ns: Optional[int] = None
        self.stop_event = threading.Event()
        self.testers: dict[int, object] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._issued = 0
        self._active = 0
        self.worker_errors: list[str] = []

    # -- observed by the aggregator --
    @property
    def active_threads(self) -> int:
        return self._active

    @property
    def issued(self) -> int:
        return self._issued

    def live_events(self) -> int:
        return sum(t.events_received for t in list(self.testers.values()))

    # -- control --
    def start(self, start_ns: Optional[int] = None) -> None:
        self.start_ns = self.clock() if start_ns is None else start_ns
        for index in range(1, self.plan.threads + 1):
            thread = threading.Thread(target=self._worker, args=(index,), name=f"sse-perf-worker-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def run(self, poll_s: float = 0.05) -> None:
        """Start (if needed) and wait for the workers; apply the duration's end and the grace period."""
        if self.start_ns is None:
            self.start()
        plan = self.plan
        deadline = self.start_ns + int(plan.duration_s * _NS) if plan.duration_s > 0 else None
        grace_deadline = None
        while self.alive():
            time.sleep(poll_s)  # interruptible by Ctrl-C, unlike a long join
            now = self.clock()
            if deadline is not None and grace_deadline is None and now >= deadline:
                self.stop_event.set()  # no new requests; those in flight may finish
                grace_deadline = now + int(plan.grace_s * _NS)
            if grace_deadline is not None and now >= grace_deadline:
                self.cancel()
                return

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def cancel(self) -> None:
        """Stop sending at once; in-flight requests end as `cancelled` within cancel_wait_s."""
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

    # -- the workers --
    def _claim(self) -> Optional[int]:
        """The next request id, or None when the run is over (stop, duration or cap)."""
        plan = self.plan
        with self._lock:
            if self.stop_event.is_set():
                return None
            if plan.requests is not None and self._issued >= plan.requests:
                return None
            if plan.duration_s > 0 and self.clock() >= self.start_ns + plan.duration_s * _NS:
                return None
            self._issued += 1
            return self._issued

    def _worker(self, index: int) -> None:
        plan = self.plan
        delay = plan.ramp_up_s * (index - 1) / plan.threads
        if delay > 0:
            wake_ns = self.start_ns + int(delay * _NS)
            remaining = (wake_ns - self.clock()) / _NS
            if remaining > 0 and self.stop_event.wait(remaining):
                return
        one_each = plan.duration_s <= 0 and plan.requests is None
        tester = None
        with self._lock:
            self._active += 1
        try:
            tester = self.make_tester(index)
            self.testers[index] = tester
            while True:
                request_id = self._claim()
                if request_id is None:
                    break
                record = tester.run(request_id, index, self.next_query(), self.next_key())
                if record is not None:
                    self.sink(record)
                if one_each:
                    break
        except Exception as exc:  # a bug, not a server fault: keep it visible, stop this worker only
            self.worker_errors.append(f"worker {index}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active -= 1
            if tester is not None:
                tester.close()
