"""The one thread that owns live statistics: it takes finished records from a queue, writes them
to the run folder, keeps the per-second time series and prints the live table.

Imports records, stats, storage, live. Testers never touch statistics; they only submit records.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Callable, Optional

from .live import header_line, row_line
from .stats import TimeSeries

_STOP = object()
_NS = 1_000_000_000


class Aggregator(threading.Thread):
    def __init__(
        self,
        start_ns: int,
        writer,
        total_threads: int,
        active_threads: Callable[[], int] = lambda: 0,
        live_events: Callable[[], int] = lambda: 0,
        out=sys.stdout,
        quiet: bool = False,
        lang: str = "en",
        clock: Callable[[], int] = time.perf_counter_ns,
    ):
        super().__init__(name="sse-perf-aggregator", daemon=True)
        self.queue: "queue.Queue" = queue.Queue()
        self.series = TimeSeries(start_ns)
        self.start_ns = start_ns
        self.writer = writer
        self.total_threads = total_threads
        self.active_threads = active_threads
        self.live_events = live_events
        self.out = out
        self.quiet = quiet
        self.lang = lang
        self.clock = clock
        self.first_sent_ns: Optional[int] = None
        self.last_ended_ns: Optional[int] = None
        self.ok = self.finished = 0
        self._tokens_ok = self._chunks_ok = 0
        self._events_seen = 0
        self._printed = 0
        self._cum_ok = self._cum_finished = 0
        self.write_error: Optional[str] = None

    def submit(self, record) -> None:
        """Called by worker threads as each request ends."""
        self.queue.put(record)

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue, print the last rows, stop the thread."""
        self.queue.put(_STOP)
        self.join(timeout)

    @property
    def measured_duration_s(self) -> Optional[float]:
        if self.first_sent_ns is None or self.last_ended_ns is None:
            return None
        return max(0.0, (self.last_ended_ns - self.first_sent_ns) / _NS)

    # -- the thread --
    def run(self) -> None:
        next_tick = self.start_ns + _NS
        while True:
            timeout = max(0.0, (next_tick - self.clock()) / _NS)
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._drain()
                break
            if item is not None:
                self._handle(item)
            now = self.clock()
            while now >= next_tick:
                self._tick((next_tick - self.start_ns) // _NS)
                next_tick += _NS

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._handle(item)

    def _handle(self, record) -> None:
        if self.writer is not None and self.write_error is None:
            try:
                self.writer.write(record.to_dict())
            except OSError as exc:  # disk full or folder removed: keep measuring, say so at the end
                self.write_error = f"records could not be written: {exc}"
        self.series.add(record)
        self.finished += 1
        if record.ok:
            self.ok += 1
            self._tokens_ok += record.output_tokens
            self._chunks_ok += record.chunks
        if self.first_sent_ns is None or record.sent_ns < self.first_sent_ns:
            self.first_sent_ns = record.sent_ns
        ended = record.ended_ns if record.ended_ns is not None else record.sent_ns
        if self.last_ended_ns is None or ended > self.last_ended_ns:
            self.last_ended_ns = ended

    def _tick(self, elapsed_s: int) -> None:
        """Once a second: close second `elapsed_s - 1`, print its row."""
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
        if not self.quiet:
            if self._printed % 20 == 0:
                print(header_line(self.lang), file=self.out)
            print(row_line(row, self.total_threads, delta * ratio), file=self.out, flush=True)
            self._printed += 1

    def rows(self, seconds: Optional[int] = None) -> list[dict]:
        """The final time series (call after close())."""
        self.series.finalise_until(len(self.series))
        return self.series.rows(seconds)
