"""The worker pool's contract over every backend (backends/): today's spawned processes, and an
in-process fake (fake_backend.py) whose workers' clocks run an hour ahead or behind and drift
50 ppm, over a channel with a delivery delay. Whatever the backend, a record comes back on the
driver's timeline (within the clock map's bound), with the driver's own scheduled instant and the
worker's own durations; abort and take_in_flight mean what they mean in one process; nothing is
lost when the up channel is full and the driver reads slowly; a worker that vanishes fails its
request in flight and the others go on. Real HTTP over loopback against the mock server.

The Ray backend runs the same protocol; its own tests (a real local cluster) are in test_ray.py."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sse_perf_tool.backends.processes import ProcessBackend
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import TesterSettings as Settings
from sse_perf_tool.worker_pool import WorkerPool, WorkerPoolError, WorkerRefused, worker_main
from waiting import wait_until

from .fake_backend import FakeBackend
from .in_flight import abort_and_join, start_streaming
from .run_folder import assert_refused

HOUR_NS = 3600 * 1_000_000_000
START_S = 30.0
TOKENIZER = "cl100k_base"

BACKENDS = {
    "processes": lambda: ProcessBackend(2),
    "fake-skewed": lambda: FakeBackend(2, delay_s=0.002, skews_ns=(HOUR_NS, -HOUR_NS), drift_ppm=50.0),
}


@pytest.fixture(params=sorted(BACKENDS))
def pool_of(request):
    made: list[WorkerPool] = []

    def make(url: str, timeout_s: float = 5.0, backend=None) -> WorkerPool:
        backend = backend or BACKENDS[request.param]()
        pool = WorkerPool(backend, "openai-chat", Settings(url=url, timeout_s=timeout_s), TOKENIZER,
                          workers=backend.processes)
        made.append(pool)
        return pool.start(timeout_s=START_S)

    make.kind = request.param
    yield make
    for pool in made:
        pool.close()


def url_of(server) -> str:
    return server.base_url + get_flavor("openai-chat").path


def bound_ns(pool, worker) -> int:
    bound = worker.clock.bound_ns
    return 0 if bound is None else bound + 1_000_000  # and a millisecond for the drift between two rounds


def test_records_land_on_the_drivers_timeline_with_the_workers_durations(make_mock, pool_of):
    server = make_mock(ttft_ms=30, itl_ms=3, tokens=5)
    pool = pool_of(url_of(server))
    for index in (1, 2):  # one tester per worker: both clocks
        tester = pool.tester(index)
        slack = bound_ns(pool, tester.worker)
        before = time.perf_counter_ns()
        record = tester.run(index, index, Query("q"), None, scheduled_ns=before)
        after = time.perf_counter_ns()
        assert record is not None and record.ok, record and record.error
        assert before - slack <= record.sent_ns <= record.first_token_ns <= record.ended_ns <= after + slack
        assert record.scheduled_ns == before  # the driver's own value, not a round trip through the worker's clock
        assert record.sent_ns <= record.token_times_ns[0] and record.token_times_ns[-1] <= record.ended_ns
        assert record.ttft_ms >= 29.0 and record.chunks == 5
        assert record.e2e_ms < (after - before) / 1e6 + 1.0


def test_the_workers_say_who_they_are(make_mock, pool_of):
    pool = pool_of(url_of(make_mock()))
    described = pool.describe()
    assert described["workers"] == 2 and len(described["worker_list"]) == 2
    for info in described["worker_list"]:
        assert info["sse_perf"] and info["python"] and info["host"]
    assert sum(node["workers"] for node in described["nodes"]) == 2


def test_abort_ends_a_request_in_flight_as_cancelled(serve_stalled, pool_of):
    pool = pool_of(serve_stalled.url(), timeout_s=4.0)
    tester = pool.tester(1)
    thread, result = start_streaming(tester, request_id=3, thread_id=1)
    record = abort_and_join(tester, thread, result, join_s=3.0)
    assert record.error_kind is ErrorKind.CANCELLED and record.chunks == 1


def test_take_in_flight_claims_a_request_once_on_the_drivers_clock(serve_stalled, pool_of):
    pool = pool_of(serve_stalled.url(), timeout_s=4.0)
    tester = pool.tester(1)
    before = time.perf_counter_ns()
    thread, result = start_streaming(tester, request_id=4, thread_id=1)
    taken = tester.take_in_flight()
    assert taken is not None and taken.error_kind is ErrorKind.CANCELLED and taken.request_id == 4
    assert abs(taken.sent_ns - before) < 2_000_000_000 + bound_ns(pool, tester.worker)
    assert tester.take_in_flight() is None  # never twice
    tester.abort()
    thread.join(5.0)
    assert not thread.is_alive() and result["record"] is None  # claimed: its own result is dropped


def test_a_vanished_worker_fails_its_request_and_the_other_goes_on(make_mock, serve_stalled):
    backend = FakeBackend(2, delay_s=0.001, skews_ns=(HOUR_NS,))
    pool = WorkerPool(backend, "openai-chat", Settings(url=serve_stalled.url(), timeout_s=4.0), TOKENIZER,
                      workers=2).start(timeout_s=START_S)
    try:
        tester = pool.tester(1)
        thread, result = start_streaming(tester, request_id=5, thread_id=1)
        backend.handles[0].kill()
        thread.join(10.0)
        assert not thread.is_alive(), "run() hung on a vanished worker"
        record = result["record"]
        assert record is not None and record.error_kind is ErrorKind.CANCELLED and "worker" in record.error
        with pytest.raises(WorkerPoolError):
            tester.run(6, 1, Query("q"), None)
        assert len(pool.problems()) == 1
        other = pool.tester(2)
        assert other.worker is pool.workers[1]
        thread, result = start_streaming(other, request_id=7, thread_id=2)
        assert abort_and_join(other, thread, result, join_s=3.0).error_kind is ErrorKind.CANCELLED
    finally:
        pool.close()


def test_nothing_is_lost_when_the_up_channel_is_full_and_the_driver_reads_slowly(make_mock):
    """An up channel of 2 messages and a driver reader held for 1.5 s: the workers' slots wait to
    send, and every record arrives once the driver reads again."""
    server = make_mock(ttft_ms=0, itl_ms=0, tokens=2)
    backend = FakeBackend(1, delay_s=0.0, up_limit=2)
    pool = WorkerPool(backend, "openai-chat", Settings(url=url_of(server), timeout_s=5.0), TOKENIZER,
                      workers=1).start(timeout_s=START_S)
    try:
        worker = pool.workers[0]
        hold = threading.Event()
        original = worker.conn.recv

        def slow_recv():
            hold.wait(1.5)
            return original()

        worker.conn.recv = slow_recv
        testers = [pool.tester(index) for index in range(1, 9)]
        results: dict = {}

        def run(index, tester):
            results[index] = tester.run(index, index, Query("q"), None)

        threads = [threading.Thread(target=run, args=(index, tester), daemon=True)
                   for index, tester in enumerate(testers, start=1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20.0)
        assert sorted(results) == list(range(1, 9))
        assert all(record is not None and record.ok for record in results.values())
    finally:
        pool.close()


def test_a_worker_makes_each_slots_tester_when_the_drivers_tester_is_made(make_mock):
    """As the Runner makes its testers before its threads begin, a worker makes the tester (and
    thread) of a slot when the driver's RemoteTester is made, not when its first request comes."""
    pool = WorkerPool(FakeBackend(1), "openai-chat", Settings(url=url_of(make_mock()), timeout_s=5.0), TOKENIZER,
                      workers=1)
    try:
        pool.start(timeout_s=START_S)
        before = {t.name for t in threading.enumerate()}
        testers = [pool.tester(index) for index in (1, 2, 3)]
        slots = {f"sse-perf-slot-{t.slot}" for t in testers}
        assert not slots & before
        assert wait_until(lambda: slots <= {t.name for t in threading.enumerate()}, timeout_s=10.0), \
            "the worker made no slot before a request came"
        record = testers[0].run(1, 1, Query("hello"), None)
        assert record.ok, record.error
    finally:
        pool.close()


