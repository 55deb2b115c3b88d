"""The mock server's Ollama native API (`POST /api/chat`, `POST /api/generate`), on the wire
Ollama documents (docs/api.md): `application/x-ndjson`, one JSON object per line, the answer in
`message.content` (chat) or `response` (generate), the reasoning in `thinking`, and a last line
with `done: true`, `done_reason` (stop, or length when num_predict cut it), `prompt_eval_count`,
`eval_count` and the durations in nanoseconds. Errors are `{"error": "..."}`. Standard library only.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from .mock_wire import BadRequest, _Flavour, _Generation, compact_json, message_texts


def _line(obj: dict) -> bytes:
    return compact_json(obj) + b"\n"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000Z"


class _OllamaBase(_Flavour):
    content_type = "application/x-ndjson"

    def validate(self, body: dict) -> None:
        if not body.get("model"):
            raise BadRequest("model is required")
        self._validate(body)
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("json: cannot unmarshal options")

    def _validate(self, body: dict) -> None:
        raise NotImplementedError

    def wants_stream(self, body: dict) -> bool:
        return body.get("stream", True) is not False  # Ollama streams unless told not to

    def token_budget(self, body: dict) -> Optional[int]:
        value = (body.get("options") or {}).get("num_predict")
        return value if isinstance(value, int) and value > 0 else None

    def start(self, gen: _Generation) -> None:
        self.model = str(gen.body.get("model"))

    def error_body(self, status: int, code: str, message: str) -> dict:
        return {"error": message}

    def unauthorized_body(self) -> dict:
        return {"error": "unauthorized"}

    def _piece(self, kind: str, text: str) -> dict:
        raise NotImplementedError

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        return _line({"model": self.model, "created_at": _now(), **self._piece(kind, text), "done": False})

    def _done(self, gen: _Generation, elapsed_s: float) -> dict:
        total = int(elapsed_s * 1e9)
        first = int((gen.first_token_at - gen.started_at) * 1e9) if gen.first_token_at else 0
        return {"model": self.model, "created_at": _now(), **self._piece("answer", ""), "done": True,
                "done_reason": "length" if gen.finish_reason == "length" else "stop",
                "total_duration": total, "load_duration": 1_000_000, "prompt_eval_count": gen.prompt_tokens,
                "prompt_eval_duration": max(0, first - 1_000_000), "eval_count": gen.completion_tokens,
                "eval_duration": max(0, total - first)}

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        return [_line(self._done(gen, elapsed_s))]

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [_line({"error": message})]


class OllamaChat(_OllamaBase):
    def _validate(self, body: dict) -> None:
        if not isinstance(body.get("messages"), list):
            raise BadRequest("messages is required")

    def prompt_texts(self, body: dict) -> list[str]:
        return message_texts(body.get("messages"))

    def _piece(self, kind: str, text: str) -> dict:
        return {"message": {"role": "assistant", "content": "", "thinking": text} if kind == "reasoning"
                else {"role": "assistant", "content": text}}

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict[str, Any]:
        done = self._done(gen, elapsed_s)
        done["message"] = {"role": "assistant", "content": gen.answer_text()}
        return done


class OllamaGenerate(_OllamaBase):
    def _validate(self, body: dict) -> None:
        if not isinstance(body.get("prompt"), str):
            raise BadRequest("prompt is required")

    def prompt_texts(self, body: dict) -> list[str]:
        return [body["prompt"]] if isinstance(body.get("prompt"), str) else []

    def _piece(self, kind: str, text: str) -> dict:
        return {"response": "", "thinking": text} if kind == "reasoning" else {"response": text}

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict[str, Any]:
        return dict(self._done(gen, elapsed_s), response=gen.answer_text())
