"""The mock server's OpenAI Responses API (`POST /v1/responses`, `stream: true`), on the wire
OpenAI's API reference documents ("Streaming events"): named events whose data repeats the type
and counts a sequence_number; response.created and response.in_progress, then for reasoning a
reasoning item (response.reasoning_text.delta), for the answer a message item with an output_text
part (response.output_text.delta), their *.done events, and response.completed with the usage
(input_tokens, output_tokens, output_tokens_details.reasoning_tokens), or response.incomplete
(incomplete_details.reason max_output_tokens) when max_output_tokens cut it. Errors: the OpenAI
error body; in the stream a response.failed. Standard library only.
"""

from __future__ import annotations

from typing import Any, Optional

from .mock_wire import BadRequest, _Flavour, _Generation, _openai_error, compact_json, message_texts


class OpenAIResponses(_Flavour):
    def __init__(self) -> None:
        self._seq = 0
        self._item: Optional[str] = None  # the output item open: "reasoning" or "message"
        self._index = -1

    def _event(self, name: str, obj: dict) -> bytes:
        obj = {"type": name, **obj, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + name.encode() + b"\ndata: " + compact_json(obj) + b"\n\n"

    def validate(self, body: dict) -> None:
        inputs = body.get("input")
        if not (isinstance(inputs, str) and inputs) and not (isinstance(inputs, list) and inputs):
            raise BadRequest("input: Field required")
        value = body.get("max_output_tokens")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 16):
            raise BadRequest(f"max_output_tokens must be at least 16, got {value!r}.")
        if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
            raise BadRequest("stream: Input should be a valid boolean")

    def wants_stream(self, body: dict) -> bool:
        return body.get("stream") is True

    def prompt_texts(self, body: dict) -> list[str]:
        inputs = body.get("input")
        if isinstance(inputs, str):
            return [inputs]
        return message_texts(inputs)

    def token_budget(self, body: dict) -> Optional[int]:
        return body.get("max_output_tokens")

    def start(self, gen: _Generation) -> None:
        self.id = "resp_" + gen.uuid().replace("-", "")
        self.model = str(gen.body.get("model") or "mock")

    def error_body(self, status: int, code: str, message: str) -> dict:
        return _openai_error(status, code, message)

    def unauthorized_body(self) -> dict:
        return _openai_error(401, "invalid_api_key", "Incorrect API key provided.")

    def _response(self, gen: _Generation, status: str, **extra) -> dict:
        return {"id": self.id, "object": "response", "created_at": gen.created, "status": status, "model": self.model,
                "output": [], **extra}

    def preamble(self, gen: _Generation) -> list[bytes]:
        return [self._event("response.created", {"response": self._response(gen, "in_progress")}),
                self._event("response.in_progress", {"response": self._response(gen, "in_progress")})]

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        item = "reasoning" if kind == "reasoning" else "message"
        out = b""
        if item != self._item:
            out += self._close_item(gen)
            self._index += 1
            self._item = item
            out += self._event("response.output_item.added", {"output_index": self._index, "item": {
                "id": self._item_id(), "type": item, "status": "in_progress", "content": [],
                **({"role": "assistant"} if item == "message" else {"summary": []})}})
            if item == "message":
                out += self._event("response.content_part.added", {
                    "item_id": self._item_id(), "output_index": self._index, "content_index": 0,
                    "part": {"type": "output_text", "annotations": [], "text": ""}})
        name = "response.reasoning_text.delta" if item == "reasoning" else "response.output_text.delta"
        return out + self._event(name, {"item_id": self._item_id(), "output_index": self._index, "content_index": 0,
                                        "delta": text})

    def _item_id(self) -> str:
        return f"{'rs' if self._item == 'reasoning' else 'msg'}_{self.id[5:21]}{self._index}"

    def _close_item(self, gen: _Generation) -> bytes:
        if self._item is None:
            return b""
        out = b""
        if self._item == "message":
            out += self._event("response.output_text.done", {"item_id": self._item_id(), "output_index": self._index,
                                                             "content_index": 0, "text": gen.answer_text()})
        out += self._event("response.output_item.done", {"output_index": self._index,
                                                         "item": {"id": self._item_id(), "type": self._item,
                                                                  "status": "completed"}})
        self._item = None
        return out

    def _usage(self, gen: _Generation) -> dict:
        return {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": gen.reasoning_tokens},
                "total_tokens": gen.prompt_tokens + gen.completion_tokens}

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        events = [self._close_item(gen)] if self._item is not None else []
        if gen.finish_reason == "length":
            events.append(self._event("response.incomplete", {"response": self._response(
                gen, "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=self._usage(gen))}))
        else:
            events.append(self._event("response.completed", {"response": self._response(
                gen, "completed", usage=self._usage(gen))}))
        return events

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [self._event("response.failed", {"response": self._response(
            gen, "failed", error={"code": "server_error", "message": message})})]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict[str, Any]:
        return self._response(gen, "completed", usage=self._usage(gen), output=[
            {"id": "msg_0", "type": "message", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "annotations": [], "text": gen.answer_text()}]}])
