"""OpenAI-compatible flavours (vLLM, SGLang, TGI, DeepSeek, OpenAI): chat and legacy completions.

Imports only from `flavors.base`. No HTTP, no clocks.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import (load_json, IGNORE, EventInfo, Flavor, ProtocolError, Query, RequestSettings, chat_messages, int_or_none,
                   text_field)

_DONE = "[DONE]"
_MAX_RAW_ERROR_CHARS = 200




def parse_error_message(obj: Any) -> Optional[str]:
    """The human message from an OpenAI-style error object, or None.

    Shapes read: `{"error": {"message": ...}}` (OpenAI, vLLM, SGLang), `{"error": "text"}`
    (TGI), `{"message": ...}` (older vLLM's top-level ErrorResponse), `{"detail": ...}`
    (FastAPI; a validation list is joined as `loc: msg; ...`).
    """
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return json.dumps(error, ensure_ascii=False) if error else None
    if isinstance(error, str) and error:
        return error
    message = obj.get("message")
    if isinstance(message, str) and message:
        return message
    detail = obj.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return None


class _OpenAIBase(Flavor):
    """Shared chunk reading; subclasses say where the prompt goes and where the text is.

    A finished completion's last chunk carries a `finish_reason`; `[DONE]` alone does not mean the
    answer is complete (llama-cpp-python cuts a running stream with `[DONE]` and no finish_reason
    when another request arrives: `get_event_publisher` in llama_cpp/server/app.py)."""

    needs_finish_reason = True
    end_event = "[DONE]"

    def _prompt_fields(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        raise NotImplementedError

    def _choice_text(self, choice: dict) -> tuple[str, str]:
        """(answer, reasoning) from the index-0 choice."""
        raise NotImplementedError

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if settings.model is not None:
            body["model"] = settings.model
        body.update(self._prompt_fields(query, settings))
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        max_tokens = query.max_tokens if query.max_tokens is not None else settings.max_tokens
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
            if settings.exact_output:  # vLLM's sampling parameters: the answer is max_tokens long
                body["min_tokens"] = max_tokens
                body["ignore_eos"] = True
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        return body

    def parse_event(self, event) -> EventInfo:
        data = event.data.strip()
        # The SSE layer already removed the optional space, so TGI's `data:[DONE]` and
        # everyone else's `data: [DONE]` both arrive here as "[DONE]".
        if event.event == "error":
            return EventInfo(error=self._error_block_message(data))
        if event.event != "message":
            # Chunks are unnamed events; a named one (a proxy's `event: ping`) is not a chunk.
            return IGNORE
        if data == _DONE:
            # vLLM sends [DONE] after an in-stream `{"error": ...}` too; the tester has
            # already failed the request on the error, so terminal here changes nothing.
            return EventInfo(terminal=True)
        if not data:
            # An empty `data:` field carries nothing; not worth failing the request for.
            return IGNORE
        try:
            obj = load_json(data)
        except ValueError as exc:
            raise ProtocolError(f"chunk is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolError(f"chunk is {type(obj).__name__}, not a JSON object")

        # In-stream errors: OpenAI/vLLM/SGLang `{"error": {...}}`, TGI `{"error": "text",
        # "error_type": ...}`, and a bare ErrorResponse `{"object": "error", "message": ...}`.
        if "error" in obj and obj["error"] is not None:
            return EventInfo(error=parse_error_message(obj) or "error chunk without a message")
        if obj.get("object") == "error":
            return EventInfo(error=parse_error_message(obj) or "error chunk without a message")

        answer = reasoning = ""
        finish_reason = None
        choices = obj.get("choices")
        if choices is not None:
            if not isinstance(choices, list):
                raise ProtocolError(f"'choices' is {type(choices).__name__}, not a list")
            # With n > 1 each chunk carries one choice and its `index`; only completion 0 is
            # measured (a missing index counts as 0, as in servers that omit it for n = 1).
            for choice in choices:
                if not isinstance(choice, dict):
                    raise ProtocolError(f"a choice is {type(choice).__name__}, not an object")
                if choice.get("index", 0) in (0, None):
                    answer, reasoning = self._choice_text(choice)
                    finish_reason = choice.get("finish_reason")
                    if finish_reason is not None and not isinstance(finish_reason, str):
                        finish_reason = str(finish_reason)
                    if not finish_reason:  # "" says no more than null
                        finish_reason = None
                    break

        usage = obj.get("usage")
        if isinstance(usage, dict):
            # The usage chunk normally has `choices: []` and comes before [DONE]; with vLLM's
            # `continuous_usage_stats` every chunk carries the running totals: the last wins.
            details = usage.get("completion_tokens_details")
            reasoning_tokens = (
                int_or_none(details.get("reasoning_tokens")) if isinstance(details, dict) else None
            )
            return EventInfo(
                answer=answer,
                reasoning=reasoning,
                completion_tokens=int_or_none(usage.get("completion_tokens")),
                prompt_tokens=int_or_none(usage.get("prompt_tokens")),
                reasoning_tokens=reasoning_tokens,
                finish_reason=finish_reason,
            )
        if not answer and not reasoning and finish_reason is None:
            # Role-only deltas and empty deltas carry nothing.
            return IGNORE
        return EventInfo(answer=answer, reasoning=reasoning, finish_reason=finish_reason)

    @staticmethod
    def _error_block_message(data: str) -> str:
        """The message of an `event: error` block: JSON error object, or the raw text."""
        try:
            message = parse_error_message(json.loads(data))
        except ValueError:
            message = None
        if message:
            return message
        if data:
            return data[:_MAX_RAW_ERROR_CHARS]
        return "error event without data"

    def parse_error_body(self, body: bytes) -> Optional[str]:
        """The server's message from a non-2xx body; None when it is not a known JSON shape."""
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return parse_error_message(obj)


class OpenAIChat(_OpenAIBase):
    """`POST /chat/completions`: text in `choices[0].delta.content`."""

    name = "openai-chat"
    path = "/chat/completions"
    conversation = "history"

    def _prompt_fields(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {"messages": chat_messages(query, settings)}

    def _choice_text(self, choice: dict) -> tuple[str, str]:
        delta = choice.get("delta")
        if delta is None:
            return "", ""
        if not isinstance(delta, dict):
            raise ProtocolError(f"'delta' is {type(delta).__name__}, not an object")
        content = delta.get("content")
        if type(content) is str and "reasoning_content" not in delta and "reasoning" not in delta:
            return content, ""  # the common chunk, once per token: one lookup instead of three checks
        # DeepSeek, SGLang and older vLLM name it `reasoning_content`, newer vLLM `reasoning`.
        # A server in the middle of the rename may send both with the same text: take one.
        reasoning = text_field(delta, "reasoning_content", "chunk") or text_field(delta, "reasoning", "chunk")
        return text_field(delta, "content", "chunk"), reasoning


class OpenAICompletions(_OpenAIBase):
    """Legacy `POST /completions`: text in `choices[0].text`."""

    name = "openai-completions"
    path = "/completions"

    def _prompt_fields(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {"prompt": query.text}

    def _choice_text(self, choice: dict) -> tuple[str, str]:
        return text_field(choice, "text", "chunk"), ""
