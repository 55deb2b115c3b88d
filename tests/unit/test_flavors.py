"""Flavours: request bodies and the meaning of every event type in docs/WIRE_FORMATS.md."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from sse_perf_tool.flavors import FLAVORS, get_flavor
from sse_perf_tool.flavors.base import IGNORE, EventInfo, ProtocolError, Query, RequestSettings
from sse_perf_tool.flavors.dify import DifyChat, DifyCompletion, DifyWorkflow
from sse_perf_tool.flavors.openai import OpenAIChat, OpenAICompletions

try:
    from sse_perf_tool.sse import SSEEvent
except ImportError:  # sse.py is written in parallel; the flavours only read .event and .data

    @dataclass(slots=True)
    class SSEEvent:  # type: ignore[no-redef]
        event: str
        data: str
        id: str | None = None
        retry: int | None = None


def ev(data: str, event: str = "message") -> SSEEvent:
    return SSEEvent(event=event, data=data)


DIFY_ALL = [DifyChat(), DifyCompletion(), DifyWorkflow()]
DIFY_CHATLIKE = [DifyChat(), DifyCompletion()]
OPENAI_ALL = [OpenAIChat(), OpenAICompletions()]

# --- exact samples from WIRE_FORMATS.md -------------------------------------------------

DIFY_MESSAGE = '{"event":"message","conversation_id":"45701982-8118-4bc5-8e9b-64562b4555f2","message_id":"5ad4cb98-f0c7-4085-b384-88c403be6290","created_at":1705398420,"task_id":"900bbd43-dc0b-4383-a372-aa6e6c414227","id":"5ad4cb98-f0c7-4085-b384-88c403be6290","answer":" I"}'
DIFY_AGENT_MESSAGE = '{"event": "agent_message", "task_id": "task123", "message_id": "msg123", "conversation_id": "conv123", "answer": "Here is the image: ", "created_at": 1705395333}'
DIFY_REASONING = '{"event": "reasoning_chunk", "task_id": "t", "message_id": "m", "conversation_id": "c", "created_at": 1705395333, "data": {"message_id": "m", "reasoning": "The user greeted me, so", "node_id": "n1", "is_final": false}}'
DIFY_MESSAGE_END = '{"event": "message_end", "task_id": "900bbd43-dc0b-4383-a372-aa6e6c414227", "id": "5e52ce04-874b-4d27-9045-b3bc80def685", "message_id": "5ad4cb98-f0c7-4085-b384-88c403be6290", "metadata": {"usage": {"prompt_tokens": 1033, "prompt_unit_price": "0.001", "prompt_price_unit": "0.001", "prompt_price": "0.0010330", "completion_tokens": 135, "completion_unit_price": "0.002", "completion_price_unit": "0.001", "completion_price": "0.0002700", "total_tokens": 1168, "total_price": "0.0013030", "currency": "USD", "latency": 1.381760165997548}}}'
DIFY_ERROR = '{"event":"error","conversation_id":"...","message_id":"...","created_at":1705395332,"code":"completion_request_error","message":"...","status":400}'
DIFY_TEXT_CHUNK = '{"event": "text_chunk", "task_id": "...", "workflow_run_id": "...", "data": {"text": "Bonjour", "from_variable_selector": ["node_1", "text"]}}'

OPENAI_ROLE = '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}'
OPENAI_CONTENT = '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}'
OPENAI_FINISH = '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
OPENAI_USAGE = '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"completion_tokens_details":{"reasoning_tokens":0}}}'


def respaced(data: str) -> str:
    """The same JSON with keys in reverse order and pretty-printed spacing."""
    obj = json.loads(data)
    return json.dumps(dict(reversed(list(obj.items()))), indent=1, separators=(" , ", " : "))


# --- registry ----------------------------------------------------------------------------


def test_registry_holds_the_ten_flavours_by_name():
    assert set(FLAVORS) == {"dify-chat", "dify-completion", "dify-workflow", "openai-chat", "openai-completions",
                            "anthropic-messages", "tgi-generate", "openai-responses", "ollama-chat", "ollama-generate"}
    for name, cls in FLAVORS.items():
        assert cls.name == name
        assert isinstance(get_flavor(name), cls)


def test_flavour_paths():
    assert {name: cls.path for name, cls in FLAVORS.items()} == {
        "dify-chat": "/chat-messages",
        "dify-completion": "/completion-messages",
        "dify-workflow": "/workflows/run",
        "openai-chat": "/chat/completions",
        "openai-completions": "/completions",
        "anthropic-messages": "/messages",
        "tgi-generate": "/generate_stream",
        "openai-responses": "/responses",
        "ollama-chat": "/api/chat",
        "ollama-generate": "/api/generate",
    }


def test_only_openai_anthropic_and_tgi_flavours_need_a_finish_reason():  # (the Responses API's end says it)
    """An OpenAI stream is complete only when a chunk said why it stopped, an Anthropic one when its
    message_delta did, TGI's when its details did; Dify's end events say it."""
    assert {name for name, cls in FLAVORS.items() if cls.needs_finish_reason} == {
        "openai-chat", "openai-completions", "anthropic-messages", "tgi-generate", "openai-responses",
        "ollama-chat", "ollama-generate"}


def test_get_flavor_unknown_name_lists_valid_names():
    with pytest.raises(KeyError) as info:
        get_flavor("ollama")
    message = str(info.value)
    assert "ollama" in message
    for name in FLAVORS:
        assert name in message


# --- Dify request bodies -----------------------------------------------------------------

SETTINGS = RequestSettings(model="m1", max_tokens=64, temperature=0.2, top_p=0.9, user="u-7", conversation_id="c-1")


def test_dify_chat_body():
    body = DifyChat().build_body(Query(text="hi", inputs={"lang": "fr"}), SETTINGS)
    assert body == {
        "inputs": {"lang": "fr"},
        "query": "hi",
        "response_mode": "streaming",
        "conversation_id": "c-1",
        "user": "u-7",
        "files": [],
    }


def test_dify_chat_body_is_json_and_default_conversation_is_empty():
    """The body must survive json round-trip; a new conversation is conversation_id ""."""
    body = DifyChat().build_body(Query(text="你好"), RequestSettings())
    assert json.loads(json.dumps(body)) == {
        "inputs": {},
        "query": "你好",
        "response_mode": "streaming",
        "conversation_id": "",
        "user": "sse-perf",
        "files": [],
    }


def test_dify_completion_body_sets_inputs_query_and_has_no_conversation():
    body = DifyCompletion().build_body(Query(text="hi", inputs={"lang": "fr"}), SETTINGS)
    assert body == {
        "inputs": {"lang": "fr", "query": "hi"},
        "query": "hi",
        "response_mode": "streaming",
        "user": "u-7",
        "files": [],
    }


def test_dify_completion_keeps_user_inputs_query():
    query = Query(text="hi", inputs={"query": "mine"})
    body = DifyCompletion().build_body(query, SETTINGS)
    assert body["inputs"] == {"query": "mine"}
    assert body["query"] == "hi"


def test_dify_workflow_body_puts_prompt_in_inputs_only():
    body = DifyWorkflow().build_body(Query(text="hi", inputs={"lang": "fr"}), SETTINGS)
    assert body == {
        "inputs": {"lang": "fr", "query": "hi"},
        "response_mode": "streaming",
        "user": "u-7",
        "files": [],
    }
    kept = DifyWorkflow().build_body(Query(text="hi", inputs={"query": "mine"}), SETTINGS)
    assert kept["inputs"] == {"query": "mine"}


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_body_does_not_mutate_query_inputs(flavor):
    """Queries are shared across threads: building a body must not change them."""
    inputs = {"lang": "fr"}
    query = Query(text="hi", inputs=inputs)
    body = flavor.build_body(query, SETTINGS)
    body["inputs"]["extra"] = 1
    assert inputs == {"lang": "fr"}


# --- Dify events ---------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_message_is_answer_text(flavor):
    """The text, and the conversation and task the server put the request in (for --turns and for
    stopping a cancelled generation)."""
    info = flavor.parse_event(ev(DIFY_MESSAGE))
    handles = {"conversation_id": "45701982-8118-4bc5-8e9b-64562b4555f2", "task_id": "900bbd43-dc0b-4383-a372-aa6e6c414227"}
    assert info == EventInfo(answer=" I", **handles)
    assert flavor.parse_event(ev(respaced(DIFY_MESSAGE))) == EventInfo(answer=" I", **handles)


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_agent_message_is_answer_text(flavor):
    assert flavor.parse_event(ev(DIFY_AGENT_MESSAGE)) == EventInfo(answer="Here is the image: ",
                                                                   conversation_id="conv123", task_id="task123")


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_empty_or_null_answer_carries_nothing(flavor):
    for answer in ('""', "null"):
        info = flavor.parse_event(ev('{"event": "message", "answer": %s}' % answer))
        assert info == IGNORE


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_reasoning_chunk_is_reasoning_text(flavor):
    info = flavor.parse_event(ev(DIFY_REASONING))
    assert info == EventInfo(reasoning="The user greeted me, so")


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_message_replace_replaces_answer(flavor):
    info = flavor.parse_event(ev('{"event": "message_replace", "answer": "[redacted]", "reason": "output_moderation"}'))
    assert info == EventInfo(replace="[redacted]")


@pytest.mark.parametrize("flavor", DIFY_CHATLIKE, ids=lambda f: f.name)
def test_dify_message_end_is_terminal_with_usage(flavor):
    info = flavor.parse_event(ev(DIFY_MESSAGE_END))
    assert info == EventInfo(completion_tokens=135, prompt_tokens=1033, terminal=True, server={
        "server_latency_ms": 1381.760165997548, "server_total_price": 0.001303, "server_currency": "USD"},
        task_id="900bbd43-dc0b-4383-a372-aa6e6c414227")


def test_dify_message_end_reasoning_tokens_when_present():
    data = '{"event":"message_end","metadata":{"usage":{"prompt_tokens":5,"completion_tokens":50,"completion_tokens_details":{"reasoning_tokens":30}}}}'
    assert DifyChat().parse_event(ev(data)).reasoning_tokens == 30
    data = '{"event":"message_end","metadata":{"usage":{"completion_tokens":50,"reasoning_tokens":20}}}'
    assert DifyChat().parse_event(ev(data)).reasoning_tokens == 20


def test_dify_message_end_without_usage_is_still_terminal():
    info = DifyChat().parse_event(ev('{"event": "message_end", "metadata": {}}'))
    assert info.terminal and info.completion_tokens is None


def test_dify_workflow_message_end_is_not_terminal():
    """A workflow run ends only at workflow_finished."""
    info = DifyWorkflow().parse_event(ev(DIFY_MESSAGE_END))
    assert not info.terminal
    assert info.completion_tokens == 135


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_workflow_finished_is_terminal_without_total_as_completion(flavor):
    """data.total_tokens counts prompt + completion: never reported as completion_tokens. It ends a
    workflow or completion run; on the chat endpoint (a chatflow) it is a soft end, the usage
    still to come in message_end. Its elapsed_time is the server's own run time."""
    data = '{"event": "workflow_finished", "task_id": "t", "workflow_run_id": "w", "data": {"id": "w", "workflow_id": "wf", "status": "succeeded", "outputs": {"text": "Bonjour"}, "error": null, "elapsed_time": 1.2, "total_tokens": 321, "total_steps": 3, "created_at": 1, "finished_at": 2}}'
    info = flavor.parse_event(ev(data))
    chat = flavor.name == "dify-chat"
    assert info == EventInfo(terminal=not chat, soft_end=chat, server={"server_elapsed_ms": 1200.0})
    assert info.completion_tokens is None


