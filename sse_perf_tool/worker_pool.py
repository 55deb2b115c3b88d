"""`--processes P` and `--ray`: the streams are read in worker processes, so reading events is not
limited to one interpreter lock; everything else stays in this process (the driver).

The driver's Runner still owns the run: request ids, the arrival schedule, ramp-up, caps, warm-up,
sweeps, stop and cancel, so every load model behaves exactly as with one process. Its worker
threads get a RemoteTester instead of an SSETester: `run()` hands the request (id, query, key,
scheduled instant) to a slot in a worker, where a thread of its own runs a real SSETester, and
waits for the record.

Where the workers run and how their messages travel is the backend's (backends/: spawned processes
over pipes, or Ray actors); the protocol here is the same over each. A worker's records are stamped
on its own monotonic clock and put on the driver's as they arrive (backends.translate_record, with
the worker's ClockMap: the identity for processes on this machine); a scheduled instant goes to the
worker on its clock and comes back as the driver's own value.

Workers exit when their channel closes. Each one also runs the self-check's lag probe and reports
its lag samples, its CPU time and its per-slot event counts ten times a second, and says who it is
when ready (pid, host, sse-perf and Python versions): a worker of another sse-perf version is
refused.

Imports the backends' seam and records; the worker's side imports tester, flavors and tokens.
"""

from __future__ import annotations

import os
import platform
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import __version__, collector
from .backends import Backend, ClockMap, Launched, translate_record
from .records import ErrorKind, RequestRecord

START_TIMEOUT_S = 60.0  # a worker builds its tokenizer before it says it is ready
TAKE_TIMEOUT_S = 1.0  # how long take_in_flight waits for a worker's answer
TICK_S = 0.1  # how often a worker reports lags, CPU and event counts
_PROBE_SLEEP_S = 0.010  # selfcheck.PROBE_SLEEP_S (not imported: the child imports as little as it can)


class WorkerPoolError(RuntimeError):
    """A worker could not start."""


class WorkerRefused(WorkerPoolError):
    """A worker that must not be used (another sse-perf version, a clock known too loosely, a
    cluster that cannot place the workers): bad usage, said before anything is sent."""


# -- the parent's side ----------------------------------------------------------------------------


@dataclass
class _Waiter:
    """One request handed to a worker, as the parent knows it."""

    request_id: int
    thread_id: int
    query: object
    scheduled_ns: Optional[int]
    sent_ns: int
    started_at: float
    done: threading.Event = field(default_factory=threading.Event)
    record: Optional[RequestRecord] = None
    claimed: bool = False  # take_in_flight answered for it: its own result is dropped
    taken: threading.Event = field(default_factory=threading.Event)
    taken_record: Optional[RequestRecord] = None


