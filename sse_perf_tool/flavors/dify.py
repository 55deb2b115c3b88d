"""Dify Service API flavours: chat, completion and workflow apps.

Imports only from `flavors.base`. No HTTP, no clocks.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .base import load_json, IGNORE, EventInfo, Flavor, ProtocolError, Query, RequestSettings, int_or_none, text_field

# Events that carry nothing sse-perf measures. Listed for documentation; any event type
# not handled below is ignored too, so a newer Dify that adds events keeps working.
IGNORED_EVENTS = frozenset(
    {
        "agent_thought",
        "message_file",
        "workflow_started",
        "node_started",
        "node_finished",
        "node_retry",
        "iteration_started",
        "iteration_next",
        "iteration_completed",
        "loop_started",
        "loop_next",
        "loop_completed",
        "parallel_branch_started",
        "parallel_branch_finished",
        "tts_message",
        "tts_message_end",
        "ping",
    }
)

_FAILED_WORKFLOW_STATUSES = frozenset({"failed", "stopped"})




def _sub_object(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"Dify event field {key!r} is {type(value).__name__}, not an object")
    return value


def _seconds_ms(value: Any) -> Optional[float]:
    """Dify's seconds (a float, sometimes a decimal string) as ms; None when absent or not a number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds * 1000.0 if seconds == seconds and seconds >= 0 else None


