"""The live view's sink of the aggregator: each second's row as a Server-Sent Event for every
browser watching (`/events`), and the run's counters for Prometheus (`/metrics`).

The aggregator never waits for a browser: a second's message is put in each watcher's bounded
queue without blocking, and a watcher whose queue is full (a browser that stopped reading) is
dropped; its EventSource reconnects with Last-Event-ID and is sent what it missed from the
messages kept here (the last MAX_KEPT seconds). Each row message is
`id: <second>` and `data: {"second", "row", "live", "cells"}`: the time series row, the live
figures of the terminal's row (tokens/s, GPU %, threads) and that row's cells as the terminal
prints them. Named events: `view` (the charts to draw, sent first and whenever a new column
gets its first value), `warning` (the self-check's), `end` (the exit code, the run folder).

Imports live (the terminal row's cells), report_timeseries (the report's charts), report_i18n;
prometheus_client lazily, when the feed is made.
"""

from __future__ import annotations

import json
import math
import queue
import threading
from collections import deque
from typing import Optional

from .live import HEADERS, row_cells
from .report_i18n import strings
from .report_timeseries import live_view

MAX_KEPT = 3600  # seconds of rows a late or reconnecting browser is sent (the last hour)
QUEUE_MAX = 64  # messages a watcher may be behind before it is dropped
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, float("inf"))
TPOT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, float("inf"))


def _finite(value):
    """JSON has no NaN or infinity: such a value is "not measured"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sse_message(data: dict, event: Optional[str] = None, event_id: Optional[int] = None) -> bytes:
    """One Server-Sent Event: `data` as one line of JSON (no raw newline can end it early)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    head = (f"event: {event}\n" if event else "") + (f"id: {event_id}\n" if event_id is not None else "")
    # a lone surrogate (undecodable bytes in a server's message, say) has no UTF-8: it is sent as "?"
    return (head + "data: " + text + "\n\n").encode("utf-8", "replace")


class Watcher:
    """One browser's stream: the messages not yet written to it, at most `maxsize`."""

    def __init__(self, maxsize: int = QUEUE_MAX):
        self.queue: "queue.Queue[bytes]" = queue.Queue(maxsize)
        self.dropped = False  # fell `maxsize` messages behind: its connection is closed


