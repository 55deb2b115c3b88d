"""Builders of the SSE bytes a streaming server sends: an event line for any JSON object, the
OpenAI chat chunks (delta, usage, finish, [DONE]) and the Dify events (message, message_end).
Shared by the tester tests (unit and integration) and the worker-pool tests."""

from __future__ import annotations

import json


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def oa_delta(**delta) -> bytes:
    return sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def oa_usage(completion: int, prompt: int = 9, reasoning: int | None = None) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return sse({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage})


OA_FINISH = sse({"id": "c", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
OA_DONE = b"data: [DONE]\n\n"


def dify(event: str, **fields) -> bytes:
    return sse({"event": event, "task_id": "t", "message_id": "m", "conversation_id": "c", **fields})


def dify_end(completion: int | None = None, prompt: int = 7) -> bytes:
    usage = {} if completion is None else {"prompt_tokens": prompt, "completion_tokens": completion,
                                           "total_tokens": prompt + completion, "latency": 0.1}
    return dify("message_end", id="e", metadata={"usage": usage})