@pytest.mark.parametrize("status", ["failed", "stopped"])
@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_workflow_finished_failed_is_error(flavor, status):
    data = json.dumps({"event": "workflow_finished", "data": {"status": status, "error": "node llm timed out", "total_tokens": 0}})
    info = flavor.parse_event(ev(data))
    assert info.error is not None
    assert status in info.error and "node llm timed out" in info.error
    assert not info.terminal


def test_dify_workflow_text_chunk_is_answer_text():
    assert DifyWorkflow().parse_event(ev(DIFY_TEXT_CHUNK)) == EventInfo(answer="Bonjour")
    assert DifyWorkflow().parse_event(ev(respaced(DIFY_TEXT_CHUNK))) == EventInfo(answer="Bonjour")


@pytest.mark.parametrize("flavor", DIFY_CHATLIKE, ids=lambda f: f.name)
def test_dify_chat_ignores_text_chunk(flavor):
    """Chat apps stream text as `message`; counting text_chunk too would double it."""
    assert flavor.parse_event(ev(DIFY_TEXT_CHUNK)) is IGNORE


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_error_event(flavor):
    info = flavor.parse_event(ev(DIFY_ERROR))
    assert info.error == "completion_request_error: ... (status 400)"
    real = '{"event": "error", "message_id": "m", "status": 429, "code": "too_many_requests", "message": "Too many requests. Please try again later."}'
    assert flavor.parse_event(ev(real)).error == "too_many_requests: Too many requests. Please try again later. (status 429)"
    assert flavor.parse_event(ev('{"event":"error","message":"boom"}')).error == "boom"


