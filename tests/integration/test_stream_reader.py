"""The process's shared body reader on its own, over real socket pairs, with a scripted clock:
one clock read per wake stamps every byte of that wake, the limits (stall, --request-timeout,
--idle-timeout) fire from the reader's own checks, a body ends, breaks, or is drained as the
tester's own read path has it, and a tester waiting on a dead reader is not left waiting."""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

import pytest

from sse_perf_tool.chunked import ChunkedBody
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.stream_events import EventStream, StreamFailure
from sse_perf_tool.stream_reader import SharedReader

from sse_builders import OA_DONE, OA_FINISH, oa_delta

from .conftest import Clock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shared reader needs epoll")

WAIT_S = 5.0  # the longest any step may take before the test fails


@dataclass
class Settings:
    timeout_s: float = 30.0
    request_timeout_s: Optional[float] = None
    idle_timeout_s: Optional[float] = None
    think_tag: str = ""


class Owner:
    events_received = 0


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST = b"0\r\n\r\n"


class Stream:
    """One body being read by the reader on a thread of its own, like a waiting tester."""

    def __init__(self, reader: SharedReader, settings: Settings = Settings(), early: bytes = b""):
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.record = RequestRecord(1, 1, "q", None, time.time(), reader.test_clock())
        self.answer: list = []
        self.events = EventStream(self.record, get_flavor("openai-chat"), Owner(), settings, self.answer, [], {}, {})
        self.result: dict = {}
        self.thread = threading.Thread(target=self._read, args=(reader, early), daemon=True)
        self.thread.start()

    def _read(self, reader, early) -> None:
        try:
            self.result["clean"] = reader.read(self.ours, self.events, ChunkedBody(None), early, "[DONE]")
        except StreamFailure as failure:
            self.result["failure"] = failure

    def send(self, data: bytes) -> None:
        self.theirs.sendall(data)

    def wait_until(self, condition) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, "the reader did not get there in time"
            time.sleep(0.002)

    def outcome(self) -> dict:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "read() did not return"
        self.theirs.close()
        self.ours.close()
        return self.result


def test_each_wake_stamps_its_bytes_with_one_clock_read(reader):
    stream = Stream(reader)
    times = stream.record.token_times_ns
    reader.test_clock.now = 2_000_000
    stream.send(chunk(oa_delta(role="assistant", content="") + oa_delta(content="Hello")))
    stream.wait_until(lambda: len(times) == 1)
    reader.test_clock.now = 3_000_000
    stream.send(chunk(oa_delta(content=" there")) + chunk(oa_delta(content="!") + OA_FINISH))
    stream.wait_until(lambda: len(times) == 3)
    reader.test_clock.now = 4_000_000
    stream.send(chunk(OA_DONE) + LAST)
    assert stream.outcome() == {"clean": True}
    record = stream.record
    assert list(times) == [2_000_000, 3_000_000, 3_000_000], "two events of one read share its instant"
    assert (record.first_byte_ns, record.first_token_ns, record.ended_ns) == (2_000_000, 2_000_000, 4_000_000)
    assert "".join(stream.answer) == "Hello there!" and record.finish_reason == "stop"


def test_many_streams_ready_together_are_read_in_a_few_wakes_at_one_instant(reader):
    streams = [Stream(reader) for _ in range(40)]
    time.sleep(0.05)  # every stream registered
    wakes = reader.wakes
    reader.test_clock.now = 7_000_000
    for s in streams:
        s.send(chunk(oa_delta(content="Hi") + OA_FINISH) + chunk(OA_DONE) + LAST)
    outcomes = [s.outcome() for s in streams]
    assert outcomes == [{"clean": True}] * 40
    assert {s.record.first_token_ns for s in streams} == {7_000_000}
    assert reader.wakes - wakes < 40, "an epoll wake reads every ready socket, not one"


def test_bytes_that_came_with_the_head_are_read_before_the_socket_is_handed_over(reader):
    body = chunk(oa_delta(content="Hi") + OA_FINISH) + chunk(OA_DONE) + LAST
    reader.test_clock.now = 5_000_000
    stream = Stream(reader, early=body)
    assert stream.outcome() == {"clean": True}
    assert stream.record.first_token_ns == 5_000_000 and stream.record.ended_ns == 5_000_000


