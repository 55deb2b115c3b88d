"""--tokenizer server: answers counted by the target server's own tokenizer endpoint, after each
request and off its timing path, in one thread between the runner and the aggregator.

Imports config, tester (its HTTP session) and tokens. The endpoints, from the servers' source (fixtures name the files):
vLLM and SGLang `POST /tokenize` {"model", "prompt", "add_special_tokens"} -> {"count", "tokens"};
llama.cpp's server `POST /tokenize` {"content", "add_special"} -> {"tokens"}; llama-cpp-python
`POST /extras/tokenize` {"input", "model"} -> {"tokens"} (it adds BOS: the count of "" is
subtracted from every count, for every endpoint).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

import requests

from .config import mask_url
from .http_session import new_session
from .tokens import SOURCE_SERVER, count_texts

PROBE_TEXT = "Hello, world! 你好，世界。"
CALL_TIMEOUT_S = 5.0
QUEUE_MAX = 5_000
FAILURES_TO_GIVE_UP = 3  # failed calls in a row after which the rest are counted by the fallback


class TokenizeUnavailable(ValueError):
    """The target has no tokenizer endpoint sse-perf can use (the run is refused: exit 2)."""


@dataclass(frozen=True)
class _Shape:
    server: str  # who serves it, for messages
    path: str
    body: Callable[[str, Optional[str]], dict]
    parse: Callable[[object], Optional[int]]


def _with_model(body: dict, model: Optional[str]) -> dict:
    if model:
        body["model"] = model
    return body


def _count_field(obj) -> Optional[int]:
    if isinstance(obj, dict):
        count = obj.get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        return _tokens_field(obj)
    return None


def _tokens_field(obj) -> Optional[int]:
    tokens = obj.get("tokens") if isinstance(obj, dict) else None
    return len(tokens) if isinstance(tokens, list) else None


# In this order: llama.cpp answers a body without `content` with {"tokens": []}, so a count of 0
# for the probe means "not this shape"; vLLM answers a body without `prompt` with a 400.
SHAPES = (
    _Shape("vLLM / SGLang", "/tokenize",
           lambda text, model: _with_model({"prompt": text, "add_special_tokens": False}, model), _count_field),
    _Shape("llama.cpp", "/tokenize", lambda text, model: {"content": text, "add_special": False}, _tokens_field),
    _Shape("llama-cpp-python", "/extras/tokenize", lambda text, model: _with_model({"input": text}, model),
           _tokens_field),
)


def server_root(base_url: str) -> str:
    """http://host:8000/v1 -> http://host:8000 (the tokenizer endpoints are not under /v1)."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[:-3] if parts.path.endswith("/v1") else parts.path
    return parts._replace(path=path, query="", fragment="").geturl()


class ServerTokenizer:
    """Counts texts with one endpoint of the target, over one kept-alive connection (one thread)."""

    def __init__(self, root: str, shape: _Shape, model: Optional[str], headers: dict, offset: int = 0):
        self.root = root
        self.shape = shape
        self.model = model
        self.headers = headers
        self.offset = offset  # tokens the endpoint adds to any text (BOS), subtracted
        self.session = new_session(root)  # the testers' proxies and CA bundle, no retries

    @property
    def description(self) -> str:
        return f"{self.shape.server} POST {self.shape.path}"

    def count(self, text: str) -> int:
        """Tokens of `text`; raises OSError / ValueError / requests' errors when the call fails."""
        if not text:
            return 0
        return max(0, self._call(text) - self.offset)

    def _call(self, text: str) -> int:
        response = self.session.post(self.root + self.shape.path, data=json.dumps(
            self.shape.body(text, self.model), ensure_ascii=False).encode("utf-8"),
            headers=self.headers, timeout=CALL_TIMEOUT_S)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        count = self.shape.parse(response.json())
        if count is None:
            raise ValueError("no count or tokens in the answer")
        return count

    def close(self) -> None:
        self.session.close()


def detect_server_tokenizer(base_url: str, model: Optional[str], headers: dict) -> ServerTokenizer:
    """The first tokenizer endpoint of SHAPES that counts a probe text; TokenizeUnavailable (one line)
    when none does. `headers`: the run's own (API key, --header), so a protected endpoint answers."""
    root = server_root(base_url)
    headers = dict(headers, **{"Content-Type": "application/json", "Accept": "application/json"})
    tried = []
    for shape in SHAPES:
        tokenizer = ServerTokenizer(root, shape, model, headers)
        try:
            if tokenizer._call(PROBE_TEXT) > 0:
                try:
                    tokenizer.offset = tokenizer._call("")
                except (requests.RequestException, ValueError):
                    tokenizer.offset = 0  # an endpoint that refuses "" adds nothing we could measure
                return tokenizer
            tried.append(f"{shape.path} ({shape.server}): no tokens")
        except requests.RequestException as exc:
            tried.append(f"{shape.path} ({shape.server}): {type(exc).__name__}")
        except ValueError as exc:
            tried.append(f"{shape.path} ({shape.server}): {exc}")
        tokenizer.close()
    raise TokenizeUnavailable(f"--tokenizer server: {mask_url(root)} has no tokenizer endpoint sse-perf can use "
                              f"(tried {'; '.join(tried)}); use --tokenizer hf:PATH/tokenizer.json instead")


