"""The shared reader reads a response from the moment its request went out (SharedReader.watch):
every read is stamped as it comes and kept; http.client reads the head from those bytes
(head_source.HeadSource), never a byte past the head's blank line; the body handed over takes the
kept bytes with the instants they came at; a tester that reads on itself (an error body) gets
the kept bytes first, then the socket's. Real socket pairs and a scripted clock; the last tests go
through the whole tester over real loopback HTTP."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time

import pytest

from sse_builders import OA_DONE, OA_FINISH, oa_delta
from sse_perf_tool import stream_reader
from sse_perf_tool.chunked import ChunkedBody
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.records import RequestRecord
from sse_perf_tool.stream_events import EventStream, StreamFailure
from sse_perf_tool.stream_reader import WATCH_LIMIT, SharedReader

from .fault_server import LAST_CHUNK, Hang, Send, Sleep, chunk, head
from .test_stream_reader import Owner, Settings
from .test_tester import run_real

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not stream_reader.libc.AVAILABLE,
                                reason="the shared reader watches plain sockets through epoll and libc")

WAIT_S = 5.0
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.settimeout(WAIT_S)
    yield ours, theirs
    ours.close()
    theirs.close()


def kept(reader: SharedReader, sock, count: int) -> None:
    """Wait until the reader has kept `count` pieces of `sock`'s answer."""
    job = reader._jobs[sock.fileno()]
    deadline = time.monotonic() + WAIT_S
    while len(job.pending) < count:
        assert time.monotonic() < deadline, "the reader did not keep the bytes in time"
        time.sleep(0.002)


OPEN_FILES: list = []  # a buffered reader closes its raw file when it is collected: kept as http.client keeps it


def read_head(source) -> bytes:
    """What http.client's buffered reader gets up to the head's blank line."""
    buffered = io.BufferedReader(source)
    OPEN_FILES.append(buffered)
    lines = []
    while True:
        line = buffered.readline(65537)
        lines.append(line)
        if line in (b"\r\n", b""):
            return b"".join(lines)


def new_stream(reader: SharedReader):
    record = RequestRecord(1, 1, "q", None, time.time(), reader.test_clock())
    answer: list = []
    return record, answer, EventStream(record, get_flavor("openai-chat"), Owner(), Settings(), answer, [], {}, {})


