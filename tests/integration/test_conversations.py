"""Conversations (--turns), one user per virtual user (--user with {thread}), and stopping a
cancelled Dify generation at the server, over real loopback HTTP.

The server here answers as Dify's Service API and an OpenAI-compatible chat server do (the
project's wire notes, from Dify's source and OpenAI's API reference): Dify names the conversation
in `conversation_id` and the generation in `task_id` on every message event, and stops one at
`POST /chat-messages/{task_id}/stop` with `{"user"}`; OpenAI chat takes the whole message list."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .loopback_http import LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        if self.path.endswith("/stop"):
            server.stops.append((self.path, body))
            server.stopped.set()
            reply = b'{"result":"success"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        server.bodies.append(body)
        server.count += 1
        n = server.count
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.path.endswith("/chat-messages"):
            ids = {"conversation_id": body.get("conversation_id") or f"conv-{n}", "task_id": f"task-{n}",
                   "message_id": f"m{n}", "created_at": 1}
            self._send_chunk(b"data: " + json.dumps({"event": "message", **ids, "answer": f"answer {n}"}).encode() + b"\n\n")
            if server.stall:
                server.stopped.wait(5.0)
                return
            end = {"event": "message_end", **ids, "metadata": {"usage": {"completion_tokens": 2, "prompt_tokens": 5}}}
            self._send_chunk(b"data: " + json.dumps(end).encode() + b"\n\n")
        else:
            chunk = {"choices": [{"index": 0, "delta": {"content": f"answer {n}"}, "finish_reason": None}]}
            final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self._send_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: " + json.dumps(final).encode()
                             + b"\n\ndata: [DONE]\n\n")
        self._send_chunk(b"")


@pytest.fixture
def server():
    servers = []

    def start(stall: bool = False) -> LoopbackServer:
        srv = LoopbackServer(_Handler, bodies=[], stops=[], stall=stall, stopped=threading.Event(), count=0).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stopped.set()
        srv.close()


def _tester(srv, flavor: str, turns: int = 1, user: str = "sse-perf-{thread}"):
    flavour = get_flavor(flavor)
    return SSETester(flavour, Settings(url=srv.base + flavour.path, timeout_s=5.0, turns=turns,
                                       request=RequestSettings(user=user)), _Words())


class _Words:
    def count(self, text: str):
        return len(text.split()), "tokenizer"


def test_dify_turns_send_back_the_conversation_id_the_server_returned(server):
    srv = server()
    tester = _tester(srv, "dify-chat", turns=3)
    try:
        records = [tester.run(i, 7, Query(f"q{i}"), "app-key") for i in range(1, 7)]
    finally:
        tester.close()
    assert all(r.ok for r in records)
    assert [r.conversation_turn for r in records] == [1, 2, 3, 1, 2, 3]
    sent = [b["conversation_id"] for b in srv.bodies]
    assert sent == ["", "conv-1", "conv-1", "", "conv-4", "conv-4"], "a new conversation after three turns"
    assert {b["user"] for b in srv.bodies} == {"sse-perf-7"}, "one user per virtual user"


def test_openai_turns_grow_the_message_list_with_the_real_answers(server):
    srv = server()
    tester = _tester(srv, "openai-chat", turns=3)
    try:
        for i in range(1, 5):
            assert tester.run(i, 1, Query(f"q{i}"), "key").ok
    finally:
        tester.close()
    messages = [b["messages"] for b in srv.bodies]
    assert [len(m) for m in messages] == [1, 3, 5, 1]
    assert messages[2] == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "answer 1"},
                           {"role": "user", "content": "q2"}, {"role": "assistant", "content": "answer 2"},
                           {"role": "user", "content": "q3"}]


def test_without_turns_every_request_is_a_new_conversation(server):
    srv = server()
    tester = _tester(srv, "dify-chat", user="load-test")
    try:
        records = [tester.run(i, 2, Query("q"), "app-key") for i in (1, 2)]
    finally:
        tester.close()
    assert [r.conversation_turn for r in records] == [None, None]
    assert [(b["conversation_id"], b["user"]) for b in srv.bodies] == [("", "load-test"), ("", "load-test")]


def test_a_cancelled_dify_generation_is_stopped_at_the_server(server):
    srv = server(stall=True)
    tester = _tester(srv, "dify-chat")
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("record", tester.run(1, 3, Query("q"), "app-key")))
    worker.start()
    try:
        assert _wait(lambda: tester.events_received == 1), "the first message arrived"
        tester.abort()
        worker.join(10.0)
    finally:
        tester.close()
    record = result["record"]
    assert record.error_kind is ErrorKind.CANCELLED and record.stop_sent is True
    assert srv.stops == [("/v1/chat-messages/task-1/stop", {"user": "sse-perf-3"})]


def _wait(predicate, limit_s: float = 5.0) -> bool:
    done = threading.Event()
    for _ in range(int(limit_s / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return False
