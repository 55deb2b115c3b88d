"""The embedded mock server, over real HTTP on 127.0.0.1: each flavour's real wire format
(compared as parsed JSON), errors, auth, limits, timing, concurrency, keep-alive and shutdown."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from sse_perf_tool.mock_server import FLAVOURS, PATHS, MockConfig, MockServer, run_forever, token_text

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENS = 12
FAST = dict(ttft_ms=5.0, itl_ms=1.0, tokens=TOKENS)
TIMEOUT = (5, 10)  # requests (connect, read) limits, so no test can hang

BODIES = {
    "dify-chat": {"inputs": {}, "query": "你是谁", "response_mode": "streaming", "conversation_id": "",
                  "user": "sse-perf", "files": []},
    "dify-completion": {"inputs": {"query": "写一首诗"}, "response_mode": "streaming", "user": "sse-perf",
                        "files": []},
    "dify-workflow": {"inputs": {"query": "Bonjour"}, "response_mode": "streaming", "user": "sse-perf",
                      "files": []},
    "openai-chat": {"model": "m", "messages": [{"role": "user", "content": "你是谁"}], "stream": True,
                    "stream_options": {"include_usage": True}},
    "openai-completions": {"model": "m", "prompt": "Say hello", "stream": True,
                           "stream_options": {"include_usage": True}},
    "anthropic-messages": {"model": "m", "max_tokens": 1024, "messages": [{"role": "user", "content": "你是谁"}],
                           "stream": True},
    "tgi-generate": {"inputs": "你是谁", "parameters": {"details": True}},
    "openai-responses": {"model": "m", "input": "你是谁", "stream": True},
    "ollama-chat": {"model": "llama3.2", "messages": [{"role": "user", "content": "你是谁"}]},
    "ollama-generate": {"model": "llama3.2", "prompt": "你是谁"},
}
WIRE_HEADERS = {"anthropic-messages": {"anthropic-version": "2023-06-01"}}  # what each API requires
PATH_OF = {name: path[len("/v1"):] for path, name in PATHS.items()}


# --- a tiny local SSE splitter (the mock writes LF-only framing) --------------------------


def sse_events(raw: bytes) -> list[tuple[str, str | None]]:
    """(event type, data or None) per blank-line-terminated block; comments skipped."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), "stream must end on an event boundary"
    events = []
    for block in text.split("\n\n")[:-1]:
        event_type, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event_type = value
            elif name == "data":
                data.append(value)
        events.append((event_type, "\n".join(data) if data else None))
    return events


def json_events(raw: bytes) -> list:
    """The data of every event that has data, parsed as JSON ([DONE] kept as the string)."""
    return [data if data == "[DONE]" else json.loads(data) for _, data in sse_events(raw) if data is not None]


def post(server: MockServer, flavour: str, body: dict | None = None, **kwargs) -> requests.Response:
    body = BODIES[flavour] if body is None else body
    kwargs["headers"] = {**WIRE_HEADERS.get(flavour, {}), **(kwargs.get("headers") or {})}
    return requests.post(server.base_url + PATH_OF[flavour], json=body, timeout=TIMEOUT, **kwargs)


def stream(server: MockServer, flavour: str, body: dict | None = None, **kwargs) -> list:
    response = post(server, flavour, body, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    return json_events(response.content)


def expected_text(n: int, reasoning: bool = False) -> str:
    return "".join(token_text(i, reasoning) for i in range(n))


@pytest.fixture(scope="module")
def server():
    with MockServer(MockConfig(**FAST, seed=7)) as s:
        yield s


@pytest.fixture(scope="module")
def reasoning_server():
    with MockServer(MockConfig(**FAST, reasoning_tokens=3)) as s:
        yield s


# --- wire formats, one test per path ------------------------------------------------------


def test_dify_chat_stream_is_message_events_then_message_end_with_usage(server):
    events = stream(server, "dify-chat")
    names = [e["event"] for e in events]
    assert names == ["message"] * TOKENS + ["message_end"]
    first = events[0]
    assert set(first) == {"event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer"}
    for e in events:  # one message: the same ids on every event
        assert (e["task_id"], e["message_id"], e["conversation_id"]) == (
            first["task_id"], first["message_id"], first["conversation_id"])
    assert first["id"] == first["message_id"] and isinstance(first["created_at"], int)
    assert "".join(e["answer"] for e in events[:-1]) == expected_text(TOKENS)
    usage = events[-1]["metadata"]["usage"]
    assert usage["completion_tokens"] == TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] >= 1
    assert Decimal(usage["total_price"]) == Decimal(usage["prompt_price"]) + Decimal(usage["completion_price"])
    assert usage["currency"] == "USD" and isinstance(usage["latency"], float) and usage["latency"] > 0


