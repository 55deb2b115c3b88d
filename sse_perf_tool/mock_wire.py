"""The mock server's wire: what one request produces and how each flavour writes it (Dify's
`data: {"event": ...}` events, OpenAI's chunks), from the servers' own documentation and source.

Standard library only; used by mock_server alone (the mock shares no code with the tester).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Optional

# One event carries one of these words. Chosen so that the streamed text, cut after any number
# of events, is exactly that many tokens for both cl100k_base and o200k_base (checked with
# tiktoken when the lists were made): a tokenizer-based count then agrees with `usage`.
ANSWER_WORDS = (
    "Hello", " world", "，", " this", " is", " a", " mock", "我们", "正在", "测试", "。",
    " The", " server", " sends", " one", " token", " per", " event", ",", " like", " a",
    " real", " model", "。",
)
REASONING_WORDS = (
    "Let", " me", " think", "。", " The", " user", " said", " hello", ",", " so", " I",
    " should", " greet", " them", " back", " and", " answer", "问题", "。",
)


def token_text(index: int, reasoning: bool = False) -> str:
    """Text of the index-th (0-based) answer or reasoning token of every response."""
    words = REASONING_WORDS if reasoning else ANSWER_WORDS
    return words[index % len(words)]


# --- per-request generation ------------------------------------------------------------


class BadRequest(Exception):
    """The body is not what the real server accepts: answered 400 in the flavour's format."""


@dataclass
class _Generation:
    """What one request will produce, fixed before the first byte is sent."""

    seq: int
    rng: random.Random
    body: dict
    prompt_tokens: int
    reasoning_n: int
    answer_n: int
    finish_reason: str  # "stop" or "length"
    started_at: float  # perf_counter() when the request arrived
    created: int  # wall-clock Unix seconds
    send_usage: bool = True  # whether usage may be streamed (MockConfig.usage)

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_n + self.answer_n

    def answer_text(self) -> str:
        return "".join(token_text(i) for i in range(self.answer_n))

    def reasoning_text(self) -> str:
        return "".join(token_text(i, reasoning=True) for i in range(self.reasoning_n))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _count_prompt_tokens(texts: Iterable[str]) -> int:
    """About one token per 4 UTF-8 bytes of prompt, at least 1 (no tokenizer in the mock)."""
    size = sum(len(t.encode("utf-8")) for t in texts)
    return max(1, (size + 3) // 4)


def _string_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _string_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in _string_values(v)]
    return []


def _dify_event(obj: dict) -> bytes:
    # Dify writes `data: ` + json.dumps(...) (default separators, ASCII escapes), no `event:` line.
    return b"data: " + json.dumps(obj).encode("ascii") + b"\n\n"


def _openai_event(obj: Any) -> bytes:
    # vLLM/SGLang write compact JSON with raw UTF-8 (multibyte characters reach the client as-is).
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


class _Flavour:
    """One wire flavour: validates a body and renders its events. One instance per request."""

    reasoning = True  # whether reasoning_tokens applies

    # request side
    def validate(self, body: dict) -> None:
        raise NotImplementedError

    def wants_stream(self, body: dict) -> bool:
        raise NotImplementedError

    def prompt_texts(self, body: dict) -> list[str]:
        raise NotImplementedError

    def token_budget(self, body: dict) -> Optional[int]:
        return None

    def start(self, gen: _Generation) -> None:
        """Fix ids for the response."""

    # response side
    def error_body(self, status: int, code: str, message: str) -> dict:
        raise NotImplementedError

    def unauthorized_body(self) -> dict:
        raise NotImplementedError

    def preamble(self, gen: _Generation) -> list[bytes]:
        return []

    def ping(self) -> Optional[bytes]:
        return None

    def before_first_token(self, gen: _Generation) -> list[bytes]:
        return []

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        raise NotImplementedError

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        raise NotImplementedError

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        raise NotImplementedError


# Dify: https://docs.dify.ai service API; error bodies come from its Flask error handlers.
_DIFY_CODES = {
    400: "invalid_param", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    413: "request_entity_too_large", 500: "internal_server_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
    405: "invalid_request_error", 413: "invalid_request_error", 500: "server_error",
}


def _dify_error(status: int, code: str, message: str) -> dict:
    return {"code": code or _DIFY_CODES.get(status, "error"), "message": message, "status": status}