def test_a_worker_of_another_version_is_refused(make_mock, monkeypatch):
    def other_version(conn, api, settings, tokenizer, clock=time.perf_counter_ns):
        original_send = conn.send

        def send(message):
            if message[0] == "ready":
                message = ("ready", dict(message[1], sse_perf="0.0.1"))
            original_send(message)

        conn.send = send
        worker_main(conn, api, settings, tokenizer, clock)

    monkeypatch.setattr("sse_perf_tool.worker_pool.worker_main", other_version)
    pool = WorkerPool(FakeBackend(1), "openai-chat", Settings(url=url_of(make_mock()), timeout_s=5.0), TOKENIZER,
                      workers=1)
    with pytest.raises(WorkerRefused, match="sse-perf 0.0.1"):
        pool.start(timeout_s=START_S)


@pytest.fixture
def serve_stalled():
    from sse_builders import oa_delta

    from .fault_server import FaultServer, Hang, Send, chunk, head

    server = FaultServer([Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Hang(4)])
    yield server
    server.stop()


@pytest.mark.parametrize("extra,needle", [
    pytest.param(["--ray", "local", "--processes", "2", "--threads", "4"], "--ray and --processes cannot be combined",
                 id="with-processes"),
    pytest.param(["--ray-workers", "2", "--threads", "4"], "--ray-workers needs --ray", id="workers-without-ray"),
    pytest.param(["--ray-spread", "strict"], "--ray-spread needs --ray", id="spread-without-ray"),
    pytest.param(["--ray", "gpu1"], "--ray must be local, auto or the cluster's HOST:PORT", id="no-port"),
    pytest.param(["--ray", "ray://head:10001"], "Ray Client", id="ray-client"),
    pytest.param(["--ray", "local", "--ray-workers", "3", "--threads", "2"], "--ray-workers 3 is more than the 2 threads",
                 id="more-than-threads"),
    pytest.param(["--ray", "local", "--ray-workers", "0"], "--ray-workers must be at least 1", id="zero"),
    pytest.param(["--ray", "local", "--ray-spread", "wide"], "--ray-spread", id="bad-spread"),
])
def test_bad_ray_options_exit_2_with_one_line_and_send_nothing(extra, needle, mock_server, tmp_path, cli):
    """Checked with the other options, before Ray is imported or anything is sent."""
    assert_refused(cli, mock_server, tmp_path / "out", extra, needle)


