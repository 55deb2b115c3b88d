"""The Anthropic Messages API (`POST /v1/messages`, as Claude-compatible gateways and proxies serve
it): the key in `x-api-key` with an `anthropic-version`, never a bearer token; SSE with named
events. From Anthropic's API reference, "Streaming Messages":

  message_start        message.usage.input_tokens (the prompt)
  content_block_start  a block begins: text, thinking, tool_use
  content_block_delta  delta.type text_delta (answer text), thinking_delta (reasoning),
                       input_json_delta (a tool's input: not an answer), signature_delta
  content_block_stop   a block ends
  message_delta        delta.stop_reason and usage.output_tokens (cumulative)
  message_stop         the end of the stream
  ping                 keep-alive
  error                error.type (overloaded_error, api_error, ...) and error.message

Errors outside the stream are `{"type": "error", "error": {"type", "message"}}` with the HTTP
status (529 when overloaded). Imports only flavors.base.
"""

from __future__ import annotations

from typing import Any, Optional

from .base import (IGNORE, EventInfo, Flavor, ProtocolError, Query, RequestSettings, chat_messages, generation_fields,
                   int_or_none, json_event)

ANTHROPIC_VERSION = "2023-06-01"  # the API version every current model accepts
DEFAULT_MAX_TOKENS = 1024  # max_tokens is required by the Messages API; --max-tokens sets it


def _error_message(obj: Any) -> Optional[str]:
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        if message:
            return f"{kind}: {message}" if kind else str(message)
        return str(kind) if kind else None
    return None


class AnthropicMessages(Flavor):
    name = "anthropic-messages"
    path = "/messages"
    end_event = "message_stop"
    needs_finish_reason = True  # message_delta says why it stopped; a stream without it was cut
    conversation = "history"
    wire_headers = {"anthropic-version": ANTHROPIC_VERSION}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key[7:] if api_key.lower().startswith("bearer ") else api_key}

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": chat_messages(query, settings),
                                "max_tokens": DEFAULT_MAX_TOKENS, "stream": True}
        if settings.model is not None:
            body["model"] = settings.model
        body.update(generation_fields(query, settings))  # the API requires max_tokens: 1024 unless given
        return body

    def parse_event(self, event) -> EventInfo:
        kind = event.event
        if kind == "ping":
            return IGNORE
        if kind == "message_stop":
            return EventInfo(terminal=True)
        obj = json_event(event.data, f"{kind} event") or {}
        if kind == "error":
            return EventInfo(error=_error_message(obj) or "error event without a message",
                             error_status=429 if (obj.get("error") or {}).get("type") == "rate_limit_error" else None)
        if kind == "content_block_delta":
            delta = obj.get("delta")
            if not isinstance(delta, dict):
                raise ProtocolError("content_block_delta without a delta object")
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return EventInfo(answer=delta["text"])
            if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                return EventInfo(reasoning=delta["thinking"])
            return IGNORE  # input_json_delta (a tool's input), signature_delta: no generated text
        if kind == "message_start":
            usage = (obj.get("message") or {}).get("usage") if isinstance(obj.get("message"), dict) else None
            return EventInfo(prompt_tokens=int_or_none(usage.get("input_tokens"))) if isinstance(usage, dict) \
                else IGNORE
        if kind == "message_delta":
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
            reason = delta.get("stop_reason")
            return EventInfo(finish_reason=str(reason) if reason else None,
                             completion_tokens=int_or_none(usage.get("output_tokens")))
        return IGNORE  # content_block_start / _stop, and event types added later (the API says to ignore them)

    def parse_error_body(self, body: bytes) -> Optional[str]:
        import json

        try:
            return _error_message(json.loads(body))
        except (ValueError, UnicodeDecodeError):
            return None
