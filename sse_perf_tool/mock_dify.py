"""The mock server's Dify Service API, as Dify streams it (WIRE_FORMATS.md, "Dify Service API",
from Dify's `api/core/app` source): every event `data: {json}\\n\\n`, compact raw UTF-8 as orjson
writes it, the type in the JSON's "event" field; `event: ping\\n\\n` keep-alives.

The app kinds, one flavour each:
- chat (`/chat-messages`, a chat app): `message`* -> [`message_replace`] -> `message_end`;
- completion (`/completion-messages`): the same without `conversation_id`;
- agent (`/chat-messages`, an agent-chat app): `agent_thought` (a tool round with a
  `message_file`), `agent_message`*, `agent_thought` -> [`message_replace`] -> `message_end`;
- chatflow (`/chat-messages`, an advanced-chat app): ping first, `workflow_started`, `node_started`,
  `node_finished`, ..., `message`*, `workflow_finished`, [`message_replace`], `message_end` (or no
  `message_end`, Dify 1.13.x issue #32856, or `message_end` before `workflow_finished`);
- workflow (`/workflows/run`): ping first, nodes, `text_chunk`*, `workflow_finished`.
Every event of a message-based app carries `conversation_id` (chat apps), `message_id` and
`created_at` first, then the event's own fields (`task_id`, `id`, ...), as Dify's
`convert_stream_full_response` merges them. Standard library only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from .mock_wire import BadRequest, _Flavour, _Generation, _string_values, compact_json

PING = b"event: ping\n\n"
# the mock's --dify-mode -> the app mode Dify names it (GET /info, a blocking answer's "mode")
APP_MODES = {"chat": "chat", "chatflow": "advanced-chat", "agent": "agent-chat", "completion": "completion",
             "workflow": "workflow"}
MESSAGE_END_ORDERS = ("after", "none", "before")  # a chatflow's message_end vs its workflow_finished
REPLACED_ANSWER = "Sorry, this answer was replaced by content moderation. 抱歉，此回答已被替换。"
STREAM_ERROR = "[mock] Error: simulated model failure (mock stream_error_rate)"
STOPPED = "Stopped by user."

# Error bodies come from Dify's Flask error handlers: {"code", "message", "status"}.
_DIFY_CODES = {
    400: "invalid_param", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    413: "request_entity_too_large", 429: "too_many_requests", 500: "internal_server_error",
}


@dataclass(frozen=True)
class DifyApp:
    """The simulated Dify app: its mode and what its streams do (from MockConfig)."""

    mode: str = "chat"  # APP_MODES key: what /chat-messages streams and what /info says
    message_end: str = "after"  # MESSAGE_END_ORDERS: chatflow
    required_inputs: tuple = ()  # input variables every request must give (GET /parameters lists them)
    message_replace: bool = False  # output moderation replaces each answer (message_replace)


def _dify_event(obj: dict) -> bytes:
    return b"data: " + compact_json(obj) + b"\n\n"


def _dify_error(status: int, code: str, message: str) -> dict:
    return {"code": code or _DIFY_CODES.get(status, "error"), "message": message, "status": status}


def _not_found(path: str) -> dict:
    # An unknown path belongs to no flavour; Dify is the default one, so its format is used.
    return _dify_error(404, "not_found", f"The requested URL {path} was not found on the server.")


def info_body(mode: str) -> dict:
    """GET /info."""
    return {"name": "sse-perf mock", "description": "The sse-perf mock server: a simulated LLM app.",
            "tags": [], "mode": APP_MODES[mode]}


def parameters_body(required_inputs: tuple) -> dict:
    """GET /parameters: the app's features (all off) and its input form, one required text input per name."""
    form = [{"text-input": {"label": name, "variable": name, "required": True, "max_length": 256, "default": ""}}
            for name in required_inputs]
    off = {"enabled": False}
    return {
        "opening_statement": "", "suggested_questions": [], "suggested_questions_after_answer": off,
        "speech_to_text": off, "text_to_speech": {"enabled": False, "voice": "", "language": ""},
        "retriever_resource": off, "annotation_reply": off, "more_like_this": off,
        "user_input_form": form, "sensitive_word_avoidance": off,
        "file_upload": {"image": {"enabled": False, "number_limits": 3, "transfer_methods": ["local_file", "remote_url"]}},
        "system_parameters": {"file_size_limit": 15, "image_file_size_limit": 10, "audio_file_size_limit": 50,
                              "video_file_size_limit": 100, "workflow_file_upload_limit": 10},
    }