def _not_found(path: str) -> dict:
    # An unknown path belongs to no flavour; Dify is the default one, so its format is used.
    return _dify_error(404, "not_found", f"The requested URL {path} was not found on the server.")


def _dify_usage(gen: _Generation, elapsed_s: float) -> dict:
    unit = Decimal("0.001")
    places = Decimal("0.0000001")
    prompt_price = (gen.prompt_tokens * Decimal("0.001") * unit).quantize(places)
    completion_price = (gen.completion_tokens * Decimal("0.002") * unit).quantize(places)
    return {
        "prompt_tokens": gen.prompt_tokens,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": str(prompt_price),
        "completion_tokens": gen.completion_tokens,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": str(completion_price),
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
        "total_price": str(prompt_price + completion_price),
        "currency": "USD",
        "latency": elapsed_s,
    }


def _require_user(body: dict) -> None:
    user = body.get("user")
    if not isinstance(user, str) or not user:
        raise BadRequest("Arg user must be provided.")


def _require_inputs(body: dict) -> None:
    if not isinstance(body.get("inputs"), dict):
        raise BadRequest("inputs: Missing required parameter in the JSON body (must be an object)")


def _check_response_mode(body: dict) -> None:
    mode = body.get("response_mode")
    if mode is not None and mode not in ("streaming", "blocking"):
        raise BadRequest(f"response_mode: {mode!r} is not a valid choice")


class _DifyMessages(_Flavour):
    """`/chat-messages` and `/completion-messages`: message* -> message_end."""

    def __init__(self, chat: bool) -> None:
        self.chat = chat

    def validate(self, body: dict) -> None:
        _require_inputs(body)
        if self.chat and not isinstance(body.get("query"), str):
            raise BadRequest("query: Missing required parameter in the JSON body")
        _check_response_mode(body)
        _require_user(body)

    def wants_stream(self, body: dict) -> bool:
        return body.get("response_mode") == "streaming"  # missing = blocking, as in Dify

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("query")) + _string_values(body.get("inputs"))

    def error_body(self, status: int, code: str, message: str) -> dict:
        return _dify_error(status, code, message)

    def unauthorized_body(self) -> dict:
        return _dify_error(401, "unauthorized", "Access token is invalid")

    def start(self, gen: _Generation) -> None:
        self.task_id = gen.uuid()
        self.message_id = gen.uuid()
        conversation_id = gen.body.get("conversation_id")
        self.conversation_id = conversation_id if isinstance(conversation_id, str) and conversation_id else gen.uuid()

    def _ids(self, gen: _Generation) -> dict:
        ids = {"task_id": self.task_id, "id": self.message_id, "message_id": self.message_id}
        if self.chat:
            ids["conversation_id"] = self.conversation_id
        ids["created_at"] = gen.created
        return ids

    def ping(self) -> Optional[bytes]:
        return b"event: ping\n\n"

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        if kind == "reasoning":
            event = {"event": "reasoning_chunk", "task_id": self.task_id, "message_id": self.message_id}
            if self.chat:
                event["conversation_id"] = self.conversation_id
            event["created_at"] = gen.created
            event["data"] = {"message_id": self.message_id, "reasoning": text, "node_id": "llm", "is_final": last}
            return _dify_event(event)
        return _dify_event({"event": "message", **self._ids(gen), "answer": text})

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return [_dify_event({"event": "message_end", **self._ids(gen),
                             "metadata": {"usage": _dify_usage(gen, elapsed_s)}})]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        body = {"event": "message", **self._ids(gen), "mode": "chat" if self.chat else "completion",
                "answer": gen.answer_text(), "metadata": {"usage": _dify_usage(gen, elapsed_s)}}
        return body


