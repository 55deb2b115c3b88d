"""The ollama-chat and ollama-generate flavours on Ollama's own NDJSON stream, as its API
documentation (docs/api.md: "Generate a chat completion", "Generate a completion", streaming
responses and their final object) shows it; read whole and split at every byte offset."""

from __future__ import annotations

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings

# docs/api.md, "Generate a chat completion", "Response": a stream of JSON objects, then the final one
CHAT = (b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant",'
        b'"content":"The","images":null},"done":false}\n'
        b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.40624755-07:00","message":{"role":"assistant",'
        b'"content":" sky"},"done":false}\n'
        b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},'
        b'"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,'
        b'"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n')
# "Generate a completion" with a thinking model (think: true): thinking first, then the response
GENERATE = (b'{"model":"qwen3","created_at":"2025-05-29T09:35:56.836222Z","response":"","thinking":"Hmm","done":false}\n'
            b'{"model":"qwen3","created_at":"2025-05-29T09:35:57.1Z","response":"Blue","done":false}\n'
            b'{"model":"qwen3","created_at":"2025-05-29T09:35:57.2Z","response":"","done":true,"done_reason":"length",'
            b'"context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,'
            b'"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000}\n')


def _read(name: str, stream: bytes, split=None) -> dict:
    flavor = get_flavor(name)
    decoder = flavor.new_decoder()
    out = {"answer": "", "reasoning": "", "terminal": False, "finish": None, "completion": None, "prompt": None,
           "server": {}}
    for part in ([stream] if split is None else [stream[:split], stream[split:]]):
        for event in decoder.feed(part):
            info = flavor.parse_event(event)
            out["answer"] += info.answer
            out["reasoning"] += info.reasoning
            out["terminal"] = out["terminal"] or info.terminal
            out["finish"] = info.finish_reason or out["finish"]
            out["completion"] = info.completion_tokens if info.completion_tokens is not None else out["completion"]
            out["prompt"] = info.prompt_tokens if info.prompt_tokens is not None else out["prompt"]
            out["server"].update(info.server or {})
    return out


@pytest.mark.parametrize("name,stream,expected", [
    ("ollama-chat", CHAT, {"answer": "The sky", "reasoning": "", "terminal": True, "finish": "stop", "completion": 282,
                           "prompt": 26, "server": {"server_latency_ms": 4883.583458, "server_generate_ms": 4535.599,
                                                    "server_ttft_ms": 1.334875 + 342.546}}),
    ("ollama-generate", GENERATE, {"answer": "Blue", "reasoning": "Hmm", "terminal": True, "finish": "length",
                                   "completion": 259, "prompt": 26,
                                   "server": {"server_latency_ms": 10706.818083, "server_generate_ms": 4232.71,
                                              "server_ttft_ms": 6338.219291 + 130.079}}),
])
def test_the_lines_read_the_same_whole_and_split_at_every_byte(name, stream, expected):
    whole = _read(name, stream)
    assert whole["server"] == pytest.approx(expected["server"])
    assert {k: v for k, v in whole.items() if k != "server"} == {k: v for k, v in expected.items() if k != "server"}
    for split in range(1, len(stream)):
        assert _read(name, stream, split) == whole, split


def test_an_error_line_and_an_error_body_say_what_ollama_said():
    flavor = get_flavor("ollama-chat")
    (event,) = flavor.new_decoder().feed(b'{"error":"model \\"llama9\\" not found, try pulling it first"}\n')
    assert flavor.parse_event(event).error == 'model "llama9" not found, try pulling it first'
    assert flavor.parse_error_body(b'{"error":"model not found"}') == "model not found"


def test_the_bodies_carry_the_prompt_and_the_options():
    chat = get_flavor("ollama-chat").build_body(Query("hi", max_tokens=32), RequestSettings(model="llama3.2",
                                                                                           temperature=0.2))
    assert chat == {"messages": [{"role": "user", "content": "hi"}], "stream": True, "model": "llama3.2",
                    "options": {"num_predict": 32, "temperature": 0.2}}
    generate = get_flavor("ollama-generate").build_body(Query("hi"), RequestSettings(model="qwen3"))
    assert generate == {"prompt": "hi", "stream": True, "model": "qwen3"}
    assert get_flavor("ollama-chat").path == "/api/chat" and get_flavor("ollama-generate").framing == "ndjson"