_STOP = object()
CLOSE_COUNT_S = 10.0  # after close(), how long answers are still counted by the server (then locally)


class _Barrier:
    __slots__ = ("event",)

    def __init__(self):
        self.event = threading.Event()


class CountingStage(threading.Thread):
    """Takes finished records (all of them, so their order is kept), counts the answer of each
    record the tester left uncounted (`pending_text`) with the server, and hands every record on to
    `sink`. A failed call counts that record with `fallback` (token_source `tokenizer`); after
    FAILURES_TO_GIVE_UP failures in a row the server is not asked again in this run. A full queue
    never blocks a worker: that record is counted at once with the fallback."""

    def __init__(self, tokenizer: ServerTokenizer, fallback, sink: Callable[[object], None]):
        super().__init__(name="sse-perf-server-tokenizer", daemon=True)
        self.tokenizer = tokenizer
        self.fallback = fallback
        self.sink = sink
        self.queue: "queue.Queue" = queue.Queue(maxsize=QUEUE_MAX)
        self.counted = 0  # records counted by the server
        self.fell_back = 0  # records counted by the fallback
        self.failure: Optional[str] = None  # why the server stopped being asked
        self.internal_error: Optional[str] = None  # a bug met while counting (the record was still handed on)
        self._failures_in_a_row = 0
        self._local_after: Optional[float] = None  # monotonic instant after which close() counts locally

    def submit(self, record) -> None:
        """Called by worker threads, never blocks them: after the stage has stopped, or while its queue
        is full, the record is counted here with the fallback and handed on at once."""
        if self.is_alive():
            try:
                self.queue.put_nowait(record)
                return
            except queue.Full:
                pass
        self.sink(self._count_locally(record))

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been handed on (a sweep level's last records)."""
        if not self.is_alive():
            return True
        barrier = _Barrier()
        self.queue.put(barrier, timeout=timeout)
        return barrier.event.wait(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Count and hand on everything submitted, then stop; False when the thread is still busy after
        `timeout` (answers waiting past CLOSE_COUNT_S are counted locally, so that is rare)."""
        self._local_after = time.monotonic() + CLOSE_COUNT_S
        if self.is_alive():
            self.queue.put(_STOP)
            self.join(timeout)
        if self.is_alive():
            return False
        self.tokenizer.close()
        return True

    def run(self) -> None:
        stopping = False  # after _STOP: what is still waiting, then out
        while True:
            try:
                item = self.queue.get_nowait() if stopping else self.queue.get()
            except queue.Empty:
                return
            if item is _STOP:
                stopping = True
            elif isinstance(item, _Barrier):
                item.event.set()
            else:
                self.sink(self._count_safely(item))

    def _count_safely(self, record):
        try:
            return self._count(record)
        except Exception as exc:  # a bug here must not stop the thread: every later record would be lost
            if self.internal_error is None:
                self.internal_error = f"server tokenizer stage: {type(exc).__name__}: {exc}"
            record.pending_text = record.pending_text or ("", "")
            return self._count_locally(record)

    def _count(self, record):
        if record.pending_text is None:
            return record
        if self.failure is not None or (self._local_after is not None and time.monotonic() > self._local_after):
            return self._count_locally(record)
        answer, reasoning = record.pending_text
        try:
            answer_tokens = self.tokenizer.count(answer)
            reasoning_tokens = self.tokenizer.count(reasoning) if reasoning else None
        except (requests.RequestException, ValueError, OSError) as exc:
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= FAILURES_TO_GIVE_UP:
                self.failure = (f"the server's tokenizer ({self.tokenizer.description}) failed {FAILURES_TO_GIVE_UP} "
                                f"times in a row (last: {type(exc).__name__}: {str(exc)[:120]}); later answers were "
                                "counted with tiktoken")
            return self._count_locally(record)
        self._failures_in_a_row = 0
        self.counted += 1
        record.output_tokens = answer_tokens + (reasoning_tokens or 0)
        if record.reasoning_tokens is None:
            record.reasoning_tokens = reasoning_tokens
        record.token_source = SOURCE_SERVER
        record.pending_text = None
        return record

    def _count_locally(self, record):
        if record.pending_text is None:
            return record
        answer, reasoning = record.pending_text
        self.fell_back += 1
        record.output_tokens, reasoning_tokens, record.token_source = count_texts(self.fallback, answer, reasoning)
        if record.reasoning_tokens is None:
            record.reasoning_tokens = reasoning_tokens
        record.pending_text = None
        return record