def _usage(gen: _Generation, elapsed_s: float) -> dict:
    """Dify's LLMUsage: prices as decimal strings, latency / time_to_first_token / time_to_generate
    in seconds from the request's arrival (Dify measures from the start of its pipeline)."""
    if gen.zero_usage:  # LLMUsage.empty_usage(): annotation replies, moderation replies, no usage known
        zero = "0.0"
        return {"prompt_tokens": 0, "prompt_unit_price": zero, "prompt_price_unit": zero, "prompt_price": zero,
                "completion_tokens": 0, "completion_unit_price": zero, "completion_price_unit": zero,
                "completion_price": zero, "total_tokens": 0, "total_price": zero, "currency": "USD",
                "latency": 0.0, "time_to_first_token": 0.0, "time_to_generate": 0.0}
    unit = Decimal("0.001")
    places = Decimal("0.0000001")
    prompt_price = (gen.prompt_tokens * Decimal("0.001") * unit).quantize(places)
    completion_price = (gen.completion_tokens * Decimal("0.002") * unit).quantize(places)
    first = elapsed_s if gen.first_token_at is None else gen.first_token_at - gen.started_at
    first = min(max(first, 0.0), elapsed_s)
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
        "time_to_first_token": first,
        "time_to_generate": elapsed_s - first,
    }


def _total_tokens(gen: _Generation) -> int:
    # A workflow's total_tokens is prompt + completion of every LLM node.
    return 0 if gen.zero_usage else gen.prompt_tokens + gen.completion_tokens


def _check_body(body: dict, query: bool, required_inputs: tuple) -> None:
    if not isinstance(body.get("inputs"), dict):
        raise BadRequest("inputs: Missing required parameter in the JSON body (must be an object)")
    if query and not isinstance(body.get("query"), str):
        raise BadRequest("query: Missing required parameter in the JSON body")
    mode = body.get("response_mode")
    if mode is not None and mode not in ("streaming", "blocking"):
        raise BadRequest(f"response_mode: {mode!r} is not a valid choice")
    user = body.get("user")
    if not isinstance(user, str) or not user:
        raise BadRequest("Arg user must be provided.")
    for name in required_inputs:  # BaseAppGenerator._validate_inputs
        if body["inputs"].get(name) in (None, ""):
            raise BadRequest(f"{name} is required in input form")


class _DifyBase(_Flavour):
    query = True  # the body needs `query` (chat-messages)

    def __init__(self, app: DifyApp) -> None:
        self.app = app

    def validate(self, body: dict) -> None:
        _check_body(body, self.query, self.app.required_inputs)

    def wants_stream(self, body: dict) -> bool:
        return body.get("response_mode") == "streaming"  # missing = blocking, as in Dify

    def user(self, body: dict) -> Optional[str]:
        return body.get("user")

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("query")) + _string_values(body.get("inputs"))

    def error_body(self, status: int, code: str, message: str) -> dict:
        return _dify_error(status, code, message)

    def unauthorized_body(self) -> dict:
        return _dify_error(401, "unauthorized", "Access token is invalid")

    def ping(self) -> Optional[bytes]:
        return PING

    def _head(self, name: str, gen: _Generation) -> dict:
        raise NotImplementedError

    def _send(self, gen: _Generation, name: str, **fields: object) -> bytes:
        return _dify_event({**self._head(name, gen), "task_id": self.task_id, **fields})

    def _answer(self, gen: _Generation) -> str:
        return REPLACED_ANSWER if self.app.message_replace and not gen.stopped else gen.answer_text()