IGNORED_DIFY_EVENTS = [
    '{"event": "agent_thought", "id": "a", "position": 1, "thought": "I should call a tool", "observation": "", "tool": "dalle3", "tool_input": "{}", "message_files": []}',
    '{"event": "message_file", "id": "f", "type": "image", "belongs_to": "assistant", "url": "https://x/y.png"}',
    '{"event": "workflow_started", "task_id": "t", "workflow_run_id": "w", "data": {"id": "w", "workflow_id": "wf", "sequence_number": 1, "created_at": 1}}',
    '{"event": "node_started", "data": {"id": "n", "node_id": "1", "node_type": "llm", "title": "LLM", "index": 2}}',
    '{"event": "node_finished", "data": {"id": "n", "node_id": "1", "status": "succeeded", "outputs": {"text": "Bonjour"}, "execution_metadata": {"total_tokens": 50}}}',
    '{"event": "iteration_started", "data": {"id": "i"}}',
    '{"event": "iteration_next", "data": {"id": "i", "index": 1}}',
    '{"event": "iteration_completed", "data": {"id": "i"}}',
    '{"event": "loop_started", "data": {"id": "l"}}',
    '{"event": "loop_completed", "data": {"id": "l"}}',
    '{"event": "parallel_branch_started", "data": {"parallel_id": "p"}}',
    '{"event": "tts_message", "audio": "SUQzBAAAAAAA", "created_at": 1}',
    '{"event": "tts_message_end", "audio": "", "created_at": 1}',
    '{"event": "ping"}',
    '{"event": "brand_new_event_2030", "answer": "not text"}',
]