def test_a_first_token_kept_before_the_handover_is_stamped_when_it_came(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    assert source is not None
    reader.test_clock.now = 2_000_000
    theirs.sendall(HEAD)
    kept(reader, ours, 1)
    reader.test_clock.now = 3_000_000
    theirs.sendall(chunk(oa_delta(role="assistant", content="") + oa_delta(content="Hi")))
    kept(reader, ours, 2)
    assert read_head(source) == HEAD, "the head, and not a byte past its blank line"
    assert source.watched
    reader.test_clock.now = 9_000_000  # the tester hands the body over late
    record, answer, events = new_stream(reader)
    result: dict = {}

    def tester() -> None:
        result["clean"] = reader.read(ours, events, ChunkedBody(None), b"", "[DONE]")

    thread = threading.Thread(target=tester, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while len(record.token_times_ns) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    reader.test_clock.now = 12_000_000
    theirs.sendall(chunk(oa_delta(content=" there") + OA_FINISH) + chunk(OA_DONE) + LAST_CHUNK)
    thread.join(WAIT_S)
    assert result == {"clean": True}
    assert record.first_byte_ns == 3_000_000 and record.first_token_ns == 3_000_000, \
        "stamped when the reader read it, not at the handover (9 ms)"
    assert list(record.token_times_ns) == [3_000_000, 12_000_000]
    assert record.ended_ns == 12_000_000 and "".join(answer) == "Hi there"
    assert ours.fileno() not in reader._jobs


def test_a_blank_line_split_across_two_reads_ends_the_head_exactly(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    theirs.sendall(HEAD[:-1])
    kept(reader, ours, 1)
    body = chunk(oa_delta(content="x"))
    theirs.sendall(HEAD[-1:] + body)
    kept(reader, ours, 2)
    assert read_head(source) == HEAD
    job = reader._jobs[ours.fileno()]
    assert [data for data, _ in job.pending] == [body], "the body's bytes stay with the reader"


def test_the_head_waits_for_its_bytes(reader, pair):
    """A head that comes after http.client began to read: the read waits for the reader's piece."""
    ours, theirs = pair
    source = reader.watch(ours)
    timer = threading.Timer(0.05, theirs.sendall, (HEAD,))
    timer.start()
    assert read_head(source) == HEAD
    timer.join()


def test_reading_on_after_the_head_takes_the_socket_back(reader, pair):
    """An error status: the tester reads the body itself, the kept bytes first, then the socket's."""
    ours, theirs = pair
    source = reader.watch(ours)
    error_head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\n"
    theirs.sendall(error_head + b"overl")
    kept(reader, ours, 1)
    buffered = io.BufferedReader(source)
    assert buffered.readline() == error_head.split(b"\r\n")[0] + b"\r\n"
    while buffered.readline() != b"\r\n":
        pass
    theirs.sendall(b"oaded")
    assert buffered.read(5) == b"overl"
    assert ours.fileno() not in reader._jobs and not source.watched, "the reader let the socket go"
    theirs.sendall(b"!")
    assert buffered.read(6) == b"oaded!"


def test_a_closed_connection_reads_as_the_end(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    theirs.shutdown(socket.SHUT_WR)
    buffered = io.BufferedReader(source)
    assert buffered.readline() == b"" and buffered.readline() == b"", "every read after the end is the end"
    assert not reader._jobs[ours.fileno()].polled, "a closed socket is not polled for ever"


def test_no_head_within_the_socket_timeout_times_out(reader, pair):
    ours, theirs = pair
    ours.settimeout(0.05)
    source = reader.watch(ours)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        io.BufferedReader(source).readline()
    assert time.monotonic() - started < WAIT_S


def test_past_the_limit_the_reader_waits_for_the_tester_and_loses_nothing(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    length = 3 * WATCH_LIMIT
    payload = bytes(range(256)) * (length // 256)
    sender = threading.Thread(target=theirs.sendall, args=(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                                                           % length + payload,), daemon=True)
    sender.start()
    job = reader._jobs[ours.fileno()]
    deadline = time.monotonic() + WAIT_S
    while job.size < WATCH_LIMIT:
        assert time.monotonic() < deadline, "the reader did not read up to its limit"
        time.sleep(0.002)
    assert not job.polled, "at the limit the reader stops reading that socket"
    buffered = io.BufferedReader(source)
    while buffered.readline() != b"\r\n":
        pass
    received = b""
    while len(received) < length:
        piece = buffered.read1(65536)
        assert piece, "the body ended early"
        received += piece
    sender.join(WAIT_S)
    assert received == payload


def test_a_socket_the_reader_reads_already_is_not_watched_twice(reader, pair):
    ours, _ = pair
    first = reader.watch(ours)
    assert first is not None
    assert reader.watch(ours) is None
    first.close()
    assert reader.watch(ours) is not None, "once let go, it can be watched again"


def test_closing_the_response_before_the_handover_lets_the_socket_go(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    theirs.sendall(HEAD)
    kept(reader, ours, 1)
    source.close()
    assert ours.fileno() not in reader._jobs
    ours.settimeout(0.5)
    theirs.sendall(b"after")
    assert ours.recv(16) == b"after", "the socket is the connection's again, its bytes untouched"


def test_a_failure_in_the_kept_bytes_is_the_requests_failure(reader, pair):
    ours, theirs = pair
    source = reader.watch(ours)
    theirs.sendall(HEAD + b"zz\r\nnot a chunk\r\n")
    kept(reader, ours, 1)
    read_head(source)
    record, _, events = new_stream(reader)
    with pytest.raises(StreamFailure, match="malformed chunked body"):
        reader.read(ours, events, ChunkedBody(None), b"", "[DONE]")
    assert ours.fileno() not in reader._jobs


# -- through the whole tester, over real loopback HTTP -----------------------------------------

def test_a_tester_late_to_hand_over_still_gets_the_first_tokens_instant(serve, monkeypatch):
    """The tester's thread is 150 ms late to hand the body over (as when it waits for the
    interpreter lock behind hundreds of threads); the first token came right after the head: its
    TTFT is when it came, not when the tester got round to it."""
    real = SharedReader.read

    def late(self, *args):
        time.sleep(0.15)
        return real(self, *args)

    monkeypatch.setattr(SharedReader, "read", late)
    server = serve(Send(head(chunked=True) + chunk(oa_delta(role="assistant", content="") + oa_delta(content="Hi"))),
                   Sleep(0.3), Send(chunk(oa_delta(content=" there") + OA_FINISH + OA_DONE)), Send(LAST_CHUNK),
                   Hang(1))
    record = run_real(server.url(), timeout_s=2.0)
    assert record.ok, record.error
    assert record.ttft_ms < 100, record.ttft_ms
    assert 250 < record.itl_ms[0] < 400, "the second token's instant is its own"
    assert record.output_chars == len("Hi there")


def test_one_connection_carries_a_testers_requests_through_watched_heads():
    """Requests one after another on one kept connection, each head read from the reader's bytes:
    urllib3 takes the connection back each time, as it does for a head read off the socket."""
    from sse_perf_tool.flavors.base import Query
    from sse_perf_tool.mock_server import MockConfig, MockServer
    from sse_perf_tool.tester import SSETester, TesterSettings
    from word_counter import WordCounter

    with MockServer(MockConfig(ttft_ms=5.0, itl_ms=1.0, tokens=5)) as mock:
        tester = SSETester(get_flavor("openai-chat"), TesterSettings(url=mock.base_url + "/chat/completions",
                                                                     timeout_s=5.0), WordCounter())
        try:
            records = [tester.run(n, 1, Query("q"), None) for n in range(1, 4)]
        finally:
            tester.close()
        snapshot = mock.stats.snapshot()
    assert all(r.ok for r in records), [r.error for r in records]
    assert all(r.chunks >= 5 for r in records)
    assert snapshot["requests"] == 3 and snapshot["connections"] == 1
