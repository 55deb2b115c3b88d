"""The embedded simulated LLM server: every flavour's path, each on its real wire format, over
real HTTP/1.1 on a socket. This module decides what each request gets (the simulated model's
behaviour, pacing, errors, stop); the wire itself is mock_wire's and the HTTP plumbing
mock_http's. Standard library only; imports only mock_http, mock_wire and mock_tokenizer from
the package, so the tester can never agree with the server it is measured against by sharing
code with it.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, TextIO

from . import mock_tokenizer
from .mock_http import _BodyError, _ClientGone, _Handler, _HTTPServer, _shutdown_socket, _V6Server
from .mock_wire import (ANSWER_WORDS, REASONING_WORDS, BadRequest, _Flavour, _Generation,  # noqa: F401
                        _OpenAIBase, _count_prompt_tokens, _dify_error, _make_flavour, _not_found, _openai_error,
                        token_text)

# path -> flavour name (the names `--api` uses)
PATHS = {
    "/v1/chat-messages": "dify-chat",
    "/v1/completion-messages": "dify-completion",
    "/v1/workflows/run": "dify-workflow",
    "/v1/chat/completions": "openai-chat",
    "/v1/completions": "openai-completions",
}
FLAVOURS = tuple(PATHS.values())


DIFY_PING_INTERVAL_S = 10.0  # Dify sends `event: ping` every 10 s of elapsed time
_STOP_POLL_S = 0.05  # longest single sleep, so a stream notices stop() within this


@dataclass
class MockConfig:
    """How the simulated model behaves. Delays in milliseconds; every flavour uses all of it."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    ttft_ms: float = 200.0  # delay before the first generated token (reasoning or answer)
    itl_ms: float = 20.0  # delay between token events
    tokens: int = 64  # answer tokens (token-bearing events) per response; 1 token per event
    jitter_ms: float = 0.0  # uniform +-jitter on every delay (never below 0)
    reasoning_tokens: int = 0  # reasoning events before the answer (not on /completions)
    error_rate: float = 0.0  # fraction of valid requests answered with HTTP 500
    api_key: Optional[str] = None  # when set, other keys get 401
    seed: Optional[int] = None
    record_timings: bool = False  # keep first-token send instants (MockServer.first_token_sent_at)
    # Behaviours of real servers, off by default (`like="llama-cpp-python"` turns on all of that server's):
    check_request_id: bool = False  # a non-UUID X-Request-Id gets an empty HTTP 400 (starlette-context)
    interrupt: bool = False  # a new request cuts the streams running: [DONE], no finish_reason, no last chunk
    empty_rate: float = 0.0  # fraction of answers with no text at all (finish_reason stop, 0 tokens)
    usage: bool = True  # False: OpenAI paths ignore stream_options.include_usage (llama.cpp, llama-cpp-python)
    tokenize: str = "vllm"  # tokenizer endpoint served: vllm | llama.cpp | llama-cpp-python | none
    like: Optional[str] = None  # "llama-cpp-python": all of the above as that server behaves by default

    def __post_init__(self) -> None:
        if self.like is not None:
            if self.like != "llama-cpp-python":
                raise ValueError(f"like must be llama-cpp-python, got {self.like!r}")
            self.check_request_id = self.interrupt = True
            self.usage = False
            self.tokenize = "llama-cpp-python"
        if self.tokenize not in mock_tokenizer.KINDS:
            raise ValueError(f"tokenize must be one of {', '.join(mock_tokenizer.KINDS)}, got {self.tokenize!r}")
        if not 0.0 <= self.empty_rate <= 1.0:
            raise ValueError(f"empty_rate must be between 0 and 1, got {self.empty_rate}")
        for name in ("ttft_ms", "itl_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")


def schedule_offsets_s(config: MockConfig, events: int, rng: random.Random) -> list[float]:
    """Send instants of the token events, in seconds after the request arrived.

    An absolute schedule: event k is due at the sum of the first k+1 delays (ttft, then itl
    each), so time lost oversleeping one delay is not added to the next. Each delay gets its
    own uniform +-jitter and is clamped at 0, so the offsets never decrease.
    """
    offsets: list[float] = []
    due_s = 0.0
    for k in range(events):
        delay_ms = config.ttft_ms if k == 0 else config.itl_ms
        if config.jitter_ms:
            delay_ms += rng.uniform(-config.jitter_ms, config.jitter_ms)
        due_s += max(0.0, delay_ms) / 1000.0
        offsets.append(due_s)
    return offsets