@pytest.mark.parametrize("data", IGNORED_DIFY_EVENTS, ids=lambda d: json.loads(d)["event"])
@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_non_text_events_are_ignored(flavor, data):
    """Nothing measured; at most the task and conversation they name (a chatflow's first events)."""
    info = flavor.parse_event(ev(data))
    obj = json.loads(data)
    assert info == EventInfo(task_id=obj.get("task_id"), conversation_id=obj.get("conversation_id"))


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_sse_ping_with_data_is_ignored(flavor):
    assert flavor.parse_event(ev('{"event":"message","answer":"x"}', event="ping")) is IGNORE
    assert flavor.parse_event(ev("whatever", event="ping")) is IGNORE


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_empty_data_is_ignored(flavor):
    """Chosen: an empty `data:` carries nothing and does not fail the request."""
    assert flavor.parse_event(ev("")) is IGNORE
    assert flavor.parse_event(ev(" \n")) is IGNORE


@pytest.mark.parametrize(
    "data",
    ['{"event": "message", "answer": "x"', "not json", "[1, 2]", '"message"', "42", '{"answer": "x"}', '{"event": 3}',
     '{"event": "message", "answer": 5}', '{"event": "reasoning_chunk", "data": "text"}'],
)
@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_unreadable_event_is_protocol_error(flavor, data):
    with pytest.raises(ProtocolError):
        flavor.parse_event(ev(data))


