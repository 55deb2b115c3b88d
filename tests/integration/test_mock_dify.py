"""The mock server's Dify, over real HTTP on 127.0.0.1, read as raw bytes.

Every expectation here is written from the project's wire notes (WIRE_FORMATS.md, "Dify Service
API", itself taken from Dify's source: task_entities.py, advanced_chat/generate_task_pipeline.py,
llm_entities.py), never from what sse-perf's client happens to parse: events are
`data: {json}\\n\\n` with the type in "event", compact and raw UTF-8 as orjson writes them; the
keep-alive is `event: ping\\n\\n`; a chatflow sends workflow_started, node events, message*,
workflow_finished, [message_replace], message_end (or no message_end, or message_end first);
usage carries latency / time_to_first_token / time_to_generate in seconds and prices as decimal
strings; a 429 is `{"code": "too_many_requests", "message", "status": 429}`; /info, /parameters
and the stop endpoints answer as the Service API does. The stream is split here by a local
splitter of the SSE spec's blank-line framing, not by sse-perf's reader.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal

import pytest
import requests

from sse_perf_tool.mock_server import MockConfig, MockServer, token_text

TOKENS = 12  # enough to carry the CJK words of the mock's answer (我们, 正在, 测试)
FAST = dict(ttft_ms=5.0, itl_ms=1.0, tokens=TOKENS)
TIMEOUT = (5, 10)
PING = b"event: ping\n\n"
USER = "sse-perf"
CHAT = {"inputs": {}, "query": "你是谁", "response_mode": "streaming", "conversation_id": "", "user": USER,
        "files": []}
COMPLETION = {"inputs": {"query": "写一首诗"}, "response_mode": "streaming", "user": USER, "files": []}
WORKFLOW = {"inputs": {"query": "Bonjour"}, "response_mode": "streaming", "user": USER, "files": []}
OPENAI_CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
OPENAI_COMPLETIONS = {"model": "m", "prompt": "hi", "stream": True}
BODY_OF = {"/chat-messages": CHAT, "/completion-messages": COMPLETION, "/workflows/run": WORKFLOW,
           "/chat/completions": OPENAI_CHAT, "/completions": OPENAI_COMPLETIONS}
USAGE_FIELDS = ("prompt_tokens", "prompt_unit_price", "prompt_price_unit", "prompt_price", "completion_tokens",
                "completion_unit_price", "completion_price_unit", "completion_price", "total_tokens", "total_price",
                "currency", "latency", "time_to_first_token", "time_to_generate")


# --- a local splitter: blocks of the raw stream, each checked for Dify's framing ----------


def blocks(raw: bytes) -> list[bytes]:
    """The blank-line-terminated blocks of an LF-framed stream (the mock writes LF only)."""
    assert raw.endswith(b"\n\n"), "a stream ends on an event boundary"
    return [b + b"\n" for b in raw[:-2].split(b"\n\n")]


def dify_events(raw: bytes) -> list:
    """The stream as Dify frames it: "ping" for each `event: ping` block, else the JSON of a block
    that is exactly one `data: ` line of compact, raw UTF-8 JSON whose "event" names its type."""
    events: list = []
    for block in blocks(raw):
        if block == b"event: ping\n":
            events.append("ping")
            continue
        assert block.startswith(b"data: ") and block.count(b"\n") == 1, block
        payload = block[len(b"data: "):-1]
        obj = json.loads(payload.decode("utf-8"))
        assert payload == json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), payload
        events.append(obj)
    return events


def names(events: list) -> list:
    return [e if e == "ping" else e["event"] for e in events]


def post(server: MockServer, path: str, body: dict | None = None, **kwargs) -> requests.Response:
    return requests.post(server.base_url + path, json=BODY_OF[path] if body is None else body, timeout=TIMEOUT,
                         **kwargs)


def stream(server: MockServer, path: str, body: dict | None = None) -> tuple[bytes, list]:
    response = post(server, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response.content, dify_events(response.content)


def answer_text(n: int) -> str:
    return "".join(token_text(i) for i in range(n))


def reasoning_text(n: int) -> str:
    return "".join(token_text(i, reasoning=True) for i in range(n))


def assert_usage(usage: dict, completion_tokens: int) -> None:
    """Dify's LLMUsage: token counts, prices as decimal strings that add up, currency, seconds."""
    assert tuple(usage) == USAGE_FIELDS
    assert usage["completion_tokens"] == completion_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + completion_tokens
    prices = [usage[k] for k in USAGE_FIELDS if k.endswith(("price", "price_unit"))]
    assert all(isinstance(p, str) for p in prices)
    assert Decimal(usage["total_price"]) == Decimal(usage["prompt_price"]) + Decimal(usage["completion_price"])
    assert usage["currency"] == "USD"
    for name in ("latency", "time_to_first_token", "time_to_generate"):
        assert isinstance(usage[name], float) and usage[name] >= 0
    assert usage["time_to_first_token"] + usage["time_to_generate"] == pytest.approx(usage["latency"])