class MockStats:
    """Counters shared by the handler threads; read them with `snapshot()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("requests", "events_sent", "errors", "connections", "active_streams",
                                      "tokenize_requests", "interrupted"), 0)

    def snapshot(self) -> dict:
        """requests: HTTP requests received; events_sent: token-bearing events written;
        errors: responses with status >= 400; connections: TCP connections accepted;
        active_streams: streams being written now; tokenize_requests: tokenizer calls answered;
        interrupted: streams cut by a newer request (`interrupt`)."""
        with self._lock:
            return dict(self._counts)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n


class MockServer:
    """A simulated LLM server on a real socket, serving in background threads.

    `with MockServer(MockConfig(ttft_ms=5)) as server: ... server.base_url ...`
    """

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.stats = MockStats()
        self.port: int = 0
        # request id (X-Request-Id, else "mock-<n>") -> perf_counter() right after the first token
        # event was sent. Filled only with config.record_timings; read it after stop() (or copy
        # it with first_token_times()) since handler threads add to it while serving.
        self.first_token_sent_at: dict[str, float] = OrderedDict()
        self.timings_limit = 1_000_000  # oldest entries are dropped beyond this
        self._timings_lock = threading.Lock()
        self._running: set = set()  # an Event per stream being written, set to cut it (config.interrupt)
        self._running_lock = threading.Lock()
        self._tokenize = mock_tokenizer.make_tokenize(ANSWER_WORDS + REASONING_WORDS)
        self._tokenize_paths = mock_tokenizer.tokenize_paths(config.tokenize)
        self._stop_event = threading.Event()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._conns: set = set()
        self._conns_cond = threading.Condition()
        self._state_lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._seq = 0

    # -- lifecycle

    @property
    def base_url(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1" if host != "::" else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    def start(self) -> "MockServer":
        """Bind and serve in a background daemon thread. Raises OSError when the port is taken."""
        with self._state_lock:
            if self._httpd is not None:
                return self
            server_class = _V6Server if ":" in self.config.host else _HTTPServer
            self._httpd = server_class((self.config.host, self.config.port), self)
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"mock-server:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end streams in progress (within ~_STOP_POLL_S) and wait for handlers
        (at most ~1 s; a handler still stuck after that has its socket shut down)."""
        with self._state_lock:
            httpd, thread = self._httpd, self._thread
            if httpd is None or self._stop_event.is_set():
                return
            self._stop_event.set()
        httpd.shutdown()  # serve_forever returns; no new connections are accepted
        httpd.server_close()
        with self._conns_cond:
            conns = list(self._conns)
        for conn in conns:  # wake handlers idling on a keep-alive connection; writes still work
            _shutdown_socket(conn, socket.SHUT_RD)
        deadline = time.monotonic() + 1.0
        with self._conns_cond:
            while self._conns and time.monotonic() < deadline:
                self._conns_cond.wait(deadline - time.monotonic())
            conns = list(self._conns)
        for conn in conns:
            _shutdown_socket(conn, socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=1.0)

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def first_token_times(self) -> dict[str, float]:
        """A consistent copy of first_token_sent_at, safe while serving."""
        with self._timings_lock:
            return dict(self.first_token_sent_at)

    # -- bookkeeping called by the HTTP server

    def _connection_opened(self, conn: Any) -> None:
        self.stats.add("connections")
        with self._conns_cond:
            self._conns.add(conn)

    def _connection_closed(self, conn: Any) -> None:
        with self._conns_cond:
            self._conns.discard(conn)
            self._conns_cond.notify_all()

    def _next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def _record_first_token(self, request_id: str, sent_at: float) -> None:
        with self._timings_lock:
            timings = self.first_token_sent_at  # an OrderedDict: dropping the oldest is O(1)
            timings[request_id] = sent_at
            timings.move_to_end(request_id)
            while len(timings) > self.timings_limit:
                timings.popitem(last=False)

    # -- request handling

    def _respond_json(self, handler: _Handler, status: int, obj: Any, headers: Iterable = (),
                      head: bool = False) -> None:
        if status >= 400:
            self.stats.add("errors")
        handler.send_json(status, obj, headers, head=head)

    def _serve_other_method(self, handler: _Handler, head: bool = False) -> None:
        self.stats.add("requests")
        path = handler.path.split("?", 1)[0]
        try:
            handler.read_body()
        except (_BodyError, _ClientGone):
            handler.close_connection = True
        name = PATHS.get(path)
        if name is None:
            self._respond_json(handler, 404, _not_found(path), head=head)
            return
        message = f"The method {handler.command} is not allowed for the requested URL."
        body = _make_flavour(name).error_body(405, "method_not_allowed", message)
        self._respond_json(handler, 405, body, headers=[("Allow", "POST")], head=head)

    def _serve_post(self, handler: _Handler) -> None:
        started_at = time.perf_counter()
        self.stats.add("requests")
        seq = self._next_seq()
        path = handler.path.split("?", 1)[0]
        name = PATHS.get(path)
        flavour = _make_flavour(name) if name else None
        error_body = flavour.error_body if flavour else _dify_error
        try:
            raw = handler.read_body()
        except _BodyError as exc:
            handler.close_connection = True  # the rest of the body may still be on the wire
            self._respond_json(handler, exc.status, error_body(exc.status, "", str(exc)))
            return
        except _ClientGone:
            handler.close_connection = True
            return
        if self.config.check_request_id and not _is_uuid(handler.headers.get("X-Request-Id")):
            # llama-cpp-python: starlette-context's RequestIdPlugin (validate=True) answers before any route
            self.stats.add("errors")
            handler.send_empty(400)
            return
        if self.config.interrupt:
            self._interrupt_running()
        if path in self._tokenize_paths:
            self._serve_tokenize(handler, path, raw)
            return
        if flavour is None:
            self._respond_json(handler, 404, _not_found(path))
            return
        if self.config.api_key is not None and not self._authorized(handler):
            self._respond_json(handler, 401, flavour.unauthorized_body())
            return
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            flavour.validate(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._respond_json(handler, 400, flavour.error_body(400, "", f"Invalid JSON body: {exc}"))
            return
        except BadRequest as exc:
            self._respond_json(handler, 400, flavour.error_body(400, "", str(exc)))
            return

        seed = self.config.seed
        rng = random.Random(f"{seed}:{seq}") if seed is not None else random.Random()
        if self.config.error_rate and rng.random() < self.config.error_rate:
            body = flavour.error_body(500, "", "Simulated server error (mock error_rate).")
            self._respond_json(handler, 500, body)
            return
        gen = self._plan(seq, rng, body, flavour, started_at)
        flavour.start(gen)
        request_id = handler.headers.get("X-Request-Id") or f"mock-{seq}"
        try:
            if flavour.wants_stream(body):
                self._stream(handler, flavour, gen, request_id)
            else:
                self._blocking(handler, flavour, gen)
        except (_ClientGone, OSError):
            handler.close_connection = True  # client went away mid-response: nothing to say

    def _interrupt_running(self) -> None:
        """llama-cpp-python (interrupt_requests, its default): a request that arrives while a stream is
        being generated makes that stream stop after its current chunk."""
        with self._running_lock:
            for cut in self._running:
                cut.set()

    def _serve_tokenize(self, handler: _Handler, path: str, raw: bytes) -> None:
        kind = self.config.tokenize
        if kind == "llama-cpp-python" and self.config.api_key is not None and not self._authorized(handler):
            self._respond_json(handler, 401, {"detail": "Invalid API key"})  # its `authenticate` dependency
            return
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._respond_json(handler, 400, _openai_error(400, "", f"Invalid JSON body: {exc}"))
            return
        status, answer = mock_tokenizer.answer_tokenize(kind, path, body, self._tokenize)
        if status == 200:
            self.stats.add("tokenize_requests")
        self._respond_json(handler, status, answer)

    def _authorized(self, handler: _Handler) -> bool:
        scheme, _, token = handler.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.config.api_key

    def _plan(self, seq: int, rng: random.Random, body: dict, flavour: _Flavour, started_at: float) -> _Generation:
        reasoning_n = self.config.reasoning_tokens if flavour.reasoning else 0
        answer_n = self.config.tokens
        finish_reason = "stop"
        if self.config.empty_rate and rng.random() < self.config.empty_rate:
            reasoning_n = answer_n = 0  # the model stopped at once: a proper answer with no text
        budget = flavour.token_budget(body)
        if budget is not None and reasoning_n + answer_n > budget:
            reasoning_n = min(reasoning_n, budget)
            answer_n = min(answer_n, budget - reasoning_n)
            finish_reason = "length"
        prompt_tokens = _count_prompt_tokens(flavour.prompt_texts(body))
        return _Generation(seq=seq, rng=rng, body=body, prompt_tokens=prompt_tokens,
                           reasoning_n=reasoning_n, answer_n=answer_n, finish_reason=finish_reason,
                           started_at=started_at, created=int(time.time()), send_usage=self.config.usage)

    def _stream(self, handler: _Handler, flavour: _Flavour, gen: _Generation, request_id: str) -> None:
        handler.send_stream_headers()
        self.stats.add("active_streams")
        cut = threading.Event()
        if isinstance(flavour, _OpenAIBase):  # llama-cpp-python's behaviour: only its OpenAI paths
            with self._running_lock:
                self._running.add(cut)
        try:
            completed = self._write_events(handler, flavour, gen, request_id, cut)
        finally:
            with self._running_lock:
                self._running.discard(cut)
            self.stats.add("active_streams", -1)
        if cut.is_set() and not completed:
            # llama-cpp-python raises out of its event publisher after the [DONE]: the connection
            # closes without the body's last chunk
            self.stats.add("interrupted")
            handler.close_connection = True
            return
        if not completed:
            handler.close_connection = True  # stopped mid-stream: end the body without a terminal event
        handler.end_chunks()

    def _write_events(self, handler: _Handler, flavour: _Flavour, gen: _Generation, request_id: str,
                      cut: Optional[threading.Event] = None) -> bool:
        """All events of one stream; False when stop() cut it short, or a newer request did (`cut`:
        then the last event written is `data: [DONE]`, with no finish_reason before it)."""
        for event in flavour.preamble(gen):
            handler.write_chunk(event)
        ping = flavour.ping()
        if ping is not None and self.config.ttft_ms >= 1000:
            handler.write_chunk(ping)  # Dify keeps a slow stream alive from the start
        pacer = _Pacer(self._stop_event, gen.started_at, handler.write_chunk if ping else None, ping)
        total = gen.reasoning_n + gen.answer_n
        offsets = schedule_offsets_s(self.config, max(total, 1), gen.rng)
        for k in range(max(total, 1)):  # with no tokens at all, k=0 still marks the first-token time
            if not pacer.wait_until(gen.started_at + offsets[k]):
                return False
            if k == 0:
                for event in flavour.before_first_token(gen):
                    handler.write_chunk(event)
            if k == total:
                break
            if k < gen.reasoning_n:
                last = k == gen.reasoning_n - 1
                event = flavour.token_event(gen, "reasoning", k, token_text(k, reasoning=True), last)
            else:
                i = k - gen.reasoning_n
                event = flavour.token_event(gen, "answer", i, token_text(i), i == gen.answer_n - 1)
            handler.write_chunk(event)
            if k == 0 and self.config.record_timings:
                self._record_first_token(request_id, time.perf_counter())
            self.stats.add("events_sent")
            if cut is not None and cut.is_set() and k + 1 < total:
                handler.write_chunk(b"data: [DONE]\n\n")  # get_event_publisher, llama_cpp/server/app.py
                return False
        for event in flavour.epilogue(gen, time.perf_counter() - gen.started_at):
            handler.write_chunk(event)
        return True

    def _blocking(self, handler: _Handler, flavour: _Flavour, gen: _Generation) -> None:
        total = gen.reasoning_n + gen.answer_n
        offsets = schedule_offsets_s(self.config, max(total, 1), gen.rng)
        if not _Pacer(self._stop_event, gen.started_at).wait_until(gen.started_at + offsets[-1]):
            handler.close_connection = True  # stopped: close without an answer
            return
        handler.send_json(200, flavour.blocking_body(gen, time.perf_counter() - gen.started_at))


class _Pacer:
    """Sleeps a response along its absolute schedule (perf_counter() instants), sending Dify's
    keep-alive ping every ping_interval_s of elapsed time while it waits."""

    def __init__(self, stop_event: threading.Event, started_at: float,
                 write: Optional[Callable[[bytes], None]] = None, ping: Optional[bytes] = None,
                 ping_interval_s: float = DIFY_PING_INTERVAL_S) -> None:
        self.stop_event = stop_event
        self.write = write
        self.ping = ping
        self.ping_interval_s = ping_interval_s
        self.next_ping_at = started_at + ping_interval_s

    def wait_until(self, due: float) -> bool:
        """True once perf_counter() >= due; False as soon as stop() is seen (within _STOP_POLL_S)."""
        while True:
            if self.stop_event.is_set():
                return False
            now = time.perf_counter()
            if self.write is not None and now >= self.next_ping_at:
                self.write(self.ping)
                while self.next_ping_at <= now:  # pings missed while busy collapse into this one
                    self.next_ping_at += self.ping_interval_s
            remaining = due - now
            if remaining <= 0:
                return True
            if self.write is not None:
                remaining = min(remaining, self.next_ping_at - now)
            time.sleep(min(remaining, _STOP_POLL_S))


def _is_uuid(value: Optional[str]) -> bool:
    """starlette-context's check: absent is fine (it makes one); else `uuid.UUID(value)` must parse."""
    if not value:
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def run_forever(config: MockConfig, out: TextIO = sys.stdout, *,
                stop_event: Optional[threading.Event] = None) -> int:
    """Foreground server for `sse-perf mock-server`: prints one line with the bound URL, serves
    until SIGINT/SIGTERM (or until `stop_event` is set, for callers outside the main thread),
    stops cleanly and returns 0. Raises OSError when it cannot bind."""
    stop = stop_event if stop_event is not None else threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    server = MockServer(config).start()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:
                pass  # not the main thread: only stop_event ends it
        host = config.host if ":" not in config.host else f"[{config.host}]"
        print(f"mock server listening on http://{host}:{server.port}/v1 (flavours: {', '.join(FLAVOURS)})",
              file=out, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


__all__ = ["MockConfig", "MockServer", "MockStats", "run_forever", "schedule_offsets_s", "token_text",
           "PATHS", "FLAVOURS", "ANSWER_WORDS", "REASONING_WORDS"]