def test_dify_chat_echoes_a_given_conversation_id(server):
    body = {**BODIES["dify-chat"], "conversation_id": "45701982-8118-4bc5-8e9b-64562b4555f2"}
    events = stream(server, "dify-chat", body)
    assert {e["conversation_id"] for e in events} == {"45701982-8118-4bc5-8e9b-64562b4555f2"}


def test_dify_completion_stream_has_no_conversation_id(server):
    events = stream(server, "dify-completion")
    assert [e["event"] for e in events] == ["message"] * TOKENS + ["message_end"]
    assert all("conversation_id" not in e for e in events)
    assert events[-1]["metadata"]["usage"]["completion_tokens"] == TOKENS


def test_dify_workflow_stream_runs_nodes_and_ends_at_workflow_finished(server):
    events = stream(server, "dify-workflow")
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    assert names.count("text_chunk") == TOKENS
    first_text, last_text = names.index("text_chunk"), len(names) - 1 - names[::-1].index("text_chunk")
    assert "node_started" in names[:first_text] and "node_finished" in names[last_text:]
    assert names[first_text:last_text + 1] == ["text_chunk"] * TOKENS  # text chunks are contiguous
    assert {e["workflow_run_id"] for e in events} == {events[0]["data"]["id"]}
    text = "".join(e["data"]["text"] for e in events if e["event"] == "text_chunk")
    assert text == expected_text(TOKENS)
    finished = events[-1]["data"]
    assert finished["status"] == "succeeded" and finished["error"] is None
    assert finished["outputs"] == {"text": text}
    llm = [e["data"] for e in events if e["event"] == "node_finished" and e["data"]["node_type"] == "llm"]
    usage = llm[0]["outputs"]["usage"]
    assert usage["completion_tokens"] == TOKENS
    assert finished["total_tokens"] == usage["prompt_tokens"] + TOKENS  # Dify: prompt + completion


def test_openai_chat_stream_role_content_finish_usage_done(server):
    events = stream(server, "openai-chat")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                     "logprobs": None, "finish_reason": None}]
    content = chunks[1:1 + TOKENS]
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == expected_text(TOKENS)
    finish, usage_chunk = chunks[1 + TOKENS:]
    assert finish["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + TOKENS
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_openai_completions_stream_text_finish_usage_done(server):
    events = stream(server, "openai-completions")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "text_completion" and c["id"].startswith("cmpl-") for c in chunks)
    text_chunks = chunks[:TOKENS]
    assert "".join(c["choices"][0]["text"] for c in text_chunks) == expected_text(TOKENS)
    assert all(c["choices"][0]["finish_reason"] is None for c in text_chunks)
    finish, usage_chunk = chunks[TOKENS:]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["choices"][0]["text"] == ""
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == TOKENS


@pytest.mark.parametrize("flavour", ["openai-chat", "openai-completions"])
def test_no_usage_chunk_unless_include_usage(server, flavour):
    body = {k: v for k, v in BODIES[flavour].items() if k != "stream_options"}
    events = stream(server, flavour, body)
    assert events[-1] == "[DONE]"
    assert all("usage" not in c for c in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("flavour", "field"), [
    ("openai-chat", "max_tokens"), ("openai-chat", "max_completion_tokens"), ("openai-completions", "max_tokens"),
])
def test_max_tokens_cuts_the_answer_with_finish_reason_length(server, flavour, field):
    events = stream(server, flavour, {**BODIES[flavour], field: 5})
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"]["completion_tokens"] == 5
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    bearing = [c for c in events[:-3] if c["choices"][0].get("text") or c["choices"][0].get("delta", {}).get("content")]
    assert len(bearing) == 5


