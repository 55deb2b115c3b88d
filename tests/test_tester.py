"""SSETester: one request -> one RequestRecord with the timings of docs/metrics.md, and every fault
mapped to the right `error_kind`.

Part 1 scripts the clock and the HTTP session (no sockets, no sleeps), so every instant is known
and metrics are asserted exactly. Part 2 plays faults over real loopback sockets
(`fault_server.py`) through the real requests/urllib3 stack.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
import uuid

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from fault_server import (
    LAST_CHUNK,
    Close,
    FaultServer,
    Hang,
    Reset,
    Send,
    Sleep,
    chunk,
    free_port,
    head,
    json_response,
    wait_until,
)
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool import tester as tester_module
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings  # not `Test*`: pytest would try to collect it

MS = 1_000_000  # ns


# -- fakes ------------------------------------------------------------------------------------


class WordCounter:
    """Token counter stand-in: one token per whitespace-separated word; remembers what it counted."""

    def __init__(self, source: str = "tokenizer"):
        self.source = source
        self.texts: list[str] = []

    def count(self, text: str) -> tuple[int, str]:
        self.texts.append(text)
        return len(text.split()), self.source


class Clock:
    """The injected clock: returns `now`, which the fake socket advances as bytes 'arrive'."""

    def __init__(self, start_ns: int):
        self.now = start_ns

    def __call__(self) -> int:
        return self.now


class FakeRaw:
    """`response.raw`: read1() returns one scripted (arrival_ns, bytes) chunk per call and moves the clock."""

    def __init__(self, clock: Clock, chunks: list, body: bytes = b""):
        self.headers = CaseInsensitiveDict()  # urllib3's response headers (no Content-Encoding)
        self.clock = clock
        self.chunks = list(chunks)
        self.body = body
        self.read1_calls = 0

    def read1(self, amt: int) -> bytes:
        self.read1_calls += 1
        if not self.chunks:
            return b""
        arrival_ns, data = self.chunks.pop(0)
        if isinstance(data, BaseException):
            raise data
        self.clock.now = arrival_ns
        assert len(data) <= amt
        return data

    def read(self, amt: int) -> bytes:
        data, self.body = self.body[:amt], self.body[amt:]
        return data


class FakeResponse:
    def __init__(self, clock, chunks, status_code=200, content_type="text/event-stream", body=b"", reason="OK"):
        self.status_code = status_code
        self.reason = reason
        self.headers = CaseInsensitiveDict({"Content-Type": content_type})
        self.raw = FakeRaw(clock, chunks, body)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """`session.post(...)` records its arguments and returns the scripted response (or raises)."""

    def __init__(self, response=None, error: BaseException | None = None):
        self.response = response
        self.error = error
        self.calls: list[dict] = []

    def post(self, url, **kwargs):
        self.calls.append({"url": url, **kwargs})
        if self.error is not None:
            raise self.error
        return self.response

    def close(self) -> None:
        pass


SENT_NS = 1_000 * MS


def run_scripted(flavor_name: str, chunks: list, *, counter=None, settings=None, api_key="app-secret",
                 response_kwargs=None):
    """Run one request against a scripted stream; returns (record, session, response, counter)."""
    clock = Clock(SENT_NS)
    response = FakeResponse(clock, chunks, **(response_kwargs or {}))
    session = FakeSession(response)
    counter = counter or WordCounter()
    settings = settings or Settings(url="http://llm.test/v1/x", timeout_s=7.0)
    tester = SSETester(get_flavor(flavor_name), settings, counter, clock=clock, session=session)
    record = tester.run(3, 2, Query("hi"), api_key)
    return record, session, response, counter


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def oa_delta(**delta) -> bytes:
    return sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def oa_usage(completion: int, prompt: int = 9, reasoning: int | None = None) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return sse({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage})


OA_FINISH = sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
OA_DONE = b"data: [DONE]\n\n"


def dify(event: str, **fields) -> bytes:
    return sse({"event": event, "task_id": "t", "message_id": "m", "conversation_id": "c", **fields})


def dify_end(completion: int | None = None, prompt: int = 7) -> bytes:
    usage = {} if completion is None else {"prompt_tokens": prompt, "completion_tokens": completion,
                                           "total_tokens": prompt + completion, "latency": 0.1}
    return dify("message_end", id="e", metadata={"usage": usage})


# -- part 1: exact timings with a scripted clock ---------------------------------------------

# OpenAI chat with reasoning. Sent at 1000 ms; every chunk is (arrival instant, bytes).
REASONING_STREAM = [
    (1004 * MS, b": keep-alive\n\n"),                                   # first body byte; no event
    (1006 * MS, oa_delta(role="assistant", content="") + oa_delta(content="")),  # role-only, empty
    (1010 * MS, oa_delta(reasoning_content="Let me")),                  # first token: reasoning
    (1012 * MS, oa_delta(reasoning="think")),                           # newer vLLM's field name
    (1020 * MS, oa_delta(content="Hello") + oa_delta(content=" world")),  # first answer; one read
    (1026 * MS, oa_delta(content="!")),                                 # last token-bearing event
    (1030 * MS, OA_FINISH),
    (1040 * MS, oa_usage(completion=6, reasoning=2)),
    (1050 * MS, OA_DONE),
]


def test_timings_follow_metrics_md_exactly():
    """TTFB = first body byte; TTFT = first reasoning OR answer text (role-only/empty deltas and
    comments do not count); TTFO = first answer text; E2E = last token-bearing event (finish,
    usage and [DONE] do not extend it); total = the terminal event."""
    record, _, _, _ = run_scripted("openai-chat", REASONING_STREAM)
    assert record.ok and record.error_kind is None and record.error is None
    assert record.http_status == 200
    assert record.sent_ns == SENT_NS
    assert record.ttfb_ms == 4.0
    assert record.ttft_ms == 10.0
    assert record.ttfo_ms == 20.0
    assert record.e2e_ms == 26.0
    assert record.total_ms == 50.0


def test_events_in_one_read_share_its_timestamp_and_itl_sums_to_e2e_minus_ttft():
    """Each token-bearing event is stamped with the arrival of the read that completed it; ITL has
    one gap per pair of events (0 within a read) and sum(itl) == e2e - ttft exactly, in integer ns."""
    record, _, _, _ = run_scripted("openai-chat", REASONING_STREAM)
    assert list(record.token_times_ns) == [1010 * MS, 1012 * MS, 1020 * MS, 1020 * MS, 1026 * MS]
    assert record.chunks == 5
    assert record.itl_ns == [2 * MS, 8 * MS, 0, 6 * MS]
    assert sum(record.itl_ns) == record.last_token_ns - record.first_token_ns
    assert record.itl_ms == [2.0, 8.0, 0.0, 6.0]


def test_usage_gives_output_tokens_and_tpot_divides_by_tokens_not_events():
    """Server usage wins over the tokenizer (token_source 'usage', reasoning_tokens from
    completion_tokens_details); TPOT = (e2e - ttft) / (output_tokens - 1), 5 events but 6 tokens."""
    record, _, _, counter = run_scripted("openai-chat", REASONING_STREAM)
    assert record.output_tokens == 6
    assert record.token_source == "usage"
    assert record.reasoning_tokens == 2
    assert record.prompt_tokens == 9
    assert record.tpot_ms == (26.0 - 10.0) / (6 - 1)
    assert record.output_chars == len("Hello world!")  # answer only, reasoning not included
    assert counter.texts == []  # usage known: no tokenizer pass needed


def test_without_usage_the_tokenizer_counts_the_whole_answer_and_reasoning():
    """No usage in the stream: output_tokens = tokenizer(answer) + tokenizer(reasoning), counted on
    the joined text (not per chunk), token_source from the counter, reasoning_tokens reported."""
    stream = [item for item in REASONING_STREAM if b"usage" not in item[1]]
    record, _, _, counter = run_scripted("openai-chat", stream)
    assert record.ok
    assert record.token_source == "tokenizer"
    assert "Hello world!" in counter.texts and "Let methink" in counter.texts
    assert record.output_tokens == 2 + 2  # "Hello world!" and "Let methink": 2 words each
    assert record.reasoning_tokens == 2
    assert record.tpot_ms == (26.0 - 10.0) / (4 - 1)


def test_tpot_is_none_below_two_tokens():
    """TPOT is undefined (None, never 0) when output_tokens < 2."""
    stream = [(1005 * MS, oa_delta(content="Hi")), (1006 * MS, OA_FINISH), (1007 * MS, oa_usage(completion=1)),
              (1008 * MS, OA_DONE)]
    record, _, _, _ = run_scripted("openai-chat", stream)
    assert record.ok and record.output_tokens == 1
    assert record.ttft_ms == 5.0 and record.e2e_ms == 5.0 and record.itl_ms == []
    assert record.tpot_ms is None


def test_usage_only_chunk_is_not_a_token_event():
    """A usage-only chunk (`choices: []`) neither sets TTFT nor counts as a chunk."""
    stream = [(1003 * MS, oa_usage(completion=4)), (1009 * MS, oa_delta(content="a")), (1011 * MS, OA_DONE)]
    record, _, _, _ = run_scripted("openai-chat", stream)
    assert record.ttfb_ms == 3.0
    assert record.ttft_ms == 9.0
    assert record.chunks == 1


def test_dify_chat_ignores_workflow_events_and_pings_and_message_replace_replaces_the_answer():
    """Dify chatflow: workflow/node events and `event: ping` carry no token; TTFT from the first
    `message`; `message_replace` replaces the answer (output_chars after it); ends at message_end
    with usage; reasoning_chunk and agent_message are token-bearing."""
    stream = [
        (1002 * MS, dify("workflow_started", data={}) + b"event: ping\n\n"),
        (1003 * MS, dify("node_started", data={}) + dify("node_finished", data={})),
        (1005 * MS, dify("reasoning_chunk", data={"reasoning": "hmm", "is_final": False})),
        (1008 * MS, dify("message", answer="bad words")),
        (1009 * MS, dify("agent_message", answer=" here")),
        (1012 * MS, dify("message_replace", answer="[removed]")),
        (1015 * MS, dify_end(completion=4) + dify("workflow_finished", data={"status": "succeeded"})),
    ]
    record, _, _, _ = run_scripted("dify-chat", stream)
    assert record.ok
    assert record.ttfb_ms == 2.0
    assert record.ttft_ms == 5.0
    assert record.ttfo_ms == 8.0
    assert record.e2e_ms == 9.0  # message_replace and message_end are not token-bearing
    assert record.chunks == 3
    assert record.output_chars == len("[removed]")
    assert record.output_tokens == 4 and record.token_source == "usage"
    assert record.prompt_tokens == 7
    assert record.total_ms == 15.0


def test_request_headers_key_and_request_id_and_no_retry():
    """Sent headers: Accept text/event-stream, Accept-Encoding identity, `Authorization: Bearer
    <key>`, X-Request-Id = prefix + request id, extra --header values; body is the flavour's;
    the read timeout is --timeout; the request is posted once, streamed."""
    settings = Settings(url="http://llm.test/v1/chat-messages", timeout_s=7.0,
                              headers=(("X-Extra", "1"),), request_id_prefix="0f7c2a51-9d3e-4b8a-a1c2-")
    stream = [(1005 * MS, dify("message", answer="Hi")), (1006 * MS, dify_end())]
    record, session, response, _ = run_scripted("dify-chat", stream, settings=settings, api_key="app-abc")
    assert record.ok
    assert len(session.calls) == 1
    call = session.calls[0]
    assert call["url"] == "http://llm.test/v1/chat-messages"
    headers = call["headers"]
    assert headers["Accept"] == "text/event-stream"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Authorization"] == "Bearer app-abc"
    assert headers["X-Request-Id"] == "0f7c2a51-9d3e-4b8a-a1c2-000000000003"  # a UUID: prefix + id in 12 hex digits
    assert uuid.UUID(headers["X-Request-Id"]).version == 4
    assert headers["X-Extra"] == "1"
    assert call["stream"] is True
    assert call["timeout"] == (7.0, 7.0)
    body = json.loads(call["data"])
    assert body["query"] == "hi" and body["response_mode"] == "streaming"
    assert response.closed


def test_no_api_key_sends_no_authorization_header():
    """Without a key there is no `Authorization: Bearer None`."""
    stream = [(1005 * MS, dify("message", answer="Hi")), (1006 * MS, dify_end())]
    _, session, _, _ = run_scripted("dify-chat", stream, api_key=None)
    assert "Authorization" not in session.calls[0]["headers"]


def test_connection_error_is_not_retried():
    """A failed connection is reported, not hidden by a retry: one post, error_kind connect."""
    session = FakeSession(error=requests.exceptions.ConnectionError("Connection refused"))
    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://x/v1"), WordCounter(),
                       clock=Clock(SENT_NS), session=session)
    record = tester.run(1, 1, Query("q"), "k")
    assert len(session.calls) == 1
    assert not record.ok and record.error_kind is ErrorKind.CONNECT
    assert record.error == "connection refused"
    assert record.ttfb_ms is None and record.ttft_ms is None  # never measured, never 0


def test_dify_workflow_without_text_is_ok():
    """dify-workflow may legitimately stream no text: workflow_finished alone is a success."""
    stream = [(1002 * MS, dify("workflow_started", data={}) + dify("node_finished", data={})),
              (1004 * MS, dify("workflow_finished", data={"status": "succeeded", "total_tokens": 50}))]
    record, _, _, _ = run_scripted("dify-workflow", stream)
    assert record.ok and record.chunks == 0
    assert record.ttft_ms is None and record.tpot_ms is None and record.output_tokens == 0


def test_a_proper_stream_with_no_text_is_an_empty_answer_not_an_error():
    """A well-formed answer with no text (llama-cpp-python: role chunk, `delta: {}` with
    finish_reason stop, [DONE]) is ok with 0 tokens and no TTFT/TPOT: an empty answer, counted apart."""
    record, _, _, _ = run_scripted("openai-chat", [(1002 * MS, oa_delta(role="assistant") + OA_FINISH + OA_DONE)])
    assert record.ok and record.error_kind is None and record.empty
    assert record.output_tokens == 0 and record.chunks == 0 and record.finish_reason == "stop"
    assert record.ttft_ms is None and record.e2e_ms is None and record.tpot_ms is None
    assert record.token_source is None  # no usage and no text: nothing was counted


def test_done_without_any_finish_reason_is_truncated():
    """[DONE] alone does not make an answer complete: llama-cpp-python cuts a running stream with
    the last content chunk and then [DONE] when another request arrives (interrupt_requests)."""
    stream = [(1005 * MS, oa_delta(role="assistant") + oa_delta(content="Hi")), (1006 * MS, OA_DONE)]
    record, _, _, _ = run_scripted("openai-chat", stream)
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED
    assert "finish_reason" in record.error and record.finish_reason is None
    assert record.ttft_ms == 5.0  # the timings taken stay, for the error tables


def test_finish_reason_is_recorded():
    """The index-0 choice's finish_reason is kept on the record (length here)."""
    finish = sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                  "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    record, _, _, _ = run_scripted("openai-chat", [(1005 * MS, oa_delta(content="Hi") + finish + OA_DONE)])
    assert record.ok and record.finish_reason == "length"
    assert record.to_dict()["finish_reason"] == "length"


