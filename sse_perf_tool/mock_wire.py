"""The mock server's wire: what one request produces (`_Generation`: its tokens, the text of each
token event, think tags, timing), the flavour interface, and the OpenAI-compatible flavours' chunks,
from the servers' own documentation and source. Dify's flavours are in mock_dify.

Standard library only; used by the mock modules alone (the mock shares no code with the tester).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
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

THINK_MODES = ("off", "whole", "split")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class BadRequest(Exception):
    """The body is not what the real server accepts: answered 400 in the flavour's format."""


@dataclass
class _Generation:
    """What one request will produce, fixed before the first byte is sent (the last four fields
    are filled while it is sent)."""

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
    think: str = "off"  # THINK_MODES: reasoning as `<think>...</think>` inside the answer text
    zero_usage: bool = False  # Dify usage with every field 0 (annotation / moderation replies)
    first_token_at: Optional[float] = None  # perf_counter() when the first token event was sent
    cut_at: Optional[int] = None  # token events sent when a stop request ended the stream
    stopped: bool = False  # a stop request (POST .../stop) ended it early
    _pieces: Optional[list] = None

    @property
    def total(self) -> int:
        return self.reasoning_n + self.answer_n

    @property
    def emitted(self) -> int:
        """Token events the response carries: all of them, or those sent before a stop."""
        return self.total if self.cut_at is None else min(self.cut_at, self.total)

    @property
    def completion_tokens(self) -> int:
        return self.emitted

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning a server knows as such: none when it is only tagged text (no reasoning parser)."""
        return 0 if self.think != "off" else min(self.reasoning_n, self.emitted)

    def event(self, k: int) -> tuple:
        """(kind, index, text, last) of token event k: kind "reasoning" or "answer", index within
        that kind, last whether it is that kind's last event."""
        if self.think == "off":
            if k < self.reasoning_n:
                return "reasoning", k, token_text(k, reasoning=True), k == self.reasoning_n - 1
            i = k - self.reasoning_n
            return "answer", i, token_text(i), i == self.answer_n - 1
        if self._pieces is None:
            self._pieces = _tagged_pieces(self.reasoning_n, self.answer_n, self.think == "split")
        return "answer", k, self._pieces[k], k == self.total - 1

    def answer_text(self) -> str:
        return "".join(text for kind, _, text, _ in map(self.event, range(self.emitted)) if kind == "answer")

    def reasoning_text(self) -> str:
        return "".join(text for kind, _, text, _ in map(self.event, range(self.emitted)) if kind == "reasoning")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _tagged_pieces(reasoning_n: int, answer_n: int, split: bool) -> list:
    """The text of each token event when the reasoning is tagged inside the answer (Dify's default
    `reasoning_format` "tagged"; an OpenAI-compatible server without a reasoning parser): the first
    reasoning_n events stream `<think>` + reasoning + `</think>`, the rest the answer. `split` cuts
    each tag across two events (`<thi` | `nk>Let me`, `。</th` | `ink>Hello`), as a proxy that
    re-chunks the text would; the text as a whole is the same."""
    pieces = [token_text(k, reasoning=True) for k in range(reasoning_n)] + [token_text(i) for i in range(answer_n)]
    if not reasoning_n:
        return pieces
    pieces[0] = THINK_OPEN + pieces[0]
    pieces[reasoning_n - 1] += THINK_CLOSE
    if split:
        if reasoning_n >= 2:  # the opening tag: `<thi` alone, `nk>` + the first two reasoning tokens
            pieces[1] = pieces[0][4:] + pieces[1]
            pieces[0] = THINK_OPEN[:4]
        if answer_n:  # the closing tag: `</th` ends the reasoning, `ink>` opens the answer
            last = pieces[reasoning_n - 1]
            pieces[reasoning_n - 1] = last[: -len(THINK_CLOSE)] + THINK_CLOSE[:4]
            pieces[reasoning_n] = THINK_CLOSE[4:] + pieces[reasoning_n]
    return pieces


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


def message_texts(messages: Any) -> list[str]:
    """Every string in the `content` of a list of chat messages (OpenAI, Anthropic, Ollama and
    the Responses API's input items all carry their text there)."""
    return [text for message in messages or [] if isinstance(message, dict)
            for text in _string_values(message.get("content"))]


def compact_json(obj: Any) -> bytes:
    """JSON as orjson (Dify) and vLLM/SGLang write it: compact, raw UTF-8 (multibyte characters
    reach the client as-is, not as \\u escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _openai_event(obj: Any) -> bytes:
    return b"data: " + compact_json(obj) + b"\n\n"


class _Flavour:
    """One wire flavour: validates a body and renders its events. One instance per request."""

    reasoning = True  # whether reasoning_tokens applies (tagged reasoning applies everywhere)
    ping_first = False  # a keep-alive as the very first bytes, then one after each interval of silence
    can_pause = False  # has a human-input node (MockConfig.pause_rate)
    task_id: Optional[str] = None  # Dify's task id, for its stop endpoints

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

    def user(self, body: dict) -> Optional[str]:
        """Who asked (Dify's `user`: only they may stop the task)."""
        return None

    # response side
    def error_body(self, status: int, code: str, message: str) -> dict:
        raise NotImplementedError

    def unauthorized_body(self) -> dict:
        raise NotImplementedError

    def rate_limit_body(self) -> dict:
        return self.error_body(429, "", "Too many requests. Please try again later.")

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

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        """A failure inside the 200 stream, after some tokens: the events that end it."""
        raise NotImplementedError

    def pause_events(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        """After the tokens, a human-input node: the events before the stream closes (can_pause)."""
        return []

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        raise NotImplementedError


_OPENAI_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
    405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
}


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

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        # vLLM: an error after the stream began is one `data: {"error": ...}` event, then [DONE]
        return [_openai_event(_openai_error(500, "", message)), b"data: [DONE]\n\n"]

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
        return message_texts(body.get("messages"))

    def _usage(self, gen: _Generation) -> dict:
        return {**super()._usage(gen), "completion_tokens_details": {"reasoning_tokens": gen.reasoning_tokens}}

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
        reasoning = gen.reasoning_text()
        if reasoning:
            message["reasoning_content"] = reasoning
        return {"id": self.id, "object": "chat.completion", "created": gen.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": gen.finish_reason}],
                "usage": self._usage(gen)}


class _OpenAICompletions(_OpenAIBase):
    """`/completions`: text chunks, finish chunk, [usage], [DONE]. No reasoning channel (tagged
    reasoning, being answer text, still comes)."""

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


def _make_flavour(name: str, app: Any = None) -> _Flavour:
    """The flavour for a path's `--api` name; Dify's as `app` (a mock_dify.DifyApp) makes them."""
    if name.startswith("dify-"):
        from .mock_dify import DifyApp, make_dify_flavour  # mock_dify builds on this module

        return make_dify_flavour(name, app if app is not None else DifyApp())
    if name == "openai-chat":
        return _OpenAIChat()
    if name == "anthropic-messages":
        from .mock_anthropic import AnthropicMessages  # mock_anthropic builds on this module

        return AnthropicMessages()
    if name in ("ollama-chat", "ollama-generate"):
        from .mock_ollama import OllamaChat, OllamaGenerate  # mock_ollama builds on this module

        return OllamaChat() if name == "ollama-chat" else OllamaGenerate()
    if name == "openai-responses":
        from .mock_responses import OpenAIResponses  # mock_responses builds on this module

        return OpenAIResponses()
    if name == "tgi-generate":
        from .mock_tgi import TgiGenerate  # mock_tgi builds on this module

        return TgiGenerate()
    return _OpenAICompletions()
