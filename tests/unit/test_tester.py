"""SSETester: one request -> one RequestRecord with the timings of docs/metrics.md. The clock and
the HTTP session are scripted (no sockets, no sleeps), so every instant is known and metrics are
asserted exactly. Faults over real loopback sockets (fault_server.py): tests/integration/test_tester.py."""

from __future__ import annotations

import json
import uuid

import requests
from requests.structures import CaseInsensitiveDict

from sse_builders import OA_DONE, OA_FINISH, dify, dify_end, oa_delta, oa_usage, sse
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings  # not `Test*`: pytest would try to collect it
from word_counter import WordCounter

MS = 1_000_000  # ns


# -- fakes ------------------------------------------------------------------------------------


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


def test_take_in_flight_with_nothing_in_flight_is_none():
    """No request running: nothing to claim."""
    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://x/v1"), WordCounter(),
                       session=FakeSession())
    assert tester.take_in_flight() is None


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


def test_loopback_targets_bypass_proxies_and_others_use_the_environments(monkeypatch):
    """A dead corporate proxy in HTTP_PROXY must not fail every --demo request (issue 16)."""
    from sse_perf_tool.http_session import is_loopback, proxies_for

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for url in ("http://127.0.0.1:8000/v1", "http://localhost/v1", "http://[::1]:80/v1", "http://127.1.2.3/v1"):
        assert is_loopback(url) and proxies_for(url) == {}, url
    assert proxies_for("https://api.example.com/v1").get("https") == "http://proxy.corp:3128"


def test_every_twentieth_usage_count_is_checked_by_the_tokenizer():
    """The server's usage is taken; every 20th answer it counted is counted by the tokenizer too, so
    the summary can say whether the two agree (tokens.check)."""
    from sse_perf_tool.records import RequestRecord
    from sse_perf_tool.tester import TOKEN_CHECK_EVERY

    counter = WordCounter()
    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://llm.test/v1/x"), counter,
                       session=FakeSession(None))
    checked = []
    for i in range(2 * TOKEN_CHECK_EVERY):
        record = RequestRecord(i, 1, "q", None, 0.0, 0)
        tester._count_tokens(record, "Hello big world", "", {"completion_tokens": 9})
        assert record.output_tokens == 9 and record.token_source == "usage"
        checked.append(record.tokenizer_tokens)
    assert [i for i, value in enumerate(checked) if value is not None] == [TOKEN_CHECK_EVERY - 1, 2 * TOKEN_CHECK_EVERY - 1]
    assert checked[TOKEN_CHECK_EVERY - 1] == 3  # the tokenizer's count of the same text
