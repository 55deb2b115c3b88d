"""SSETester over real loopback sockets (fault_server.py) through the real requests/urllib3 stack:
every fault mapped to the right `error_kind`, abort and take_in_flight, connections kept between
requests. The exact timings with a scripted clock: tests/unit/test_tester.py."""

from __future__ import annotations

import json
import socket
import struct
import sys

import pytest

from sse_builders import OA_DONE, OA_FINISH, dify, dify_end, oa_delta, oa_usage, sse
from sse_perf_tool.body_reader import socket_of
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings  # not `Test*`: pytest would try to collect it
from word_counter import WordCounter

from .fault_server import (
    LAST_CHUNK,
    Close,
    Hang,
    Reset,
    Send,
    Sleep,
    chunk,
    free_port,
    head,
    json_response,
)
from .in_flight import abort_and_join, start_streaming


# -- part 2: faults over real loopback sockets -------------------------------------------------

TIMEOUT_S = 0.5

OA_OK = oa_delta(role="assistant", content="") + oa_delta(content="Hello") + oa_delta(content=" there") \
    + OA_FINISH + oa_usage(completion=2) + OA_DONE
DIFY_OK = dify("message", answer="Hi") + dify("message", answer=" you") + dify_end(completion=2)


def run_real(url: str, flavor: str = "openai-chat", timeout_s: float = TIMEOUT_S, tester_out=None, **kw):
    tester = SSETester(get_flavor(flavor), Settings(url=url, timeout_s=timeout_s, **kw), WordCounter())
    if tester_out is not None:
        tester_out.append(tester)
    try:
        return tester.run(1, 1, Query("q"), "app-key")
    finally:
        tester.close()


def assert_one_line(record) -> None:
    assert record.error and "\n" not in record.error and len(record.error) <= 300


def test_openai_chunked_stream_is_ok_over_sockets(serve):
    """The happy path through the real HTTP stack: chunked SSE ending in [DONE] is ok."""
    server = serve(Send(head(chunked=True)), Send(chunk(OA_OK)), Send(LAST_CHUNK), Hang(1))
    record = run_real(server.url())
    assert record.ok, record.error
    assert record.output_tokens == 2 and record.output_chars == len("Hello there")
    assert server.connections == 1
    sent = server.requests[0].headers
    assert sent["accept"] == "text/event-stream" and sent["accept-encoding"] == "identity"
    assert sent["authorization"] == "Bearer app-key"


def test_dify_chat_ending_with_message_end_is_ok(serve):
    """Dify chat: `message`* then `message_end` is a complete, successful stream."""
    server = serve(Send(head(chunked=True)), Send(chunk(DIFY_OK)), Hang(1))
    record = run_real(server.url("/v1/chat-messages"), "dify-chat")
    assert record.ok, record.error
    assert record.output_chars == len("Hi you") and record.token_source == "usage"


def test_dify_workflow_ending_with_workflow_finished_without_text_is_ok(serve):
    """dify-workflow: a run whose outputs are not streamed text ends ok at workflow_finished."""
    body = dify("workflow_started", data={}) + dify("workflow_finished", data={"status": "succeeded"})
    server = serve(Send(head()), Send(body), Close())
    record = run_real(server.url("/v1/workflows/run"), "dify-workflow")
    assert record.ok, record.error
    assert record.chunks == 0


def test_connection_refused_is_connect():
    """Nothing listening: error_kind connect, no HTTP status, one readable line."""
    record = run_real(f"http://127.0.0.1:{free_port()}/v1/chat/completions")
    assert not record.ok and record.error_kind is ErrorKind.CONNECT
    assert record.http_status is None
    assert "refused" in record.error


def test_reset_before_response_is_connect_and_not_retried(serve):
    """An RST before any response byte is `connect`; sent once (no retry hides it)."""
    server = serve(Reset())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.CONNECT, record.error
    assert record.http_status is None
    assert_one_line(record)
    assert server.connections == 1


def test_close_before_response_is_connect(serve):
    """The server closes without answering: `connect` (no response), not a retry."""
    server = serve(Close())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.CONNECT, record.error
    assert server.connections == 1