def test_dify_chatflow_stream_reads_text_then_ends_at_message_end():
    """A chatflow in the order Dify's advanced_chat/generate_task_pipeline.py sends it (WIRE_FORMATS):
    workflow/node events, messages, workflow_finished (a soft end), message_end (the end, with the
    usage). Newer docs show message_end first: then message_end ends it."""
    stream = [
        '{"event": "workflow_started", "data": {"id": "w"}}',
        '{"event": "node_started", "data": {"id": "n"}}',
        '{"event": "message", "answer": "Hel"}',
        '{"event": "message", "answer": "lo"}',
        '{"event": "node_finished", "data": {"id": "n", "status": "succeeded"}}',
        '{"event": "workflow_finished", "data": {"status": "succeeded", "total_tokens": 9}}',
        '{"event": "message_end", "metadata": {"usage": {"completion_tokens": 2, "prompt_tokens": 7}}}',
    ]
    infos = [DifyChat().parse_event(ev(d)) for d in stream]
    assert "".join(i.answer for i in infos) == "Hello"
    assert [i.terminal for i in infos] == [False] * 6 + [True]
    assert [i.soft_end for i in infos] == [False] * 5 + [True, False]
    assert infos[6].completion_tokens == 2


# --- Dify error bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", DIFY_ALL, ids=lambda f: f.name)
def test_dify_error_body(flavor):
    body = b'{"code": "too_many_requests", "message": "Too many requests. Please try again later.", "status": 429}'
    assert flavor.parse_error_body(body) == "too_many_requests: Too many requests. Please try again later."
    assert flavor.parse_error_body(b'{"status":401,"message":"Access token is invalid","code":"unauthorized"}') == (
        "unauthorized: Access token is invalid"
    )
    assert flavor.parse_error_body(b'{"message": "only a message"}') == "only a message"


@pytest.mark.parametrize(
    "body", [b"<html><body>502 Bad Gateway</body></html>", b"", b"[1]", b"{}", b"\xff\xfe\xfa", b'"text"']
)
def test_dify_error_body_without_message_is_none(body):
    """Chosen: a body that is not Dify's JSON error gives None (the status stands alone)."""
    assert DifyChat().parse_error_body(body) is None


# --- OpenAI request bodies ------------------------------------------------------------------


def test_openai_chat_body_with_all_settings():
    body = OpenAIChat().build_body(Query(text="hi"), SETTINGS)
    assert body == {
        "model": "m1",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
    }


def test_openai_completions_body_uses_prompt():
    body = OpenAICompletions().build_body(Query(text="hi"), SETTINGS)
    assert body == {
        "model": "m1",
        "prompt": "hi",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
    }


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_body_omits_unset_settings(flavor):
    body = flavor.build_body(Query(text="hi"), RequestSettings())
    assert set(body) == {"stream", "stream_options", "messages" if isinstance(flavor, OpenAIChat) else "prompt"}
    assert json.loads(json.dumps(body))["stream"] is True


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_query_max_tokens_overrides_settings(flavor):
    assert flavor.build_body(Query(text="hi", max_tokens=7), SETTINGS)["max_tokens"] == 7
    assert flavor.build_body(Query(text="hi", max_tokens=7), RequestSettings())["max_tokens"] == 7
    assert flavor.build_body(Query(text="hi"), SETTINGS)["max_tokens"] == 64


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_zero_temperature_is_sent(flavor):
    """0.0 is a setting, not "unset"."""
    body = flavor.build_body(Query(text="hi"), RequestSettings(temperature=0.0, top_p=0.0))
    assert body["temperature"] == 0.0 and body["top_p"] == 0.0


# --- OpenAI events ------------------------------------------------------------------------------


def test_openai_sample_stream():
    chat = OpenAIChat()
    assert chat.parse_event(ev(OPENAI_ROLE)) == IGNORE
    assert chat.parse_event(ev(OPENAI_CONTENT)) == EventInfo(answer="Hello")
    assert chat.parse_event(ev(OPENAI_FINISH)) == EventInfo(finish_reason="stop")
    assert chat.parse_event(ev(OPENAI_USAGE)) == EventInfo(completion_tokens=12, prompt_tokens=9, reasoning_tokens=0)
    assert chat.parse_event(ev("[DONE]")) == EventInfo(terminal=True)


@pytest.mark.parametrize("data", [OPENAI_ROLE, OPENAI_CONTENT, OPENAI_FINISH, OPENAI_USAGE])
def test_openai_key_order_and_spacing_do_not_matter(data):
    chat = OpenAIChat()
    assert chat.parse_event(ev(respaced(data))) == chat.parse_event(ev(data))


@pytest.mark.parametrize("data", ["[DONE]", " [DONE]", "[DONE] ", "[DONE]\n", "\t[DONE]\r"])
@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_done_is_terminal_after_stripping(flavor, data):
    assert flavor.parse_event(ev(data)) == EventInfo(terminal=True)