def test_each_worker_reports_its_own_self_check_seconds(make_mock, pool_of):
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=4)
    start = time.perf_counter_ns()
    pool = pool_of(url_of(server))
    for index in (1, 2):
        assert pool.tester(index).run(index, index, Query("q"), None).ok
    time.sleep(2.3)  # the workers report ten times a second
    per_worker = pool.worker_seconds(start)
    assert [worker.number for worker, _ in per_worker] == [1, 2]
    for _, rows in per_worker:
        assert len(rows) >= 2
        seconds = [row["second"] for row in rows]
        assert seconds == sorted(seconds) and seconds[0] >= 0
        assert all(row["client.lag_p99_ms"] is not None and row["client.lag_p99_ms"] >= 0 for row in rows)
        cpu = [row["client.cpu_pct"] for row in rows[1:]]
        assert cpu and all(value is not None and 0 <= value < 400 for value in cpu)


def test_a_run_with_workers_judges_each_one_in_its_summary(make_mock, tmp_path, cli):
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=4)
    code, _, err = cli(["--base-url", server.base_url, "--processes", 2, "--threads", 2, "--duration", 2.5,
                        "--quiet", "--no-history", "--output-dir", tmp_path])
    assert code == 0, err
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    summary = json.loads((run / "summary.json").read_text())
    workers = summary["client"]["workers"]
    assert [w["worker"] for w in workers] == [1, 2]
    assert all(w["where"].startswith("pid ") and w["saturated_from_s"] is None for w in workers)
    assert all(w["lag_ms_p99_max"] is not None for w in workers)
    load = summary["run"]["load"]
    assert load["backend"] == "processes" and load["workers"] == 2 and load["clock_bound_ms_max"] is None
    assert [w["clock_offset_ms"] for w in load["worker_list"]] == [0.0, 0.0]
