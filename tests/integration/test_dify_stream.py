"""Dify streams as Dify's source sends them, read by the real tester over loopback.

The streams are written from Dify's source as the project's wire notes record it
(api/core/app/apps/advanced_chat/generate_task_pipeline.py for the chatflow order; task_entities.py
and llm_entities.py for the event fields and the usage, whose `latency`, `time_to_first_token` and
`time_to_generate` are seconds and prices decimal strings; an all-zero usage is Dify's "no usage
known"), framed compact and raw UTF-8 as Dify's orjson writes them, never from what sse-perf's
parser happens to expect."""

from __future__ import annotations

import json

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .fault_server import LAST_CHUNK, FaultServer, Hang, Send, chunk, head

IDS = {"conversation_id": "45701982-8118-4bc5-8e9b-64562b4555f2", "message_id": "5ad4cb98-f0c7-4085-b384-88c403be6290",
       "task_id": "900bbd43-dc0b-4383-a372-aa6e6c414227", "created_at": 1705398420}


def event(kind: str, **fields) -> bytes:
    body = {"event": kind, **IDS, **fields}
    return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


PING = b"event: ping\n\n"
STARTED = event("workflow_started", workflow_run_id="w1", data={"id": "w1", "workflow_id": "wf", "created_at": 1})
NODES = (event("node_started", workflow_run_id="w1", data={"id": "n1", "node_id": "llm", "node_type": "llm"})
         + event("node_finished", workflow_run_id="w1", data={"id": "n1", "node_id": "llm", "status": "succeeded"}))
ANSWER = event("message", id=IDS["message_id"], answer="你好") + event("message", id=IDS["message_id"], answer=" there")
FINISHED = event("workflow_finished", workflow_run_id="w1", data={
    "id": "w1", "workflow_id": "wf", "status": "succeeded", "outputs": {"answer": "你好 there"}, "error": None,
    "elapsed_time": 1.25, "total_tokens": 1168, "total_steps": 3, "created_at": 1, "finished_at": 2})
USAGE = {"prompt_tokens": 1033, "prompt_unit_price": "0.001", "prompt_price_unit": "0.001", "prompt_price": "0.0010330",
         "completion_tokens": 135, "completion_unit_price": "0.002", "completion_price_unit": "0.001",
         "completion_price": "0.0002700", "total_tokens": 1168, "total_price": "0.0013030", "currency": "USD",
         "latency": 1.381760165997548, "time_to_first_token": 0.412, "time_to_generate": 0.95}
ZERO_USAGE = {"prompt_tokens": 0, "prompt_unit_price": "0", "prompt_price_unit": "0", "prompt_price": "0",
              "completion_tokens": 0, "completion_unit_price": "0", "completion_price_unit": "0", "completion_price": "0",
              "total_tokens": 0, "total_price": "0", "currency": "USD", "latency": 0}


def message_end(usage: dict) -> bytes:
    return event("message_end", id=IDS["message_id"], metadata={"usage": usage})


class Words:
    def count(self, text: str):
        return len(text.split()), "tokenizer"


@pytest.fixture
def run_stream():
    servers = []

    def run(body: bytes, flavor: str = "dify-chat", path: str = "/v1/chat-messages"):
        server = FaultServer([Send(head(chunked=True)), Send(chunk(body)), Send(LAST_CHUNK), Hang(1)])
        servers.append(server)
        tester = SSETester(get_flavor(flavor), Settings(url=server.url(path), timeout_s=5.0), Words())
        try:
            return tester.run(1, 1, Query("hi"), "app-key")
        finally:
            tester.close()

    yield run
    for server in servers:
        server.stop()


def test_a_chatflow_reads_on_past_workflow_finished_for_the_usage_in_message_end(run_stream):
    record = run_stream(PING + STARTED + NODES + ANSWER + FINISHED + message_end(USAGE))
    assert record.ok, record.error
    assert (record.output_tokens, record.prompt_tokens, record.token_source) == (135, 1033, "usage")
    assert record.server_latency_ms == pytest.approx(1381.76, abs=0.01)
    assert record.server_ttft_ms == pytest.approx(412.0) and record.server_generate_ms == pytest.approx(950.0)
    assert record.server_elapsed_ms == pytest.approx(1250.0)
    assert record.server_total_price == pytest.approx(0.001303) and record.server_currency == "USD"


def test_a_chatflow_replaced_after_workflow_finished_keeps_the_replacement(run_stream):
    replaced = event("message_replace", answer="[filtered]")
    record = run_stream(STARTED + ANSWER + FINISHED + replaced + message_end(USAGE))
    assert record.ok and record.output_chars == len("[filtered]")


def test_a_chatflow_without_message_end_is_ok_and_counted_by_the_tokenizer(run_stream):
    """Dify 1.13.x (issue #32856) closes a chatflow after workflow_finished."""
    record = run_stream(PING + STARTED + ANSWER + FINISHED)
    assert record.ok, record.error
    assert (record.output_tokens, record.token_source, record.prompt_tokens) == (2, "tokenizer", None)
    assert record.server_elapsed_ms == pytest.approx(1250.0)


def test_message_end_before_workflow_finished_ends_the_request(run_stream):
    """The order Dify's newer docs show: message_end is the end either way."""
    record = run_stream(STARTED + ANSWER + message_end(USAGE) + FINISHED)
    assert record.ok and record.output_tokens == 135


def test_a_chat_cut_after_workflow_finished_mid_event_is_still_truncated(run_stream):
    record = run_stream(STARTED + ANSWER + FINISHED + b'data: {"event":"message_e')
    assert not record.ok and record.error_kind is ErrorKind.TRUNCATED


