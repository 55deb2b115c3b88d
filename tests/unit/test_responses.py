"""The openai-responses flavour on the stream OpenAI's API reference documents for the Responses
API ("Streaming events"; the "Streaming" guide's text and reasoning examples): named events, text
deltas, reasoning deltas, and the end with its usage; read whole and split at every byte offset."""

from __future__ import annotations

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.sse import SSEDecoder


def _ev(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


TEXT = b"".join([
    _ev("response.created", '{"type":"response.created","response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","status":"in_progress","output":[]},"sequence_number":0}'),
    _ev("response.in_progress", '{"type":"response.in_progress","response":{"id":"resp_67c9","status":"in_progress"},"sequence_number":1}'),
    _ev("response.output_item.added", '{"type":"response.output_item.added","output_index":0,"item":{"id":"msg_67c9","type":"message","status":"in_progress","role":"assistant","content":[]},"sequence_number":2}'),
    _ev("response.content_part.added", '{"type":"response.content_part.added","item_id":"msg_67c9","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]},"sequence_number":3}'),
    _ev("response.output_text.delta", '{"type":"response.output_text.delta","item_id":"msg_67c9","output_index":0,"content_index":0,"delta":"Hi","sequence_number":4}'),
    _ev("response.output_text.delta", '{"type":"response.output_text.delta","item_id":"msg_67c9","output_index":0,"content_index":0,"delta":" there!","sequence_number":5}'),
    _ev("response.output_text.done", '{"type":"response.output_text.done","item_id":"msg_67c9","output_index":0,"content_index":0,"text":"Hi there!","sequence_number":6}'),
    _ev("response.completed", '{"type":"response.completed","response":{"id":"resp_67c9","object":"response","status":"completed","usage":{"input_tokens":37,"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}},"sequence_number":7}'),
])
REASONING = b"".join([
    _ev("response.reasoning_summary_text.delta", '{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Checking the sum**","sequence_number":3}'),
    _ev("response.output_text.delta", '{"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"4","sequence_number":8}'),
    _ev("response.incomplete", '{"type":"response.incomplete","response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":12,"output_tokens":64,"output_tokens_details":{"reasoning_tokens":60},"total_tokens":76}},"sequence_number":9}'),
])
FAILED = _ev("response.failed", '{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"The model failed to generate a response."}},"sequence_number":4}')


def _read(stream: bytes, split=None) -> dict:
    flavor, decoder = get_flavor("openai-responses"), SSEDecoder()
    out = {"answer": "", "reasoning": "", "terminal": False, "finish": None, "completion": None, "prompt": None,
           "reasoning_tokens": None, "errors": []}
    for part in ([stream] if split is None else [stream[:split], stream[split:]]):
        for event in decoder.feed(part):
            info = flavor.parse_event(event)
            out["answer"] += info.answer
            out["reasoning"] += info.reasoning
            out["terminal"] = out["terminal"] or info.terminal
            out["finish"] = info.finish_reason or out["finish"]
            for key, value in (("completion", info.completion_tokens), ("prompt", info.prompt_tokens),
                               ("reasoning_tokens", info.reasoning_tokens)):
                if value is not None:
                    out[key] = value
            if info.error:
                out["errors"].append(info.error)
    return out


@pytest.mark.parametrize("stream,expected", [
    (TEXT, {"answer": "Hi there!", "reasoning": "", "terminal": True, "finish": "completed", "completion": 11,
            "prompt": 37, "reasoning_tokens": 0, "errors": []}),
    (REASONING, {"answer": "4", "reasoning": "**Checking the sum**", "terminal": True, "finish": "max_output_tokens",
                 "completion": 64, "prompt": 12, "reasoning_tokens": 60, "errors": []}),
])
def test_the_stream_reads_the_same_whole_and_split_at_every_byte(stream, expected):
    assert _read(stream) == expected
    for split in range(1, len(stream)):
        assert _read(stream, split) == expected, split


def test_a_failed_response_fails_the_request_with_its_code_and_message():
    assert _read(FAILED)["errors"] == ["server_error: The model failed to generate a response."]


def test_the_body_sends_input_and_max_output_tokens():
    flavor = get_flavor("openai-responses")
    assert flavor.path == "/responses"
    assert flavor.build_body(Query("hi", max_tokens=64), RequestSettings(model="gpt-x")) == {
        "input": "hi", "stream": True, "model": "gpt-x", "max_output_tokens": 64}
    body = flavor.build_body(Query("and?"), RequestSettings(history=(("user", "a"), ("assistant", "b"))))
    assert body["input"] == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                             {"role": "user", "content": "and?"}]