def test_total_ms_is_none_when_the_end_was_never_reached():
    """Missing is None, as for every other duration (it was 0.0)."""
    from sse_perf_tool.records import RequestRecord

    assert RequestRecord(1, 1, "q", None, 0.0, 5).total_ms is None


def test_failed_request_with_nothing_counted_has_no_token_source():
    """A request that failed before any text or usage counted nothing: token_source is None."""
    session = FakeSession(error=requests.exceptions.ConnectionError("Connection refused"))
    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://x/v1"), WordCounter(),
                       clock=Clock(SENT_NS), session=session)
    record = tester.run(1, 1, Query("q"), "k")
    assert record.token_source is None and record.output_tokens == 0


def test_extra_body_is_merged_into_every_request_and_wins():
    """--extra-body: its keys are added to the flavour's body, replacing the flavour's own."""
    settings = Settings(url="http://x/v1/chat/completions",
                        extra_body=(("ignore_eos", True), ("max_tokens", 7), ("chat_template_kwargs", {"enable_thinking": False})))
    stream = [(1005 * MS, oa_delta(content="Hi") + OA_FINISH + OA_DONE)]
    _, session, _, _ = run_scripted("openai-chat", stream, settings=settings)
    body = json.loads(session.calls[0]["data"])
    assert body["ignore_eos"] is True and body["max_tokens"] == 7
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["stream"] is True and body["messages"][0]["content"] == "hi"