@pytest.fixture(scope="module")
def chat_server():
    with MockServer(MockConfig(**FAST, seed=3)) as s:
        yield s


# --- framing -------------------------------------------------------------------------------


def test_chat_app_events_are_compact_raw_utf8_data_lines_with_dify_fields(chat_server):
    raw, events = stream(chat_server, "/chat-messages")
    assert names(events) == ["message"] * TOKENS + ["message_end"]
    assert "我们".encode("utf-8") in raw and b"\\u" not in raw  # raw UTF-8, not \\u escapes
    first = events[0]
    assert list(first) == ["event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer"]
    assert first["id"] == first["message_id"] and isinstance(first["created_at"], int)
    assert {(e["task_id"], e["message_id"], e["conversation_id"]) for e in events} == {
        (first["task_id"], first["message_id"], first["conversation_id"])}
    assert "".join(e["answer"] for e in events[:-1]) == answer_text(TOKENS)
    end = events[-1]
    assert end["id"] == first["message_id"]
    assert_usage(end["metadata"]["usage"], TOKENS)


def test_completion_app_has_no_conversation_id(chat_server):
    _, events = stream(chat_server, "/completion-messages")
    assert names(events) == ["message"] * TOKENS + ["message_end"]
    assert all("conversation_id" not in e for e in events)
    assert list(events[0])[:4] == ["event", "message_id", "created_at", "task_id"]


def test_workflow_run_pings_first_then_nodes_text_chunks_and_workflow_finished(chat_server):
    raw, events = stream(chat_server, "/workflows/run")
    assert raw.startswith(PING)
    kinds = names(events)
    assert kinds[:5] == ["ping", "workflow_started", "node_started", "node_finished", "node_started"]
    assert kinds[5:5 + TOKENS] == ["text_chunk"] * TOKENS
    assert kinds[5 + TOKENS:] == ["node_finished", "node_started", "node_finished", "workflow_finished"]
    data_events = events[1:]
    run_id = data_events[0]["workflow_run_id"]
    assert all(e["workflow_run_id"] == run_id and e["task_id"] == data_events[0]["task_id"] for e in data_events)
    assert "".join(e["data"]["text"] for e in data_events if e["event"] == "text_chunk") == answer_text(TOKENS)
    finished = events[-1]["data"]
    assert finished["status"] == "succeeded" and finished["outputs"] == {"text": answer_text(TOKENS)}
    assert isinstance(finished["elapsed_time"], float) and finished["elapsed_time"] > 0
    assert finished["total_tokens"] > TOKENS  # prompt + completion of the LLM node