def test_no_response_headers_within_timeout_is_timeout(serve):
    """The server never answers: `timeout` after about --timeout, not a hang."""
    server = serve(Hang(3))
    record = run_real(server.url())  # the server would close after 3 s: `timeout` is the 0.5 s limit's doing
    assert not record.ok and record.error_kind is ErrorKind.TIMEOUT, record.error
    assert "0.5" in record.error
    assert record.ttfb_ms is None


def test_stall_mid_stream_is_timeout_and_keeps_ttft(serve):
    """A stream that stops sending for longer than --timeout fails as `timeout`; TTFT measured so
    far is kept, and total is about the stall."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="Hi"))), Hang(3))
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TIMEOUT, record.error
    assert record.http_status == 200
    assert record.ttft_ms is not None and record.chunks == 1
    assert TIMEOUT_S * 1000 <= record.total_ms < 2000
    assert_one_line(record)


DIFY_ERRORS = [
    (500, "500 Internal Server Error", {"code": "internal_server_error", "message": "The server broke", "status": 500}),
    (401, "401 Unauthorized", {"code": "unauthorized", "message": "Invalid Authorization token.", "status": 401}),
    (429, "429 Too Many Requests", {"code": "too_many_requests", "message": "Too many requests.", "status": 429}),
]
OPENAI_ERRORS = [
    (500, "500 Internal Server Error", {"error": {"message": "CUDA out of memory", "type": "InternalServerError", "param": None, "code": 500}}),
    (401, "401 Unauthorized", {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}),
    (429, "429 Too Many Requests", {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}),
]


@pytest.mark.parametrize(
    "flavor,path,status,status_line,body",
    [("dify-chat", "/v1/chat-messages", *case) for case in DIFY_ERRORS]
    + [("openai-chat", "/v1/chat/completions", *case) for case in OPENAI_ERRORS],
)
def test_http_error_is_http_status_with_status_and_server_message(serve, flavor, path, status, status_line, body):
    """A non-2xx answer is `http_status` (429: `rate_limited`, Dify's concurrency limit or a quota):
    http_status set, message = status + the server's message (its code too); sent once (a 429/500
    is never retried)."""
    server = serve(Send(json_response(status_line, json.dumps(body).encode())), Hang(1))
    record = run_real(server.url(path), flavor)
    expected = ErrorKind.RATE_LIMITED if status == 429 else ErrorKind.HTTP_STATUS
    assert not record.ok and record.error_kind is expected
    assert record.http_status == status
    message = body["message"] if "message" in body else body["error"]["message"]
    assert str(status) in record.error and message in record.error
    assert_one_line(record)
    assert server.connections == 1


def test_http_error_with_non_json_body_keeps_the_text(serve):
    """A proxy's plain-text 502 still reports status and text."""
    server = serve(Send(json_response("502 Bad Gateway", b"upstream\nconnect error", "text/plain")), Hang(1))
    record = run_real(server.url())
    assert record.error_kind is ErrorKind.HTTP_STATUS and record.http_status == 502
    assert "502" in record.error and "upstream connect error" in record.error
    assert_one_line(record)


def test_json_200_answer_is_protocol(serve):
    """HTTP 200 with an application/json body (a blocking-mode answer) is not a stream: `protocol`."""
    body = json.dumps({"event": "message", "answer": "whole answer at once"}).encode()
    server = serve(Send(json_response("200 OK", body, "application/json; charset=utf-8")), Hang(1))
    record = run_real(server.url("/v1/chat-messages"), "dify-chat")
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL
    assert record.http_status == 200
    assert "application/json" in record.error
    assert_one_line(record)


def test_dify_error_event_is_stream_error(serve):
    """Dify `event: error` inside a 200 stream fails as `stream_error` with its message."""
    error = dify("error", code="completion_request_error", message="Model quota exceeded", status=400)
    server = serve(Send(head(chunked=True)), Send(chunk(dify("message", answer="Hi") + error)), Hang(1))
    record = run_real(server.url("/v1/chat-messages"), "dify-chat")
    assert not record.ok and record.error_kind is ErrorKind.STREAM_ERROR
    assert "Model quota exceeded" in record.error
    assert record.http_status == 200 and record.chunks == 1


