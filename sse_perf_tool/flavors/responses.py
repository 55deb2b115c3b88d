"""The OpenAI Responses API (`POST /v1/responses` with `stream: true`; the OpenAI SDK's default,
and vLLM serves it). From OpenAI's API reference, "Streaming events": named SSE events whose data
carries the same `type`. response.output_text.delta (answer text), response.reasoning_text.delta
and response.reasoning_summary_text.delta (reasoning), response.completed (the end: the response
with its `usage` of input_tokens, output_tokens, output_tokens_details.reasoning_tokens),
response.incomplete (the end, cut short: incomplete_details.reason, e.g. max_output_tokens),
response.failed (response.error), error (code, message). Every other event (created,
in_progress, output_item.*, content_part.*, *.done) carries no new text. Imports only flavors.base.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import (IGNORE, EventInfo, Flavor, ProtocolError, Query, RequestSettings, chat_messages, generation_fields,
                   int_or_none, json_event)
from .openai import parse_error_message

_ANSWER = ("response.output_text.delta", "response.refusal.delta")
_REASONING = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")


class OpenAIResponses(Flavor):
    name = "openai-responses"
    path = "/responses"
    end_event = "response.completed"
    needs_finish_reason = True  # the end says how it ended: completed, or incomplete and why
    conversation = "history"

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        body: dict[str, Any] = {"input": chat_messages(query, settings) if settings.history else query.text,
                                "stream": True}
        if settings.model is not None:
            body["model"] = settings.model
        body.update(generation_fields(query, settings, "max_output_tokens"))
        return body

    def parse_event(self, event) -> EventInfo:
        obj = json_event(event.data, f"{event.event} event")
        if obj is None:
            return IGNORE
        kind = obj.get("type") or event.event
        if kind in _ANSWER or kind in _REASONING:
            delta = obj.get("delta")
            if not isinstance(delta, str):
                raise ProtocolError(f"{kind} without a text delta")
            return EventInfo(answer=delta) if kind in _ANSWER else EventInfo(reasoning=delta)
        if kind == "error":
            return EventInfo(error=_message(obj.get("code"), obj.get("message")) or "error event without a message")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            if kind == "response.failed":
                error = response.get("error") if isinstance(response.get("error"), dict) else {}
                return EventInfo(error=_message(error.get("code"), error.get("message")) or "the response failed")
            usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
            details = usage.get("output_tokens_details")
            reason = response.get("status") or ("completed" if kind == "response.completed" else "incomplete")
            if kind == "response.incomplete":
                incomplete = response.get("incomplete_details")
                reason = (incomplete.get("reason") if isinstance(incomplete, dict) else None) or "incomplete"
            return EventInfo(terminal=True, finish_reason=str(reason),
                             completion_tokens=int_or_none(usage.get("output_tokens")),
                             prompt_tokens=int_or_none(usage.get("input_tokens")),
                             reasoning_tokens=int_or_none(details.get("reasoning_tokens")) if isinstance(details, dict)
                             else None)
        return IGNORE

    def parse_error_body(self, body: bytes) -> Optional[str]:
        try:
            return parse_error_message(json.loads(body))
        except (ValueError, UnicodeDecodeError):
            return None


def _message(code, message) -> Optional[str]:
    if message:
        return f"{code}: {message}" if code else str(message)
    return str(code) if code else None