def test_max_tokens_above_the_answer_length_changes_nothing(server):
    events = stream(server, "openai-chat", {**BODIES["openai-chat"], "max_tokens": 1000})
    assert events[-2]["usage"]["completion_tokens"] == TOKENS
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_tokens_zero_still_ends_properly():
    with MockServer(MockConfig(ttft_ms=1, itl_ms=1, tokens=0)) as s:
        openai = stream(s, "openai-chat")
        dify = stream(s, "dify-chat")
    assert openai[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert openai[-1] == "[DONE]" and openai[-2]["usage"]["completion_tokens"] == 0
    assert [e["event"] for e in dify] == ["message_end"]


# --- reasoning ----------------------------------------------------------------------------


def test_openai_reasoning_content_comes_before_the_answer(reasoning_server):
    chunks = stream(reasoning_server, "openai-chat")[:-1]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]][1:-1]  # between role and finish
    kinds = ["reasoning" if "reasoning_content" in d else "answer" for d in deltas]
    assert kinds == ["reasoning"] * 3 + ["answer"] * TOKENS
    assert "".join(d.get("reasoning_content", "") for d in deltas) == expected_text(3, reasoning=True)
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 3 + TOKENS
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}


@pytest.mark.parametrize("flavour", ["dify-chat", "dify-completion", "dify-workflow"])
def test_dify_reasoning_chunks_come_before_the_answer(reasoning_server, flavour):
    events = stream(reasoning_server, flavour)
    bearing = [e for e in events if e["event"] in ("reasoning_chunk", "message", "text_chunk")]
    assert [e["event"] == "reasoning_chunk" for e in bearing] == [True] * 3 + [False] * TOKENS
    reasoning = [e["data"] for e in bearing[:3]]
    assert "".join(r["reasoning"] for r in reasoning) == expected_text(3, reasoning=True)
    assert [r["is_final"] for r in reasoning] == [False, False, True]
    if flavour == "dify-workflow":
        assert events[-1]["data"]["total_tokens"] > 3 + TOKENS
    else:
        assert events[-1]["metadata"]["usage"]["completion_tokens"] == 3 + TOKENS


def test_completions_endpoint_has_no_reasoning_channel(reasoning_server):
    events = stream(reasoning_server, "openai-completions")
    assert events[-2]["usage"]["completion_tokens"] == TOKENS


# --- errors and auth ----------------------------------------------------------------------