def test_openai_error_chunk_then_done_is_stream_error(serve):
    """vLLM sends `data: {"error": ...}` then still `[DONE]`: the request is `stream_error`, not ok."""
    error = sse({"error": {"message": "engine died", "type": "InternalServerError", "code": 500}})
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a") + error + OA_DONE)), Send(LAST_CHUNK), Hang(1))
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.STREAM_ERROR
    assert "engine died" in record.error


def test_eof_before_terminal_is_truncated(serve):
    """A chunked stream that ends cleanly (last chunk) but without [DONE] is `truncated`."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Send(LAST_CHUNK), Hang(1))
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error
    assert record.chunks == 1
    assert_one_line(record)


def test_close_delimited_eof_before_terminal_is_truncated(serve):
    """A close-delimited body closed before its terminal event is `truncated`."""
    server = serve(Send(head()), Send(oa_delta(content="a")), Close())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error


def test_rst_mid_stream_is_truncated(serve):
    """A reset after the stream began is `truncated` (the response was under way), not `connect`."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Sleep(0.05), Reset())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error
    assert record.ttft_ms is not None
    assert_one_line(record)


def test_chunked_framing_cut_mid_chunk_is_truncated(serve):
    """A chunk announced longer than what arrives before the close is `truncated`."""
    event = oa_delta(content="a")
    cut = b"%x\r\n" % (len(event) + 100) + event
    server = serve(Send(head(chunked=True)), Send(cut), Sleep(0.05), Close())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error
    assert record.chunks == 1  # the complete event inside the cut chunk was still read


def test_connection_closed_after_done_without_the_last_chunk_is_truncated(serve):
    """The body must end with its closing chunk: a stream whose connection closes right after
    [DONE] without it (llama-cpp-python's interrupted streams) was not sent whole: `truncated`."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a") + OA_FINISH + OA_DONE)), Close())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error
    assert "after [DONE]" in record.error
    assert record.chunks == 1 and record.ttft_ms is not None


def test_empty_400_body_says_so(serve):
    """An HTTP 400 with an empty body (llama-cpp-python's answer to a non-UUID X-Request-Id) says
    "empty 400 body" instead of nothing."""
    server = serve(Send(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"), Hang(1))
    record = run_real(server.url())
    assert record.error_kind is ErrorKind.HTTP_STATUS and record.http_status == 400
    assert record.error == "HTTP 400: Bad Request (empty 400 body)"


def test_broken_chunk_framing_is_protocol_after_the_events_before_it(serve):
    """Garbage where a chunk size should be is unparseable framing (`protocol`, docs/metrics.md), and
    the event that arrived whole before it still counts."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a")) + b"not-hex\r\n"), Hang(1))
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL, record.error
    assert "chunk size" in record.error and record.chunks == 1
    assert_one_line(record)


def test_chunks_that_arrive_together_are_read_together_with_one_stamp(serve):
    """Five events in five chunks of one TCP write are one read: one arrival instant for all of
    them, and the stream is ok."""
    events = [oa_delta(content=w) for w in ("a", "b", "c", "d", "e")]
    server = serve(Send(head(chunked=True)), Sleep(0.05), Send(b"".join(chunk(e) for e in events)),
                   Sleep(0.05), Send(chunk(OA_FINISH + OA_DONE) + LAST_CHUNK), Hang(1))
    record = run_real(server.url())
    assert record.ok, record.error
    assert record.chunks == 5 and len(set(record.token_times_ns)) == 1
    assert record.output_chars == 5


def test_content_length_body_cut_short_is_truncated(serve):
    """A body shorter than its Content-Length is `truncated`."""
    event = oa_delta(content="a")
    server = serve(Send(head(length=len(event) + 500)), Send(event), Sleep(0.05), Close())
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED, record.error


def test_invalid_json_event_is_protocol(serve):
    """An event whose data is not JSON is `protocol`."""
    server = serve(Send(head(chunked=True)), Send(chunk(b"data: {not json\n\n")), Hang(1))
    record = run_real(server.url())
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL
    assert "JSON" in record.error
    assert_one_line(record)