# --- chatflow ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["after", "none", "before"])
def test_chatflow_stream_in_dify_s_order(order):
    with MockServer(MockConfig(**FAST, dify_mode="chatflow", message_end=order)) as s:
        raw, events = stream(s, "/chat-messages")
    assert raw.startswith(PING)  # the very first bytes of a chatflow run are the ping
    kinds = names(events)
    head = ["ping", "workflow_started", "node_started", "node_finished", "node_started"]
    nodes_after = ["node_finished", "node_started", "node_finished"]
    tail = {"after": ["workflow_finished", "message_end"], "none": ["workflow_finished"],
            "before": ["message_end", "workflow_finished"]}[order]
    assert kinds == head + ["message"] * TOKENS + nodes_after + tail
    data_events = events[1:]
    first = data_events[0]
    assert list(first)[:6] == ["event", "conversation_id", "message_id", "created_at", "task_id", "workflow_run_id"]
    assert {(e["conversation_id"], e["message_id"], e["task_id"]) for e in data_events} == {
        (first["conversation_id"], first["message_id"], first["task_id"])}
    messages = [e for e in data_events if e["event"] == "message"]
    assert all(m["id"] == first["message_id"] for m in messages)
    assert "".join(m["answer"] for m in messages) == answer_text(TOKENS)
    finished = next(e for e in data_events if e["event"] == "workflow_finished")["data"]
    assert finished["status"] == "succeeded" and finished["outputs"] == {"answer": answer_text(TOKENS)}
    assert isinstance(finished["elapsed_time"], float) and finished["elapsed_time"] > 0
    if order != "none":
        usage = next(e for e in data_events if e["event"] == "message_end")["metadata"]["usage"]
        assert_usage(usage, TOKENS)
        assert finished["total_tokens"] == usage["total_tokens"]


def test_chatflow_message_replace_comes_after_workflow_finished_and_before_message_end():
    with MockServer(MockConfig(**FAST, dify_mode="chatflow", message_replace=True)) as s:
        _, events = stream(s, "/chat-messages")
    assert names(events)[-3:] == ["workflow_finished", "message_replace", "message_end"]
    assert isinstance(events[-2]["answer"], str) and events[-2]["answer"]


def test_chat_app_message_replace_before_message_end_and_blocking_answer_replaced():
    with MockServer(MockConfig(**FAST, message_replace=True)) as s:
        _, events = stream(s, "/chat-messages")
        blocking = post(s, "/chat-messages", {**CHAT, "response_mode": "blocking"}).json()
    assert names(events)[-2:] == ["message_replace", "message_end"]
    assert blocking["answer"] == events[-2]["answer"] != answer_text(TOKENS)


# --- keep-alive pings ----------------------------------------------------------------------


def test_pings_keep_a_slow_first_token_alive_on_the_setting_s_interval():
    """With a 0.15 s interval and 400 ms to the first token, the silence before it is at least
    400 ms, so a chatflow run sends a ping after its first one; a chat app pings too."""
    with MockServer(MockConfig(ttft_ms=400, itl_ms=1, tokens=3, ping_interval_s=0.15, dify_mode="chatflow")) as s:
        _, chatflow = stream(s, "/chat-messages")
        _, chat = stream(s, "/completion-messages")
    kinds = names(chatflow)
    before_text = kinds[1:kinds.index("message")]
    assert kinds[0] == "ping" and before_text.count("ping") >= 1  # the first bytes, then after silence
    assert names(chat)[0] == "ping"  # a chat app: after the first interval of elapsed time


def test_chat_app_sends_no_ping_first_when_the_answer_is_quick(chat_server):
    raw, _ = stream(chat_server, "/chat-messages")
    assert not raw.startswith(PING)  # chat apps ping only after an interval of elapsed time


# --- usage ---------------------------------------------------------------------------------


def test_usage_timing_is_the_server_s_own_and_fits_inside_the_client_s():
    ttft_ms = 60
    with MockServer(MockConfig(ttft_ms=ttft_ms, itl_ms=2, tokens=5)) as s:
        sent = time.perf_counter()
        _, events = stream(s, "/chat-messages")
        client_s = time.perf_counter() - sent
    usage = events[-1]["metadata"]["usage"]
    assert_usage(usage, 5)
    assert usage["time_to_first_token"] >= ttft_ms / 1000  # the first token is not sent before ttft
    assert usage["latency"] >= ttft_ms / 1000 + 4 * 0.002
    assert usage["latency"] <= client_s  # the server's span lies inside the client's