def assert_vendor_error(flavour: str, response: requests.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    if flavour.startswith("dify"):
        assert set(body) == {"code", "message", "status"} and body["status"] == status
        assert isinstance(body["code"], str) and body["message"]
    elif flavour.startswith("ollama"):  # Ollama's docs/api.md: {"error": "..."}
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    elif flavour.startswith("tgi"):  # TGI's router: ErrorResponse
        assert set(body) == {"error", "error_type"} and body["error"]
    elif flavour.startswith("anthropic"):  # Anthropic's API reference, "Errors"
        assert set(body) == {"type", "error"} and body["type"] == "error"
        assert set(body["error"]) == {"type", "message"} and body["error"]["message"]
    else:
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_error_rate_one_answers_every_request_with_500_and_vendor_json(flavour):
    with MockServer(MockConfig(**FAST, error_rate=1.0)) as s:
        for _ in range(3):
            assert_vendor_error(flavour, post(s, flavour), 500)
        assert s.stats.snapshot()["errors"] == 3
        assert s.stats.snapshot()["events_sent"] == 0


def test_error_rate_half_fails_some_and_serves_the_rest():
    with MockServer(MockConfig(**FAST, error_rate=0.5, seed=1)) as s:
        statuses = [post(s, "openai-chat").status_code for _ in range(40)]
    assert set(statuses) == {200, 500}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_api_key_wrong_or_missing_gets_401_right_key_streams(flavour):
    with MockServer(MockConfig(**FAST, api_key="app-secret")) as s:
        assert_vendor_error(flavour, post(s, flavour), 401)
        if flavour.startswith("ollama"):  # NDJSON, not SSE: the last line is done
            raw = post(s, flavour, headers={"Authorization": "Bearer app-secret"})
            assert raw.status_code == 200 and raw.headers["Content-Type"] == "application/x-ndjson"
            assert json.loads(raw.content.splitlines()[-1])["done"] is True
            return
        if flavour.startswith("anthropic"):  # the key itself in x-api-key; a bearer token is not it
            assert_vendor_error(flavour, post(s, flavour, headers={"x-api-key": "app-other"}), 401)
            assert_vendor_error(flavour, post(s, flavour, headers={"Authorization": "Bearer app-secret"}), 401)
            raw = post(s, flavour, headers={"x-api-key": "app-secret"})
            assert raw.status_code == 200 and raw.content.rstrip().endswith(b'data: {"type":"message_stop"}')
            return
        assert_vendor_error(flavour, post(s, flavour, headers={"Authorization": "Bearer app-other"}), 401)
        assert_vendor_error(flavour, post(s, flavour, headers={"Authorization": "app-secret"}), 401)
        events = stream(s, flavour, headers={"Authorization": "Bearer app-secret"})
    assert events[-1] == "[DONE]" or events[-1].get("event") in ("message_end", "workflow_finished") \
        or events[-1].get("details", {}).get("finish_reason") == "eos_token" \
        or events[-1].get("type") == "response.completed"  # TGI: the last event's details; the Responses API


def test_unknown_path_is_404_json(server):
    response = requests.post(server.base_url + "/nope", json={}, timeout=TIMEOUT)
    assert response.status_code == 404 and response.json()["status"] == 404


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_non_post_is_405_in_the_flavour_format(server, flavour):
    url = server.base_url + PATH_OF[flavour]
    assert_vendor_error(flavour, requests.get(url, timeout=TIMEOUT), 405)
    head = requests.head(url, timeout=TIMEOUT)
    assert head.status_code == 405 and head.headers["Allow"] == "POST" and head.content == b""


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("payload", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_invalid_json_body_is_400_in_the_flavour_format(server, flavour, payload):
    response = requests.post(server.base_url + PATH_OF[flavour], data=payload, timeout=TIMEOUT,
                             headers={"Content-Type": "application/json", **WIRE_HEADERS.get(flavour, {})})
    assert_vendor_error(flavour, response, 400)


@pytest.mark.parametrize(("flavour", "drop"), [
    ("dify-chat", "user"), ("dify-chat", "query"), ("dify-chat", "inputs"),
    ("dify-workflow", "user"), ("openai-chat", "messages"), ("openai-completions", "prompt"),
])
def test_missing_required_field_is_400_like_the_real_server(server, flavour, drop):
    body = {k: v for k, v in BODIES[flavour].items() if k != drop}
    assert_vendor_error(flavour, post(server, flavour, body), 400)


def test_openai_rejects_stream_options_without_stream_and_bad_max_tokens(server):
    body = {k: v for k, v in BODIES["openai-chat"].items() if k != "stream"}
    assert_vendor_error("openai-chat", post(server, "openai-chat", body), 400)
    assert_vendor_error("openai-chat", post(server, "openai-chat", {**BODIES["openai-chat"], "max_tokens": 0}), 400)


# --- non-streaming requests get the blocking answer, as the real servers do ----------------


def test_dify_without_streaming_mode_gets_a_blocking_json_answer(server):
    body = {k: v for k, v in BODIES["dify-chat"].items() if k != "response_mode"}
    response = post(server, "dify-chat", body)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["event"] == "message" and answer["mode"] == "chat"
    assert answer["answer"] == expected_text(TOKENS)
    assert answer["metadata"]["usage"]["completion_tokens"] == TOKENS


def test_openai_without_stream_gets_a_chat_completion(server):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    answer = post(server, "openai-chat", body).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": expected_text(TOKENS)}
    assert answer["usage"]["completion_tokens"] == TOKENS


def test_chunked_request_body_is_accepted(server):
    payload = json.dumps(BODIES["openai-chat"]).encode()
    response = requests.post(server.base_url + "/chat/completions", data=iter([payload[:10], payload[10:]]),
                             timeout=TIMEOUT, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and json_events(response.content)[-1] == "[DONE]"


# --- timing -------------------------------------------------------------------------------


def test_first_token_not_before_ttft_and_last_not_before_the_itl_schedule():
    """Lower bounds only (the server starts its clock after the request arrived); the upper
    bound is generous so a loaded machine does not fail the test."""
    ttft_ms, itl_ms, n = 100.0, 20.0, 5
    with MockServer(MockConfig(ttft_ms=ttft_ms, itl_ms=itl_ms, tokens=n)) as s:
        sent_at = time.perf_counter()
        response = requests.post(s.base_url + "/chat/completions", json=BODIES["openai-chat"], stream=True,
                                 timeout=TIMEOUT)
        token_arrivals, buffer = [], b""
        for chunk in response.iter_content(chunk_size=None):
            now = time.perf_counter()
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                event = json_events(block + b"\n\n")[0]
                if event != "[DONE]" and event["choices"] and event["choices"][0]["delta"].get("content"):
                    token_arrivals.append(now)
    assert len(token_arrivals) == n
    first_ms = (token_arrivals[0] - sent_at) * 1000
    last_ms = (token_arrivals[-1] - sent_at) * 1000
    assert first_ms >= ttft_ms - 1
    assert last_ms >= ttft_ms + (n - 1) * itl_ms - 1
    assert last_ms < 5000


def test_dify_sends_a_ping_before_a_slow_first_token(capfd):
    """And a client closing mid-stream ends the handler quietly (no traceback on stderr)."""
    with MockServer(MockConfig(ttft_ms=1500, itl_ms=1, tokens=3)) as s:
        response = requests.post(s.base_url + "/chat-messages", json=BODIES["dify-chat"], stream=True,
                                 timeout=TIMEOUT)
        first = b""
        for chunk in response.iter_content(chunk_size=None):
            first += chunk
            if b"\n\n" in first:
                break
        response.close()
        assert first.startswith(b"event: ping\n\n")
        assert sse_events(first[: first.index(b"\n\n") + 2]) == [("ping", None)]
    assert "Traceback" not in capfd.readouterr().err


def test_client_disconnect_mid_stream_leaves_the_server_healthy(capfd):
    with MockServer(MockConfig(ttft_ms=1, itl_ms=5, tokens=400)) as s:
        for _ in range(3):
            response = requests.post(s.base_url + "/chat/completions", json=BODIES["openai-chat"], stream=True,
                                     timeout=TIMEOUT)
            next(response.iter_content(chunk_size=None))
            response.close()
        deadline = time.monotonic() + 5
        while s.stats.snapshot()["active_streams"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.stats.snapshot()["active_streams"] == 0
        response = requests.post(s.base_url + "/chat/completions", json={**BODIES["openai-chat"], "max_tokens": 2},
                                 timeout=TIMEOUT)
        assert json_events(response.content)[-1] == "[DONE]"
    assert "Traceback" not in capfd.readouterr().err


# --- load, connections, lifecycle ---------------------------------------------------------


def test_200_concurrent_streams_all_complete():
    n, tokens = 200, 20
    results: list = [None] * n
    barrier = threading.Barrier(n)

    with MockServer(MockConfig(ttft_ms=300, itl_ms=5, tokens=tokens)) as s:
        peak = [0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], s.stats.snapshot()["active_streams"])
                time.sleep(0.01)

        def worker(i):
            barrier.wait(timeout=30)
            try:
                response = requests.post(s.base_url + "/chat/completions", json=BODIES["openai-chat"],
                                         timeout=(10, 30))
                results[i] = (response.status_code, json_events(response.content))
            except Exception as exc:  # recorded and asserted below
                results[i] = exc

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        done.set()
        snapshot = s.stats.snapshot()
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 200 and r[1][-1] == "[DONE]")]
    assert failures == []
    assert all(r[1][-2]["usage"]["completion_tokens"] == tokens for r in results)
    assert snapshot["requests"] == n and snapshot["events_sent"] == n * tokens
    assert peak[0] >= 50  # the streams really ran side by side (all 200 were due within 300 ms)


def test_keep_alive_one_session_reuses_one_connection():
    with MockServer(MockConfig(**FAST)) as s, requests.Session() as session:
        for flavour in ("openai-chat", "dify-chat", "dify-workflow"):
            response = session.post(s.base_url + PATH_OF[flavour], json=BODIES[flavour], timeout=TIMEOUT)
            assert response.status_code == 200 and json_events(response.content)
        assert_vendor_error("openai-chat", session.post(s.base_url + "/chat/completions", data=b"{",
                                                        timeout=TIMEOUT), 400)
        assert session.post(s.base_url + "/completions", json=BODIES["openai-completions"],
                            timeout=TIMEOUT).status_code == 200
        snapshot = s.stats.snapshot()
    assert snapshot["requests"] == 5 and snapshot["connections"] == 1


def returns(call, bound_s: float = 10.0) -> bool:
    """Whether call() returned within bound_s: a bound against a hang only (a stop that waited for
    the 500 s stream below would not return for minutes)."""
    done = threading.Event()
    threading.Thread(target=lambda: (call(), done.set()), daemon=True).start()
    return done.wait(bound_s)


def test_stop_cuts_an_in_flight_long_stream():
    """A stream of 1,000 tokens 500 ms apart is in flight: stop() returns (not after the stream's
    500 s), the client sees the stream end without its message_end, and the port refuses."""
    s = MockServer(MockConfig(ttft_ms=1, itl_ms=500, tokens=1000)).start()
    response = requests.post(s.base_url + "/chat-messages", json=BODIES["dify-chat"], stream=True, timeout=TIMEOUT)
    chunks = response.iter_content(chunk_size=None)
    received = next(chunks)
    stream_ended = threading.Event()

    def drain():
        nonlocal received
        for chunk in chunks:
            received += chunk
        stream_ended.set()

    threading.Thread(target=drain, daemon=True).start()
    assert returns(s.stop)
    assert stream_ended.wait(timeout=10.0)  # a bound against a hang only
    assert b"message_end" not in received  # cut, not finished
    s.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.post(s.base_url + "/chat-messages", json=BODIES["dify-chat"], timeout=TIMEOUT)


def test_stop_releases_idle_keep_alive_connections_and_the_port():
    s = MockServer(MockConfig(**FAST)).start()
    session = requests.Session()
    assert session.post(s.base_url + "/completions", json=BODIES["openai-completions"], timeout=TIMEOUT).ok
    assert returns(s.stop)  # the idle keep-alive connection does not hold it
    session.close()
    with MockServer(MockConfig(**FAST, port=s.port)) as again:  # the port can be bound again at once
        assert again.port == s.port


def test_stop_right_after_start_and_before_start_return():
    assert returns(MockServer(MockConfig(**FAST)).stop)
    assert returns(MockServer(MockConfig(**FAST)).start().stop)


def test_stats_count_requests_token_events_and_errors():
    with MockServer(MockConfig(**FAST)) as s:
        stream(s, "openai-chat")
        stream(s, "dify-chat")
        requests.post(s.base_url + "/nope", json={}, timeout=TIMEOUT)
        snapshot = s.stats.snapshot()
    assert snapshot == {"requests": 3, "events_sent": 2 * TOKENS, "errors": 1, "connections": 3,
                        "active_streams": 0, "tokenize_requests": 0, "interrupted": 0}


def test_record_timings_keys_by_x_request_id_and_stays_bounded():
    with MockServer(MockConfig(**FAST, record_timings=True)) as s:
        before = time.perf_counter()
        for request_id in ("a", "b"):
            stream(s, "openai-chat", headers={"X-Request-Id": request_id})
        stream(s, "dify-chat")
        after = time.perf_counter()
        times = s.first_token_times()
        assert set(times) == {"a", "b", "mock-3"}
        assert all(before <= t <= after for t in times.values())
        assert times["a"] < times["b"]
        s.timings_limit = 2
        stream(s, "openai-completions", headers={"X-Request-Id": "c"})
        assert list(s.first_token_times()) == ["mock-3", "c"]  # oldest dropped
    with MockServer(MockConfig(**FAST)) as s:
        stream(s, "openai-chat", headers={"X-Request-Id": "a"})
        assert s.first_token_sent_at == {}


def test_seed_makes_ids_repeatable():
    def ids():
        with MockServer(MockConfig(**FAST, seed=42)) as s:
            return [e.get("message_id") for e in stream(s, "dify-chat")]

    assert ids() == ids()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_forever_prints_the_bound_port_and_exits_0_on_sigterm_or_sigint(sig):
    code = ("import sys; from sse_perf_tool.mock_server import MockConfig, run_forever; "
            "sys.exit(run_forever(MockConfig(port=0, ttft_ms=1, itl_ms=1, tokens=2)))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=20), "no startup line within 20 s"
        line = proc.stdout.readline().decode()
        match = re.fullmatch(r"mock server listening on http://127\.0\.0\.1:(\d+)/v1 \(flavours: (.*)\)\n", line)
        assert match, line
        port = int(match.group(1))
        assert port > 0 and match.group(2).split(", ") == list(FLAVOURS)
        response = requests.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODIES["openai-chat"],
                                 timeout=TIMEOUT)
        assert json_events(response.content)[-1] == "[DONE]"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_pacer_pings_on_its_interval_while_waiting():
    """Dify sends `event: ping` every 10 s of elapsed time; the pacer does it on any interval."""
    from sse_perf_tool.mock_server import _Pacer

    sent: list[bytes] = []
    started = time.perf_counter()
    pacer = _Pacer(threading.Event(), started, sent.append, b"event: ping\n\n", ping_interval_s=0.02)
    assert pacer.wait_until(started + 0.1)
    assert 1 <= len(sent) <= 5 and set(sent) == {b"event: ping\n\n"}
    sent.clear()
    late = _Pacer(threading.Event(), started - 1.0, sent.append, b"event: ping\n\n", ping_interval_s=0.02)
    assert late.wait_until(time.perf_counter() + 0.01)
    assert len(sent) == 1  # 50 missed intervals give one ping, not a burst
    stopped = threading.Event()
    stopped.set()
    assert not _Pacer(stopped, started).wait_until(started + 60)  # stop wins over any wait


@pytest.mark.parametrize(("headers", "status"), [
    ({"Content-Length": str(9 * 1024 * 1024)}, 413), ({"Content-Length": "abc"}, 400),
])
def test_unreadable_body_is_answered_and_the_connection_closed(server, headers, status):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"Connection: close" in head
    assert set(json.loads(body)["error"]) == {"message", "type", "param", "code"}


def test_run_forever_in_a_thread_prints_the_wildcard_host_and_stops_on_its_event():
    import io

    out, stop = io.StringIO(), threading.Event()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(
        run_forever(MockConfig(host="0.0.0.0", **FAST), out, stop_event=stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    match = re.match(r"mock server listening on http://0\.0\.0\.0:(\d+)/v1 ", out.getvalue())
    assert match, out.getvalue()
    response = requests.post(f"http://127.0.0.1:{match.group(1)}/v1/completions", json=BODIES["openai-completions"],
                             timeout=TIMEOUT)
    assert json_events(response.content)[-1] == "[DONE]"
    stop.set()
    thread.join(timeout=5)
    assert result == [0]


# --- real servers' behaviours, on request (llama-cpp-python, vLLM, llama.cpp) ----------------------
# Shapes from the servers' source: llama_cpp/server/app.py (RequestIdPlugin, interrupt_requests,
# get_event_publisher, /extras/tokenize), starlette_context/middleware/raw_middleware.py (empty 400),
# vllm/entrypoints/serve/tokenize/protocol.py, llama.cpp tools/server/README.md (/tokenize).


def test_check_request_id_answers_a_non_uuid_with_an_empty_400():
    """starlette-context (validate=True): a non-UUID X-Request-Id gets HTTP 400 with no body and no
    Content-Type; a UUID, or no header at all, is served."""
    with MockServer(MockConfig(check_request_id=True, **FAST)) as s:
        bad = post(s, "openai-chat", headers={"X-Request-Id": "sse-perf-123-1700000000-1"})
        assert bad.status_code == 400 and bad.content == b""
        assert "Content-Type" not in bad.headers and bad.headers["Content-Length"] == "0"
        assert stream(s, "openai-chat", headers={"X-Request-Id": "0f7c2a51-9d3e-4b8a-a1c2-000000000001"})[-1] == "[DONE]"
        assert stream(s, "openai-chat")[-1] == "[DONE]"


def _raw_post(port: int, path: str, body: dict) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    payload = json.dumps(body).encode()
    sock.sendall(b"POST /v1%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), len(payload), payload))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(10_000):  # bounded: the socket's timeout ends every wait
        more = sock.recv(65536)
        if not more:
            return data
        data += more
    return data


def test_interrupt_cuts_a_running_stream_with_done_and_no_finish_reason_and_no_last_chunk():
    """llama-cpp-python (interrupt_requests): a request arriving while a stream is generated makes
    that stream send `data: [DONE]` after its current chunk, with no finish_reason chunk, and the
    connection closes without the chunked body's last chunk. The new request is served whole."""
    with MockServer(MockConfig(interrupt=True, ttft_ms=5.0, itl_ms=20.0, tokens=50)) as s:
        first = _raw_post(s.port, "/chat/completions", BODIES["openai-chat"])
        time.sleep(0.15)
        second = stream(s, "openai-chat")
        cut = _read_all(first)
        first.close()
        assert not cut.endswith(b"0\r\n\r\n")
        assert b"data: [DONE]" in cut and b'"finish_reason":"stop"' not in cut
        assert second[-1] == "[DONE]" and any(e["choices"] and e["choices"][0]["finish_reason"] == "stop"
                                              for e in second[:-1] if isinstance(e, dict))
        assert s.stats.snapshot()["interrupted"] == 1


def test_empty_answers_are_proper_streams_with_no_text():
    """empty_rate 1: /completions sends only `{"text": "", "finish_reason": "stop"}` then [DONE] (as
    llama-cpp-python's _create_completion does when the model stops at once); usage says 0 tokens."""
    with MockServer(MockConfig(empty_rate=1.0, **FAST)) as s:
        events = stream(s, "openai-completions")
        assert events[-1] == "[DONE]"
        texts = [c["text"] for e in events[:-1] for c in e["choices"]]
        assert texts == [""] and events[0]["choices"][0]["finish_reason"] == "stop"
        assert events[-2]["usage"]["completion_tokens"] == 0
        chat = stream(s, "openai-chat")
        assert not any(c["delta"].get("content") for e in chat[:-1] for c in e["choices"])


def test_no_usage_ignores_include_usage():
    """llama.cpp servers ignore stream_options.include_usage: no usage chunk at all."""
    with MockServer(MockConfig(usage=False, **FAST)) as s:
        for flavour in ("openai-chat", "openai-completions"):
            events = stream(s, flavour)
            assert not any(isinstance(e, dict) and "usage" in e for e in events)
            assert events[-2]["choices"][0]["finish_reason"] == "stop"


def _tokenize(s: MockServer, path: str, body: dict) -> requests.Response:
    root = s.base_url[: -len("/v1")]
    return requests.post(root + path, json=body, timeout=TIMEOUT)


def test_tokenize_endpoints_in_each_servers_shape():
    """vLLM /tokenize {prompt} -> {count, max_model_len, tokens}; llama.cpp /tokenize {content} ->
    {tokens} (no content: an empty list); llama-cpp-python /extras/tokenize {input} -> {tokens},
    /extras/tokenize/count -> {count}, no input: 422. A mock answer counts as its usage says."""
    answer = expected_text(5)
    with MockServer(MockConfig(tokenize="vllm", **FAST)) as s:
        got = _tokenize(s, "/tokenize", {"model": "m", "prompt": answer, "add_special_tokens": False}).json()
        assert got["count"] == 5 == len(got["tokens"]) and got["max_model_len"] > 0
        assert _tokenize(s, "/tokenize", {"content": answer}).status_code == 400
        assert _tokenize(s, "/tokenize", {"prompt": "xyz"}).json()["count"] == 3  # not mock words: a token each
        assert _tokenize(s, "/extras/tokenize", {"input": answer}).status_code == 404
    with MockServer(MockConfig(tokenize="llama.cpp", **FAST)) as s:
        assert len(_tokenize(s, "/tokenize", {"content": answer}).json()["tokens"]) == 5
        assert _tokenize(s, "/tokenize", {"prompt": answer}).json() == {"tokens": []}
    with MockServer(MockConfig(tokenize="llama-cpp-python", **FAST)) as s:
        assert len(_tokenize(s, "/extras/tokenize", {"input": answer}).json()["tokens"]) == 5
        assert _tokenize(s, "/extras/tokenize/count", {"input": answer}).json() == {"count": 5}
        assert _tokenize(s, "/extras/tokenize", {"prompt": answer}).status_code == 422
        assert _tokenize(s, "/tokenize", {"prompt": answer}).status_code == 404
        assert s.stats.snapshot()["tokenize_requests"] == 2
    with MockServer(MockConfig(tokenize="none", **FAST)) as s:
        assert _tokenize(s, "/tokenize", {"prompt": answer}).status_code == 404