class _Worker:
    """One worker, its channel, and the thread that reads what it sends."""

    def __init__(self, number: int, launched: Launched):
        self.number = number
        self.conn = launched.channel
        self.process = launched.handle
        self.clock: ClockMap = launched.clock
        self.info: dict = {}  # what it said of itself when ready
        self.send_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.waiting: dict[int, _Waiter] = {}
        self.events: dict[int, int] = {}
        self.cpu_s = 0.0
        self.lags_ms: list[float] = []
        self.merged = True  # its lag samples also go to the driver's own self-check (take_lags)
        # its own self-check, a second at a time (on the driver's clock): second -> [lags, CPU s at the
        # second's first report, at its last, and when those came], for a verdict on this worker alone
        self.seconds: dict[int, list] = {}
        self.ready = threading.Event()
        self.failure: Optional[str] = None  # why it could not start, or why it is gone
        self.refused = False  # it started but must not be used (another sse-perf version)
        self.gone = False
        self.closing = False  # close() asked it to stop: its exit is expected, not a failure
        self.reader = threading.Thread(target=self._read, name=f"sse-perf-pool-reader-{number}", daemon=True)
        self.reader.start()

    def send(self, message: tuple) -> bool:
        if self.gone:
            return False
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):  # its pipe is closed: the reader notices and fails what waits
            return False

    def _read(self) -> None:
        try:
            self._read_messages()
        except Exception as exc:  # noqa: BLE001 - a message that cannot be read (unpickling, a bad shape): the
            self.failure = self.failure or f"worker process {self.number}: unreadable message: {exc!r}"[:300]
        finally:  # worker is lost, and whatever waits on it is failed instead of waiting for ever
            self._lost()

    def _read_messages(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "done":
                _, slot, record, events = message
                with self.state_lock:
                    waiter = self.waiting.pop(slot, None)
                    self.events[slot] = events
                if waiter is not None:
                    waiter.record = None if waiter.claimed else self._on_driver_clock(record, waiter)
                    waiter.done.set()
            elif kind == "tick":
                _, events, cpu_s, lags = message
                now = time.perf_counter_ns()
                with self.state_lock:
                    self.events.update(events)
                    self.cpu_s = cpu_s
                    if self.merged:
                        self.lags_ms.extend(lags)
                    second = self.seconds.get(now // 1_000_000_000)
                    if second is None:
                        self.seconds[now // 1_000_000_000] = [list(lags), cpu_s, cpu_s, now, now]
                    else:
                        second[0].extend(lags)
                        second[2], second[4] = cpu_s, now
            elif kind == "taken":
                _, slot, record = message
                with self.state_lock:
                    waiter = self.waiting.get(slot)
                if waiter is not None:
                    waiter.taken_record = self._on_driver_clock(record, waiter)
                    waiter.taken.set()
            elif kind == "ready":
                self.info = message[1] if isinstance(message[1], dict) else {"pid": message[1]}
                version = self.info.get("sse_perf")
                if version is not None and version != __version__:
                    self.refused = True
                    self.failure = (f"worker {self.number} ({self.process.where}) runs sse-perf {version}, this "
                                    f"machine {__version__}: install the same version everywhere")
                self.ready.set()
            elif kind == "failed":
                self.failure = message[1]
                self.ready.set()

    def _on_driver_clock(self, record: Optional[RequestRecord], waiter: "_Waiter") -> Optional[RequestRecord]:
        """A record from the worker on the driver's timeline, with the driver's own scheduled instant."""
        if record is None:
            return None
        translate_record(record, self.clock)
        record.scheduled_ns = waiter.scheduled_ns
        return record

    def _lost(self) -> None:
        """The channel closed: whatever waits on this worker is failed now instead of waiting forever."""
        self.gone = True
        self.process.join(1.0)
        code = self.process.exitcode
        if self.failure is None and not self.closing:
            self.failure = f"worker process {self.number} exited unexpectedly" + (
                f" (exit code {code})" if code is not None else "")
        self.ready.set()
        with self.state_lock:
            waiting, self.waiting = self.waiting, {}
        for waiter in waiting.values():
            waiter.taken.set()
            waiter.done.set()

    def close(self, timeout_s: float = 5.0) -> None:
        self.closing = True
        self.send(("stop",))
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        self.reader.join(2.0)  # it ends on the pipe's EOF, now that the worker is gone
        self.conn.close()


class RemoteTester:
    """The SSETester interface (run, abort, take_in_flight, events_received, close) over a worker's
    pipe; one per Runner thread, bound to one slot in one worker process."""

    def __init__(self, worker: _Worker, slot: int, clock=time.perf_counter_ns):
        self.worker = worker
        self.slot = slot
        self.clock = clock
        self._waiter: Optional[_Waiter] = None
        self._aborted = False  # sticky, as in SSETester: a request claimed after a cancel is not sent
        # the worker makes the slot's tester now, as the Runner makes its testers before its threads
        # begin; the pipe keeps the order, so every slot is made before the first request reaches it
        worker.send(("make", slot))

    @property
    def events_received(self) -> int:
        return self.worker.events.get(self.slot, 0)

    def run(self, request_id: int, thread_id: int, query, api_key: Optional[str],
            scheduled_ns: Optional[int] = None) -> Optional[RequestRecord]:
        worker = self.worker
        if worker.gone:
            raise WorkerPoolError(worker.failure or f"worker process {worker.number} is gone")
        waiter = _Waiter(request_id, thread_id, query, scheduled_ns, self.clock(), time.time())
        if self._aborted:
            return self._lost_record(waiter, "cancelled before it was sent")
        with worker.state_lock:
            worker.waiting[self.slot] = waiter
        self._waiter = waiter
        scheduled = scheduled_ns if scheduled_ns is None or worker.clock.identity else worker.clock.to_worker(
            scheduled_ns)
        worker.send(("run", self.slot, request_id, thread_id, query, api_key, scheduled))
        while not waiter.done.wait(1.0):  # the worker answers, or its reader fails the wait when it goes
            if worker.gone:
                break
        self._waiter = None
        if waiter.claimed:
            return None
        if waiter.record is None:  # the worker went away with this request in flight
            return self._lost_record(waiter, worker.failure or "worker process gone")
        return waiter.record

    def abort(self) -> None:
        self._aborted = True
        if self._waiter is not None:
            self.worker.send(("abort", self.slot))

    def take_in_flight(self) -> Optional[RequestRecord]:
        """As SSETester.take_in_flight: the worker's snapshot of the request in flight, claimed as
        `cancelled`; made here from what the parent knows when the worker does not answer."""
        waiter = self._waiter
        if waiter is None or waiter.done.is_set() or waiter.claimed:
            return None  # nothing in flight, or already claimed by an earlier call: never twice
        if self.worker.send(("take", self.slot)):
            waiter.taken.wait(TAKE_TIMEOUT_S)
        answered = waiter.taken.is_set() and not self.worker.gone
        if answered and waiter.taken_record is None:
            return None  # nothing in flight there any more: its own record comes back the usual way
        if not answered and waiter.done.is_set() and not self.worker.gone:
            return None  # it finished meanwhile: its own record goes the usual way
        waiter.claimed = True  # from here on the worker's own result for it is dropped
        if answered:
            return waiter.taken_record
        return self._lost_record(waiter, "cancelled while in flight (its worker process did not answer)")

    def _lost_record(self, waiter: _Waiter, why: str) -> RequestRecord:
        query = waiter.query
        return RequestRecord(waiter.request_id, waiter.thread_id, query.text, query.dataset, waiter.started_at,
                             waiter.sent_ns, ended_ns=self.clock(), error_kind=ErrorKind.CANCELLED,
                             error=why, scheduled_ns=waiter.scheduled_ns)

    def close(self) -> None:
        self.worker.send(("close", self.slot))


class WorkerPool:
    """The workers of a backend (an int P: P processes on this machine); `tester(index)` spreads
    the Runner's threads over them in turn."""

    def __init__(self, backend, api: str, settings, tokenizer: str, workers: Optional[int] = None):
        if isinstance(backend, int):
            from .backends.processes import ProcessBackend

            backend = ProcessBackend(backend)
        self.backend: Backend = backend
        self.processes = workers if workers is not None else getattr(backend, "processes", 1)
        self.api = api
        self.settings = settings
        self.tokenizer = tokenizer
        self.workers: list[_Worker] = []
        self._next_slot = 0
        self._lock = threading.Lock()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "WorkerPool":
        """Start every worker and wait until each is ready; WorkerPoolError (after stopping them) if not."""
        try:
            launched = self.backend.launch(worker_main, self.processes, self.api, self.settings, self.tokenizer)
        except Exception as exc:  # the backend's own words (a cluster that cannot place the workers)
            self.backend.shutdown()
            raise (WorkerRefused if getattr(exc, "refusal", False) else WorkerPoolError)(str(exc)) from None
        for number, one in enumerate(launched, start=1):
            self.workers.append(_Worker(number, one))
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            if not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                worker.failure = f"worker process {worker.number} did not start within {timeout_s:g} s"
            if worker.failure:
                self.close()
                raise (WorkerRefused if worker.refused else WorkerPoolError)(worker.failure)
        return self

    def tester(self, index: int) -> RemoteTester:
        """The tester for Runner thread `index` (1-based): threads go to the processes in turn."""
        with self._lock:
            self._next_slot += 1
            slot = self._next_slot
        return RemoteTester(self.workers[(index - 1) % len(self.workers)], slot)

    def cpu_seconds(self) -> float:
        """CPU time the workers have used so far (user + system), as they last reported it."""
        return sum(worker.cpu_s for worker in self.workers)

    def merge_lags(self, merged: bool) -> None:
        """Whether the workers' lag samples join the driver's self-check (take_lags): on one machine
        they do; workers elsewhere are judged each on its own (worker_seconds)."""
        for worker in self.workers:
            worker.merged = merged

    def take_lags(self) -> list[float]:
        """The workers' lag samples (ms) reported since the last call."""
        lags: list[float] = []
        for worker in self.workers:
            with worker.state_lock:
                lags.extend(worker.lags_ms)
                worker.lags_ms = []
        return lags

    def worker_seconds(self, start_ns: int) -> list[tuple["_Worker", list[dict]]]:
        """Each worker's own self-check seconds since `start_ns`, as timeseries rows (`second`,
        `client.lag_p99_ms`, `client.cpu_pct` of its one process), for a verdict per worker."""
        out = []
        for worker in self.workers:
            with worker.state_lock:
                items = sorted(worker.seconds.items())
            rows, previous = [], None
            for key, (lags, cpu_first, cpu_last, first_ns, last_ns) in items:
                if key * 1_000_000_000 < start_ns:
                    previous = (cpu_last, last_ns)
                    continue
                cpu_pct = None
                if previous is not None and last_ns > previous[1]:
                    cpu_pct = 100.0 * (cpu_last - previous[0]) / ((last_ns - previous[1]) / 1e9)
                ordered = sorted(lags)
                rows.append({"second": int((key * 1_000_000_000 - start_ns) // 1_000_000_000),
                             "client.lag_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
                             if ordered else None, "client.cpu_pct": cpu_pct})
                previous = (cpu_last, last_ns)
            out.append((worker, rows))
        return out

    def problems(self) -> list[str]:
        """Lost workers, and what the backend noticed (a worker whose messages take a slower path,
        a clock known too loosely during the run)."""
        lost = [worker.failure for worker in self.workers if worker.gone and worker.failure]
        return lost + list(getattr(self.backend, "problems", []))

    def describe(self) -> dict:
        """For summary.json run.load: the backend, its workers, and where each ran."""
        out = dict(self.backend.describe())
        out["workers"] = len(self.workers)
        channels = list(getattr(self.backend, "channels", []))  # Ray: "direct" or "calls" per worker
        out["worker_list"] = [dict(worker.info, where=worker.process.where, **worker.clock.describe(),
                                   **({"channel": channels[index]} if index < len(channels) else {}))
                              for index, worker in enumerate(self.workers)]
        nodes: dict = {}
        for info in out["worker_list"]:  # a Ray node by its id (simulated nodes share a host), else the host
            host = info.get("node_ip") or info.get("host") or "?"
            node = nodes.setdefault(info.get("node_id") or host, {"host": host, "workers": 0})
            node["workers"] += 1
            for key in ("sse_perf", "ray", "python"):
                if info.get(key):
                    node[key] = info[key]
        if nodes:
            out["nodes"] = list(nodes.values())
        return out

    def close(self) -> None:
        for worker in self.workers:
            worker.closing = True
            worker.send(("stop",))
        for worker in self.workers:
            worker.close()
        self.backend.shutdown()


# -- the worker's side ----------------------------------------------------------------------------


def worker_main(conn, api: str, settings, tokenizer: str, clock=time.perf_counter_ns) -> None:
    """A worker: run requests for the driver's slots until told to stop or the channel closes.
    Installs no signal handler (a process entry does: an actor runs this on a thread of its own);
    `clock` stamps its records (tests skew it)."""
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        try:
            with send_lock:
                conn.send(message)
        except (OSError, ValueError):
            pass  # the parent is gone; the main loop sees EOF and ends this process

    try:
        from .flavors import get_flavor
        from .tester import SSETester
        from .tokens import make_token_counter

        flavor = get_flavor(api)
        counter = make_token_counter(tokenizer)
        counter.preload()
    except Exception as exc:  # reported to the parent, which stops the run before anything is sent
        send(("failed", f"worker process could not start: {type(exc).__name__}: {exc}"))
        return
    slots: dict[int, _Slot] = {}
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(send, slots, stop), name="sse-perf-worker-probe", daemon=True)
    send(("ready", {"pid": os.getpid(), "host": socket.gethostname(), "sse_perf": __version__,
                    "python": platform.python_version()}))
    reporter.start()
    with collector.for_the_load():  # the load's collector settings while this worker runs requests
        try:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                kind = message[0]
                if kind in ("make", "run"):
                    slot = message[1]
                    if slot not in slots:
                        slots[slot] = _Slot(slot, SSETester(flavor, settings, counter, clock=clock), send)
                    if kind == "run":
                        slots[slot].jobs.put(message[2:])
                elif kind == "abort":
                    if message[1] in slots:
                        slots[message[1]].tester.abort()
                elif kind == "take":
                    entry = slots.get(message[1])
                    send(("taken", message[1], entry.tester.take_in_flight() if entry else None))
                elif kind == "close":
                    entry = slots.pop(message[1], None)
                    if entry is not None:
                        entry.jobs.put(None)
                elif kind == "stop":
                    break
        finally:
            stop.set()
            for entry in list(slots.values()):
                entry.tester.abort()
                entry.jobs.put(None)
            for entry in list(slots.values()):
                entry.thread.join(2.0)
            reporter.join(1.0)


class _Slot:
    """One parent thread's tester in this worker, with a thread of its own."""

    def __init__(self, slot: int, tester, send):
        self.slot = slot
        self.tester = tester
        self.send = send
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"sse-perf-slot-{slot}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    break
                request_id, thread_id, query, api_key, scheduled_ns = job
                record = self.tester.run(request_id, thread_id, query, api_key, scheduled_ns)
                self.send(("done", self.slot, record, self.tester.events_received))
        finally:
            self.tester.close()


def _report(send, slots: dict, stop: threading.Event) -> None:
    """The worker's self-check: lag of a 10 ms sleep, CPU time and event counts, every TICK_S."""
    clock = time.perf_counter_ns
    lags: list[float] = []
    last_tick = clock()
    while not stop.is_set():
        before = clock()
        time.sleep(_PROBE_SLEEP_S)
        after = clock()
        lags.append(max(0.0, (after - before) / 1e6 - _PROBE_SLEEP_S * 1000))
        if after - last_tick >= TICK_S * 1e9:
            events = {slot: entry.tester.events_received for slot, entry in list(slots.items())}
            send(("tick", events, time.process_time(), lags))
            lags, last_tick = [], after
