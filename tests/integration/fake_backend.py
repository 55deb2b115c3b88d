"""An in-process backend for the worker pool's contract tests: each worker is worker_main on a
thread of this process, its channel two queues with a delivery delay, its clock skewed by an offset
(seconds are fine) and drifting (ppm), and its clock map estimated with backends.clock.ClockSync
over that same delay, as a remote backend estimates it. `kill(n)` makes worker n vanish as a dead
actor does: its channel reports EOF, and what it sends afterwards is lost.

Every wait here is bounded."""

from __future__ import annotations

import queue
import threading
import time
from typing import Optional

from sse_perf_tool.backends import Launched
from sse_perf_tool.backends.clock import ClockSync


class _Pipe:
    """One direction: messages arrive `delay_s` after they were sent, in order; at most `limit`
    wait (a full pipe blocks the sender, as a full pipe or outbox does)."""

    def __init__(self, delay_s: float, limit: int = 0):
        self.delay_s = delay_s
        self.items: queue.Queue = queue.Queue(limit)
        self.dead = threading.Event()

    def put(self, message) -> None:
        while not self.dead.is_set():
            try:
                self.items.put((time.monotonic() + self.delay_s, message), timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self.dead.is_set():
                raise EOFError("the worker is gone")
            try:
                due, message = self.items.get(timeout=0.1)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            return message


class _End:
    """One end of a worker's channel."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe):
        self.outgoing, self.incoming = outgoing, incoming

    def send(self, message) -> None:
        if self.outgoing.dead.is_set():
            raise OSError("the worker is gone")
        self.outgoing.put(message)

    def recv(self):
        return self.incoming.get()

    def close(self) -> None:
        self.outgoing.dead.set()


class SkewedClock:
    """perf_counter_ns() + offset, drifting by `drift_ppm` from the instant it was made."""

    def __init__(self, offset_ns: int, drift_ppm: float):
        self.offset_ns, self.drift_ppm = offset_ns, drift_ppm
        self.origin = time.perf_counter_ns()

    def __call__(self) -> int:
        now = time.perf_counter_ns()
        return now + self.offset_ns + int((now - self.origin) * self.drift_ppm * 1e-6)


class _Handle:
    def __init__(self, thread: threading.Thread, number: int, down: _Pipe, up: _Pipe):
        self.thread, self.number, self.down, self.up = thread, number, down, up
        self.exitcode: Optional[int] = None
        self.where = f"fake worker {number}"
        self.pid = None

    def join(self, timeout: Optional[float] = None) -> None:
        self.thread.join(timeout)
        if not self.thread.is_alive() and self.exitcode is None:
            self.exitcode = 0

    def is_alive(self) -> bool:
        return self.thread.is_alive() and not self.up.dead.is_set()

    def terminate(self) -> None:
        self.kill()

    def kill(self) -> None:
        self.exitcode = -9
        self.up.dead.set()
        self.down.dead.set()


class FakeBackend:
    name = "fake"

    def __init__(self, workers: int, delay_s: float = 0.002, skews_ns=(), drift_ppm: float = 0.0,
                 up_limit: int = 0):
        self.processes = workers
        self.delay_s = delay_s
        self.skews_ns = list(skews_ns) + [0] * workers
        self.drift_ppm = drift_ppm
        self.up_limit = up_limit
        self.handles: list[_Handle] = []
        self.syncs: list[ClockSync] = []
        self.clocks: list[SkewedClock] = []

    def launch(self, entry, count, api, settings, tokenizer):
        launched = []
        for number in range(1, count + 1):
            down, up = _Pipe(self.delay_s), _Pipe(self.delay_s, self.up_limit)
            clock = SkewedClock(self.skews_ns[number - 1], self.drift_ppm)
            worker_end = _End(up, down)
            thread = threading.Thread(target=self._run, args=(entry, worker_end, api, settings, tokenizer, clock),
                                      name=f"fake-worker-{number}", daemon=True)
            thread.start()

            def worker_now(clock=clock):  # a round trip of the channel's delay, the reading in the middle
                time.sleep(self.delay_s)
                reading = clock()
                time.sleep(self.delay_s)
                return reading

            sync = ClockSync(worker_now)
            sync.round()
            handle = _Handle(thread, number, down, up)
            self.handles.append(handle)
            self.syncs.append(sync)
            self.clocks.append(clock)
            launched.append(Launched(_End(down, up), handle, sync.map))
        return launched

    @staticmethod
    def _run(entry, conn, api, settings, tokenizer, clock) -> None:
        try:
            entry(conn, api, settings, tokenizer, clock=clock)
        finally:
            conn.close()

    def usable_cores(self) -> int:
        return self.processes + 1

    def describe(self) -> dict:
        return {"backend": "fake", "workers": self.processes}

    def shutdown(self) -> None:
        for handle in self.handles:
            handle.down.dead.set()