def test_a_request_id_given_with_header_is_sent_as_given_and_none_without_a_prefix():
    """--header 'X-Request-Id: ...' (any case) overrides the generated id; --no-request-id (no prefix) sends none."""
    stream = [(1005 * MS, dify("message", answer="Hi")), (1006 * MS, dify_end())]
    mine = Settings(url="http://x/v1/chat-messages", headers=(("x-request-id", "mine"),),
                    request_id_prefix="0f7c2a51-9d3e-4b8a-a1c2-")
    _, session, _, _ = run_scripted("dify-chat", stream, settings=mine)
    sent = {k.lower(): v for k, v in session.calls[0]["headers"].items()}
    assert sent["x-request-id"] == "mine"
    _, session, _, _ = run_scripted("dify-chat", stream, settings=Settings(url="http://x/v1/chat-messages"))
    assert not any(k.lower() == "x-request-id" for k in session.calls[0]["headers"])


def test_never_raises_on_an_unexpected_exception_and_calls_it_internal_not_the_servers_fault(caplog):
    """Failures become values: an unexpected exception in the read loop gives a record, of kind
    `internal` (sse-perf's own bug, never blamed on the server as `protocol`), traceback logged."""
    stream = [(1002 * MS, oa_delta(content="a")), (0, RuntimeError("boom"))]
    with caplog.at_level("ERROR", logger="sse_perf_tool.tester"):
        record, _, _, _ = run_scripted("openai-chat", stream)
    assert not record.ok and record.error_kind is ErrorKind.INTERNAL
    assert "boom" in record.error and record.error.startswith("sse-perf bug:")
    assert any(r.exc_info and "RuntimeError" in r.exc_text for r in caplog.records if r.exc_text)


