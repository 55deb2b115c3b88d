"""Text Generation Inference's native streaming API (`POST /generate_stream`; TGI serves it at
its root, so the base URL has no `/v1`). From TGI's router (router/src/server.rs,
`generate_stream`) and its OpenAPI schema (StreamResponse): SSE `data:` events, each
`{"index", "token": {"id", "text", "logprob", "special"}, "generated_text", "details"}`; a special
token (`</s>`, `<|eot_id|>`) is not answer text; the last event carries `generated_text` and
`details` (`finish_reason`: length, eos_token, stop_sequence; `generated_tokens`); there is no
[DONE]: that event is the end. Errors, in the stream and as JSON bodies, are
`{"error": "...", "error_type": "..."}` (validation, generation, overloaded, ...).
Imports only flavors.base.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import IGNORE, EventInfo, Flavor, Query, RequestSettings, int_or_none, json_event


def _error(obj: Any) -> Optional[str]:
    if not isinstance(obj, dict) or not obj.get("error"):
        return None
    kind = obj.get("error_type")
    return f"{kind}: {obj['error']}" if kind else str(obj["error"])


class TgiGenerate(Flavor):
    name = "tgi-generate"
    path = "/generate_stream"
    end_event = "the final event (generated_text)"
    needs_finish_reason = True  # details.finish_reason says why it stopped

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        parameters: dict[str, Any] = {"details": True}
        max_tokens = query.max_tokens if query.max_tokens is not None else settings.max_tokens
        if max_tokens is not None:
            parameters["max_new_tokens"] = max_tokens
        if settings.temperature is not None and settings.temperature > 0:  # TGI refuses 0: greedy is no sampling
            parameters["temperature"] = settings.temperature
            parameters["do_sample"] = True
        if settings.top_p is not None and settings.top_p < 1:  # TGI wants top_p < 1
            parameters["top_p"] = settings.top_p
        return {"inputs": query.text, "parameters": parameters}

    def parse_event(self, event) -> EventInfo:
        obj = json_event(event.data)
        if obj is None:
            return IGNORE
        message = _error(obj)
        if message:
            return EventInfo(error=message, error_status=429 if obj.get("error_type") == "overloaded" else None)
        token = obj.get("token")
        text = ""
        if isinstance(token, dict) and not token.get("special") and isinstance(token.get("text"), str):
            text = token["text"]
        if obj.get("generated_text") is None and obj.get("details") is None:
            return EventInfo(answer=text) if text else IGNORE
        details = obj.get("details") if isinstance(obj.get("details"), dict) else {}
        reason = details.get("finish_reason")
        return EventInfo(answer=text, terminal=True, finish_reason=str(reason) if reason else None,
                         completion_tokens=int_or_none(details.get("generated_tokens")))

    def parse_error_body(self, body: bytes) -> Optional[str]:
        try:
            return _error(json.loads(body))
        except (ValueError, UnicodeDecodeError):
            return None
