"""The one thread that owns live statistics: it takes finished records from a queue, keeps the
per-second time series and hands records, rows and warnings to its sinks (the run folder, the
history, the live table, ...), which it does not know by name.

Imports records, stats, selfcheck (its verdicts), handoff and gpu.summary (telemetry columns).
Testers never touch statistics; they only submit records.
"""

from __future__ import annotations

import queue
from collections import deque
import threading
import time
from typing import Callable, Optional

from .handoff import put_while_alive
from .records import ErrorKind
from .stats import TimeSeries

_STOP = object()
_NS = 1_000_000_000
QUEUE_MAX = 5_000  # records (and samples) waiting for the statistics thread
BATCH_MAX = 2_000  # items handled per wake-up before the clock is looked at again
ERROR_WINDOW = 50  # --max-error-rate looks at the last 50 finished requests ...
ERROR_WINDOW_MIN = 20  # ... and never decides on fewer than 20


class _Samples(list):
    """A batch of telemetry samples on the queue (told apart from records by type)."""


class _Barrier:
    __slots__ = ("event",)

    def __init__(self):
        self.event = threading.Event()


class _ClientSecond:
    """The self-check probe's second on the queue."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Aggregator(threading.Thread):
    """Takes finished records, telemetry samples and the self-check's seconds from one queue; keeps
    the per-second series and the live table; hands every record (as its records.jsonl object) and
    every sample batch on to its sinks, which it does not know by name. A sink has any of:
    `record(row)` for each finished request, `samples(batch, start_ns)` for telemetry, `tick()` once
    a second and at the end, `second(row, live)` with each second's row once it is closed (`live`: the
    live token rate, the GPU utilisation and the threads, for the terminal), `warning(text)` for the
    self-check's warnings, and `error` (its own failure, said at the end; the run goes on)."""

    def __init__(
        self,
        start_ns: int,
        sinks,
        total_threads: int,
        active_threads: Callable[[], int] = lambda: 0,
        live_events: Callable[[], int] = lambda: 0,
        clock: Callable[[], int] = time.perf_counter_ns,
        max_error_rate_pct: Optional[float] = None,
        usable_cores: int = 1,
    ):
        super().__init__(name="sse-perf-aggregator", daemon=True)
        # Bounded: a load generator that makes records faster than they can be counted and written
        # waits for the writer (its own timings are already taken) instead of queueing without end.
        self.queue: "queue.Queue" = queue.Queue(maxsize=QUEUE_MAX)
        self.series = TimeSeries(start_ns)
        self.start_ns = start_ns
        self.sinks = [sink for sink in (sinks or ()) if sink is not None]
        self._on_record, self._on_samples, self._on_tick, self._on_second, self._on_warning = (
            self._hooks(name) for name in ("record", "samples", "tick", "second", "warning"))
        self.total_threads = total_threads
        self.active_threads = active_threads
        self.live_events = live_events
        self.clock = clock
        self.ok = self.finished = 0
        self._tokens_ok = self._chunks_ok = 0
        self._events_seen = 0
        self._cum_ok = self._cum_finished = 0
        self.gpu_samples: list = []  # raw GPU samples (seconds x GPUs: bounded by the run's length)
        self._gpu_util: dict[int, list] = {}  # second -> utilisation readings, for the live table
        # measured windows (warm-up excluded): level -> [first sent ns, last ended ns]
        self.windows: dict[Optional[float], list] = {}
        self.max_error_rate_pct = max_error_rate_pct
        self._recent = deque(maxlen=ERROR_WINDOW)  # outcomes of the last requests, for the early stop
        self.stop_reason: Optional[str] = None  # set once when the error rate crosses the limit
        self.usable_cores = usable_cores
        self._saturated_streak = 0
        self._busy_streak = 0
        self.busy_warned = False
        self.internal_error: Optional[str] = None
        self.saturation_warned = False

    def submit(self, record) -> None:
        """Called by worker threads as each request ends. Blocks while the queue is full (backpressure),
        unless this thread has stopped (then nothing would ever take the record)."""
        put_while_alive(self.queue, record, self)

    def submit_samples(self, samples: list) -> None:
        """Called by telemetry sampler threads with each batch of readings (gpu.base.Sample)."""
        self.submit(_Samples(samples))

    def start_level(self, total_threads: int) -> None:
        """A new sweep level: its own thread count, and a fresh --max-error-rate window (new load)."""
        self.total_threads = total_threads
        self._recent.clear()

    def submit_client(self, second) -> None:
        """Called by the self-check probe once a second (selfcheck.ClientSecond)."""
        self.submit(_ClientSecond(second))

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue, print the last rows, stop the thread."""
        self.submit(_STOP)
        self.join(timeout)

    @property
    def measured_duration_s(self) -> Optional[float]:
        """First send to last finish of the measured (not warm-up) requests. In a sweep, the sum of
        the levels' own windows, so cooldowns and later levels' warm-ups do not dilute the rates."""
        if not self.windows:
            return None
        return sum(max(0.0, (w[1] - w[0]) / _NS) for w in self.windows.values())

    def level_duration_s(self, level) -> Optional[float]:
        window = self.windows.get(level)
        return None if window is None else max(0.0, (window[1] - window[0]) / _NS)

    # -- the thread --
    def run(self) -> None:
        next_tick = self.start_ns + _NS
        while True:
            timeout = max(0.0, (next_tick - self.clock()) / _NS)
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            # Then whatever else is waiting, in one go: taking items one wake-up at a time falls
            # behind when many worker threads compete for the interpreter lock.
            handled = 0
            while item is not None:
                if item is _STOP:
                    self._tick_until(next_tick)  # the seconds already due get their rows first
                    self._drain()
                    self._to_sinks(self._on_tick)
                    return
                self._handle_safely(item)
                handled += 1
                if handled >= BATCH_MAX:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    item = None
            next_tick = self._tick_until(next_tick)

    def _tick_until(self, next_tick: int) -> int:
        """Tick every second that is due by now; returns the next tick's instant."""
        now = self.clock()
        while now >= next_tick:
            self._tick((next_tick - self.start_ns) // _NS)
            next_tick += _NS
        return next_tick

    def _hooks(self, name: str) -> list:
        """The sinks' methods called `name`; an attribute of that name that is not a method (a
        sink's own `warning` text, say) is not a hook."""
        return [hook for sink in self.sinks if callable(hook := getattr(sink, name, None))]

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._handle_safely(item)

    @property
    def write_error(self) -> Optional[str]:
        """The sinks' own failures (records.jsonl, gpu.csv, ...) in one line, or None."""
        errors = [sink.error for sink in self.sinks if getattr(sink, "error", None)]
        return "; ".join(errors) if errors else None

    def _to_sinks(self, hooks: list, *args) -> None:
        """Every sink gets its turn: a bug in one is kept (as an internal error) and costs the others nothing."""
        for hook in hooks:
            try:
                hook(*args)
            except Exception as exc:  # reported at the end (exit 1); the other sinks and the statistics go on
                if self.internal_error is None:
                    self.internal_error = f"aggregator sink {type(getattr(hook, '__self__', hook)).__name__}: " \
                                          f"{type(exc).__name__}: {exc}"

    def release_sinks(self) -> None:
        """After close(): drop the sinks (the run's figures are large; the report needs the memory)."""
        self.sinks, self._on_record, self._on_samples, self._on_tick = [], [], [], []
        self._on_second, self._on_warning = [], []

    def _handle_samples(self, samples) -> None:
        from .gpu.summary import timeseries_columns

        self._to_sinks(self._on_samples, samples, self.start_ns)
        for sample in samples:
            self.series.add_values(sample.at_ns, timeseries_columns(sample))
            if sample.index is None:
                continue
            self.gpu_samples.append(sample)
            util = sample.values.get("util_pct")
            if util is not None and sample.at_ns >= self.start_ns:
                self._gpu_util.setdefault((sample.at_ns - self.start_ns) // _NS, []).append(util)

    def _handle_safely(self, item) -> None:
        """A bug while handling one item must not stop the thread: every later record would be lost.
        The first such error is kept and reported at the end (exit code 1)."""
        if isinstance(item, _Barrier):
            item.event.set()
            return
        try:
            self._handle(item)
        except Exception as exc:  # reported by execution as an internal error; the run's data keeps flowing
            if self.internal_error is None:
                self.internal_error = f"aggregator: {type(exc).__name__}: {exc}"

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been handled (e.g. a level's last records)."""
        barrier = _Barrier()
        self.submit(barrier)
        return barrier.event.wait(timeout)

    def _handle_client(self, second) -> None:
        """Self-check columns, and one warning the first time the load generator stays saturated
        (or the machine stays busy with other work: a different cause, a different advice)."""
        from .selfcheck import SUSTAINED_S, breach, machine_cores

        self.series.add_values(second.at_ns, {"client.lag_p50_ms": second.lag_p50_ms,
                                              "client.lag_p99_ms": second.lag_p99_ms,
                                              "client.cpu_pct": second.cpu_pct,
                                              "client.load_avg": second.load_avg,
                                              "client.machine_cpu_pct": second.machine_cpu_pct})
        kind = breach(second.lag_p99_ms, second.cpu_pct, self.usable_cores, second.machine_cpu_pct, machine_cores(),
                      second.load_avg)
        self._saturated_streak = self._saturated_streak + 1 if kind == "client" else 0
        self._busy_streak = self._busy_streak + 1 if kind == "machine" else 0
        at_s = max(0, (second.at_ns - self.start_ns) // _NS - SUSTAINED_S + 1)
        lag = f"scheduling lag p99 {second.lag_p99_ms or 0:.1f} ms"
        if self._saturated_streak == SUSTAINED_S and not self.saturation_warned:
            self.saturation_warned = True
            advice = ("use fewer threads, or more worker processes (--processes) on a machine with spare cores"
                      if self.total_threads >= 2 else "run sse-perf on a machine with spare cores")
            self._warn(f"!! load generator saturated from {at_s} s ({lag}, CPU {second.cpu_pct or 0:.0f}% with "
                        f"{self.usable_cores} usable core(s)): latencies now include sse-perf's own delay; {advice}")
        if self._busy_streak == SUSTAINED_S and not self.busy_warned:
            self.busy_warned = True
            others = ""
            if second.machine_cpu_pct is not None:
                others = f", other processes {max(0.0, second.machine_cpu_pct - (second.cpu_pct or 0)):.0f}%"
            load = f", load average {second.load_avg:.1f}" if second.load_avg is not None else ""
            self._warn(f"!! machine busy from {at_s} s: {lag} while sse-perf itself used {second.cpu_pct or 0:.0f}% "
                        f"CPU ({machine_cores()} cores{others}{load}): other processes are taking the CPU and "
                        "their delay is in the latencies; stop them or run sse-perf on a quieter machine")

    def _handle(self, record) -> None:
        if isinstance(record, _Samples):
            self._handle_samples(record)
            return
        if isinstance(record, _ClientSecond):
            self._handle_client(record.value)
            return
        if self._on_record:
            self._to_sinks(self._on_record, record.to_dict())
        self.series.add(record)
        self.finished += 1
        if record.ok:
            self.ok += 1
            self._tokens_ok += record.output_tokens
            self._chunks_ok += record.chunks
        if record.error_kind not in (ErrorKind.CANCELLED, ErrorKind.ABANDONED):  # the tool's own: not server failures
            self._check_error_rate(record.ok)
        if record.warmup:
            return
        ended = record.ended_ns if record.ended_ns is not None else record.sent_ns
        window = self.windows.get(record.level)
        if window is None:
            self.windows[record.level] = [record.sent_ns, ended]
        else:
            window[0] = min(window[0], record.sent_ns)
            window[1] = max(window[1], ended)

    def _check_error_rate(self, ok: bool) -> None:
        """--max-error-rate: over the last ERROR_WINDOW finished requests (at least ERROR_WINDOW_MIN)."""
        if self.max_error_rate_pct is None or self.stop_reason is not None:
            return
        recent = self._recent
        recent.append(ok)
        if len(recent) < ERROR_WINDOW_MIN:
            return
        failed_pct = 100.0 * recent.count(False) / len(recent)
        if failed_pct > self.max_error_rate_pct:
            self.stop_reason = (f"error rate {failed_pct:.1f}% over the last {len(recent)} requests "
                                f"exceeded --max-error-rate {self.max_error_rate_pct:g}%")

    def _tick(self, elapsed_s: int) -> None:
        """Once a second: close second `elapsed_s - 1`, print its row, tick the sinks (the history's batch)."""
        self._to_sinks(self._on_tick)
        second = elapsed_s - 1
        self.series.set_active(second, self.active_threads())
        events = self.live_events()
        delta, self._events_seen = events - self._events_seen, events
        # live tokens/s: token events this second x tokens per event seen so far (usage-corrected)
        ratio = (self._tokens_ok / self._chunks_ok) if self._chunks_ok else 1.0
        self.series.finalise_until(second - 1)  # a second stays open one more second for late records
        row = self.series.row(second)
        self._cum_ok += row["requests_ok"]
        self._cum_finished += row["requests_ok"] + row["requests_failed"]
        row["success_rate_pct"] = 100.0 * self._cum_ok / self._cum_finished if self._cum_finished else None
        readings = self._gpu_util.pop(second, None)
        live = {"tokens_per_s": delta * ratio, "gpu_util_pct": sum(readings) / len(readings) if readings else None,
                "total_threads": self.total_threads}
        self._to_sinks(self._on_second, row, live)

    def _warn(self, text: str) -> None:
        self._to_sinks(self._on_warning, text)

    def rows(self, seconds: Optional[int] = None) -> list[dict]:
        """The final time series (call after close())."""
        self.series.finalise_until(len(self.series))
        return self.series.rows(seconds)
