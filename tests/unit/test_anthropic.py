"""The anthropic-messages flavour on Anthropic's own stream, as its API reference ("Streaming
Messages": the basic streaming request, extended thinking, tool use, and error events) shows it,
read whole and split at every byte offset."""

from __future__ import annotations

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.sse import SSEDecoder

# docs.anthropic.com/en/api/messages-streaming, "Basic streaming request" (its response, as shown there)
BASIC = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-20250514", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"""

# the same page, "Streaming request with extended thinking": a thinking block (its deltas, then a
# signature_delta) before the text block
THINKING = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-20250514", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 40, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me solve this step by step:\\n\\n1. First break down 27 * 453"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: content_block_start
data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 1}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 120}}

event: message_stop
data: {"type": "message_stop"}

"""

# the same page, "Streaming request with tool use": the tool's input arrives as input_json_delta
TOOL = b"""event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"San Fra"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""

# the same page, "Error events": what a 529 would say, inside the stream
ERROR = b"""event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

"""


def _read(stream: bytes, split: int = None) -> dict:
    """What the flavour makes of the stream: answer, reasoning, usage, finish reason, terminal, errors."""
    flavor, decoder = get_flavor("anthropic-messages"), SSEDecoder()
    parts = [stream] if split is None else [stream[:split], stream[split:]]
    out = {"answer": "", "reasoning": "", "prompt": None, "completion": None, "finish": None, "terminal": False,
           "errors": [], "events": 0}
    for part in parts:
        for event in decoder.feed(part):
            info = flavor.parse_event(event)
            out["events"] += 1
            out["answer"] += info.answer
            out["reasoning"] += info.reasoning
            out["prompt"] = info.prompt_tokens if info.prompt_tokens is not None else out["prompt"]
            out["completion"] = info.completion_tokens if info.completion_tokens is not None else out["completion"]
            out["finish"] = info.finish_reason or out["finish"]
            out["terminal"] = out["terminal"] or info.terminal
            if info.error:
                out["errors"].append(info.error)
    return out


@pytest.mark.parametrize("stream,expected", [
    (BASIC, {"answer": "Hello!", "reasoning": "", "prompt": 25, "completion": 15, "finish": "end_turn"}),
    (THINKING, {"answer": "27 * 453 = 12,231",
                "reasoning": "Let me solve this step by step:\n\n1. First break down 27 * 453", "prompt": 40,
                "completion": 120, "finish": "end_turn"}),
    (TOOL, {"answer": "", "reasoning": "", "prompt": None, "completion": 89, "finish": "tool_use"}),
])
def test_the_stream_reads_the_same_whole_and_split_at_every_byte(stream, expected):
    whole = _read(stream)
    assert {k: whole[k] for k in expected} == expected
    assert whole["terminal"] is True and whole["errors"] == []
    for split in range(1, len(stream)):
        assert _read(stream, split) == whole, split


def test_an_error_event_fails_the_request_with_its_type_and_message():
    assert _read(ERROR)["errors"] == ["overloaded_error: Overloaded"]


def test_the_key_goes_in_x_api_key_with_the_api_version_on_every_request():
    flavor = get_flavor("anthropic-messages")
    assert flavor.auth_headers("sk-ant-123") == {"x-api-key": "sk-ant-123"}
    assert flavor.auth_headers("Bearer sk-ant-123") == {"x-api-key": "sk-ant-123"}
    assert flavor.wire_headers == {"anthropic-version": "2023-06-01"}
    assert flavor.path == "/messages" and flavor.end_event == "message_stop"


def test_the_body_has_the_required_max_tokens_and_the_conversation_so_far():
    flavor = get_flavor("anthropic-messages")
    body = flavor.build_body(Query("hi"), RequestSettings(model="claude-x", history=(("user", "a"), ("assistant", "b"))))
    assert body == {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                 {"role": "user", "content": "hi"}],
                    "max_tokens": 1024, "stream": True, "model": "claude-x"}
    assert flavor.build_body(Query("hi", max_tokens=7), RequestSettings())["max_tokens"] == 7


def test_an_error_body_names_its_type_and_message():
    flavor = get_flavor("anthropic-messages")
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert flavor.parse_error_body(body) == "overloaded_error: Overloaded"
    assert flavor.parse_error_body(b"<html>") is None
