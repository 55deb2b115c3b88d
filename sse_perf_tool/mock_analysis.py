"""The mock server's answer to `sse-perf analyze`: a request on /v1/chat/completions whose system
message names ANALYSIS_MARKER gets a fixed, recognisable analysis, streamed as OpenAI chat chunks
(role, content pieces, finish, usage, [DONE]), so the whole analysis path runs offline. Standard
library only (the mock shares no code with what it is measured against).
"""

from __future__ import annotations

import json
import time

ANALYSIS_MARKER = "sse-perf-analysis/1"  # sse-perf's analysis.py names the same in its system message

MOCK_ANALYSIS = (
    "## Mock analysis\n\n"
    "This analysis was written by the embedded mock server (sse-perf mock-server), not by a model: it shows "
    "the path of `sse-perf analyze` working offline.\n\n"
    "What a model would look at in this digest:\n\n"
    "- the findings, most severe first;\n"
    "- throughput against the load, second by second;\n"
    "- TTFT and TPOT percentiles, and whether the load generator kept up.\n\n"
    "```\nsse-perf analyze RUN_DIR --llm-base-url http://gpu1:8000/v1 --llm-model qwen2.5-7b\n```\n\n"
    "Point --llm-base-url at a real OpenAI-compatible server for a real reading.\n"
)


def is_analysis_request(body: dict) -> bool:
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") == "system" \
                and ANALYSIS_MARKER in str(message.get("content") or ""):
            return True
    return False


def analysis_events(model: str) -> list[bytes]:
    """The fixed analysis as server-sent events, a few words per chunk."""
    created = int(time.time())

    def chunk(choices: list, **extra) -> bytes:
        obj = {"id": "chatcmpl-mock-analysis", "object": "chat.completion.chunk", "created": created,
               "model": model, "choices": choices, **extra}
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"

    words = MOCK_ANALYSIS.split(" ")
    pieces = [" ".join(words[i:i + 4]) + (" " if i + 4 < len(words) else "") for i in range(0, len(words), 4)]
    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    events += [chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]) for piece in pieces]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    events.append(chunk([], usage={"prompt_tokens": 1, "completion_tokens": len(pieces), "total_tokens": len(pieces) + 1}))
    events.append(b"data: [DONE]\n\n")
    return events