# -- part 2: faults over real loopback sockets -------------------------------------------------

TIMEOUT_S = 0.5

OA_OK = oa_delta(role="assistant", content="") + oa_delta(content="Hello") + oa_delta(content=" there") \
    + OA_FINISH + oa_usage(completion=2) + OA_DONE
DIFY_OK = dify("message", answer="Hi") + dify("message", answer=" you") + dify_end(completion=2)


@pytest.fixture
def serve():
    servers: list[FaultServer] = []

    def start(*script, read_request: bool = True) -> FaultServer:
        server = FaultServer(list(script), read_request=read_request)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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
    start = time.monotonic()
    record = run_real(server.url())
    assert time.monotonic() - start < 2.0
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
    """A non-2xx answer is `http_status`: http_status set, message = status + the server's message;
    sent once (a 429/500 is never retried)."""
    server = serve(Send(json_response(status_line, json.dumps(body).encode())), Hang(1))
    record = run_real(server.url(path), flavor)
    assert not record.ok and record.error_kind is ErrorKind.HTTP_STATUS
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
    result: dict = {}

    def work():
        result["record"] = tester.run(1, 1, Query("q"), None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert wait_until(lambda: tester.events_received >= 1), "the first token never arrived"
    return tester, thread, result


def test_abort_during_a_stalled_stream_ends_it_as_cancelled_within_a_second(serve):
    """abort() from another thread stops the request in flight: `cancelled`, within 1 s, long
    before the stall would time out."""
    server = serve(Send(head(chunked=True)), Send(chunk(oa_delta(content="a"))), Hang(4))
    tester, thread, result = _start_in_thread(server.url(), timeout_s=3.0)
    start = time.monotonic()
    tester.abort()
    thread.join(1.0)
    assert not thread.is_alive(), "abort() did not stop the stalled read"
    assert time.monotonic() - start < 1.0
    record = result["record"]
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


def test_take_in_flight_with_nothing_in_flight_is_none():
    """No request running: nothing to claim."""
    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://x/v1"), WordCounter(),
                       session=FakeSession())
    assert tester.take_in_flight() is None


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
    """Over plain TCP the body is read with blocking recv() and the kernel's SO_RCVTIMEO (no poll()
    per event); once the stream is done the kept connection's socket has urllib3's timeout again
    and no kernel timeout, and it carries the next request."""
    from sse_perf_tool.mock_server import MockConfig, MockServer

    server = MockServer(MockConfig(ttft_ms=0, itl_ms=0, tokens=3)).start()
    flavor = get_flavor("openai-chat")
    tester = SSETester(flavor, Settings(url=server.base_url + flavor.path, timeout_s=2.5), WordCounter())
    seen, after = [], []
    real_read_events = tester._read_events

    def spy(record, response, read, complete, *rest):
        sock = tester_module._socket_of(response)
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


