"""`--processes P`: the streams are read in P spawned worker processes (worker_pool.py).

Part 1 drives WorkerPool and RemoteTester directly against real loopback servers (the mock server
and fault_server.py): records on the parent's clock, the threads spread over the workers, abort,
take_in_flight, a worker killed mid-request, a pool that cannot start, Ctrl-C ignored by workers.
Part 2 runs the CLI end to end with --processes (closed loop, open loop, sweep, bad input, Ctrl-C
of the whole process group). The self-check's merging of the workers' lags and CPU is in
tests/unit/test_selfcheck.py.

Every wait is bounded; every pool made here is closed by its fixture."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from sse_builders import OA_DONE, oa_delta
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.selfcheck import usable_cores
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings  # not `Test*`: pytest would try to collect it
from sse_perf_tool.worker_pool import RemoteTester, WorkerPool, WorkerPoolError
from waiting import wait_until
from word_counter import WordCounter

from .fault_server import LAST_CHUNK, Hang, Send, Sleep, chunk, head
from .in_flight import abort_and_join, run_in_thread, start_streaming
from .run_folder import only_run

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = "cl100k_base"
START_S = 30.0  # a pool start on a busy 2-core machine; it normally takes under a second


# -- helpers ---------------------------------------------------------------------------------------


def proc_state(pid: int) -> Optional[str]:
    """The process's state letter from /proc (R, S, Z, ...), or None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()[0]


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited: only its exit status is left to collect)."""
    return proc_state(pid) not in (None, "Z")


def live_children(pid: int) -> set[int]:
    """The children of `pid` that are still running (from /proc/<pid>/task/*/children)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found.update(int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except FileNotFoundError:
            continue  # that thread ended meanwhile
    return {child for child in found if running(child)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


@pytest.fixture
def pools():
    """make(processes, url, api="openai-chat", timeout_s=5) -> a started WorkerPool; all closed after the test."""
    made: list[WorkerPool] = []

    def make(processes: int, url: str, api: str = "openai-chat", timeout_s: float = 5.0) -> WorkerPool:
        pool = WorkerPool(processes, api, Settings(url=url, timeout_s=timeout_s), TOKENIZER)
        made.append(pool)
        return pool.start(timeout_s=START_S)

    yield make
    for pool in made:
        pool.close()


def openai_url(server) -> str:
    return server.base_url + get_flavor("openai-chat").path


STALLED = (Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Hang(4))


# -- part 1: the pool and its testers ----------------------------------------------------------------


def test_records_come_back_ok_on_the_parents_clock(make_mock, pools):
    """A request read in a worker process comes back as an ok record whose instants are on the
    parent's perf_counter_ns clock: sent_ns and ended_ns lie between the parent's readings taken
    before and after run(), every token instant lies between them, and TTFT is at least the server's
    delay. events_received counts the record's chunks over the tester's requests, right after run()."""
    server = make_mock(ttft_ms=30, itl_ms=2, tokens=6)
    pool = pools(2, openai_url(server))
    tester = pool.tester(1)
    total_chunks = 0
    for request_id in (1, 2):
        before = time.perf_counter_ns()
        record = tester.run(request_id, 1, Query("q"), None)
        after = time.perf_counter_ns()
        assert record is not None and record.ok, record and record.error
        assert (record.request_id, record.thread_id, record.query) == (request_id, 1, "q")
        assert before <= record.sent_ns < record.first_token_ns <= record.ended_ns <= after
        assert list(record.token_times_ns) == sorted(record.token_times_ns)
        assert record.sent_ns <= record.token_times_ns[0] and record.token_times_ns[-1] <= record.ended_ns
        assert record.chunks == 6 and record.output_tokens == 6
        assert record.ttft_ms >= 29.0
        total_chunks += record.chunks
        assert tester.events_received == total_chunks
    assert server.stats.snapshot()["requests"] == 2


def test_threads_alternate_over_the_workers_and_run_concurrently(make_mock, pools):
    """tester(1..4) go to worker 1, 2, 1, 2, each with a slot of its own; the two workers are
    separate live processes (not this one); four testers run at once: all four requests are in
    flight together (two per worker), and each comes back ok with its own ids."""
    server = make_mock(ttft_ms=300, itl_ms=1, tokens=3)
    pool = pools(2, openai_url(server))
    testers = [pool.tester(i) for i in range(1, 5)]
    assert all(isinstance(t, RemoteTester) for t in testers)
    assert [t.worker for t in testers] == [pool.workers[0], pool.workers[1], pool.workers[0], pool.workers[1]]
    assert len({t.slot for t in testers}) == 4
    pids = {w.process.pid for w in pool.workers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(running(pid) for pid in pids)
    assert pids <= live_children(os.getpid())

    runs = [run_in_thread(t, request_id=10 + i, thread_id=i) for i, t in enumerate(testers, start=1)]
    for thread, _ in runs:
        thread.join(5.0)
        assert not thread.is_alive()
    records = [result["record"] for _, result in runs]
    assert all(r.ok for r in records), [r.error for r in records]
    assert [(r.request_id, r.thread_id) for r in records] == [(11, 1), (12, 2), (13, 3), (14, 4)]
    # all four in flight at once: every one was sent before any one ended
    assert max(r.sent_ns for r in records) < min(r.ended_ns for r in records)


def test_cpu_and_lag_reports_arrive_and_lags_are_taken_once(make_mock, pools):
    """The workers report their CPU time and lag samples ten times a second: cpu_seconds() grows
    while they run, take_lags() returns the samples of ~0.5 s (non-negative ms), and a second call
    right after returns fewer (the first call took them)."""
    server = make_mock(ttft_ms=0, itl_ms=0, tokens=3)
    pool = pools(2, openai_url(server))
    pool.take_lags()
    cpu_before = pool.cpu_seconds()
    record = pool.tester(1).run(1, 1, Query("q"), None)
    assert record.ok, record.error
    time.sleep(0.5)
    lags = pool.take_lags()
    assert len(lags) >= 20, lags  # 2 workers x ~50 samples of a 10 ms sleep, less a busy machine's delays
    assert all(isinstance(v, float) and v >= 0.0 for v in lags)
    assert len(pool.take_lags()) < len(lags)
    assert wait_until(lambda: pool.cpu_seconds() > cpu_before, 3.0)
    assert all(w.cpu_s > 0 for w in pool.workers)


def test_close_leaves_no_worker_process(make_mock, pools):
    """close() stops every worker: once it returns none is alive or left as a child of this
    process, and multiprocessing lists none of them as active children."""
    server = make_mock()
    pool = pools(2, openai_url(server))
    assert pool.tester(1).run(1, 1, Query("q"), None).ok
    pids = [w.process.pid for w in pool.workers]
    pool.close()
    assert not any(w.process.is_alive() for w in pool.workers)
    assert not set(pids) & live_children(os.getpid())
    assert not any(p.pid in pids for p in multiprocessing.active_children())


def test_close_with_a_request_in_flight_ends_it_and_returns(serve, pools):
    """close() while a stream is stalled: the worker aborts it, close() returns, and the waiting
    run() returns a `cancelled` record (never hangs, and not the `timeout` the stall would end in)."""
    server = serve(*STALLED)
    pool = pools(1, server.url(), timeout_s=4.0)
    tester = pool.tester(1)
    thread, result = start_streaming(tester)
    pool.close()
    thread.join(10.0)  # a bound against a hang only
    assert not thread.is_alive()
    record = result["record"]
    assert record is not None and not record.ok and record.error_kind is ErrorKind.CANCELLED


def test_abort_during_a_stalled_stream_ends_it_as_cancelled_promptly(serve, pools):
    """abort() from another thread reaches the worker: the stalled request ends as `cancelled`
    (not as the `timeout` its 3 s read limit would give), with the one token it got."""
    server = serve(*STALLED)
    pool = pools(1, server.url(), timeout_s=3.0)
    tester = pool.tester(1)
    thread, result = start_streaming(tester)
    record = abort_and_join(tester, thread, result)
    assert not record.ok and record.error_kind is ErrorKind.CANCELLED
    assert record.chunks == 1


def test_take_in_flight_claims_a_straggler_and_run_then_returns_none(serve, pools):
    """take_in_flight() on a request in flight returns it as `cancelled` (with its id and an end);
    the worker's own later result is dropped (run() returns None), the claimed record does not move
    afterwards, and with nothing in flight take_in_flight() is None."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Sleep(0.8),
                   Send(chunk(oa_delta(content="b") + OA_DONE)), Send(LAST_CHUNK), Hang(1))
    pool = pools(1, server.url(), timeout_s=3.0)
    tester = pool.tester(1)
    assert tester.take_in_flight() is None  # nothing sent yet
    thread, result = start_streaming(tester, request_id=7, thread_id=3)
    claimed = tester.take_in_flight()
    assert claimed is not None
    assert not claimed.ok and claimed.error_kind is ErrorKind.CANCELLED
    assert (claimed.request_id, claimed.thread_id) == (7, 3)
    assert claimed.ended_ns is not None and claimed.chunks == 1
    snapshot = claimed.to_dict()
    thread.join(3.0)
    assert not thread.is_alive()
    assert result["record"] is None
    assert claimed.to_dict() == snapshot
    assert tester.take_in_flight() is None  # nothing in flight any more


@contextlib.contextmanager
def answering_slowly(tester):
    """A worker that is slow to answer the pipe (busy, starved of CPU): SIGSTOP until the block
    ends, then SIGCONT. An in-process SSETester has nothing to hold."""
    if not isinstance(tester, RemoteTester):
        yield
        return
    pid = tester.worker.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", [
    "in-process",
    "worker-process",
])
def test_take_in_flight_claims_a_request_only_once(kind, serve, pools):
    """A second take_in_flight() while the claimed request is still being read returns None, as
    SSETester does, even when the worker is slow to answer: a request is never handed to the writer
    twice (Runner.cancel may run twice, e.g. a Ctrl-C during the end-of-grace cancel)."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Sleep(1.0),
                   Send(chunk(oa_delta(content="b") + OA_DONE)), Send(LAST_CHUNK), Hang(1))
    if kind == "in-process":
        tester = SSETester(get_flavor("openai-chat"), Settings(url=server.url(), timeout_s=3.0), WordCounter())
    else:
        tester = pools(1, server.url(), timeout_s=3.0).tester(1)
    thread, result = run_in_thread(tester)
    try:
        assert wait_until(lambda: tester.events_received >= 1, 3.0), "the first token never arrived"
        first = tester.take_in_flight()
        assert first is not None and first.error_kind is ErrorKind.CANCELLED
        with answering_slowly(tester):
            second = tester.take_in_flight()
        assert second is None, f"the same request was claimed twice: {second}"
    finally:
        thread.join(3.0)
        tester.close()
    assert not thread.is_alive()
    assert result["record"] is None


@pytest.mark.parametrize("kind", [
    "in-process",
    "worker-process",
])
def test_abort_before_run_cancels_the_next_request_without_sending_it(kind, make_mock, pools):
    """Runner.cancel() aborts every tester; a thread that had just claimed a request but not yet
    called run() must not send it: after abort(), run() returns `cancelled` and the server sees
    nothing, as with SSETester."""
    server = make_mock()
    if kind == "in-process":
        tester = SSETester(get_flavor("openai-chat"), Settings(url=openai_url(server), timeout_s=5),
                           WordCounter())
    else:
        tester = pools(1, openai_url(server)).tester(1)
    try:
        tester.abort()
        record = tester.run(1, 1, Query("q"), None)
    finally:
        tester.close()
    assert record is not None and not record.ok and record.error_kind is ErrorKind.CANCELLED
    assert server.stats.snapshot()["requests"] == 0


def test_a_killed_worker_fails_its_request_instead_of_hanging(serve, pools):
    """SIGKILL of a worker while its request is in flight: run() returns at once with a failed
    `cancelled` record that names the worker process; a later run() on that tester raises
    WorkerPoolError; problems() names the lost worker; the other worker still serves requests."""
    server = serve(*STALLED)
    pool = pools(2, server.url(), timeout_s=4.0)
    tester = pool.tester(1)
    victim = pool.workers[0]
    assert tester.worker is victim
    thread, result = start_streaming(tester, request_id=5, thread_id=1)
    os.kill(victim.process.pid, signal.SIGKILL)
    thread.join(10.0)  # a bound against a hang only: the record below says the worker died, not a timeout
    assert not thread.is_alive(), "run() hung on a dead worker"
    record = result["record"]
    assert record is not None and not record.ok
    assert record.error_kind is ErrorKind.CANCELLED
    assert record.request_id == 5 and record.ended_ns is not None
    assert "worker process 1" in record.error
    with pytest.raises(WorkerPoolError, match="worker process 1"):
        tester.run(6, 1, Query("q"), None)
    problems = pool.problems()
    assert len(problems) == 1 and "worker process 1" in problems[0]
    # the survivor still takes requests: one stalls, and abort ends it as usual
    other = pool.tester(2)
    assert other.worker is pool.workers[1]
    thread, result = start_streaming(other, request_id=7, thread_id=2)
    record = abort_and_join(other, thread, result, join_s=2.0)
    assert record.error_kind is ErrorKind.CANCELLED and record.chunks == 1


def test_a_pool_that_cannot_start_says_why_and_leaves_no_process(make_mock):
    """An api the workers cannot build: start() raises WorkerPoolError naming the cause (the
    workers' own error, not the start timeout); no worker process is left running and nothing was
    sent."""
    server = make_mock()
    children_before = live_children(os.getpid())
    pool = WorkerPool(2, "no-such-api", Settings(url=openai_url(server), timeout_s=5), TOKENIZER)
    try:
        with pytest.raises(WorkerPoolError) as caught:
            pool.start(timeout_s=START_S)
    finally:
        pids = [w.process.pid for w in pool.workers]
        pool.close()  # a no-op when start() already stopped them
    message = str(caught.value)
    assert "could not start" in message and "no-such-api" in message and "\n" not in message
    assert len(pids) == 2
    assert not any(running(pid) for pid in pids)
    assert live_children(os.getpid()) <= children_before
    assert server.stats.snapshot()["requests"] == 0


def test_workers_ignore_sigint(make_mock, pools):
    """Ctrl-C reaches every process of the terminal's group; a worker ignores it (the parent
    stops the workers through their pipes), so it keeps serving requests."""
    server = make_mock()
    pool = pools(1, openai_url(server))
    pid = pool.workers[0].process.pid
    os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    assert running(pid) and pool.problems() == []
    record = pool.tester(1).run(1, 1, Query("q"), None)
    assert record is not None and record.ok, record and record.error


# -- part 2: the CLI end to end ---------------------------------------------------------------------


def test_closed_loop_with_two_processes_records_every_request_once(make_mock, tmp_path, cli):
    """--processes 2 --threads 4 --requests 20: exactly 20 ok records with ids 1..20, spread over
    threads 1..4, the server saw exactly 20 requests, the summary counts 20 and records
    run.load.processes 2, the self-check counts the workers' cores (3 Python processes), and the
    banner says the streams are read in 2 worker processes."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=4)
    code, out, err = cli(["--base-url", server.base_url, "--processes", 2, "--threads", 4, "--requests", 20,
                          "--quiet", "--no-history", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    assert [r["request_id"] for r in run.records] == list(range(1, 21))
    assert {r["thread_id"] for r in run.records} == {1, 2, 3, 4}
    assert all(r["ok"] for r in run.records), [r["error"] for r in run.records if not r["ok"]]
    assert all(r["ttft_ms"] is not None and r["ttft_ms"] >= 4.5 for r in run.records)
    assert server.stats.snapshot()["requests"] == 20
    s = run.summary
    assert s["requests"]["total"] == 20 and s["requests"]["ok"] == 20
    assert s["run"]["load"]["processes"] == 2
    assert s["client"]["cores_usable"] == usable_cores(3)
    assert s["client"]["lag_ms_p99"] is not None
    assert "read in 2 worker processes" in out
    assert "warning" not in err


def test_open_loop_with_two_processes_keeps_the_schedule(make_mock, tmp_path, cli):
    """--rate 20 --arrival constant --duration 1 --threads 4 --processes 2: the arrivals keep their
    50 ms schedule (scheduled_at 50 ms apart), every due arrival is sent or counted as not sent, the
    queue time is small and E2E from the scheduled instant is queue + E2E, as with one process."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=3)
    code, _, err = cli(["--base-url", server.base_url, "--rate", 20, "--arrival", "constant", "--duration", 1,
                        "--threads", 4, "--processes", 2, "--quiet", "--no-history", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    recs, s = run.records, run.summary
    assert len(recs) + s["requests"]["not_sent"] == 20
    assert len(recs) >= 15
    assert all(r["ok"] for r in recs)
    gaps_ms = [(b["scheduled_at"] - a["scheduled_at"]) * 1000 for a, b in zip(recs, recs[1:])]
    assert gaps_ms == pytest.approx([50.0] * len(gaps_ms), abs=5.0)
    for r in recs:
        assert r["queue_ms"] is not None and r["queue_ms"] >= 0
        assert r["scheduled_at"] <= r["started_at"]
        assert r["e2e_from_scheduled_ms"] == pytest.approx(r["queue_ms"] + r["e2e_ms"], abs=0.002)
    assert s["queue_ms"]["count"] == len(recs) and s["queue_ms"]["p50"] < 20
    assert s["run"]["load"]["model"] == "open" and s["run"]["load"]["processes"] == 2


def test_thread_sweep_with_two_processes_runs_every_level(make_mock, tmp_path, cli):
    """--sweep-threads 2,4 --processes 2 --duration 0.5: both levels run in turn (new testers on the
    same workers), each has its records with its own thread ids, request ids run on without gaps."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=3)
    code, _, err = cli(["--base-url", server.base_url, "--sweep-threads", "2,4", "--processes", 2, "--duration", 0.5,
                        "--quiet", "--no-history", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    s = run.summary
    assert [b["level"] for b in s["levels"]] == [{"threads": 2}, {"threads": 4}]
    assert [r["request_id"] for r in run.records] == list(range(1, len(run.records) + 1))
    for block in s["levels"]:
        threads = block["level"]["threads"]
        mine = [r for r in run.records if r["level"] == threads]
        assert block["requests"]["total"] == len(mine) > 0
        assert {r["thread_id"] for r in mine} == set(range(1, threads + 1))
    assert all(r["ok"] for r in run.records)
    assert s["run"]["load"]["processes"] == 2


@pytest.mark.parametrize("extra,needle", [
    pytest.param(["--processes", "3", "--threads", "2"], "--processes 3 is more than the 2 threads", id="more-than-threads"),
    pytest.param(["--processes", "0"], "--processes must be at least 1", id="zero"),
    pytest.param(["--processes", "-2", "--threads", "4"], "--processes must be at least 1", id="negative"),
    pytest.param(["--processes", "two"], "--processes", id="not-a-number"),
])
def test_bad_processes_exit_2_with_one_line_and_send_nothing(extra, needle, mock_server, tmp_path, cli):
    """Bad --processes: exit 2, one line on stderr naming the problem, no request sent, no run folder."""
    out_dir = tmp_path / "out"
    code, out, err = cli(["--base-url", mock_server.base_url, "--no-history", "--output-dir", out_dir, *extra])
    assert code == 2, (out, err)
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert mock_server.stats.snapshot()["requests"] == 0
    assert not out_dir.exists() or not any(p.is_dir() for p in out_dir.iterdir())


@pytest.mark.parametrize("sig,expected", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_to_the_process_group_stops_a_multi_process_run_cleanly(tmp_path, sig, expected):
    """A terminal's Ctrl-C (SIGINT to the whole process group) during a --processes 2 run: exit 130
    within seconds, summary.json written with run.interrupted true and the requests in flight
    recorded as cancelled, no traceback, and no worker process (or other child) left running."""
    out_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", "ttft_ms=300,itl_ms=5,tokens=4", "--threads",
         "4", "--processes", "2", "--duration", "30", "--no-history", "--quiet", "--output-dir", str(out_dir)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []

    def read_stdout():
        for line in proc.stdout:  # ends at EOF, when the run exits (or is killed below)
            lines.append(line)

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        # the banner comes once the workers are ready
        assert wait_until(lambda: any("worker processes" in line for line in lines), 30.0), lines
        children = live_children(proc.pid)
        workers = {pid for pid in children if "spawn_main" in cmdline(pid)}
        assert len(workers) == 2, {pid: cmdline(pid) for pid in children}
        time.sleep(0.4)  # four requests in flight (each takes ~320 ms at this demo server)
        os.killpg(proc.pid, sig)  # the workers ignore it: the parent cancels them and writes the results
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    reader.join(5.0)
    err = proc.stderr.read()
    out = "".join(lines)
    assert code == expected, (out, err)
    assert "Traceback" not in out + err
    assert "interrupted" in out
    run = only_run(out_dir)
    assert run.summary["run"]["interrupted"] is True
    assert run.summary["run"]["load"]["processes"] == 2
    assert run.records and any(r["error_kind"] == "cancelled" for r in run.records)
    assert run.summary["requests"]["total"] == len(run.records)
    assert wait_until(lambda: not any(running(pid) for pid in children), 5.0), \
        {pid: (proc_state(pid), cmdline(pid)) for pid in children if running(pid)}
