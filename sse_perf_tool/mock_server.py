"""The embedded simulated LLM server: every flavour's path, each on its real wire format, over
real HTTP/1.1 on a socket. This module decides what each request gets (routing, auth, the faults
drawn, Dify's stop endpoints and its /info and /parameters helpers); the behaviour is
mock_config's, the pacing and stream writing mock_stream's, the wire mock_wire's (OpenAI) and
mock_dify's (Dify), the HTTP plumbing mock_http's. Standard library only; imports only those and
mock_tokenizer from the package, so the tester can never agree with the server it is measured
against by sharing code with it.
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Iterable, Optional, TextIO

from . import mock_tokenizer
from .mock_analysis import analysis_events, is_analysis_request
from .mock_config import FAULTS, MockConfig, pick_fault
from .mock_dify import STREAM_ERROR, DifyApp, _dify_error, _not_found, info_body, parameters_body
from .mock_http import _BodyError, _ClientGone, _Handler, _HTTPServer, _shutdown_socket, _V6Server
from .mock_stream import (DIFY_PING_INTERVAL_S, INTERRUPTED, RESET, SERVER_STOPPED, STOPPED,  # noqa: F401
                          StreamWriter, _Pacer, schedule_offsets_s)
from .mock_wire import (ANSWER_WORDS, REASONING_WORDS, BadRequest, _Flavour, _Generation,  # noqa: F401
                        _make_flavour, _OpenAIBase, _count_prompt_tokens, _openai_error, token_text)

# path -> flavour name (the names `--api` uses)
PATHS = {
    "/v1/chat-messages": "dify-chat",
    "/v1/completion-messages": "dify-completion",
    "/v1/workflows/run": "dify-workflow",
    "/v1/chat/completions": "openai-chat",
    "/v1/completions": "openai-completions",
    "/v1/messages": "anthropic-messages",
    "/v1/generate_stream": "tgi-generate",
    "/v1/responses": "openai-responses",
    "/v1/api/chat": "ollama-chat",
    "/v1/api/generate": "ollama-generate",
}
FLAVOURS = tuple(PATHS.values())
HELPER_PATHS = ("/v1/info", "/v1/parameters")  # Dify's GET helpers
# Dify's stop endpoints: POST /chat-messages/{task_id}/stop, /completion-messages/..., /workflows/tasks/...
_STOP_PATH = re.compile(r"^/v1/(?:chat-messages|completion-messages|workflows/tasks)/([^/]+)/stop$")
_HTML_PAGE = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Sign in</title></head>\n"
              "<body><h1>Sign in to continue</h1><form method=\"post\" action=\"/login\">"
              "<input name=\"user\"><input name=\"password\" type=\"password\"></form></body></html>\n")


class MockStats:
    """Counters shared by the handler threads; read them with `snapshot()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("requests", "events_sent", "errors", "connections", "active_streams",
                                      "tokenize_requests", "interrupted"), 0)
        self._extra: dict = {}  # counters of Dify's helpers and the faults (dify())

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

    def dify(self) -> dict:
        """stop_requests: Dify stop requests answered; stopped: streams a stop request ended early;
        faults: requests given each fault kind (FAULTS), by kind."""
        with self._lock:
            return {"stop_requests": self._extra.get("stop_requests", 0), "stopped": self._extra.get("stopped", 0),
                    "faults": {kind[len("fault:"):]: n for kind, n in self._extra.items()
                               if kind.startswith("fault:")}}

    def add_extra(self, name: str) -> None:
        with self._lock:
            self._extra[name] = self._extra.get(name, 0) + 1


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
        self._app = DifyApp(mode=config.dify_mode, message_end=config.message_end,
                            required_inputs=config.required_inputs, message_replace=config.message_replace)
        self._tasks: dict = {}  # Dify task_id -> (user, Event set by its stop request), while streaming
        self._tasks_lock = threading.Lock()

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

    def _flavour(self, name: str) -> _Flavour:
        return _make_flavour(name, self._app)

    def _respond_json(self, handler: _Handler, status: int, obj: Any, headers: Iterable = (),
                      head: bool = False) -> None:
        if status >= 400:
            self.stats.add("errors")
        handler.send_json(status, obj, headers, head=head)

    def _method_not_allowed(self, handler: _Handler, path: str, head: bool = False) -> bool:
        """405 for a path of the mock's in the wrong method (False: the path is not the mock's)."""
        name = PATHS.get(path)
        allow = "GET" if path in HELPER_PATHS else "POST"
        if name is None and path not in HELPER_PATHS and not _STOP_PATH.match(path):
            return False
        message = f"The method {handler.command} is not allowed for the requested URL."
        body = (self._flavour(name) if name else self._flavour("dify-chat")).error_body(
            405, "method_not_allowed", message)
        self._respond_json(handler, 405, body, headers=[("Allow", allow)], head=head)
        return True

    def _serve_other_method(self, handler: _Handler, head: bool = False) -> None:
        self.stats.add("requests")
        path = handler.path.split("?", 1)[0]
        try:
            handler.read_body()
        except (_BodyError, _ClientGone):
            handler.close_connection = True
        if handler.command in ("GET", "HEAD") and path in HELPER_PATHS:
            self._serve_helper(handler, path, head)
        elif not self._method_not_allowed(handler, path, head):
            self._respond_json(handler, 404, _not_found(path), head=head)

    def _serve_helper(self, handler: _Handler, path: str, head: bool) -> None:
        """Dify's GET /info and GET /parameters, as this app's mode and inputs make them."""
        if self.config.api_key is not None and not self._authorized(handler):
            self._respond_json(handler, 401, _dify_error(401, "unauthorized", "Access token is invalid"), head=head)
        elif path == "/v1/info":
            self._respond_json(handler, 200, info_body(self.config.dify_mode), head=head)
        else:
            self._respond_json(handler, 200, parameters_body(self.config.required_inputs), head=head)

    def _serve_post(self, handler: _Handler) -> None:
        started_at = time.perf_counter()
        self.stats.add("requests")
        seq = self._next_seq()
        path = handler.path.split("?", 1)[0]
        name = PATHS.get(path)
        flavour = self._flavour(name) if name else None
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
        stop = _STOP_PATH.match(path)
        if stop:
            self._serve_stop(handler, stop.group(1), raw)
            return
        if flavour is None:
            if not self._method_not_allowed(handler, path):
                self._respond_json(handler, 404, _not_found(path))
            return
        if self.config.api_key is not None and not self._authorized(handler, flavour):
            self._respond_json(handler, 401, flavour.unauthorized_body())
            return
        refused = getattr(flavour, "check_headers", lambda headers: None)(handler.headers)
        if refused:  # a header the real API requires (Anthropic's anthropic-version)
            self._respond_json(handler, 400, flavour.error_body(400, "", refused))
            return
        body = self._parse(handler, flavour, raw)
        if body is None:
            return

        if name == "openai-chat" and is_analysis_request(body):  # `sse-perf analyze`: the fixed analysis, no faults
            handler.send_stream_headers()
            for event in analysis_events(str(body.get("model") or "mock")):
                handler.write_chunk(event)
            handler.end_chunks()
            return

        seed = self.config.seed
        rng = random.Random(f"{seed}:{seq}") if seed is not None else random.Random()
        fault = pick_fault(self.config, rng)
        if fault is not None:
            self.stats.add_extra("fault:" + fault)
        if fault == "500":
            self._respond_json(handler, 500, flavour.error_body(500, "", "Simulated server error (mock error_rate)."))
            return
        if fault == "429":
            self._respond_json(handler, 429, flavour.rate_limit_body(),
                               headers=[("Retry-After", str(self.config.retry_after_s))])
            return
        if fault == "html":  # a proxy's or a login page, with status 200, where the stream should be
            handler.send_body(200, "text/html; charset=utf-8", _HTML_PAGE.encode("utf-8"))
            return
        gen = self._plan(seq, rng, body, flavour, started_at)
        flavour.start(gen)
        request_id = handler.headers.get("X-Request-Id") or f"mock-{seq}"
        try:
            if flavour.wants_stream(body):
                self._stream(handler, flavour, gen, request_id, fault)
            else:
                self._blocking(handler, flavour, gen, fault)
        except (_ClientGone, OSError):
            handler.close_connection = True  # client went away mid-response: nothing to say

    def _parse(self, handler: _Handler, flavour: _Flavour, raw: bytes) -> Optional[dict]:
        """The request's JSON body, validated as the real server would; None once a 400 is sent."""
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            flavour.validate(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._respond_json(handler, 400, flavour.error_body(400, "", f"Invalid JSON body: {exc}"))
            return None
        except BadRequest as exc:
            self._respond_json(handler, 400, flavour.error_body(400, "", str(exc)))
            return None
        return body

    def _serve_stop(self, handler: _Handler, task_id: str, raw: bytes) -> None:
        """Dify's stop endpoints: body {"user"}; always {"result": "success"}. The stream of that
        task ends early, properly, if the same user started it (AppQueueManager.set_stop_flag
        checks the task belongs to the user, and says nothing when it does not)."""
        flavour = self._flavour("dify-chat")
        if self.config.api_key is not None and not self._authorized(handler, flavour):
            self._respond_json(handler, 401, flavour.unauthorized_body())
            return
        refused = getattr(flavour, "check_headers", lambda headers: None)(handler.headers)
        if refused:  # a header the real API requires (Anthropic's anthropic-version)
            self._respond_json(handler, 400, flavour.error_body(400, "", refused))
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._respond_json(handler, 400, _dify_error(400, "", f"Invalid JSON body: {exc}"))
            return
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not user:
            self._respond_json(handler, 400, _dify_error(400, "", "Arg user must be provided."))
            return
        self.stats.add_extra("stop_requests")
        with self._tasks_lock:
            task = self._tasks.get(task_id)
        if task is not None and task[0] == user:
            task[1].set()
        self._respond_json(handler, 200, {"result": "success"})

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

    def _authorized(self, handler: _Handler, flavour: Optional[_Flavour] = None) -> bool:
        header = getattr(flavour, "key_header", None)
        if header:  # Anthropic: the key itself in x-api-key
            return handler.headers.get(header, "").strip() == self.config.api_key
        scheme, _, token = handler.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.config.api_key

    def _plan(self, seq: int, rng: random.Random, body: dict, flavour: _Flavour, started_at: float) -> _Generation:
        config = self.config
        tagged = config.think_tags != "off"  # tagged reasoning is answer text: every flavour has it
        reasoning_n = config.reasoning_tokens if flavour.reasoning or tagged else 0
        answer_n = config.tokens
        finish_reason = "stop"
        if config.empty_rate and rng.random() < config.empty_rate:
            reasoning_n = answer_n = 0  # the model stopped at once: a proper answer with no text
        budget = flavour.token_budget(body)
        if budget is not None and reasoning_n + answer_n > budget:
            reasoning_n = min(reasoning_n, budget)
            answer_n = min(answer_n, budget - reasoning_n)
            finish_reason = "length"
        prompt_tokens = _count_prompt_tokens(flavour.prompt_texts(body))
        return _Generation(seq=seq, rng=rng, body=body, prompt_tokens=prompt_tokens,
                           reasoning_n=reasoning_n, answer_n=answer_n, finish_reason=finish_reason,
                           started_at=started_at, created=int(time.time()), send_usage=config.usage,
                           think=config.think_tags, zero_usage=config.zero_usage)

    def _stream(self, handler: _Handler, flavour: _Flavour, gen: _Generation, request_id: str,
                fault: Optional[str] = None) -> None:
        handler.send_stream_headers(getattr(flavour, "content_type", ""))
        self.stats.add("active_streams")
        cut = threading.Event()
        if isinstance(flavour, _OpenAIBase):  # llama-cpp-python's behaviour: only its OpenAI paths
            with self._running_lock:
                self._running.add(cut)
        task_stop = threading.Event()
        task_id = flavour.task_id
        if task_id is not None:
            with self._tasks_lock:
                self._tasks[task_id] = (flavour.user(gen.body), task_stop)

        def on_token(k: int) -> None:
            self.stats.add("events_sent")
            if k == 0 and self.config.record_timings:
                self._record_first_token(request_id, gen.first_token_at or time.perf_counter())

        writer = StreamWriter(handler, flavour, gen, self.config, self._stop_event, task_stop, cut, fault, on_token)
        try:
            outcome = writer.run()
        finally:
            with self._running_lock:
                self._running.discard(cut)
            if task_id is not None:
                with self._tasks_lock:
                    self._tasks.pop(task_id, None)
            self.stats.add("active_streams", -1)
        if outcome == RESET:
            return
        if outcome == INTERRUPTED:
            # llama-cpp-python raises out of its event publisher after the [DONE]: the connection
            # closes without the body's last chunk
            self.stats.add("interrupted")
            handler.close_connection = True
            return
        if outcome == STOPPED:
            self.stats.add_extra("stopped")
        if outcome == SERVER_STOPPED:
            handler.close_connection = True  # stopped mid-stream: end the body without a terminal event
        handler.end_chunks()

    def _blocking(self, handler: _Handler, flavour: _Flavour, gen: _Generation, fault: Optional[str] = None) -> None:
        offsets = schedule_offsets_s(self.config, max(gen.total, 1), gen.rng)
        pacer = _Pacer(self._stop_event, gen.started_at)
        due = gen.started_at + offsets[-1] + (self.config.stall_s if fault == "stall" else 0.0)
        if not pacer.wait_until(due):
            handler.close_connection = True  # stopped: close without an answer
            return
        if fault == "reset":
            handler.reset()
            return
        if fault == "error":  # the model failed: Dify answers 400 completion_request_error, vLLM 500
            openai = isinstance(flavour, _OpenAIBase)
            status, code = (500, "") if openai else (400, "completion_request_error")
            self._respond_json(handler, status, flavour.error_body(status, code, STREAM_ERROR))
            return
        gen.first_token_at = gen.started_at + offsets[0]
        handler.send_json(200, flavour.blocking_body(gen, time.perf_counter() - gen.started_at))


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
           "PATHS", "FLAVOURS", "FAULTS", "HELPER_PATHS", "ANSWER_WORDS", "REASONING_WORDS"]