def test_a_stall_fails_as_timeout_when_no_byte_comes_for_the_timeout(reader):
    stream = Stream(reader, Settings(timeout_s=2.0))
    time.sleep(0.05)
    reader.test_clock.now += 1_900_000_000
    time.sleep(0.05)
    assert stream.thread.is_alive(), "1.9 s without a byte is within a 2 s timeout"
    reader.test_clock.now += 200_000_000
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.TIMEOUT and failure.message == "no event for 2 s (stream stalled)"


def test_the_request_timeout_fires_on_a_silent_stream_before_the_stall_timeout(reader):
    stream = Stream(reader, Settings(timeout_s=60.0, request_timeout_s=3.0))
    time.sleep(0.05)
    reader.test_clock.now += 3_100_000_000
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.TIMEOUT and "--request-timeout 3 s" in failure.message
    assert stream.record.ended_ns == reader.test_clock.now


def test_keep_alive_comments_do_not_hold_off_the_idle_timeout(reader):
    stream = Stream(reader, Settings(timeout_s=60.0, idle_timeout_s=1.0))
    for _ in range(3):
        reader.test_clock.now += 400_000_000
        stream.send(chunk(b": keep-alive\n\n"))
        time.sleep(0.03)
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.TIMEOUT and "--idle-timeout" in failure.message


def test_a_connection_closed_before_the_last_chunk_is_truncated(reader):
    stream = Stream(reader)
    stream.send(chunk(oa_delta(content="Hi")))
    stream.wait_until(lambda: len(stream.record.token_times_ns) == 1)
    stream.theirs.shutdown(socket.SHUT_WR)
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.TRUNCATED
    assert failure.message == ("stream broken before its end event: IncompleteBody: connection closed before the "
                               "last chunk (chunked body incomplete)")


def test_broken_framing_is_protocol_after_the_good_payload_before_it(reader):
    stream = Stream(reader)
    stream.send(chunk(oa_delta(content="Hi")) + b"zz\r\n")
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.PROTOCOL and "bad chunk size line" in failure.message
    assert "".join(stream.answer) == "Hi"


def test_the_closing_chunk_is_drained_and_a_late_one_costs_only_the_connection(reader):
    stream = Stream(reader)
    stream.send(chunk(oa_delta(content="Hi") + OA_FINISH) + chunk(OA_DONE))
    stream.wait_until(lambda: stream.record.ended_ns is not None)
    ended = stream.record.ended_ns
    reader.test_clock.now += 50_000_000
    stream.send(LAST)
    assert stream.outcome() == {"clean": True} and stream.record.ended_ns == ended

    late = Stream(reader)
    late.send(chunk(oa_delta(content="Hi") + OA_FINISH) + chunk(OA_DONE))
    late.wait_until(lambda: late.record.ended_ns is not None)
    reader.test_clock.now += 300_000_000  # past the 0.2 s drain limit
    assert late.outcome() == {"clean": False}, "ok, but the connection is not kept"


def test_a_connection_cut_while_draining_truncates_the_request(reader):
    stream = Stream(reader)
    stream.send(chunk(oa_delta(content="Hi") + OA_FINISH) + chunk(OA_DONE))
    stream.wait_until(lambda: stream.record.ended_ns is not None)
    stream.theirs.shutdown(socket.SHUT_WR)
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.TRUNCATED and failure.message.startswith("body cut short after [DONE]")


def test_an_abort_shuts_the_socket_and_the_reader_ends_the_request(reader):
    stream = Stream(reader)
    stream.send(chunk(oa_delta(content="Hi")))
    stream.wait_until(lambda: len(stream.record.token_times_ns) == 1)
    stream.ours.shutdown(socket.SHUT_RDWR)  # what SSETester.abort() does from another thread
    assert stream.outcome()["failure"].kind is ErrorKind.TRUNCATED  # the tester records it as cancelled


def test_a_tester_waiting_on_a_stopped_reader_gets_an_internal_failure():
    clock = Clock()
    shared = SharedReader(clock, tick_s=0.01)
    shared.test_clock = clock
    stream = Stream(shared)
    time.sleep(0.05)
    shared.close()  # the reader thread is gone while the stream waits
    stream.thread.join(3.0)
    failure = stream.outcome()["failure"]
    assert failure.kind is ErrorKind.INTERNAL and "stream reader stopped" in failure.message