@pytest.mark.parametrize("flavor,path", [("dify-chat", "/v1/chat-messages"),
                                         ("dify-completion", "/v1/completion-messages")])
def test_an_all_zero_usage_is_no_count_the_text_is_counted(run_stream, flavor, path):
    """Annotation replies, moderation replies and plugins without usage send every field 0."""
    record = run_stream(ANSWER + message_end(ZERO_USAGE), flavor, path)
    assert record.ok
    assert (record.output_tokens, record.token_source, record.prompt_tokens) == (2, "tokenizer", None)


def test_a_paused_workflow_is_its_own_outcome(run_stream):
    paused = event("workflow_paused", workflow_run_id="w1", data={"id": "w1", "node_id": "human", "reason": "input"})
    record = run_stream(STARTED + NODES + paused, "dify-workflow", "/v1/workflows/run")
    assert not record.ok and record.error_kind is ErrorKind.PAUSED
    assert "human input" in record.error


def test_an_in_stream_error_with_status_429_is_rate_limited(run_stream):
    error = event("error", code="rate_limit_error", message="Rate limit exceeded", status=429)
    record = run_stream(ANSWER + error)
    assert not record.ok and record.error_kind is ErrorKind.RATE_LIMITED
    assert "rate_limit_error" in record.error and "429" in record.error
    other = run_stream(ANSWER + event("error", code="completion_request_error", message="bad", status=400))
    assert other.error_kind is ErrorKind.STREAM_ERROR


# -- reasoning inside the answer text ------------------------------------------------------------


def oa(content: str) -> bytes:
    """An OpenAI chat chunk as vLLM writes it (WIRE_FORMATS.md, OpenAI-compatible)."""
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


OA_END = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
          b'"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')


def _run_timed(flavor: str, path: str, events: list[bytes], think_tag: str = "think"):
    """Each event in its own read, 30 ms apart, so the instants tell TTFT and TTFO apart."""
    from .fault_server import Sleep

    script = [Send(head(chunked=True))]
    for piece in events:
        script += [Send(chunk(piece)), Sleep(0.03)]
    server = FaultServer(script + [Send(LAST_CHUNK), Hang(1)])
    try:
        tester = SSETester(get_flavor(flavor), Settings(url=server.url(path), timeout_s=5.0, think_tag=think_tag), Words())
        try:
            return tester.run(1, 1, Query("hi"), "key")
        finally:
            tester.close()
    finally:
        server.stop()


def oa_text(text: str) -> bytes:
    """A legacy /completions chunk: the text in choices[0].text."""
    body = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": None}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


OA_TEXT_END = (b'data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,'
               b'"text":"","logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')


@pytest.mark.parametrize("flavor,path,make,end", [
    ("openai-chat", "/v1/chat/completions", oa, OA_END),
    ("openai-completions", "/v1/completions", oa_text, OA_TEXT_END),
    ("dify-chat", "/v1/chat-messages", lambda text: event("message", answer=text), message_end(ZERO_USAGE)),
    ("dify-completion", "/v1/completion-messages", lambda text: event("message", answer=text), message_end(ZERO_USAGE)),
])
def test_a_leading_think_block_is_reasoning_on_every_flavour(flavor, path, make, end):
    """DeepSeek-R1 / QwQ / Qwen3 without a reasoning parser, and Dify's default "tagged" format:
    the tags split across events; TTFT at the first reasoning text, TTFO at the first answer
    character after </think>, output_chars the answer only, reasoning tokens counted."""
    pieces = ["<thi", "nk>Greeting", " the user</th", "ink>\n\n", "Hello", " world"]
    record = _run_timed(flavor, path, [make(p) for p in pieces] + [end])
    assert record.ok, record.error
    times = list(record.token_times_ns)
    assert len(times) == 6 and record.first_token_ns == times[0]
    assert record.first_answer_ns == times[4], "TTFO is the event holding 'Hello'"
    assert record.ttfo_ms > record.ttft_ms + 50
    assert record.output_chars == len("Hello world")
    assert (record.output_tokens, record.reasoning_tokens, record.token_source) == (5, 3, "tokenizer")
    plain = _run_timed(flavor, path, [make(p) for p in pieces] + [end], think_tag="")
    assert plain.first_answer_ns == plain.first_token_ns and plain.output_chars == len("".join(pieces))


# -- the mock's chatflow mode reads as the streams above do ---------------------------------------


@pytest.mark.parametrize("message_end,source", [("after", "usage"), ("before", "usage"), ("none", "tokenizer")])
def test_the_mocks_chatflow_reads_as_difys_does(message_end, source):
    from sse_perf_tool.mock_server import MockConfig, MockServer

    mock = MockServer(MockConfig(ttft_ms=5, itl_ms=1, tokens=6, dify_mode="chatflow", message_end=message_end,
                                 reasoning_tokens=2, think_tags="split")).start()
    try:
        tester = SSETester(get_flavor("dify-chat"), Settings(url=mock.base_url + "/chat-messages", timeout_s=5.0), Words())
        try:
            record = tester.run(1, 1, Query("hello there"), "app-key")
        finally:
            tester.close()
    finally:
        mock.stop()
    assert record.ok, record.error
    assert record.token_source == source and record.first_answer_ns > record.first_token_ns
    assert (record.server_elapsed_ms is not None) == (message_end != "before"), "read up to the end event"
    if source == "usage":
        assert record.server_ttft_ms is not None and record.server_total_price is not None