def test_openai_null_content_carries_nothing():
    data = '{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}'
    assert OpenAIChat().parse_event(ev(data)) == IGNORE


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_reasoning_under_either_name(field):
    data = json.dumps({"choices": [{"index": 0, "delta": {field: "Let me think", "content": None}}]})
    info = OpenAIChat().parse_event(ev(data))
    assert info == EventInfo(reasoning="Let me think")


def test_openai_reasoning_sent_under_both_names_is_counted_once():
    data = '{"choices":[{"index":0,"delta":{"reasoning_content":"Hmm","reasoning":"Hmm"}}]}'
    assert OpenAIChat().parse_event(ev(data)).reasoning == "Hmm"
    data = '{"choices":[{"index":0,"delta":{"reasoning_content":null,"reasoning":"Hmm","content":null}}]}'
    assert OpenAIChat().parse_event(ev(data)).reasoning == "Hmm"


def test_openai_deepseek_reasoning_then_content():
    first = '{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Okay"},"logprobs":null,"finish_reason":null}]}'
    second = '{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":null},"logprobs":null,"finish_reason":null}]}'
    assert OpenAIChat().parse_event(ev(first)) == EventInfo(reasoning="Okay")
    assert OpenAIChat().parse_event(ev(second)) == EventInfo(answer="Hi")


def test_openai_completions_text():
    data = '{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" world","logprobs":null,"finish_reason":null}]}'
    assert OpenAICompletions().parse_event(ev(data)) == EventInfo(answer=" world")
    empty = '{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"length"}]}'
    assert OpenAICompletions().parse_event(ev(empty)) == EventInfo(finish_reason="length")


def test_openai_completions_usage_chunk():
    data = '{"id":"cmpl-1","object":"text_completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":16,"total_tokens":19}}'
    assert OpenAICompletions().parse_event(ev(data)) == EventInfo(completion_tokens=16, prompt_tokens=3)


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_text_and_usage_in_one_chunk(flavor):
    choice = {"index": 0, "delta": {"content": "end"}, "text": "end", "finish_reason": "stop"}
    data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}})
    assert flavor.parse_event(ev(data)) == EventInfo(answer="end", completion_tokens=5, prompt_tokens=4,
                                                     finish_reason="stop")


def test_openai_null_usage_is_not_usage():
    data = '{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}'
    assert OpenAIChat().parse_event(ev(data)) == EventInfo(answer="a")


def test_openai_reasoning_tokens_from_details():
    data = '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":40,"completion_tokens_details":{"reasoning_tokens":33}}}'
    assert OpenAIChat().parse_event(ev(data)).reasoning_tokens == 33
    data = '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":40,"completion_tokens_details":null}}'
    assert OpenAIChat().parse_event(ev(data)).reasoning_tokens is None


def test_openai_only_choice_index_0_is_read():
    """With n > 1 only completion 0 is measured."""
    other = '{"choices":[{"index":1,"delta":{"content":"B"}}]}'
    assert OpenAIChat().parse_event(ev(other)) == IGNORE
    both = '{"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]}'
    assert OpenAIChat().parse_event(ev(both)) == EventInfo(answer="A")
    no_index = '{"choices":[{"delta":{"content":"C"}}]}'
    assert OpenAIChat().parse_event(ev(no_index)) == EventInfo(answer="C")


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_in_stream_error_object(flavor):
    vllm = '{"error": {"object": "error", "message": "The decoder prompt is too long", "type": "BadRequestError", "param": null, "code": 400}}'
    assert flavor.parse_event(ev(vllm)) == EventInfo(error="The decoder prompt is too long")
    openai = '{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}'
    assert flavor.parse_event(ev(openai)).error == "overloaded"


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_in_stream_error_string_tgi(flavor):
    tgi = '{"error":"Input validation error: `inputs` must have less than 4096 tokens","error_type":"validation"}'
    assert flavor.parse_event(ev(tgi)).error == "Input validation error: `inputs` must have less than 4096 tokens"


def test_openai_error_object_without_message_still_errors():
    info = OpenAIChat().parse_event(ev('{"error": {"code": 500}}'))
    assert info.error and "500" in info.error


