"""The mock server's Anthropic Messages API (`POST /v1/messages`), on the wire Anthropic documents
("Streaming Messages" and "Errors" in its API reference): `event:`-named SSE blocks, a
message_start with the input tokens, a thinking block before the text block when there is
reasoning, a ping after the first block starts, message_delta with stop_reason and the output
tokens, message_stop; errors as `{"type": "error", "error": {"type", "message"}}` (401
authentication_error, 429 rate_limit_error, 500 api_error, 529 overloaded_error). The key is
checked in `x-api-key`, and a request without `anthropic-version` is refused with 400, as the API
refuses it. Standard library only (the mock shares no code with what it is measured against).
"""

from __future__ import annotations

from typing import Any, Optional

from .mock_wire import BadRequest, _Flavour, _Generation, compact_json, message_texts

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large", 429: "rate_limit_error",
          500: "api_error", 529: "overloaded_error"}


def _event(name: str, obj: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + compact_json(obj) + b"\n\n"


class AnthropicMessages(_Flavour):
    key_header = "x-api-key"  # where the mock looks for the key (not Authorization)

    def __init__(self) -> None:
        self._block: Optional[str] = None  # the content block open: "thinking" or "text"
        self._index = -1
        self._pinged = False

    def check_headers(self, headers) -> Optional[str]:
        if not headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        return None

    def validate(self, body: dict) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: Field required")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise BadRequest("max_tokens: Field required")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest("max_tokens: Input should be greater than or equal to 1")
        if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
            raise BadRequest("stream: Input should be a valid boolean")

    def wants_stream(self, body: dict) -> bool:
        return body.get("stream") is True

    def prompt_texts(self, body: dict) -> list[str]:
        return message_texts(body.get("messages"))

    def token_budget(self, body: dict) -> Optional[int]:
        return body.get("max_tokens")

    def start(self, gen: _Generation) -> None:
        self.id = "msg_" + gen.uuid().replace("-", "")[:24]
        self.model = str(gen.body.get("model") or "claude-mock")

    def error_body(self, status: int, code: str, message: str) -> dict:
        return {"type": "error", "error": {"type": _TYPES.get(status, "api_error"), "message": message}}

    def unauthorized_body(self) -> dict:
        return self.error_body(401, "", "invalid x-api-key")

    def rate_limit_body(self) -> dict:
        return self.error_body(429, "", "Number of request tokens has exceeded your per-minute rate limit.")

    def preamble(self, gen: _Generation) -> list[bytes]:
        return [_event("message_start", {"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.model,
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": 1}}})]

    def ping(self) -> Optional[bytes]:
        return _event("ping", {"type": "ping"})

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        block = "thinking" if kind == "reasoning" else "text"
        out = b""
        if block != self._block:
            out += self._close_block()
            self._index += 1
            self._block = block
            out += _event("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": {"type": block, block: ""}})
            if not self._pinged:  # Anthropic sends a ping after the first block starts
                self._pinged = True
                out += self.ping()
        delta = {"type": "thinking_delta", "thinking": text} if block == "thinking" else \
            {"type": "text_delta", "text": text}
        return out + _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                    "delta": delta})

    def _close_block(self) -> bytes:
        if self._block is None:
            return b""
        closing = b""
        if self._block == "thinking":
            closing = _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                     "delta": {"type": "signature_delta", "signature": "mock-sig"}})
        self._block = None
        return closing + _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _stop_reason(self, gen: _Generation) -> str:
        return "max_tokens" if gen.finish_reason == "length" else "end_turn"

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        events = [self._close_block()] if self._block is not None else []
        events.append(_event("message_delta", {"type": "message_delta",
                                               "delta": {"stop_reason": self._stop_reason(gen), "stop_sequence": None},
                                               "usage": {"output_tokens": gen.completion_tokens}}))
        events.append(_event("message_stop", {"type": "message_stop"}))
        return events

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": message}})]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict[str, Any]:
        content = []
        if gen.reasoning_text():
            content.append({"type": "thinking", "thinking": gen.reasoning_text(), "signature": "mock-sig"})
        content.append({"type": "text", "text": gen.answer_text()})
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": content,
                "stop_reason": self._stop_reason(gen), "stop_sequence": None,
                "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens}}