def test_new_session_reads_proxies_from_the_environment_once(monkeypatch):
    """The environment is read when the session is made, not per request: HTTP_PROXY is honoured,
    NO_PROXY exempts a host, and requests' per-request environment merge is off."""
    from sse_perf_tool.tester import new_session

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    proxied = new_session("http://llm.internal:8000/v1/chat/completions")
    direct = new_session("http://127.0.0.1:8000/v1/chat/completions")
    assert proxied.proxies.get("http") == "http://proxy.example:3128"
    assert "http" not in direct.proxies
    assert proxied.trust_env is False and direct.trust_env is False


# -- llama-cpp-python's streams, as its source writes them ----------------------------------------
# llama_cpp/llama_chat_format.py `_convert_text_completion_chunks_to_chat`: a role chunk
# (delta {"role": "assistant"}), one `delta {"content": ...}` per piece, then `delta {}` with the
# finish_reason; llama_cpp/server/app.py `get_event_publisher`: `data: [DONE]` at the end, or right
# after the current chunk when another request interrupts it. No usage chunk (stream_options is ignored).

def _llama_chat_chunk(delta, finish=None):
    return sse({"id": "chatcmpl-4b1c", "model": "smollm2", "created": 1796160000, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})


LLAMA_CPP_PYTHON_CHAT = [
    (1003 * MS, _llama_chat_chunk({"role": "assistant"})),
    (1010 * MS, _llama_chat_chunk({"content": "Hello"})),
    (1020 * MS, _llama_chat_chunk({"content": " there"})),
    (1030 * MS, _llama_chat_chunk({}, finish="stop")),
    (1031 * MS, OA_DONE),
]


def test_a_llama_cpp_python_chat_stream_is_ok_and_counted_by_the_tokenizer():
    record, _, _, counter = run_scripted("openai-chat", LLAMA_CPP_PYTHON_CHAT)
    assert record.ok and record.finish_reason == "stop"
    assert record.token_source == "tokenizer" and record.output_tokens == 2  # "Hello there": no usage sent
    assert record.ttft_ms == 10.0 and record.e2e_ms == 20.0


def test_a_llama_cpp_python_stream_interrupted_by_another_request_is_truncated():
    interrupted = LLAMA_CPP_PYTHON_CHAT[:2] + [(1011 * MS, OA_DONE)]  # [DONE] right after the current chunk
    record, _, _, _ = run_scripted("openai-chat", interrupted)
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED and record.chunks == 1