def test_openai_bare_error_response_in_stream():
    data = '{"object":"error","message":"model overloaded","type":"ServiceUnavailable","param":null,"code":503}'
    assert OpenAIChat().parse_event(ev(data)).error == "model overloaded"


def test_openai_null_error_key_is_not_an_error():
    data = '{"choices":[{"index":0,"delta":{"content":"a"}}],"error":null}'
    assert OpenAIChat().parse_event(ev(data)) == EventInfo(answer="a")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"error": {"message": "rate limited", "type": "rate_limit"}}', "rate limited"),
        ('{"message": "shutting down"}', "shutting down"),
        ("upstream connection reset", "upstream connection reset"),
        ("", "error event without data"),
    ],
)
@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_sse_error_event(flavor, data, message):
    assert flavor.parse_event(ev(data, event="error")) == EventInfo(error=message)


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_named_non_error_event_is_ignored(flavor):
    """Chosen: chunks are unnamed events; a named one (a proxy's ping) is not a chunk."""
    assert flavor.parse_event(ev(OPENAI_CONTENT, event="ping")) is IGNORE


@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_empty_data_is_ignored(flavor):
    assert flavor.parse_event(ev("")) is IGNORE


@pytest.mark.parametrize(
    "data",
    ['{"choices": [', "DONE", "[DONE", "[1]", '"chunk"', "null",
     '{"choices": {"index": 0}}', '{"choices": ["x"]}', '{"choices": [{"index": 0, "delta": "x", "text": 1}]}'],
)
@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_unreadable_chunk_is_protocol_error(flavor, data):
    with pytest.raises(ProtocolError):
        flavor.parse_event(ev(data))


def test_openai_non_string_content_is_protocol_error():
    with pytest.raises(ProtocolError):
        OpenAIChat().parse_event(ev('{"choices":[{"index":0,"delta":{"content":["a"]}}]}'))


def test_protocol_error_is_a_value_error():
    """Callers may catch ValueError; ProtocolError must stay one."""
    with pytest.raises(ValueError):
        OpenAIChat().parse_event(ev("{"))


# --- OpenAI error bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "Invalid API key", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}', "Invalid API key"),
        (b'{"error": "Model is overloaded", "error_type": "overloaded"}', "Model is overloaded"),
        (b'{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}', "The model `x` does not exist."),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required","input":{}}]}', "body.messages: Field required"),
        ('{"error": {"message": "上下文过长"}}'.encode(), "上下文过长"),
        (b'\xef\xbb\xbf{"error": {"message": "bom"}}', "bom"),
    ],
)
@pytest.mark.parametrize("flavor", OPENAI_ALL, ids=lambda f: f.name)
def test_openai_error_body(flavor, body, message):
    assert flavor.parse_error_body(body) == message


@pytest.mark.parametrize("body", [b"Internal Server Error", b"", b"<html>502</html>", b"[]", b"{}", b'{"foo": 1}', b"\xff\xfe\xfa"])
def test_openai_error_body_without_message_is_none(body):
    assert OpenAIChat().parse_error_body(body) is None


@pytest.mark.parametrize("text", [
    '{"choices":[{"index":0,"delta":{"content":"h\\u00e9 \\"x\\""}}]}', '[1, 2]', '"s"', '3', 'null',
    ' {"a": 1}', '{"a": 1} ', '{"a": 1}{"b": 2}', '{"a": 1', '', 'nope', '{"a": NaN}',
])
def test_load_json_reads_and_fails_exactly_as_json_loads(text):
    """The fast event-data reader is json.loads: same value, or the same error message."""
    import json

    from sse_perf_tool.flavors.base import load_json

    try:
        expected = ("value", json.loads(text))
    except ValueError as exc:
        expected = ("error", str(exc))
    try:
        got = ("value", load_json(text))
    except ValueError as exc:
        got = ("error", str(exc))
    assert got == expected


def test_dify_chat_sends_auto_generate_name_only_when_asked():
    """--dify-auto-generate-name off saves Dify's naming LLM call on each new conversation."""
    query = Query("hi")
    assert "auto_generate_name" not in DifyChat().build_body(query, RequestSettings())
    assert DifyChat().build_body(query, RequestSettings(auto_generate_name=False))["auto_generate_name"] is False
