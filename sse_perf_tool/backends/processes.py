"""`--processes P`: workers as spawned processes on this machine, each over a multiprocessing pipe.

The pipe is the channel as it is, the Process the handle (with `where`), and the clock map the
identity: perf_counter_ns is CLOCK_MONOTONIC on Linux, one clock for every process. Workers are
started with `spawn` (no fork of a threaded process) while SIGINT is ignored, and the process
entry ignores Ctrl-C and the stop signals for good: the driver stops them through their pipes, so
a Ctrl-C behaves as with one process.

Imports the backends' seam only: the worker's loop (worker_pool.worker_main) comes as `entry`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from typing import Optional

from . import IDENTITY, Launched


class ProcessHandle:
    """A worker Process with the handle's `where`."""

    def __init__(self, process):
        self.process = process

    @property
    def exitcode(self) -> Optional[int]:
        return self.process.exitcode

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid

    @property
    def where(self) -> str:
        return f"pid {self.process.pid}"

    def join(self, timeout: Optional[float] = None) -> None:
        self.process.join(timeout)

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def terminate(self) -> None:
        self.process.terminate()


class ProcessBackend:
    name = "processes"

    def __init__(self, processes: int):
        self.processes = processes

    def launch(self, entry, count: int, api: str, settings, tokenizer: str) -> list[Launched]:
        context = multiprocessing.get_context("spawn")
        launched = []
        with _sigint_ignored():  # inherited through exec: a Ctrl-C while a worker starts up is not its to take
            for number in range(1, count + 1):
                conn, child_conn = context.Pipe(duplex=True)
                process = context.Process(target=process_main, args=(entry, child_conn, api, settings, tokenizer),
                                          name=f"sse-perf-worker-process-{number}", daemon=True)
                process.start()
                child_conn.close()
                launched.append(Launched(conn, ProcessHandle(process), IDENTITY))
        return launched

    def usable_cores(self) -> int:
        return min(self.processes, os.cpu_count() or 1) + 1

    def describe(self) -> dict:
        return {"backend": "processes", "workers": self.processes}

    def shutdown(self) -> None:
        """Nothing outlives the workers' own close."""


def process_main(entry, conn, api: str, settings, tokenizer: str) -> None:
    """A worker process's entry: Ctrl-C and the stop signals are the driver's to handle (it cancels
    this worker's requests and writes the results), then the worker's loop `entry` until told to stop."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    entry(conn, api, settings, tokenizer)


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while processes are started (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