class _DifyMessages(_DifyBase):
    """Chat and completion apps (`/chat-messages`, `/completion-messages`)."""

    def __init__(self, app: DifyApp, chat: bool) -> None:
        super().__init__(app)
        self.chat = self.query = chat
        self.mode_name = "chat" if chat else "completion"  # a blocking answer's "mode"

    def start(self, gen: _Generation) -> None:
        self.task_id = gen.uuid()
        self.message_id = gen.uuid()
        conversation_id = gen.body.get("conversation_id")
        self.conversation_id = conversation_id if isinstance(conversation_id, str) and conversation_id else gen.uuid()

    def _head(self, name: str, gen: _Generation) -> dict:
        head: dict = {"event": name}
        if self.chat:
            head["conversation_id"] = self.conversation_id
        head["message_id"] = self.message_id
        head["created_at"] = gen.created
        return head

    def _reasoning_chunk(self, gen: _Generation, text: str, last: bool) -> bytes:
        return self._send(gen, "reasoning_chunk", data={"message_id": self.message_id, "reasoning": text,
                                                        "node_id": "llm", "is_final": last})

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        if kind == "reasoning":
            return self._reasoning_chunk(gen, text, last)
        return self._send(gen, "message", id=self.message_id, answer=text)

    def _replace(self, gen: _Generation) -> list[bytes]:
        if not self.app.message_replace or gen.stopped:
            return []
        return [self._send(gen, "message_replace", answer=REPLACED_ANSWER, reason="output_moderation")]

    def _message_end(self, gen: _Generation, elapsed_s: float) -> bytes:
        return self._send(gen, "message_end", id=self.message_id, metadata={"usage": _usage(gen, elapsed_s)})

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return self._replace(gen) + [self._message_end(gen, elapsed_s)]

    def _error_event(self, gen: _Generation, code: str, message: str, status: int) -> bytes:
        # ErrorStreamResponse: the head, then {"code", "message", "status"}, no task_id
        return _dify_event({**self._head("error", gen), "code": code, "message": message, "status": status})

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [self._error_event(gen, "completion_request_error", message, 400)]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        body: dict = {"event": "message", "task_id": self.task_id, "id": self.message_id, "message_id": self.message_id}
        if self.chat:
            body["conversation_id"] = self.conversation_id
        body.update(mode=self.mode_name, answer=self._answer(gen), metadata={"usage": _usage(gen, elapsed_s)},
                    created_at=gen.created)
        return body


class _DifyAgent(_DifyMessages):
    """Agent apps (`/chat-messages`): a tool round (agent_thought with the tool call, the file it
    made, its observation), then a round that answers in agent_message chunks."""

    reasoning = False  # an agent's thinking is its agent_thought; tagged reasoning still comes

    def __init__(self, app: DifyApp) -> None:
        super().__init__(app, chat=True)
        self.mode_name = "agent-chat"

    def start(self, gen: _Generation) -> None:
        super().start(gen)
        self.thought_ids = (gen.uuid(), gen.uuid())
        self.file_id = gen.uuid()

    def _thought(self, gen: _Generation, position: int, thought: str = "", observation: str = "",
                 tool: str = "", tool_input: str = "", files: tuple = ()) -> bytes:
        labels = {"dalle3": {"en_US": "DALL-E 3", "zh_Hans": "DALL-E 3 绘画"}} if tool else {}
        return self._send(gen, "agent_thought", id=self.thought_ids[position - 1], position=position,
                          thought=thought, observation=observation, tool=tool, tool_labels=labels,
                          tool_input=tool_input, message_files=list(files))

    def preamble(self, gen: _Generation) -> list[bytes]:
        return [self._thought(gen, 1)]

    def before_first_token(self, gen: _Generation) -> list[bytes]:
        tool_input = json.dumps({"dalle3": {"prompt": "a mock image"}}, ensure_ascii=False)
        url = f"/files/tools/{self.file_id}.png?timestamp={gen.created}&nonce=mock&sign=mock"
        observation = json.dumps({"dalle3": "image has been created and sent to user already"})
        return [
            self._thought(gen, 1, tool="dalle3", tool_input=tool_input),
            self._send(gen, "message_file", id=self.file_id, type="image", belongs_to="assistant", url=url),
            self._thought(gen, 1, tool="dalle3", tool_input=tool_input, observation=observation,
                          files=(self.file_id,)),
            self._thought(gen, 2),
        ]

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        return self._send(gen, "agent_message", id=self.message_id, answer=text)

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return [self._thought(gen, 2, thought=gen.answer_text())] + super().epilogue(gen, elapsed_s)


_NODES = {  # node id -> (node_type, title, index, predecessor)
    "start": ("start", "Start", 1, None), "llm": ("llm", "LLM", 2, "start"),
    "end": ("end", "End", 3, "llm"), "answer": ("answer", "Answer", 3, "llm"),
    "human_input": ("human-input", "Human Input", 3, "llm"),
}


