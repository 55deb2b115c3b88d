"""Ollama's native API: `POST /api/chat` and `POST /api/generate` (Ollama serves them at its
root: the base URL is http://host:11434). From Ollama's API documentation (docs/api.md,
"Generate a chat completion" and "Generate a completion"): newline-delimited JSON, one object
per line, `message.content` (chat) or `response` (generate) the answer text, `thinking` (in
`message`, or at the top) the reasoning when the model thinks; the last line has `done: true`
with `done_reason` (stop, length), `prompt_eval_count`, `eval_count` (the output tokens) and
the server's own timings in nanoseconds (`total_duration`, `load_duration`,
`prompt_eval_duration`, `eval_duration`), which go into the record's server_* fields. An error
is `{"error": "..."}`, as a body or as a line. Imports only flavors.base.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import (IGNORE, EventInfo, Flavor, Query, RequestSettings, chat_messages, generation_fields, int_or_none,
                   json_event)

_NS_PER_MS = 1_000_000


def _ms(value) -> Optional[float]:
    return value / _NS_PER_MS if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class _OllamaBase(Flavor):
    framing = "ndjson"
    end_event = "the line with done: true"
    needs_finish_reason = True  # done_reason says why it stopped

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        body: dict[str, Any] = {**self._prompt(query, settings), "stream": True}
        if settings.model is not None:
            body["model"] = settings.model
        options = generation_fields(query, settings, "num_predict")
        if options:
            body["options"] = options
        return body

    def _prompt(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        raise NotImplementedError

    def _text(self, obj: dict) -> tuple[str, str]:
        raise NotImplementedError

    def parse_event(self, event) -> EventInfo:
        obj = json_event(event.data, "line")
        if obj is None:
            return IGNORE
        if obj.get("error"):
            return EventInfo(error=str(obj["error"]))
        answer, reasoning = self._text(obj)
        if not obj.get("done"):
            return EventInfo(answer=answer, reasoning=reasoning) if answer or reasoning else IGNORE
        load, prompt, total = (_ms(obj.get(k)) for k in ("load_duration", "prompt_eval_duration", "total_duration"))
        server = {"server_latency_ms": total, "server_generate_ms": _ms(obj.get("eval_duration")),
                  "server_ttft_ms": (load or 0) + prompt if prompt is not None else None}
        reason = obj.get("done_reason")
        return EventInfo(answer=answer, reasoning=reasoning, terminal=True, finish_reason=str(reason) if reason else None,
                         completion_tokens=int_or_none(obj.get("eval_count")),
                         prompt_tokens=int_or_none(obj.get("prompt_eval_count")),
                         server={k: v for k, v in server.items() if v is not None})

    def parse_error_body(self, body: bytes) -> Optional[str]:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return str(obj["error"]) if isinstance(obj, dict) and obj.get("error") else None


class OllamaChat(_OllamaBase):
    name = "ollama-chat"
    path = "/api/chat"
    conversation = "history"

    def _prompt(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {"messages": chat_messages(query, settings)}

    def _text(self, obj: dict) -> tuple[str, str]:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        content, thinking = message.get("content"), message.get("thinking")
        return (content if isinstance(content, str) else ""), (thinking if isinstance(thinking, str) else "")


class OllamaGenerate(_OllamaBase):
    name = "ollama-generate"
    path = "/api/generate"

    def _prompt(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {"prompt": query.text}

    def _text(self, obj: dict) -> tuple[str, str]:
        response, thinking = obj.get("response"), obj.get("thinking")
        return (response if isinstance(response, str) else ""), (thinking if isinstance(thinking, str) else "")