@pytest.mark.parametrize("path", ["/chat-messages", "/completion-messages"])
def test_zero_usage_has_every_field_zero(path):
    with MockServer(MockConfig(**FAST, zero_usage=True)) as s:
        _, events = stream(s, path)
    usage = events[-1]["metadata"]["usage"]
    assert tuple(usage) == USAGE_FIELDS
    assert all(Decimal(str(v)) == 0 for k, v in usage.items() if k != "currency")


# --- think tags ----------------------------------------------------------------------------


def text_pieces(path: str, events: list) -> list:
    """The answer text of each text-bearing event, as each flavour's wire carries it."""
    pieces = []
    for e in events:
        if e == "ping" or e == "[DONE]":
            continue
        if "choices" in e:
            for choice in e["choices"]:
                delta = choice.get("delta", {})
                assert "reasoning_content" not in delta  # tagged reasoning is answer text
                text = delta.get("content") if "delta" in choice else choice.get("text")
                if text:
                    pieces.append(text)
        elif e["event"] in ("message", "agent_message"):
            pieces.append(e["answer"])
        elif e["event"] == "text_chunk":
            pieces.append(e["data"]["text"])
        else:
            assert e["event"] != "reasoning_chunk"
    return pieces


def openai_events(raw: bytes) -> list:
    out = []
    for block in blocks(raw):
        payload = block[len(b"data: "):-1]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out


CASES = [("chat", "/chat-messages"), ("chatflow", "/chat-messages"), ("agent", "/chat-messages"),
         ("chat", "/completion-messages"), ("chat", "/workflows/run"), ("chat", "/chat/completions"),
         ("chat", "/completions")]


@pytest.mark.parametrize("mode", ["whole", "split"])
def test_think_tags_wrap_the_first_reasoning_tokens_in_the_answer_text_on_every_flavour(mode):
    reasoning = 4
    expected = "<think>" + reasoning_text(reasoning) + "</think>" + answer_text(TOKENS)
    for dify_mode, path in CASES:
        with MockServer(MockConfig(**FAST, reasoning_tokens=reasoning, think_tags=mode, dify_mode=dify_mode)) as s:
            response = post(s, path)
            assert response.status_code == 200
            openai = path in ("/chat/completions", "/completions")
            events = openai_events(response.content) if openai else dify_events(response.content)
            pieces = text_pieces(path, events)
            assert "".join(pieces) == expected, (dify_mode, path)
            assert len(pieces) == reasoning + TOKENS  # one event per token: the tags ride on them
            whole_tags = [p for p in pieces if "<think>" in p or "</think>" in p]
            if mode == "whole":
                assert pieces[0].startswith("<think>") and "</think>" in pieces[reasoning - 1]
            else:  # each tag cut across two events
                assert whole_tags == [] and pieces[0] == "<thi" and pieces[1].startswith("nk>")
                assert pieces[reasoning - 1].endswith("</th") and pieces[reasoning].startswith("ink>")


# --- agent ---------------------------------------------------------------------------------


def test_agent_app_streams_thoughts_a_message_file_and_agent_messages():
    with MockServer(MockConfig(**FAST, dify_mode="agent")) as s:
        _, events = stream(s, "/chat-messages")
    kinds = names(events)
    assert kinds[0] == "agent_thought" and kinds[-1] == "message_end"
    assert kinds.count("message_file") == 1 and kinds.index("message_file") < kinds.index("agent_message")
    assert kinds.count("agent_message") == TOKENS and "message" not in kinds
    assert "".join(e["answer"] for e in events if e["event"] == "agent_message") == answer_text(TOKENS)
    thoughts = [e for e in events if e["event"] == "agent_thought"]
    assert {t["position"] for t in thoughts} == {1, 2}
    assert all({"id", "position", "thought", "observation", "tool", "tool_input", "message_files"} <= set(t)
               for t in thoughts)
    file = events[kinds.index("message_file")]
    assert file["type"] == "image" and file["belongs_to"] == "assistant" and file["url"]
    assert any(file["id"] in t["message_files"] for t in thoughts)
    assert all(e["conversation_id"] == events[0]["conversation_id"] for e in events)
    assert_usage(events[-1]["metadata"]["usage"], TOKENS)


