"""The contract every wire flavour implements: its whole wire, so that the tester knows none of
it: the path, the auth headers, the framing of the stream (SSE, or NDJSON), the body, reading
one event, reading an error body.

Imports query (the prompt a body is built from), sse and ndjson (the framings). No HTTP, no clocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from ..ndjson import NDJSONDecoder
from ..query import Query  # noqa: F401 - the flavours' input, re-exported for their callers
from ..sse import SSEDecoder

FRAMINGS = {"sse": SSEDecoder, "ndjson": NDJSONDecoder}  # stream framing -> incremental decoder

_scan_once = json.JSONDecoder().scan_once


class ProtocolError(ValueError):
    """An event the flavour cannot read (invalid JSON, wrong shape). Ends the request as `protocol`."""


@dataclass(frozen=True)
class RequestSettings:
    """Per-run generation settings a flavour may put into the body (None = not sent)."""

    model: Optional[str] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    user: str = "sse-perf"
    conversation_id: str = ""
    # a conversation's earlier turns, ((role, text), ...): "user" and "assistant" (--turns, chat flavours)
    history: tuple = ()
    auto_generate_name: Optional[bool] = None  # Dify: name each new conversation with an extra LLM call (None: Dify's default)
    exact_output: bool = False  # --output-tokens: ask for exactly max_tokens where the server can (vLLM's min_tokens, ignore_eos)


@dataclass(slots=True)
class EventInfo:
    """What one SSE event means to the tester.

    answer/reasoning: generated text deltas (either non-empty makes the event token-bearing).
    replace: Dify `message_replace`: the answer so far is replaced by this text (not token-bearing).
    usage fields: server-reported counts when the event carries usage (else None).
    terminal: the flavour's proper end event (`message_end`, `workflow_finished`, `[DONE]`).
    soft_end: the work is done but the stream may still bring more (a chatflow's `workflow_finished`
        before its `message_replace` / `message_end`): reading goes on, and a close is a proper end.
    paused: the run paused on purpose and the stream closes (Dify `workflow_paused`): outcome `paused`.
    error: in-stream error message (the request fails as `stream_error`); error_status: its status
        where the event gives one (429 makes it `rate_limited`).
    finish_reason: why the server stopped generating (`stop`, `length`, ...), where the event says.
    server: the server's own timings and price (`server_latency_ms`, `server_ttft_ms`,
        `server_generate_ms`, `server_elapsed_ms`, `server_total_price`, `server_currency`).
    """

    answer: str = ""
    reasoning: str = ""
    replace: Optional[str] = None
    completion_tokens: Optional[int] = None
    prompt_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    terminal: bool = False
    soft_end: bool = False
    paused: bool = False
    error: Optional[str] = None
    error_status: Optional[int] = None
    finish_reason: Optional[str] = None
    server: Optional[dict] = None
    conversation_id: Optional[str] = None  # the conversation the server put this request in (Dify)
    task_id: Optional[str] = None  # the server's handle to stop this generation (Dify)


IGNORE = EventInfo()


def load_json(text: str) -> Any:
    """json.loads for one event's data, at half its cost: the C scanner is called directly (no
    wrapper layers). Anything it does not take whole (bad JSON, trailing data, leading space)
    goes to json.loads, so errors read exactly as json.loads words them."""
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def json_event(data: str, what: str = "event") -> Optional[dict]:
    """An event's data as a JSON object; None when it is empty; ProtocolError for anything else."""
    data = data.strip()
    if not data:
        return None
    try:
        obj = load_json(data)
    except ValueError as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is {type(obj).__name__}, not a JSON object")
    return obj


def chat_messages(query: "Query", settings: "RequestSettings") -> list[dict[str, str]]:
    """The conversation so far (--conversation's earlier turns) and the query as the user's turn,
    as chat APIs take them: [{"role", "content"}, ...]."""
    return [{"role": role, "content": text} for role, text in settings.history] + \
        [{"role": "user", "content": query.text}]


def generation_fields(query: "Query", settings: "RequestSettings", max_name: str = "max_tokens") -> dict[str, Any]:
    """The answer's length (the query's, else the run's) under `max_name`, temperature and top_p:
    those that are set."""
    max_tokens = query.max_tokens if query.max_tokens is not None else settings.max_tokens
    fields = {max_name: max_tokens, "temperature": settings.temperature, "top_p": settings.top_p}
    return {name: value for name, value in fields.items() if value is not None}


def int_or_none(value: Any) -> Optional[int]:
    """A token count as an int; None when absent or not a number (usage is optional)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def text_field(obj: dict, key: str, where: str) -> str:
    """A text field that may be absent or null (`"content": null`); any other non-string is a
    shape error, reported with `where` (e.g. "Dify event", "chunk")."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"{where} field {key!r} is {type(value).__name__}, not a string")
    return value  # shared, never mutated: an event with nothing in it


class Flavor:
    """Base class. Subclasses set `name` and `path` and implement build_body, parse_event and
    parse_error_body; they override `framing` and `auth_headers` where their wire differs."""

    name: str = ""
    path: str = ""  # appended to the base URL, e.g. "/chat-messages"
    framing: str = "sse"  # a key of FRAMINGS: how the response body is cut into events
    # True where a complete stream says why generation stopped (OpenAI's finish_reason): a stream that
    # reaches its end event without one was cut off by the server, not finished.
    needs_finish_reason: bool = False
    end_event: str = "the end event"  # named in messages
    # how a conversation goes on (--turns): "" (it cannot), "id" (the server's conversation_id is
    # sent back: Dify), or "history" (the earlier turns are sent again: OpenAI chat)
    conversation: str = ""
    stop_path: str = ""  # where a running generation is stopped, with {task_id} (Dify); "" = none
    wire_headers: dict = {}  # sent with every request, key or not (Anthropic's anthropic-version); --header wins

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry the API key (OpenAI's and Dify's scheme: a bearer token)."""
        return {"Authorization": f"Bearer {api_key}"}

    def new_decoder(self):
        """A fresh incremental decoder of this flavour's framing (feed(bytes) -> events, finish())."""
        return FRAMINGS[self.framing]()

    def build_body(self, query: Query, settings: RequestSettings) -> dict[str, Any]:
        raise NotImplementedError

    def parse_event(self, event) -> EventInfo:  # event: sse.SSEEvent (NDJSON: one line as its data)
        """Read one dispatched event. Raise ProtocolError when it cannot be read."""
        raise NotImplementedError

    def parse_error_body(self, body: bytes) -> Optional[str]:
        """The server's message from a non-2xx JSON body, or None when there is none."""
        raise NotImplementedError