class LiveMetrics:
    """The run as Prometheus metrics, in a registry of its own (prometheus_client's global one is
    left alone): requests by outcome, output tokens, TTFT / TPOT / E2E histograms of successful
    measured requests, the threads, the live token rate, the self-check, each GPU's readings."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("sse_perf_requests", "Finished requests by outcome (ok or the error kind); "
                                "warm-up requests included", ["outcome"], registry=registry)
        self.tokens = Counter("sse_perf_output_tokens", "Output tokens of successful requests", registry=registry)
        self.ttft = Histogram("sse_perf_ttft_seconds", "Time to first token of successful measured requests",
                              buckets=LATENCY_BUCKETS_S, registry=registry)
        self.tpot = Histogram("sse_perf_tpot_seconds", "Time per output token of successful measured requests",
                              buckets=TPOT_BUCKETS_S, registry=registry)
        self.e2e = Histogram("sse_perf_e2e_seconds", "End-to-end latency of successful measured requests",
                             buckets=LATENCY_BUCKETS_S, registry=registry)
        self.active = Gauge("sse_perf_active_threads", "Threads with a request in flight, at the last second",
                            registry=registry)
        self.threads = Gauge("sse_perf_threads", "Threads of the current load level", registry=registry)
        self.token_rate = Gauge("sse_perf_output_tokens_per_second", "The live table's token rate",
                                registry=registry)
        self.elapsed = Gauge("sse_perf_elapsed_seconds", "Seconds of the run closed so far", registry=registry)
        self.lag = Gauge("sse_perf_client_lag_p99_seconds", "The self-check's scheduling lag p99 (the load "
                         "generator's own delay)", registry=registry)
        self.cpu = Gauge("sse_perf_client_cpu_percent", "The load generator's CPU, % of one core",
                         registry=registry)
        self.gpu = Gauge("sse_perf_gpu", "The last reading of each GPU metric (--gpu)", ["gpu", "metric"],
                         registry=registry)

    def record(self, row: dict) -> None:
        self.requests.labels(outcome="ok" if row.get("ok") else (row.get("error_kind") or "failed")).inc()
        if not row.get("ok"):
            return
        self.tokens.inc(row.get("output_tokens") or 0)
        if row.get("warmup"):
            return
        for histogram, key in ((self.ttft, "ttft_ms"), (self.tpot, "tpot_ms"), (self.e2e, "e2e_ms")):
            value = row.get(key)
            if value is not None:
                histogram.observe(value / 1000.0)

    def second(self, row: dict, live: dict) -> None:
        self.elapsed.set(row["second"] + 1)
        self.active.set(row.get("active_threads") or 0)
        self.threads.set(live.get("total_threads") or 0)
        if live.get("tokens_per_s") is not None:
            self.token_rate.set(live["tokens_per_s"])
        lag, cpu = _finite(row.get("client.lag_p99_ms")), _finite(row.get("client.cpu_pct"))
        if lag is not None:
            self.lag.set(lag / 1000.0)
        if cpu is not None:
            self.cpu.set(cpu)

    def samples(self, batch) -> None:
        for sample in batch:
            if sample.index is None:
                continue
            for metric, value in sample.values.items():
                if value is not None and _finite(float(value)) is not None:
                    self.gpu.labels(gpu=f"{sample.source}:{sample.index}", metric=metric).set(value)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class LiveFeed:
    """The aggregator's sink for --live: `record`, `samples`, `second`, `warning` (called on the
    aggregator's thread) keep the messages and hand them to the watchers; `watch` and `leave`
    are called by the live server's connections; `end` once the run folder is written."""

    def __init__(self, lang: str = "en", cores: Optional[int] = None, max_kept: int = MAX_KEPT,
                 queue_max: int = QUEUE_MAX):
        self.lang = lang
        self.cores = cores
        self.max_kept = max_kept
        self.queue_max = queue_max
        self.metrics = LiveMetrics()
        self.dropped = 0  # watchers dropped for falling behind (for the tests and the closing note)
        self._t = strings(lang)
        self._headers = HEADERS.get(lang, HEADERS["en"])
        self._lock = threading.Lock()
        self._rows: deque = deque(maxlen=max_kept)  # the rows kept, for the charts' view
        self._log: deque = deque()  # (second, is a row, message) in order: rows and the warnings after them
        self._logged_rows = 0  # rows in the log (bounded by max_kept, as self._rows is)
        self._watchers: set = set()
        self._valued: set = set()  # columns that have had a value: a new one changes the charts
        self._view: Optional[bytes] = None
        self._end: Optional[bytes] = None
        self._last_second = -1

    # -- the aggregator's thread --
    def record(self, row: dict) -> None:
        self.metrics.record(row)

    def samples(self, batch, start_ns: int) -> None:
        self.metrics.samples(batch)

    def second(self, row: dict, live: dict) -> None:
        row = {key: _finite(value) for key, value in row.items()}
        live = {key: _finite(value) for key, value in live.items()}
        self.metrics.second(row, live)
        cells = row_cells(row, live["total_threads"], live["tokens_per_s"], live["gpu_util_pct"])
        message = sse_message({"second": row["second"], "row": row, "live": live,
                               "cells": [[label, cell] for label, cell in zip(self._headers, cells)]},
                              event_id=row["second"])
        fresh = [key for key, value in row.items() if value is not None and key not in self._valued]
        with self._lock:
            self._rows.append(row)
            view = None
            if fresh:  # the charts change (a GPU's first reading, the first latency): the page redraws them
                self._valued.update(fresh)
                self._view = view = sse_message(live_view(list(self._rows), self._t, self.cores), event="view")
            self._last_second = row["second"]
            self._log.append((row["second"], True, message))
            self._logged_rows += 1
            if self._logged_rows > self.max_kept:  # the oldest row goes, with the warnings before and after it
                gone = self._log.popleft()
                while not gone[1]:  # warnings before the oldest row
                    gone = self._log.popleft()
                self._logged_rows -= 1
                while not self._log[0][1]:
                    self._log.popleft()
            self._send([view, message] if view is not None else [message])

    def warning(self, text: str) -> None:
        with self._lock:
            message = sse_message({"text": text, "after": self._last_second}, event="warning")
            self._log.append((self._last_second, False, message))
            self._send([message])

    # -- the run, once its folder is written --
    def end(self, exit_code: int, run_dir: Optional[str], report: Optional[str]) -> None:
        with self._lock:
            self._end = sse_message({"exit_code": exit_code, "run_dir": run_dir, "report": report}, event="end")
            self._send([self._end])

    @property
    def ended(self) -> bool:
        return self._end is not None

    # -- the live server's connections --
    def watch(self, last_id: Optional[int] = None) -> tuple[Watcher, list[bytes]]:
        """A new watcher, and what it is sent first: the charts, then every kept message after
        second `last_id` (all of them when it is None or no longer kept), then the end if it came.
        Taken under the lock, so nothing falls between the replay and the live messages."""
        watcher = Watcher(self.queue_max)
        with self._lock:
            replay = [self._view] if self._view is not None else []
            log = list(self._log)
            start = 0  # from the first kept message, unless the watcher's last row is still kept
            if last_id is not None:
                start = next((i + 1 for i in range(len(log) - 1, -1, -1) if log[i][1] and log[i][0] <= last_id), 0)
            replay += [message for _, _, message in log[start:]]
            if self._end is not None:
                replay.append(self._end)
            else:
                self._watchers.add(watcher)
        return watcher, replay

    def leave(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def watching(self) -> int:
        """How many browsers are connected now."""
        with self._lock:
            return len(self._watchers)

    def rows(self) -> list[dict]:
        with self._lock:
            return list(self._rows)

    def _send(self, messages: list) -> None:
        """To every watcher without waiting (called holding the lock): one that is full is dropped."""
        for watcher in list(self._watchers):
            try:
                for message in messages:
                    watcher.queue.put_nowait(message)
            except queue.Full:
                watcher.dropped = True
                self._watchers.discard(watcher)
                self.dropped += 1