# --- errors, pauses and faults -------------------------------------------------------------


def test_stream_error_ends_a_chat_stream_with_dify_s_error_event():
    with MockServer(MockConfig(**FAST, stream_error_rate=1.0)) as s:
        _, chat = stream(s, "/chat-messages")
        _, flow = stream(s, "/workflows/run")
        raw_openai = post(s, "/chat/completions").content
    assert names(chat) == ["message"] * (TOKENS // 2) + ["error"]
    error = chat[-1]
    assert {"code", "message", "status", "conversation_id", "message_id", "created_at"} <= set(error)
    assert isinstance(error["status"], int) and error["code"] and error["message"]
    assert names(flow)[-2:] == ["workflow_finished", "error"]
    assert flow[-2]["data"]["status"] == "failed" and flow[-2]["data"]["error"]
    openai = openai_events(raw_openai)
    assert openai[-1] == "[DONE]" and "error" in openai[-2]  # vLLM: the error, then still [DONE]


@pytest.mark.parametrize(("mode", "path"), [("chatflow", "/chat-messages"), ("chat", "/workflows/run")])
def test_a_human_input_node_pauses_the_run_and_the_stream_ends(mode, path):
    with MockServer(MockConfig(**FAST, dify_mode=mode, pause_rate=1.0)) as s:
        _, events = stream(s, path)
        _, chat = stream(s, "/completion-messages")  # no human-input node: answered in full
    kinds = names(events)
    assert kinds[-1] == "workflow_paused"
    assert "workflow_finished" not in kinds and "message_end" not in kinds
    paused = events[-1]["data"]
    assert paused["status"] == "paused" and paused["paused_nodes"] and paused["reasons"]
    assert names(chat)[-1] == "message_end"


def test_429_has_retry_after_and_dify_s_too_many_requests_body():
    with MockServer(MockConfig(**FAST, rate_limit_rate=1.0, retry_after_s=7)) as s:
        response = post(s, "/chat-messages")
        stats = s.stats.dify()
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    body = response.json()
    assert set(body) == {"code", "message", "status"}
    assert body["code"] == "too_many_requests" and body["status"] == 429 and body["message"]
    assert stats["faults"] == {"429": 1}


def test_html_page_with_status_200_instead_of_the_stream():
    with MockServer(MockConfig(**FAST, html_rate=1.0)) as s:
        response = post(s, "/chat-messages")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().lower().startswith("<!doctype html>")


def test_faults_draw_once_per_request_and_their_rates_cannot_exceed_one():
    with pytest.raises(ValueError):
        MockConfig(error_rate=0.6, rate_limit_rate=0.6)
    with MockServer(MockConfig(**FAST, error_rate=0.5, rate_limit_rate=0.5, seed=2)) as s:
        statuses = {post(s, "/chat-messages").status_code for _ in range(30)}
    assert statuses == {500, 429}


def test_a_stall_sends_nothing_at_all_then_the_rest_of_the_stream():
    """Half the tokens, then stall_s of silence with no pings (a 0.05 s ping interval would send
    some if the stall were an ordinary wait), then the rest and a proper end."""
    stall_s = 0.3
    with MockServer(MockConfig(ttft_ms=5, itl_ms=1, tokens=4, stall_rate=1.0, stall_s=stall_s,
                               ping_interval_s=0.05, dify_mode="chatflow")) as s:
        response = requests.post(s.base_url + "/chat-messages", json=CHAT, stream=True, timeout=TIMEOUT)
        arrivals, raw = [], b""
        for chunk in response.iter_content(chunk_size=None):
            raw += chunk
            arrivals.append((time.perf_counter(), raw.count(b'"event":"message"')))
    events = dify_events(raw)
    kinds = names(events)
    messages = [i for i, k in enumerate(kinds) if k == "message"]
    assert len(messages) == 4 and kinds[-1] == "message_end"
    assert "ping" not in kinds[messages[1]:messages[2]]  # silence during the stall
    second = min(t for t, n in arrivals if n >= 2)
    third = min(t for t, n in arrivals if n >= 3)
    assert third - second >= stall_s - 0.01


def test_a_reset_cuts_the_connection_after_half_the_tokens():
    with MockServer(MockConfig(ttft_ms=5, itl_ms=30, tokens=6, reset_rate=1.0)) as s:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        body = json.dumps(CHAT).encode()
        sock.sendall(b"POST /v1/chat-messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        received, reset = b"", False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except ConnectionResetError:
            reset = True
        finally:
            sock.close()
    assert reset, "the connection ends with a reset, not a close"
    assert 1 <= received.count(b'"event":"message"') <= 3 and b"message_end" not in received
    assert not received.endswith(b"0\r\n\r\n")


# --- Service API helpers -------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "dify_name"), [("chat", "chat"), ("chatflow", "advanced-chat"),
                                                 ("agent", "agent-chat"), ("completion", "completion"),
                                                 ("workflow", "workflow")])
