"""The mock server's Text Generation Inference native stream (`POST /generate_stream`), as TGI's
router writes it (router/src/server.rs `generate_stream`, OpenAPI StreamResponse): `data:` events
without a space, one per token (`token.text`, `token.special`), the last carrying `generated_text`
and `details` (`finish_reason`, `generated_tokens`): an end-of-sequence special token after the
answer, or the last token itself when max_new_tokens cut it (`length`). No [DONE]. Errors are
`{"error", "error_type"}`. Standard library only (the mock shares no code with what it is
measured against).
"""

from __future__ import annotations

from typing import Any, Optional

from .mock_wire import BadRequest, _Flavour, _Generation, compact_json

_TYPES = {400: "validation", 401: "authentication", 404: "not_found", 405: "validation", 413: "validation",
          422: "validation", 429: "overloaded", 500: "generation"}
EOS = "</s>"


def _data(obj: dict) -> bytes:
    return b"data:" + compact_json(obj) + b"\n\n"


class TgiGenerate(_Flavour):
    reasoning = False  # no reasoning channel: a reasoning model's thoughts are answer text (or tagged)

    def validate(self, body: dict) -> None:
        inputs = body.get("inputs")
        if not isinstance(inputs, str) or not inputs:
            raise BadRequest("Input validation error: `inputs` cannot be empty")
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest("Failed to deserialize the JSON body into the target type: parameters: invalid type")
        value = (parameters or {}).get("max_new_tokens")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BadRequest("Input validation error: `max_new_tokens` must be strictly positive")

    def wants_stream(self, body: dict) -> bool:
        return True  # the path is the stream

    def prompt_texts(self, body: dict) -> list[str]:
        return [body["inputs"]] if isinstance(body.get("inputs"), str) else []

    def token_budget(self, body: dict) -> Optional[int]:
        return (body.get("parameters") or {}).get("max_new_tokens")

    def error_body(self, status: int, code: str, message: str) -> dict:
        return {"error": message, "error_type": _TYPES.get(status, "generation")}

    def unauthorized_body(self) -> dict:
        return self.error_body(401, "", "Unauthorized")

    def rate_limit_body(self) -> dict:
        return self.error_body(429, "", "Model is overloaded")

    def _details(self, gen: _Generation, reason: str, extra: int) -> dict:
        return {"finish_reason": reason, "generated_tokens": gen.completion_tokens + extra, "seed": None}

    def token_event(self, gen: _Generation, kind: str, index: int, text: str, last: bool) -> bytes:
        final = last and gen.finish_reason == "length"  # cut by max_new_tokens: this token ends the stream
        return _data({"index": index + 1, "token": {"id": 1000 + index, "text": text, "logprob": -0.25,
                                                     "special": False},
                      "generated_text": gen.answer_text() if final else None,
                      "details": self._details(gen, "length", 0) if final else None})

    def epilogue(self, gen: _Generation, elapsed_s: float) -> list[bytes]:
        if gen.finish_reason == "length" and gen.emitted:
            return []
        return [_data({"index": gen.emitted + 1, "token": {"id": 2, "text": EOS, "logprob": -0.01, "special": True},
                       "generated_text": gen.answer_text(), "details": self._details(gen, "eos_token", 1)})]

    def error_events(self, gen: _Generation, elapsed_s: float, message: str) -> list[bytes]:
        return [_data({"error": message, "error_type": "generation"})]

    def blocking_body(self, gen: _Generation, elapsed_s: float) -> dict[str, Any]:
        return {"generated_text": gen.answer_text(), "details": self._details(gen, "eos_token", 1)}
