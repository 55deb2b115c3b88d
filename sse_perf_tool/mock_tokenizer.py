"""The mock server's tokenizer endpoints, in the request and response shapes of the real servers.

Standard library only, used by mock_server alone (never by the tester: the mock must not agree with
sse-perf by sharing code). Shapes, from the servers' own source:

- vLLM and SGLang: `POST /tokenize` `{"model", "prompt", "add_special_tokens"}` ->
  `{"count", "max_model_len", "tokens"}` (vllm/entrypoints/serve/tokenize/protocol.py,
  TokenizeCompletionRequest / TokenizeResponse; sglang/srt/entrypoints/openai/protocol.py).
  A body without `prompt` fails pydantic validation: HTTP 400 with an OpenAI-style error.
- llama.cpp's server: `POST /tokenize` `{"content", "add_special", "with_pieces"}` ->
  `{"tokens": [...]}` (tools/server/README.md). A body without `content` gets `{"tokens": []}`.
- llama-cpp-python: `POST /extras/tokenize` `{"input", "model"}` -> `{"tokens": [...]}` and
  `POST /extras/tokenize/count` -> `{"count"}` (llama_cpp/server/app.py, types.py
  TokenizeInputRequest). A body without `input` gets FastAPI's 422 `{"detail": [...]}`.
"""

from __future__ import annotations

from typing import Any, Callable

KINDS = ("vllm", "llama.cpp", "llama-cpp-python", "none")
MAX_MODEL_LEN = 4096


def make_tokenize(vocabulary: tuple) -> Callable[[str], list]:
    """The mock model's tokenizer: each word of its vocabulary (the words it streams, one per event)
    is one token, any other character is one token of its own. So the server's count of a mock
    answer equals its usage, while other text counts differently from tiktoken."""
    words = sorted(set(vocabulary), key=len, reverse=True)
    ids = {word: index for index, word in enumerate(words)}

    def tokenize(text: str) -> list:
        tokens, pos = [], 0
        while pos < len(text):
            for word in words:
                if text.startswith(word, pos):
                    tokens.append(ids[word])
                    pos += len(word)
                    break
            else:
                tokens.append(100_000 + ord(text[pos]))
                pos += 1
        return tokens

    return tokenize


def tokenize_paths(kind: str) -> tuple:
    """The paths a server of this kind tokenizes on."""
    if kind in ("vllm", "llama.cpp"):
        return ("/tokenize",)
    if kind == "llama-cpp-python":
        return ("/extras/tokenize", "/extras/tokenize/count")
    return ()


def answer_tokenize(kind: str, path: str, body: Any, tokenize: Callable[[str], list]) -> tuple:
    """(HTTP status, JSON response) for a tokenize request to `path` on a server of this kind."""
    if not isinstance(body, dict):
        body = {}
    if kind == "vllm":
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return 400, {"error": {"message": "prompt: Field required", "type": "BadRequestError",
                                   "param": None, "code": 400}}
        tokens = tokenize(prompt)
        return 200, {"count": len(tokens), "max_model_len": MAX_MODEL_LEN, "tokens": tokens}
    if kind == "llama.cpp":
        content = body.get("content")
        return 200, {"tokens": tokenize(content) if isinstance(content, str) else []}
    text = body.get("input")
    if not isinstance(text, str):
        return 422, {"detail": [{"type": "missing", "loc": ["body", "input"], "msg": "Field required",
                                 "input": body}]}
    tokens = tokenize(text)
    return 200, ({"count": len(tokens)} if path.endswith("/count") else {"tokens": tokens})