class _DifyWorkflow(_Flavour):
    """`/workflows/run`: workflow_started, start node, llm node streaming text_chunk, end node,
    workflow_finished. Reasoning, when asked for, comes as reasoning_chunk events."""

    def validate(self, body: dict) -> None:
        _require_inputs(body)
        _check_response_mode(body)
        _require_user(body)

    def wants_stream(self, body: dict) -> bool:
        return body.get("response_mode") == "streaming"

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("inputs"))

    def error_body(self, status: int, code: str, message: str) -> dict:
        return _dify_error(status, code, message)

    def unauthorized_body(self) -> dict:
        return _dify_error(401, "unauthorized", "Access token is invalid")

    def ping(self) -> Optional[bytes]:
        return b"event: ping\n\n"

    def start(self, gen: _Generation) -> None:
        self.task_id = gen.uuid()
        self.run_id = gen.uuid()
        self.workflow_id = gen.uuid()
        self.node_run_ids = {"start": gen.uuid(), "llm": gen.uuid(), "end": gen.uuid()}

    def _event(self, name: str, data: dict) -> bytes:
        return _dify_event({"event": name, "task_id": self.task_id, "workflow_run_id": self.run_id, "data": data})

    def _node(self, gen: _Generation, node: str, index: int, finished: bool, elapsed_s: float = 0.0,
              outputs: Optional[dict] = None, tokens: int = 0) -> bytes:
        node_type = {"start": "start", "llm": "llm", "end": "end"}[node]
        data = {
            "id": self.node_run_ids[node], "node_id": node, "node_type": node_type,
            "title": {"start": "Start", "llm": "LLM", "end": "End"}[node], "index": index,
            "predecessor_node_id": {"start": None, "llm": "start", "end": "llm"}[node],
            "inputs": gen.body.get("inputs") if node == "start" else None, "created_at": gen.created,
        }
        if not finished:
            return self._event("node_started", data)
        data.update({
            "process_data": None, "outputs": outputs or {}, "status": "succeeded", "error": None,
            "elapsed_time": elapsed_s,
            "execution_metadata": {"total_tokens": tokens, "total_price": "0", "currency": "USD"} if tokens else None,
            "finished_at": int(time.time()),
        })
        return self._event("node_finished", data)

    def preamble(self, gen: _Generation) -> list[bytes]:
        return [
            self._event("workflow_started", {"id": self.run_id, "workflow_id": self.workflow_id,
                                             "sequence_number": gen.seq, "inputs": gen.body.get("inputs"),
                                             "created_at": gen.created}),
            self._node(gen, "start", 1, finished=False),
            self._node(gen, "start", 1, finished=True, outputs=gen.body.get("inputs")),
            self._node(gen, "llm", 2, finished=False),
        ]

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        if kind == "reasoning":
            return _dify_event({"event": "reasoning_chunk", "task_id": self.task_id,
                                "workflow_run_id": self.run_id, "created_at": gen.created,
                                "data": {"reasoning": text, "node_id": "llm", "is_final": last}})
        return self._event("text_chunk", {"text": text, "from_variable_selector": ["llm", "text"]})

    def _total_tokens(self, gen: _Generation) -> int:
        # Dify's workflow total_tokens is prompt + completion of every LLM node.
        return gen.prompt_tokens + gen.completion_tokens

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        answer = gen.answer_text()
        usage = _dify_usage(gen, elapsed_s)
        return [
            self._node(gen, "llm", 2, finished=True, elapsed_s=elapsed_s, tokens=self._total_tokens(gen),
                       outputs={"text": answer, "usage": usage, "finish_reason": gen.finish_reason}),
            self._node(gen, "end", 3, finished=False),
            self._node(gen, "end", 3, finished=True, outputs={"text": answer}),
            self._event("workflow_finished", self._finished_data(gen, elapsed_s)),
        ]

    def _finished_data(self, gen: _Generation, elapsed_s: float) -> dict:
        return {
            "id": self.run_id, "workflow_id": self.workflow_id, "status": "succeeded",
            "outputs": {"text": gen.answer_text()}, "error": None, "elapsed_time": elapsed_s,
            "total_tokens": self._total_tokens(gen), "total_steps": 3,
            "created_at": gen.created, "finished_at": int(time.time()),
        }

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        return {"task_id": self.task_id, "workflow_run_id": self.run_id, "data": self._finished_data(gen, elapsed_s)}


def _openai_error(status: int, code: str, message: str, param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"),
                      "param": param, "code": code or None}}


