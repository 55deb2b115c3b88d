"""A flavour owns its whole wire: a flavour written here, outside the package, with another auth
scheme (an `x-api-key` header) and another framing (NDJSON), is tested by the unchanged tester
over a real loopback socket. Adding such a flavour needs the flavour module, its registration
and the mock, never the tester.

The stream is Ollama's chat streaming format as its API documentation gives it (ollama/ollama
docs/api.md, "Generate a chat completion", streaming response): one JSON object per line,
`message.content` carrying the text, the last object `"done": true` with `done_reason` and
`eval_count` (the completion's tokens)."""

from __future__ import annotations

import json

import pytest

from sse_perf_tool.flavors.base import EventInfo, Flavor, ProtocolError, Query, load_json
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .fault_server import LAST_CHUNK, FaultServer, Hang, Send, chunk, head


class OllamaLikeChat(Flavor):
    name = "test-ndjson-chat"
    path = "/api/chat"
    framing = "ndjson"
    end_event = '"done": true'

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def build_body(self, query: Query, settings) -> dict:
        return {"model": settings.model or "m", "messages": [{"role": "user", "content": query.text}], "stream": True}

    def parse_event(self, event) -> EventInfo:
        obj = load_json(event.data)
        if not isinstance(obj, dict):
            raise ProtocolError("a line that is not a JSON object")
        if obj.get("done"):
            return EventInfo(terminal=True, finish_reason=obj.get("done_reason"),
                             completion_tokens=obj.get("eval_count"), prompt_tokens=obj.get("prompt_eval_count"))
        return EventInfo(answer=(obj.get("message") or {}).get("content") or "")

    def parse_error_body(self, body: bytes):
        return json.loads(body or b"{}").get("error")


def line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


class Words:
    def count(self, text: str):
        return len(text.split()), "tokenizer"


@pytest.fixture
def server():
    body = (line({"model": "m", "message": {"role": "assistant", "content": "Hello"}, "done": False})
            + line({"model": "m", "message": {"role": "assistant", "content": " there"}, "done": False}))
    last = line({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                 "prompt_eval_count": 26, "eval_count": 2})
    with FaultServer([Send(head(content_type="application/x-ndjson", chunked=True)), Send(chunk(body[:30])),
                      Send(chunk(body[30:])), Send(chunk(last)), Send(LAST_CHUNK), Hang(1)]) as srv:
        yield srv


def test_an_ndjson_flavour_with_its_own_auth_runs_through_the_unchanged_tester(server):
    tester = SSETester(OllamaLikeChat(), Settings(url=server.url("/api/chat"), timeout_s=5.0), Words())
    try:
        record = tester.run(1, 1, Query("hi"), "sk-secret")
    finally:
        tester.close()
    assert record.ok, record.error
    assert record.chunks == 2 and record.output_tokens == 2 and record.token_source == "usage"
    assert record.finish_reason == "stop" and record.prompt_tokens == 26
    sent = server.requests[0].headers
    assert sent["x-api-key"] == "sk-secret" and "authorization" not in sent
    assert json.loads(server.requests[0].body)["messages"][0]["content"] == "hi"