def test_close_delimited_body_is_read_as_it_arrives(serve):
    """HTTP/1.0-style body (no length, no chunked, ends at close): events are stamped as they
    arrive, so the first token's TTFT is not delayed until the close 300 ms later."""
    server = serve(Send(head(version="HTTP/1.0")), Send(oa_delta(content="Hello")), Sleep(0.3),
                   Send(oa_delta(content=" world") + OA_FINISH + OA_DONE), Close())
    record = run_real(server.url(), timeout_s=2.0)
    assert record.ok, record.error
    assert record.ttft_ms < 250
    assert record.e2e_ms >= 290  # the second event really came later, with its own stamp
    assert record.output_chars == len("Hello world")


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"mixed"], ids=["cr", "crlf", "mixed"])
def test_line_endings_cr_crlf_and_mixed(serve, ending):
    """CR-only, CRLF and mixed line endings all frame events (WHATWG SSE)."""
    text = OA_OK.decode()
    if ending == b"mixed":
        lines = text.split("\n")
        seps = ["\r", "\r\n", "\n"]
        body = "".join(line + seps[i % 3] for i, line in enumerate(lines[:-1])).encode()
    else:
        body = text.replace("\n", ending.decode()).encode()
    server = serve(Send(head(chunked=True)), Send(chunk(body)), Hang(1))
    record = run_real(server.url())
    assert record.ok, record.error
    assert record.output_chars == len("Hello there") and record.chunks == 2


def test_utf8_character_split_across_tcp_writes_stays_intact(serve):
    """A multibyte character split over two TCP writes (two reads) decodes intact."""
    event = oa_delta(content="你好") + OA_FINISH + OA_DONE
    split = event.index("你".encode()) + 1
    server = serve(Send(head()), Send(event[:split]), Sleep(0.05), Send(event[split:]), Close())
    counter = WordCounter()
    tester = SSETester(get_flavor("openai-chat"), Settings(url=server.url(), timeout_s=TIMEOUT_S), counter)
    record = tester.run(1, 1, Query("q"), None)
    tester.close()
    assert record.ok, record.error
    assert counter.texts == ["你好"]
    assert record.output_chars == 2


def test_one_megabyte_event_is_ok(serve):
    """A very large event (1 MB of answer text in one line) is read whole."""
    big = "x" * 1_000_000
    body = oa_delta(content=big) + OA_FINISH + OA_DONE
    server = serve(Send(head(chunked=True)), Send(chunk(body)), Send(LAST_CHUNK), Hang(1))
    record = run_real(server.url(), timeout_s=2.0)
    assert record.ok, record.error
    assert record.output_chars == 1_000_000 and record.chunks == 1


def test_keepalive_comments_and_ping_events_are_ignored(serve):
    """`:` / `: keep-alive` comments and Dify `event: ping` are not tokens: TTFT waits for the
    first message although bytes (TTFB) came 200 ms earlier."""
    pings = b":\n\n: keep-alive\n\nevent: ping\n\n"
    server = serve(Send(head()), Send(pings), Sleep(0.2), Send(DIFY_OK), Close())
    record = run_real(server.url("/v1/chat-messages"), "dify-chat", timeout_s=2.0)
    assert record.ok, record.error
    assert record.ttfb_ms < 150
    assert record.ttft_ms >= 190
    assert record.chunks == 2


def _start_in_thread(url: str, timeout_s: float):
    tester = SSETester(get_flavor("openai-chat"), Settings(url=url, timeout_s=timeout_s), WordCounter())
    thread, result = start_streaming(tester, timeout_s=2.0)
    return tester, thread, result


def test_abort_during_a_stalled_stream_ends_it_as_cancelled(serve):
    """abort() from another thread stops the request in flight: `cancelled`, not the `timeout`
    the stall would end in after 3 s."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Hang(4))
    tester, thread, result = _start_in_thread(server.url(), timeout_s=3.0)
    record = abort_and_join(tester, thread, result)
    assert not record.ok and record.error_kind is ErrorKind.CANCELLED
    assert record.chunks == 1
    tester.close()


def test_take_in_flight_claims_a_straggler_once(serve):
    """take_in_flight() on a stalled request returns it as `cancelled`; the worker's own later
    result is None (never recorded twice), and the claimed record is not changed afterwards by
    the worker finishing."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Sleep(0.4),
                   Send(chunk(oa_delta(content="b") + OA_FINISH + OA_DONE)), Hang(1))
    tester, thread, result = _start_in_thread(server.url(), timeout_s=3.0)
    claimed = tester.take_in_flight()
    assert claimed is not None
    assert not claimed.ok and claimed.error_kind is ErrorKind.CANCELLED
    assert claimed.request_id == 1 and claimed.ended_ns is not None
    snapshot = claimed.to_dict()
    assert tester.take_in_flight() is None  # claimed once
    thread.join(2.0)
    assert not thread.is_alive()
    assert result["record"] is None
    assert claimed.to_dict() == snapshot  # already handed to the writer: must not move under it
    assert tester.take_in_flight() is None  # nothing in flight any more
    tester.close()