class _DifyWorkflow(_DifyBase):
    """Workflow apps (`/workflows/run`): Start -> LLM -> End; the LLM's text as text_chunk events
    (reasoning, untagged, as reasoning_chunk), the run ending at workflow_finished."""

    query = False
    ping_first = True  # newer runs stream over Redis from a Celery task: a ping is the first bytes
    can_pause = True
    out_node = "end"

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("inputs"))

    def start(self, gen: _Generation) -> None:
        self.task_id = gen.uuid()
        self.run_id = gen.uuid()
        self.workflow_id = gen.uuid()
        self.node_run_ids = {node: gen.uuid() for node in ("start", "llm", self.out_node, "human_input")}
        self.end_user_id = gen.uuid()

    def _head(self, name: str, gen: _Generation) -> dict:
        return {"event": name, "workflow_run_id": self.run_id}

    def _event(self, gen: _Generation, name: str, data: dict) -> bytes:
        return self._send(gen, name, workflow_run_id=self.run_id, data=data)

    def _inputs(self, gen: _Generation) -> dict:
        return dict(gen.body.get("inputs") or {})

    def _node(self, gen: _Generation, node: str, finished: bool, elapsed_s: float = 0.0,
              outputs: Optional[dict] = None, tokens: int = 0, status: str = "succeeded",
              error: Optional[str] = None) -> bytes:
        node_type, title, index, predecessor = _NODES[node]
        data = {"id": self.node_run_ids[node], "node_id": node, "node_type": node_type, "title": title,
                "index": index, "predecessor_node_id": predecessor,
                "inputs": self._inputs(gen) if node == "start" else None, "created_at": gen.created}
        if not finished:
            return self._event(gen, "node_started", {**data, "extras": {}})
        data.update({
            "process_data": None, "outputs": outputs or {}, "status": status, "error": error,
            "elapsed_time": elapsed_s,
            "execution_metadata": {"total_tokens": tokens, "total_price": "0", "currency": "USD"} if tokens else None,
            "finished_at": int(time.time()), "files": [],
        })
        return self._event(gen, "node_finished", data)

    def preamble(self, gen: _Generation) -> list[bytes]:
        return [
            self._event(gen, "workflow_started", {"id": self.run_id, "workflow_id": self.workflow_id,
                                                  "sequence_number": gen.seq, "inputs": self._inputs(gen),
                                                  "created_at": gen.created}),
            self._node(gen, "start", finished=False),
            self._node(gen, "start", finished=True, outputs=self._inputs(gen)),
            self._node(gen, "llm", finished=False),
        ]

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        if kind == "reasoning":
            return self._send(gen, "reasoning_chunk", workflow_run_id=self.run_id, created_at=gen.created,
                              data={"reasoning": text, "node_id": "llm", "is_final": last})
        return self._send(gen, "text_chunk", data={"text": text, "from_variable_selector": ["llm", "text"]})

    def _outputs(self, gen: _Generation) -> dict:
        return {"text": gen.answer_text()}

    def _llm_finished(self, gen: _Generation, elapsed_s: float, status: str = "succeeded",
                      error: Optional[str] = None) -> bytes:
        outputs = {"text": gen.answer_text(), "usage": _usage(gen, elapsed_s), "finish_reason": gen.finish_reason}
        return self._node(gen, "llm", finished=True, elapsed_s=elapsed_s, tokens=_total_tokens(gen),
                          outputs=outputs, status=status, error=error)

    def _finished_data(self, gen: _Generation, elapsed_s: float, status: str = "succeeded",
                       error: Optional[str] = None, steps: int = 3) -> dict:
        return {
            "id": self.run_id, "workflow_id": self.workflow_id, "sequence_number": gen.seq, "status": status,
            "outputs": self._outputs(gen) if status == "succeeded" else {}, "error": error,
            "elapsed_time": elapsed_s, "total_tokens": _total_tokens(gen), "total_steps": steps,
            "created_by": {"id": self.end_user_id, "user": gen.body.get("user")},
            "created_at": gen.created, "finished_at": int(time.time()), "exceptions_count": 0, "files": [],
        }

    def _workflow_finished(self, gen: _Generation, elapsed_s: float, **kwargs: object) -> bytes:
        return self._event(gen, "workflow_finished", self._finished_data(gen, elapsed_s, **kwargs))  # type: ignore[arg-type]

    def _run(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        """The end of the run: the nodes after the LLM and workflow_finished (stopped: only that)."""
        if gen.stopped:  # QueueStopEvent: the run fails as "stopped"
            return [self._workflow_finished(gen, elapsed_s, status="stopped", error=STOPPED, steps=2)]
        return [self._llm_finished(gen, elapsed_s), self._node(gen, self.out_node, finished=False),
                self._node(gen, self.out_node, finished=True, outputs=self._outputs(gen)),
                self._workflow_finished(gen, elapsed_s)]

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return self._run(gen, elapsed_s)

    def _failed(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [self._llm_finished(gen, elapsed_s, status="failed", error=message),
                self._workflow_finished(gen, elapsed_s, status="failed", error=message, steps=2)]

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        # a failed run: workflow_finished (failed), then `error` (ValueError "Run failed: ...")
        error = {**self._head("error", gen), "code": "invalid_param", "message": f"Run failed: {message}",
                 "status": 400}
        return self._failed(gen, elapsed_s, message) + [_dify_event(error)]

    def pause_events(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        """A human-input node after the LLM: workflow_paused, and the stream closes on purpose."""
        reason = {"type": "human_input_required", "node_id": "human_input", "form_id": self.node_run_ids["human_input"]}
        data = {"workflow_run_id": self.run_id, "paused_nodes": ["human_input"], "outputs": {}, "reasons": [reason],
                "status": "paused", "created_at": gen.created, "elapsed_time": elapsed_s,
                "total_tokens": _total_tokens(gen), "total_steps": 3}
        return [self._llm_finished(gen, elapsed_s), self._node(gen, "human_input", finished=False),
                self._event(gen, "workflow_paused", data)]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        return {"task_id": self.task_id, "workflow_run_id": self.run_id, "data": self._finished_data(gen, elapsed_s)}


class _DifyChatflow(_DifyWorkflow):
    """Chatflow (advanced-chat) apps (`/chat-messages`): Start -> LLM -> Answer, the answer as
    message events, the order of Dify's advanced_chat/generate_task_pipeline.py."""

    query = True
    out_node = "answer"
    mode_name = "advanced-chat"

    def prompt_texts(self, body: dict) -> list[str]:
        return _string_values(body.get("query")) + _string_values(body.get("inputs"))

    def start(self, gen: _Generation) -> None:
        self._messages = _DifyMessages(self.app, chat=True)
        self._messages.start(gen)
        self.message_id, self.conversation_id = self._messages.message_id, self._messages.conversation_id
        super().start(gen)
        self._messages.task_id = self.task_id
        self._messages.mode_name = self.mode_name

    def _head(self, name: str, gen: _Generation) -> dict:
        return self._messages._head(name, gen)

    def _inputs(self, gen: _Generation) -> dict:
        inputs = dict(gen.body.get("inputs") or {})
        inputs.update({"sys.query": gen.body.get("query"), "sys.files": [], "sys.conversation_id": self.conversation_id,
                       "sys.user_id": gen.body.get("user"), "sys.dialogue_count": 1})
        return inputs

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        if kind == "reasoning":
            return self._messages._reasoning_chunk(gen, text, last)
        return self._send(gen, "message", id=self.message_id, answer=text, from_variable_selector=["llm", "text"])

    def _outputs(self, gen: _Generation) -> dict:
        return {"answer": gen.answer_text()}

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        *nodes, finished = self._run(gen, elapsed_s)
        message_end = self._messages._message_end(gen, elapsed_s)
        replace = self._messages._replace(gen)
        if self.app.message_end == "before":
            return nodes + replace + [message_end, finished]
        if self.app.message_end == "none":  # Dify 1.13.x (issue #32856)
            return nodes + [finished] + replace
        return nodes + [finished] + replace + [message_end]

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return self._failed(gen, elapsed_s, message) + [
            self._messages._error_event(gen, "invalid_param", f"Run failed: {message}", 400)]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict:
        return self._messages.blocking_body(gen, elapsed_s)


def make_dify_flavour(name: str, app: DifyApp) -> _Flavour:
    """The flavour of a Dify path (`--api` name) for this app: /chat-messages streams as the app's mode."""
    if name == "dify-completion":
        return _DifyMessages(app, chat=False)
    if name == "dify-workflow":
        return _DifyWorkflow(app)
    if app.mode == "chatflow":
        return _DifyChatflow(app)
    if app.mode == "agent":
        return _DifyAgent(app)
    return _DifyMessages(app, chat=True)
