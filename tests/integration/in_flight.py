"""A request kept in flight in a thread, for the abort, close and take_in_flight tests of the
in-process SSETester (test_tester.py) and of a worker process's RemoteTester (test_worker_pool.py):
the same contract on both."""

from __future__ import annotations

import threading

from sse_perf_tool.flavors.base import Query
from waiting import wait_until


def run_in_thread(tester, request_id: int = 1, thread_id: int = 1):
    """tester.run(...) in a daemon thread; returns (thread, result dict with "record")."""
    result: dict = {}

    def work():
        result["record"] = tester.run(request_id, thread_id, Query("q"), None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, result


def start_streaming(tester, timeout_s: float = 3.0, request_id: int = 1, thread_id: int = 1):
    """run_in_thread, returning once the first token has arrived (asserted within timeout_s)."""
    thread, result = run_in_thread(tester, request_id, thread_id)
    assert wait_until(lambda: tester.events_received >= 1, timeout_s), "the first token never arrived"
    return thread, result


def abort_and_join(tester, thread, result, join_s: float = 10.0):
    """abort() from this thread, then the record the request's own thread returned (asserted to have
    ended within join_s, a bound against a hang only)."""
    tester.abort()
    thread.join(join_s)
    assert not thread.is_alive(), "abort() did not stop the stalled read"
    return result["record"]