# -- connections are kept between a thread's requests -------------------------------------------


@pytest.mark.parametrize("api", ["openai-chat", "openai-completions", "dify-chat"])
def test_a_thread_keeps_its_connection_between_requests(api):
    """After the end event the closing chunk is read, so the next request reuses the connection
    (as a browser or an SDK would) instead of paying a new TCP handshake every time."""
    from sse_perf_tool.mock_server import MockConfig, MockServer

    server = MockServer(MockConfig(ttft_ms=0, itl_ms=0, tokens=3)).start()
    flavor = get_flavor(api)
    tester = SSETester(flavor, Settings(url=server.base_url + flavor.path, timeout_s=5), WordCounter())
    try:
        records = [tester.run(i, 1, Query("q"), None) for i in range(1, 6)]
    finally:
        tester.close()
        stats = server.stats.snapshot()
        server.stop()
    assert [r.ok for r in records] == [True] * 5, [r.error for r in records]
    assert stats["requests"] == 5 and stats["connections"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel-kept read timeout is used on Linux only")
def test_a_chunked_stream_is_read_with_blocking_recv_and_the_socket_is_put_back_for_the_next_request():
    """On the tester's own read path (reader=None: SSE_PERF_READER=thread), over plain TCP the body
    is read with blocking recv() and the kernel's SO_RCVTIMEO (no poll() per event); once the
    stream is done the kept connection's socket has urllib3's timeout again and no kernel
    timeout, and it carries the next request."""
    from sse_perf_tool.mock_server import MockConfig, MockServer

    server = MockServer(MockConfig(ttft_ms=0, itl_ms=0, tokens=3)).start()
    flavor = get_flavor("openai-chat")
    tester = SSETester(flavor, Settings(url=server.base_url + flavor.path, timeout_s=2.5), WordCounter(),
                       reader=None)
    seen, after = [], []
    real_read_events = tester._read_events

    def spy(record, response, read, complete, *rest):
        sock = socket_of(response)
        seen.append((sock, sock.gettimeout(), _kernel_timeout(sock)))
        real_read_events(record, response, read, complete, *rest)

    tester._read_events = spy
    try:
        records = []
        for request_id in (1, 2):
            records.append(tester.run(request_id, 1, Query("q"), None))
            sock = seen[-1][0]
            after.append((sock.fileno() != -1, sock.gettimeout(), _kernel_timeout(sock)))
    finally:
        tester.close()
        stats = server.stats.snapshot()
        server.stop()
    assert all(r.ok for r in records), [r.error for r in records]
    assert [(timeout, kernel) for _, timeout, kernel in seen] == [(None, (2, 500_000))] * 2  # blocking, 2.5 s kernel limit
    assert stats["connections"] == 1 and seen[0][0] is seen[1][0]  # the same socket carried request 2
    assert after == [(True, 2.5, (0, 0))] * 2  # urllib3's timeout back, the kernel's limit off


def _kernel_timeout(sock) -> tuple:
    return struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll")))


def test_a_stream_held_open_after_its_end_event_keeps_its_timings_and_costs_only_its_connection(serve):
    """A server that never sends the closing chunk: the request is still ok, ends at the end event
    (the short wait for the closing bytes is not part of its E2E), and the next request opens a
    new connection."""
    server = serve(Send(head(chunked=True)), Send(chunk(OA_OK)), Hang(1))
    tester = SSETester(get_flavor("openai-chat"), Settings(url=server.url(), timeout_s=TIMEOUT_S), WordCounter())
    try:
        first = tester.run(1, 1, Query("q"), None)
        second = tester.run(2, 1, Query("q"), None)
    finally:
        tester.close()
    assert first.ok and second.ok, (first.error, second.error)
    assert first.e2e_ms < 150, first.e2e_ms  # the 200 ms drain limit is not counted
    assert server.connections == 2