def test_info_says_the_app_s_mode(mode, dify_name):
    with MockServer(MockConfig(**FAST, dify_mode=mode)) as s:
        response = requests.get(s.base_url + "/info", timeout=TIMEOUT)
    assert response.status_code == 200
    info = response.json()
    assert {"name", "description", "tags", "mode"} <= set(info)
    assert info["mode"] == dify_name and isinstance(info["tags"], list)


def test_parameters_list_the_required_inputs_and_requests_without_them_get_400():
    with MockServer(MockConfig(**FAST, required_inputs=("topic", "lang"), api_key="app-k")) as s:
        auth = {"Authorization": "Bearer app-k"}
        assert requests.get(s.base_url + "/parameters", timeout=TIMEOUT).status_code == 401
        form = requests.get(s.base_url + "/parameters", headers=auth, timeout=TIMEOUT).json()["user_input_form"]
        missing = post(s, "/chat-messages", headers=auth)
        given = post(s, "/chat-messages", {**CHAT, "inputs": {"topic": "t", "lang": "zh"}}, headers=auth)
        post_info = requests.post(s.base_url + "/info", json={}, headers=auth, timeout=TIMEOUT)
    fields = [next(iter(item.values())) for item in form]
    assert [(f["variable"], f["required"]) for f in fields] == [("topic", True), ("lang", True)]
    assert missing.status_code == 400
    assert missing.json()["code"] == "invalid_param" and "topic" in missing.json()["message"]
    assert given.status_code == 200
    assert post_info.status_code == 405


def _open_stream(s: MockServer, path: str, body: dict):
    """A long stream, read until its first token-bearing event; returns (response, chunks, raw, task_id)."""
    response = requests.post(s.base_url + path, json=body, stream=True, timeout=TIMEOUT)
    chunks = response.iter_content(chunk_size=None)
    raw = b""
    while b'"task_id"' not in raw or raw.count(b"\n\n") < 6:
        raw += next(chunks)
    task_id = next(e for e in dify_events(raw[: raw.rindex(b"\n\n") + 2]) if e != "ping")["task_id"]
    return response, chunks, raw, task_id


