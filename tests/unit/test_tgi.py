"""The tgi-generate flavour on TGI's own /generate_stream, as its README and router
(router/src/server.rs, StreamResponse in the OpenAPI schema) show it: `data:` without a space, a
token per event, a special end-of-sequence token that is not answer text, the last event with
generated_text and details; read whole and split at every byte offset."""

from __future__ import annotations

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.sse import SSEDecoder

# TGI's README, "Streaming" (curl 127.0.0.1:8080/generate_stream), its events as it shows them
EOS_END = (b'data:{"index":1,"token":{"id":3394,"text":"Deep","logprob":-0.25,"special":false},'
           b'"generated_text":null,"details":null}\n\n'
           b'data:{"index":2,"token":{"id":6509,"text":" learning","logprob":-0.1,"special":false},'
           b'"generated_text":null,"details":null}\n\n'
           b'data:{"index":3,"token":{"id":2,"text":"</s>","logprob":-0.02,"special":true},'
           b'"generated_text":"Deep learning","details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null}}\n\n')
# max_new_tokens reached: the last generated token itself carries the details
LENGTH_END = (b'data:{"index":1,"token":{"id":3394,"text":"Deep","logprob":-0.25,"special":false},'
              b'"generated_text":null,"details":null}\n\n'
              b'data:{"index":2,"token":{"id":6509,"text":" learning","logprob":-0.1,"special":false},'
              b'"generated_text":"Deep learning","details":{"finish_reason":"length","generated_tokens":2,"seed":null}}\n\n')
# router/src/server.rs: an error during generation is sent as an event
ERROR = b'data:{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}\n\n'


def _read(stream: bytes, split=None) -> dict:
    flavor, decoder = get_flavor("tgi-generate"), SSEDecoder()
    out = {"answer": "", "terminal": False, "finish": None, "completion": None, "errors": []}
    for part in ([stream] if split is None else [stream[:split], stream[split:]]):
        for event in decoder.feed(part):
            info = flavor.parse_event(event)
            out["answer"] += info.answer
            out["terminal"] = out["terminal"] or info.terminal
            out["finish"] = info.finish_reason or out["finish"]
            out["completion"] = info.completion_tokens if info.completion_tokens is not None else out["completion"]
            if info.error:
                out["errors"].append(info.error)
    return out


@pytest.mark.parametrize("stream,finish,tokens", [(EOS_END, "eos_token", 3), (LENGTH_END, "length", 2)])
def test_the_stream_reads_the_same_whole_and_split_at_every_byte(stream, finish, tokens):
    whole = _read(stream)
    assert whole == {"answer": "Deep learning", "terminal": True, "finish": finish, "completion": tokens,
                     "errors": []}  # the special </s> is not answer text
    for split in range(1, len(stream)):
        assert _read(stream, split) == whole, split


def test_an_error_event_fails_the_request_with_its_type():
    assert _read(ERROR)["errors"] == ["generation: Request failed during generation: Server error: CUDA out of memory"]


def test_the_body_is_inputs_and_parameters_with_details():
    flavor = get_flavor("tgi-generate")
    assert flavor.path == "/generate_stream" and flavor.auth_headers("k") == {"Authorization": "Bearer k"}
    body = flavor.build_body(Query("hi", max_tokens=32), RequestSettings(temperature=0.7, top_p=0.9))
    assert body == {"inputs": "hi", "parameters": {"details": True, "max_new_tokens": 32, "temperature": 0.7,
                                                   "do_sample": True, "top_p": 0.9}}
    assert flavor.build_body(Query("hi"), RequestSettings(temperature=0.0, top_p=1.0)) == {
        "inputs": "hi", "parameters": {"details": True}}  # TGI refuses temperature 0 and top_p 1: greedy is the default
    assert flavor.parse_error_body(b'{"error":"Input validation error","error_type":"validation"}') == \
        "validation: Input validation error"