class _OpenAIBase(_Flavour):
    object_name = ""
    id_prefix = ""

    def wants_stream(self, body: dict) -> bool:
        return body.get("stream") is True

    def error_body(self, status: int, code: str, message: str) -> dict:
        return _openai_error(status, code, message)

    def unauthorized_body(self) -> dict:
        return _openai_error(401, "invalid_api_key", "Incorrect API key provided.")

    def _validate_common(self, body: dict) -> None:
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise BadRequest("stream: Input should be a valid boolean")
        options = body.get("stream_options")
        if options is not None:
            if not isinstance(options, dict):
                raise BadRequest("stream_options: Input should be a valid dictionary")
            if stream is not True:
                raise BadRequest("Stream options can only be defined when `stream=True`.")
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise BadRequest(f"{name} must be at least 1, got {value!r}.")

    def token_budget(self, body: dict) -> Optional[int]:
        # max_completion_tokens (newer name) wins; both count reasoning tokens too.
        for name in ("max_completion_tokens", "max_tokens"):
            if body.get(name) is not None:
                return int(body[name])
        return None

    def start(self, gen: _Generation) -> None:
        self.id = self.id_prefix + uuid.UUID(int=gen.rng.getrandbits(128)).hex
        model = gen.body.get("model")
        self.model = model if isinstance(model, str) and model else "mock-model"
        options = gen.body.get("stream_options")
        self.include_usage = gen.send_usage and isinstance(options, dict) and options.get("include_usage") is True

    def _chunk(self, gen: _Generation, choices: list) -> dict:
        return {"id": self.id, "object": self.object_name, "created": gen.created, "model": self.model,
                "choices": choices}

    def _usage(self, gen: _Generation) -> dict:
        return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                "total_tokens": gen.prompt_tokens + gen.completion_tokens}

    def _tail(self, gen: _Generation, finish_choice: dict) -> list[bytes]:
        events = [_openai_event(self._chunk(gen, [finish_choice]))]
        if self.include_usage:
            events.append(_openai_event({**self._chunk(gen, []), "usage": self._usage(gen)}))
        events.append(b"data: [DONE]\n\n")
        return events


class _OpenAIChat(_OpenAIBase):
    """`/chat/completions`: role chunk, reasoning_content*, content*, finish chunk, [usage], [DONE]."""

    object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def validate(self, body: dict) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: Field required (a non-empty list)")
        self._validate_common(body)

    def prompt_texts(self, body: dict) -> list[str]:
        texts: list[str] = []
        for message in body.get("messages") or []:
            if isinstance(message, dict):
                texts += _string_values(message.get("content"))
        return texts

    def _usage(self, gen: _Generation) -> dict:
        return {**super()._usage(gen), "completion_tokens_details": {"reasoning_tokens": gen.reasoning_n}}

    def before_first_token(self, gen: _Generation) -> list[bytes]:
        # vLLM sends the role chunk with the first output, not with the headers.
        return [_openai_event(self._chunk(gen, [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                 "logprobs": None, "finish_reason": None}]))]

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        delta = {"reasoning_content": text} if kind == "reasoning" else {"content": text}
        return _openai_event(self._chunk(gen, [{"index": 0, "delta": delta, "logprobs": None,
                                                "finish_reason": None}]))

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return self._tail(gen, {"index": 0, "delta": {}, "logprobs": None, "finish_reason": gen.finish_reason})

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        message = {"role": "assistant", "content": gen.answer_text()}
        if gen.reasoning_n:
            message["reasoning_content"] = gen.reasoning_text()
        return {"id": self.id, "object": "chat.completion", "created": gen.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": gen.finish_reason}],
                "usage": self._usage(gen)}


class _OpenAICompletions(_OpenAIBase):
    """`/completions`: text chunks, finish chunk, [usage], [DONE]. No reasoning channel."""

    object_name = "text_completion"
    id_prefix = "cmpl-"
    reasoning = False

    def validate(self, body: dict) -> None:
        prompt = body.get("prompt")
        if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
            raise BadRequest("prompt: Field required (a string or a non-empty list)")
        self._validate_common(body)

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("prompt"))

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        return _openai_event(self._chunk(gen, [{"index": 0, "text": text, "logprobs": None,
                                                "finish_reason": None}]))

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return self._tail(gen, {"index": 0, "text": "", "logprobs": None, "finish_reason": gen.finish_reason})

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        return {"id": self.id, "object": "text_completion", "created": gen.created, "model": self.model,
                "choices": [{"index": 0, "text": gen.answer_text(), "logprobs": None,
                             "finish_reason": gen.finish_reason}],
                "usage": self._usage(gen)}


def _make_flavour(name: str) -> _Flavour:
    if name == "dify-chat":
        return _DifyMessages(chat=True)
    if name == "dify-completion":
        return _DifyMessages(chat=False)
    if name == "dify-workflow":
        return _DifyWorkflow()
    if name == "openai-chat":
        return _OpenAIChat()
    return _OpenAICompletions()