@pytest.mark.parametrize(("mode", "path", "stop_path"), [
    ("chat", "/chat-messages", "/chat-messages/{}/stop"),
    ("chatflow", "/chat-messages", "/chat-messages/{}/stop"),
    ("chat", "/completion-messages", "/completion-messages/{}/stop"),
    ("chat", "/workflows/run", "/workflows/tasks/{}/stop"),
])
def test_stop_ends_that_task_s_stream_early_and_properly(mode, path, stop_path):
    with MockServer(MockConfig(ttft_ms=1, itl_ms=20, tokens=1000, dify_mode=mode)) as s:
        response, chunks, raw, task_id = _open_stream(s, path, BODY_OF[path])
        other = requests.post(s.base_url + stop_path.format(task_id), json={"user": "someone-else"}, timeout=TIMEOUT)
        seen = raw.count(b"\n\n")
        while raw.count(b"\n\n") < seen + 3:  # another user's stop changes nothing: the stream goes on
            raw += next(chunks)
        stop = requests.post(s.base_url + stop_path.format(task_id), json={"user": USER}, timeout=TIMEOUT)
        for chunk in chunks:
            raw += chunk
        response.close()
        stats = s.stats.dify()
    assert other.json() == {"result": "success"} and stop.status_code == 200 and stop.json() == {"result": "success"}
    assert stats["stop_requests"] == 2 and stats["stopped"] == 1
    events = [e for e in dify_events(raw) if e != "ping"]
    if path == "/workflows/run":
        assert events[-1]["event"] == "workflow_finished" and events[-1]["data"]["status"] == "stopped"
    else:
        assert events[-1]["event"] == "message_end"
        assert events[-1]["metadata"]["usage"]["completion_tokens"] < 1000
    if mode == "chatflow":
        finished = next(e for e in events if e["event"] == "workflow_finished")
        assert finished["data"]["status"] == "stopped"


def test_stop_needs_a_user_and_answers_success_for_any_task():
    with MockServer(MockConfig(**FAST)) as s:
        no_user = requests.post(s.base_url + "/chat-messages/abc/stop", json={}, timeout=TIMEOUT)
        unknown = requests.post(s.base_url + "/chat-messages/abc/stop", json={"user": USER}, timeout=TIMEOUT)
        wrong_method = requests.get(s.base_url + "/workflows/tasks/abc/stop", timeout=TIMEOUT)
        stats = s.stats.dify()
    assert no_user.status_code == 400 and no_user.json()["status"] == 400
    assert unknown.status_code == 200 and unknown.json() == {"result": "success"}
    assert wrong_method.status_code == 405
    assert stats["stop_requests"] == 1 and stats["stopped"] == 0


def test_mock_server_options_reach_the_config():
    from sse_perf_tool.cli.mock import build_mock_parser, mock_server_main

    args = build_mock_parser().parse_args(["--dify-mode", "chatflow", "--message-end", "none", "--think-tags", "split",
                                           "--required-input", "a", "--required-input", "b", "--stall-rate", "0.5",
                                           "--ping-interval-s", "0.5", "--zero-usage", "--message-replace"])
    assert (args.dify_mode, args.message_end, args.think_tags, args.required_input) == (
        "chatflow", "none", "split", ["a", "b"])
    assert args.stall_rate == 0.5 and args.zero_usage and args.message_replace and args.ping_interval_s == 0.5
    assert mock_server_main(["--stall-rate", "0.6", "--reset-rate", "0.6"]) == 2
    assert mock_server_main(["--ping-interval-s", "0"]) == 2


def test_stop_event_of_a_concurrent_stream_is_its_own():
    """Two streams of the same user: stopping one task leaves the other to finish whole."""
    with MockServer(MockConfig(ttft_ms=1, itl_ms=10, tokens=60)) as s:
        first, chunks, raw, task_id = _open_stream(s, "/chat-messages", CHAT)
        result: dict = {}

        def other() -> None:
            result["events"] = stream(s, "/chat-messages")[1]

        thread = threading.Thread(target=other)
        thread.start()
        requests.post(s.base_url + f"/chat-messages/{task_id}/stop", json={"user": USER}, timeout=TIMEOUT)
        for chunk in chunks:
            raw += chunk
        first.close()
        thread.join(timeout=10)
    assert dify_events(raw)[-1]["metadata"]["usage"]["completion_tokens"] < 60
    assert result["events"][-1]["metadata"]["usage"]["completion_tokens"] == 60