def _price(value: Any) -> Optional[float]:
    """A Dify price: a decimal string ("0.0013030") or a number; None when absent."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if price == price and price >= 0 else None


def _server_figures(usage: dict) -> Optional[dict]:
    """Dify's own timings and price from an `LLMUsage`: `latency`, `time_to_first_token`,
    `time_to_generate` (seconds, measured from the start of Dify's pipeline), `total_price` and
    `currency`. None when it has none of them."""
    figures = {"server_latency_ms": _seconds_ms(usage.get("latency")),
               "server_ttft_ms": _seconds_ms(usage.get("time_to_first_token")),
               "server_generate_ms": _seconds_ms(usage.get("time_to_generate")),
               "server_total_price": _price(usage.get("total_price"))}
    currency = usage.get("currency")
    if isinstance(currency, str) and currency and figures["server_total_price"] is not None:
        figures["server_currency"] = currency
    figures = {key: value for key, value in figures.items() if value is not None}
    return figures or None


def _is_zero_usage(usage: dict) -> bool:
    """Every count 0: Dify's "no usage known" (annotation and moderation replies, model plugins
    that report none), not a count of 0 tokens."""
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    return any(c is not None for c in counts) and all(int_or_none(c) in (0, None) for c in counts)


def _usage_info(usage: dict, terminal: bool) -> EventInfo:
    """EventInfo from a Dify `LLMUsage` object (`message_end.metadata.usage`).

    Reasoning tokens: read `reasoning_tokens` or `completion_tokens_details.reasoning_tokens`
    when a Dify version / model provider passes them through; usually absent. An all-zero usage
    carries no count (the tester then counts the text).
    """
    server = _server_figures(usage)
    if _is_zero_usage(usage):
        return EventInfo(terminal=terminal, server=server)
    reasoning = int_or_none(usage.get("reasoning_tokens"))
    details = usage.get("completion_tokens_details")
    if reasoning is None and isinstance(details, dict):
        reasoning = int_or_none(details.get("reasoning_tokens"))
    return EventInfo(
        completion_tokens=int_or_none(usage.get("completion_tokens")),
        prompt_tokens=int_or_none(usage.get("prompt_tokens")),
        reasoning_tokens=reasoning,
        terminal=terminal,
        server=server,
    )


def _handles(obj: dict) -> Optional[EventInfo]:
    """The conversation and task an otherwise ignored event names (workflow_started, node events
    come first in a chatflow): the task id lets a cancelled request be stopped at the server."""
    task, conversation = obj.get("task_id"), obj.get("conversation_id")
    if not isinstance(task, str) and not isinstance(conversation, str):
        return None
    return EventInfo(task_id=task if isinstance(task, str) else None,
                     conversation_id=conversation if isinstance(conversation, str) else None)


def _error_text(obj: dict) -> str:
    """`code: message (status N)` from a Dify error object; missing parts are left out."""
    code = obj.get("code")
    message = obj.get("message")
    text = ": ".join(str(part) for part in (code, message) if part not in (None, ""))
    status = obj.get("status")
    if status not in (None, ""):
        text = f"{text} (status {status})" if text else f"status {status}"
    return text or "Dify error event without code or message"


class _DifyBase(Flavor):
    """Shared event reading. Subclasses choose the body and which end event is terminal."""

    message_end_is_terminal = True
    reads_text_chunk = False
    # A chatflow (advanced-chat) sends workflow_finished, then [message_replace], then message_end
    # with the usage; some releases end without message_end (Dify issue #32856). On the chat
    # endpoint, workflow_finished is a soft end: read on for the usage, and a close is an end.
    workflow_finished_is_terminal = True

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        raise NotImplementedError

    def parse_event(self, event) -> EventInfo:
        # Dify's keep-alive is `event: ping` with no data (the SSE layer drops it); one that
        # does carry data is still a ping.
        if event.event == "ping":
            return IGNORE
        # An empty `data:` field carries nothing; treat it like a keep-alive rather than
        # failing the request as `protocol`.
        if not event.data.strip():
            return IGNORE
        try:
            obj = load_json(event.data)
        except ValueError as exc:
            raise ProtocolError(f"Dify event data is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolError(f"Dify event data is {type(obj).__name__}, not a JSON object")
        kind = obj.get("event")
        if not isinstance(kind, str):
            raise ProtocolError("Dify event object has no string 'event' field")

        if kind in ("message", "agent_message"):
            answer = text_field(obj, "answer", "Dify event")
            if not answer:
                return _handles(obj) or IGNORE
            return EventInfo(answer=answer, conversation_id=obj.get("conversation_id"), task_id=obj.get("task_id"))
        if kind == "reasoning_chunk":
            reasoning = text_field(_sub_object(obj, "data"), "reasoning", "Dify event")
            return EventInfo(reasoning=reasoning) if reasoning else IGNORE
        if kind == "text_chunk":
            if not self.reads_text_chunk:
                return IGNORE
            text = text_field(_sub_object(obj, "data"), "text", "Dify event")
            return EventInfo(answer=text) if text else IGNORE
        if kind == "message_replace":
            return EventInfo(replace=text_field(obj, "answer", "Dify event"))
        if kind == "message_end":
            usage = _sub_object(_sub_object(obj, "metadata"), "usage")
            info = _usage_info(usage, terminal=self.message_end_is_terminal)
            info.conversation_id, info.task_id = obj.get("conversation_id"), obj.get("task_id")
            return info
        if kind == "workflow_finished":
            data = _sub_object(obj, "data")
            status = data.get("status")
            if status in _FAILED_WORKFLOW_STATUSES:
                detail = data.get("error")
                return EventInfo(error=f"workflow {status}: {detail}" if detail else f"workflow {status}")
            # `data.total_tokens` is prompt + completion over every LLM node of the run, not
            # output tokens: it is deliberately not reported (the answer text is counted).
            elapsed = _seconds_ms(data.get("elapsed_time"))
            server = {"server_elapsed_ms": elapsed} if elapsed is not None else None
            if self.workflow_finished_is_terminal:
                return EventInfo(terminal=True, server=server)
            return EventInfo(soft_end=True, server=server)
        if kind == "workflow_paused":
            return EventInfo(paused=True)
        if kind == "error":
            return EventInfo(error=_error_text(obj), error_status=int_or_none(obj.get("status")))
        return _handles(obj) or IGNORE

    def parse_error_body(self, body: bytes) -> Optional[str]:
        """`code: message` from Dify's `{"code", "message", "status"}` error body.

        Anything that is not such a JSON object (an HTML page from a proxy, plain text)
        gives None: the tester then reports the HTTP status alone.
        """
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        parts = [str(obj[key]) for key in ("code", "message") if obj.get(key) not in (None, "")]
        return ": ".join(parts) if parts else None


def _with_query_input(inputs: dict, text: str) -> dict:
    """A copy of the app inputs with `query` set to the prompt unless the user gave one."""
    merged = dict(inputs)
    merged.setdefault("query", text)
    return merged


class DifyChat(_DifyBase):
    """Chat, agent and chatflow apps: `POST /chat-messages`, ends at `message_end` (a chatflow's
    `workflow_finished` before it is a soft end: the usage still comes in `message_end`)."""

    name = "dify-chat"
    path = "/chat-messages"
    end_event = "message_end"
    workflow_finished_is_terminal = False
    conversation = "id"
    stop_path = "/chat-messages/{task_id}/stop"

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        body = {
            "inputs": dict(query.inputs),
            "query": query.text,
            "response_mode": "streaming",
            "conversation_id": settings.conversation_id,
            "user": settings.user,
            "files": [],
        }
        if settings.auto_generate_name is not None:
            body["auto_generate_name"] = settings.auto_generate_name
        return body


class DifyCompletion(_DifyBase):
    """Text-generation apps: `POST /completion-messages`, ends at `message_end`.

    The prompt goes both to the top-level `query` and to `inputs.query` (the variable most
    completion apps use), unless the query's own inputs already set `query`.
    """

    name = "dify-completion"
    path = "/completion-messages"
    end_event = "message_end"
    stop_path = "/completion-messages/{task_id}/stop"

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {
            "inputs": _with_query_input(query.inputs, query.text),
            "query": query.text,
            "response_mode": "streaming",
            "user": settings.user,
            "files": [],
        }


class DifyWorkflow(_DifyBase):
    """Workflow apps: `POST /workflows/run`; text comes as `text_chunk`, ends at `workflow_finished`.

    `message_end` is not terminal here (a workflow run is over only at `workflow_finished`);
    if one arrives its usage is still reported. A run whose outputs are not streamed text
    (no `text_chunk` at all) is still a proper run: an empty answer.
    """

    name = "dify-workflow"
    path = "/workflows/run"
    end_event = "workflow_finished"
    stop_path = "/workflows/tasks/{task_id}/stop"
    message_end_is_terminal = False
    reads_text_chunk = True

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        return {
            "inputs": _with_query_input(query.inputs, query.text),
            "response_mode": "streaming",
            "user": settings.user,
            "files": [],
        }
