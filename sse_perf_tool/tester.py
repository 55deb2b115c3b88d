"""SSETester: one streaming request -> one RequestRecord. Failures become values, never exceptions.

Imports records, body_reader (the body read as it arrives), chunked (its errors), flavors (the whole
wire: path, auth headers, framing, events), tokens and
config (masking); knows nothing of threads or statistics. Timings follow
docs/metrics.md: every instant comes from one injectable monotonic clock (integer nanoseconds) and
is read right after the bytes arrive, before any parsing.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
import uuid
from array import array
from dataclasses import dataclass, replace
from typing import Callable, Optional

import requests
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from urllib3.exceptions import ReadTimeoutError

from . import __version__
from .config import has_header
from .masking import mask_text, secret_header_values
from .http_session import describe_connection_error as _describe_connection_error
from .http_session import StreamPoster, new_session
from .body_reader import READ_SIZE, BodyCut, body_reader, finish_body, release_connection, root_cause, socket_of
from .chunked import ChunkedEncodingError
from .flavors.base import Flavor, Query, RequestSettings
from .records import ErrorKind, RequestRecord
from .records import one_line as _one_line
from .redirects import MAX_REDIRECTS, REDIRECT_STATUSES, redirect_target
from .conversation import Conversation
from .stream_events import EventStream, StreamFailure
from .stream_reader import prepare as prepare_handoff
from .stream_reader import process_reader
from .tokens import count_texts, estimate_tokens

log = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 65536


@dataclass(frozen=True)
class TesterSettings:
    url: str
    timeout_s: float = 60.0
    headers: tuple = ()  # extra ((name, value), ...) from --header
    request: RequestSettings = RequestSettings()
    # X-Request-Id: <prefix><request_id as 12 hex digits> (a UUID with request_id_prefix()); "" sends none.
    # An X-Request-Id among `headers` (--header) is sent as given instead.
    request_id_prefix: str = ""
    extra_body: tuple = ()  # ((key, value), ...) merged into every request body (--extra-body)
    think_tag: str = "think"  # a leading <think_tag>…</think_tag> in the answer is reasoning; "" = off (--think-tags)
    turns: int = 1  # each thread holds a conversation of this many turns (--turns), on flavours that can
    follow_redirects: bool = False  # --follow-redirects: 307/308 within the same origin are followed
    verify: object = None  # TLS: --ca-bundle's path, False for --insecure, None for the default (and the environment)
    request_timeout_s: Optional[float] = None  # --request-timeout: the whole request, pings or not
    idle_timeout_s: Optional[float] = None  # --idle-timeout: between data events (pings do not count)
    stop_timeout_s: float = 2.0  # a cancelled Dify generation is stopped at the server within this
    # --cancel-rate / --cancel-after: this share of the requests (drawn with cancel_seed) is given up
    # after cancel_after_s seconds or cancel_after_tokens token events: outcome abandoned
    cancel_fraction: float = 0.0
    cancel_after_s: Optional[float] = None
    cancel_after_tokens: Optional[int] = None
    cancel_seed: int = 0


TOKEN_CHECK_EVERY = 20  # every 20th usage-counted answer of a tester is counted by the tokenizer too

_Failure = StreamFailure  # a request's failure: its error kind and message


class SSETester:
    """Sends requests one at a time for one worker thread.

    `events_received` counts token-bearing events over the tester's life; the aggregator reads
    it (without a lock: a plain int read) for the live rate. `abort()` may be called from another
    thread: it makes the request in flight end promptly as `cancelled`.
    """

    def __init__(
        self,
        flavor: Flavor,
        settings: TesterSettings,
        token_counter,
        clock: Callable[[], int] = time.perf_counter_ns,
        session: Optional[requests.Session] = None,
        reader="auto",
    ):
        self.flavor = flavor
        self.settings = settings
        self.token_counter = token_counter
        self.clock = clock
        self.session = session or new_session(settings.url, settings.verify)
        # the streaming POST through the session's adapter (a session of a test's own is used as given)
        self._poster = StreamPoster(self.session) if isinstance(self.session, requests.Session) else None
        # the process's shared body reader ("auto": when this tester keeps the reader's clock), a
        # SharedReader of a test's own, or None: this thread reads its bodies itself
        self._reader = reader if reader != "auto" else (process_reader() if clock is time.perf_counter_ns else None)
        if self._poster is not None:
            if self._reader is not None:
                self._poster.watcher = self._reader.watch  # the reader reads each answer from the moment it went out
            self._poster.prepare(settings.url)  # the connection pool, made now rather than on the first request
        self.events_received = 0
        self._aborted = False
        self._response = None
        self._lock = threading.Lock()
        self._current: Optional[RequestRecord] = None
        self._finished = True
        base_headers = {
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
            "Content-Type": "application/json",
            "Cache-Control": "no-cache",
            "User-Agent": f"sse-perf/{__version__}",
            **flavor.wire_headers,  # what the flavour's API requires on every request (Anthropic's version)
        }
        base_headers.update(dict(settings.headers))
        self._base_headers = base_headers
        self._request_id_prefix = "" if has_header(settings.headers, "X-Request-Id") else settings.request_id_prefix
        self._extra_body = dict(settings.extra_body)
        self._secrets = tuple(secret_header_values(settings.headers))  # masked wherever a message quotes them
        self._conversation = Conversation(settings.turns, flavor.conversation)
        self._handles: dict = {}
        path = flavor.path
        self._base_url = settings.url[: -len(path)] if path and settings.url.endswith(path) else settings.url
        # --tokenizer server: the answer is counted after the request, by the counting stage
        self._defer_count = bool(getattr(token_counter, "deferred", False))
        self._usage_seen = 0  # answers the server's usage counted (every TOKEN_CHECK_EVERY-th is counted here too)

    # -- cross-thread control --
    def abort(self) -> None:
        """Stop the request in flight (Ctrl-C, end of the grace period). Safe from any thread."""
        self._aborted = True
        response = self._response
        if response is None:
            return
        sock = socket_of(response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer or by the reading thread: nothing left to stop

    def take_in_flight(self) -> Optional[RequestRecord]:
        """For a worker that did not stop in time: claim its request as `cancelled` now.

        Returns the record (or None when nothing is in flight); the worker's own result for that
        request is then dropped by `run`, so a request is never recorded twice. The record is a
        snapshot: the worker thread may still be reading into its own copy (setting `ok`, ITL,
        tokens), and must not change a record that is already on its way to the writer.
        """
        with self._lock:
            if self._finished or self._current is None:
                return None
            self._finished = True
            current = self._current
            record = replace(current, token_times_ns=array("q", current.token_times_ns))
        record.ended_ns = self.clock()
        record.ok = False
        record.error_kind = ErrorKind.CANCELLED
        record.error = "cancelled while in flight (stopped by the user or the end of the run)"
        return record

    # -- one request --
    def run(self, request_id: int, thread_id: int, query: Query, api_key: Optional[str],
            scheduled_ns: Optional[int] = None) -> Optional[RequestRecord]:
        """Send one request and read its stream to the end. None if `take_in_flight` claimed it.

        `scheduled_ns` (open loop): when the request was due, on the same clock; the record then
        measures its queue time and the latencies from the scheduled instant too."""
        request, turn = self._conversation.settings(self.settings.request, thread_id)
        payload = self.flavor.build_body(query, request)
        if self._extra_body:
            merge_body(payload, self._extra_body)  # --extra-body wins over the flavour's own fields
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = dict(self._base_headers)
        if api_key:
            headers.update(self.flavor.auth_headers(api_key))
        if self._request_id_prefix:
            headers["X-Request-Id"] = f"{self._request_id_prefix}{request_id:012x}"
        record = RequestRecord(request_id, thread_id, query.text, query.dataset, time.time(), 0,
                               scheduled_ns=scheduled_ns)
        with self._lock:
            self._current = record
            self._finished = False
        record.conversation_turn = turn
        answer_parts: list[str] = []
        reasoning_parts: list[str] = []
        usage: dict = {}
        self._handles = {}  # the conversation and task the server names in this stream
        record.sent_ns = self.clock()
        try:
            if self._aborted:
                raise _Failure(ErrorKind.CANCELLED, "cancelled before it was sent")
            self._exchange(record, body, headers, answer_parts, reasoning_parts, usage)
            record.ok = True
        except _Failure as failure:
            record.error_kind = ErrorKind.CANCELLED if self._aborted else failure.kind
            record.error = failure.message if not self._aborted else "cancelled while in flight (stopped by the user or the end of the run)"
        except Exception as exc:  # the last guard: no exception may escape a worker thread
            # sse-perf's own bug, not the server's fault: `internal`, with the traceback on stderr
            record.error_kind = ErrorKind.CANCELLED if self._aborted else ErrorKind.INTERNAL
            record.error = _one_line(f"sse-perf bug: {type(exc).__name__}: {exc}")
            if not self._aborted and _first_of_its_kind(exc):  # one traceback per kind of bug, not per request
                log.error("request %s: unexpected %s in sse-perf (please report this; later ones of this kind "
                          "are recorded without a traceback)", request_id, type(exc).__name__, exc_info=True)
        finally:
            response, self._response = self._response, None
            if response is not None:
                response.close()
        if record.ended_ns is None:
            record.ended_ns = self.clock()
        if record.error_kind in (ErrorKind.CANCELLED, ErrorKind.ABANDONED) and self._handles.get("task_id") \
                and self.flavor.stop_path:
            record.stop_sent = self._stop_at_server(self._handles["task_id"], request.user, headers)
        self._conversation.after(record.ok, query.text, "".join(answer_parts), self._handles.get("conversation_id"))
        if record.error:  # a server that echoes the key back, a Location with a password
            record.error = mask_text(record.error, (api_key, *self._secrets))
        try:
            self._count_tokens(record, "".join(answer_parts), "".join(reasoning_parts), usage)
        except Exception:  # a tokenizer's own failure must not end the worker thread or lose the record
            record.output_tokens, record.token_source = estimate_tokens("".join(answer_parts)), "estimate"
            record.pending_text = None
        with self._lock:
            if self._finished:  # claimed by take_in_flight meanwhile
                return None
            self._finished = True
        return record

    def _exchange(self, record, body, headers, answer_parts, reasoning_parts, usage) -> None:
        url = self.settings.url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._post(url, body, headers)
            self._response = response
            if self._aborted:
                raise _Failure(ErrorKind.CANCELLED, "cancelled")
            record.http_status = response.status_code
            if response.status_code not in REDIRECT_STATUSES:
                break
            url, refused = redirect_target(response.status_code, response.headers.get("Location", ""), url,
                                           self.settings.follow_redirects)
            if refused:
                raise _Failure(ErrorKind.HTTP_STATUS, _one_line(refused))
            record.redirects += 1
            response.close()
        else:
            raise _Failure(ErrorKind.HTTP_STATUS, f"more than {MAX_REDIRECTS} redirects")
        if not 200 <= response.status_code < 300:
            kind = ErrorKind.RATE_LIMITED if response.status_code == 429 else ErrorKind.HTTP_STATUS
            if kind is ErrorKind.RATE_LIMITED:
                record.retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
            raise _Failure(kind, self._http_error_message(response))
        content_type = response.headers.get("Content-Type", "").lower()
        if content_type.startswith(("application/json", "text/html")):  # an answer, or a proxy's or WAF's page
            snippet = _printable(self._read_limited(response)[:300].decode("utf-8", "replace"))
            raise _Failure(ErrorKind.PROTOCOL, _one_line(
                f"expected {EXPECTED_TYPE.get(self.flavor.framing, 'an event stream')}, got {content_type}: {snippet}"))
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            raise _Failure(ErrorKind.PROTOCOL, f"the stream came compressed (Content-Encoding: {encoding}) though "
                           "sse-perf asked for identity: a proxy in between buffers and compresses it")
        self._read_stream(record, response, answer_parts, reasoning_parts, usage)

    def _post(self, url: str, body: bytes, headers: dict):
        timeout = self.settings.timeout_s
        try:  # never a redirect followed by the HTTP library: it would send credential headers on to
            if self._poster is not None:  # another host, and turn a 301's POST into a GET
                return self._poster.post(url, body, headers, timeout)
            return self.session.post(url, data=body, headers=headers, stream=True, timeout=(timeout, timeout),
                                     allow_redirects=False)
        except requests.exceptions.ConnectTimeout:
            raise _Failure(ErrorKind.TIMEOUT, f"connect timed out after {timeout:g} s") from None
        except requests.exceptions.ReadTimeout:
            raise _Failure(ErrorKind.TIMEOUT, f"no response within {timeout:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise _Failure(ErrorKind.TLS, _one_line(f"TLS: {root_cause(exc)} (--ca-bundle PATH names the CA, "
                                                    "--insecure skips the check)")) from None
        except requests.exceptions.ConnectionError as exc:
            if "BadStatusLine" in str(exc) or "LineTooLong" in str(exc):  # answered, but not in HTTP
                raise _Failure(ErrorKind.PROTOCOL, "the server's answer is not HTTP (a bad status line)") from None
            raise _Failure(ErrorKind.CONNECT, _describe_connection_error(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise _Failure(ErrorKind.CONNECT, _one_line(f"{type(exc).__name__}: {exc}")) from None

    def _read_stream(self, record, response, answer_parts, reasoning_parts, usage) -> None:
        handoff = prepare_handoff(response) if self._reader is not None else None
        if handoff is None:  # this thread reads the body itself
            limits = [t for t in (self.settings.request_timeout_s, self.settings.idle_timeout_s) if t]
            # a silent stream must not outlast --request-timeout or --idle-timeout: each read waits at most as long
            read, complete, restore = body_reader(response, min([self.settings.timeout_s, *limits]))
            try:
                self._read_events(record, response, read, complete, answer_parts, reasoning_parts, usage)
            finally:
                restore()
            return
        sock, body, early, restore = handoff
        stream = EventStream(record, self.flavor, self, self.settings, answer_parts, reasoning_parts, usage,
                             self._handles)
        try:
            clean = self._reader.read(sock, stream, body, early, self.flavor.end_event)
        finally:
            restore()
        if clean:  # the whole body and nothing after it: the connection carries the next request
            release_connection(response)

    def _read_events(self, record, response, read, complete, answer_parts, reasoning_parts, usage) -> None:
        """The body read on this thread: each read's bytes stamped with the clock right after it."""
        clock = self.clock
        stream = EventStream(record, self.flavor, self, self.settings, answer_parts, reasoning_parts, usage,
                             self._handles)
        feed = stream.feed
        while True:
            try:
                chunk = read(READ_SIZE)
            except (ReadTimeoutError, TimeoutError):
                now = clock()
                stream.check_limits(now)  # --request-timeout or --idle-timeout ran out during the wait
                if now - stream.last_byte_ns < stream.timeout_s * 1e9:  # a read limited by it: wait on
                    continue
                stream.stalled(now)
            except ChunkedEncodingError as exc:
                stream.malformed(exc, clock())
            except (Urllib3ProtocolError, OSError, http.client.HTTPException) as exc:
                stream.broken(root_cause(exc), clock())
            now = clock()
            if not chunk:
                stream.closed(now)
                return
            if feed(chunk, now):
                self._finish(response, read, complete)
                return

    def _stop_at_server(self, task_id: str, user: str, headers: dict) -> bool:
        """Stop a cancelled generation at the server (Dify's stop endpoint), so that it does not go
        on generating for nobody; bounded by stop_timeout_s. True when the server said yes."""
        url = self._base_url + self.flavor.stop_path.format(task_id=task_id)
        try:
            response = self.session.post(url, json={"user": user}, headers=headers,
                                         timeout=(self.settings.stop_timeout_s, self.settings.stop_timeout_s))
            response.close()
            return 200 <= response.status_code < 300
        except requests.exceptions.RequestException:
            return False

    def _finish(self, response, read, complete) -> None:
        try:
            finish_body(response, read, complete)
        except BodyCut as cut:
            raise _Failure(ErrorKind.TRUNCATED, _one_line(f"body cut short after {self.flavor.end_event}: {cut}")) from None

    def _http_error_message(self, response) -> str:
        raw = self._read_limited(response)
        message = None
        try:
            message = self.flavor.parse_error_body(raw)
        except Exception as exc:  # a malformed error body must not hide the status itself
            message = f"(unreadable error body: {type(exc).__name__})"
        if not message:
            message = raw.decode("utf-8", "replace").strip()
        if not message:  # llama-cpp-python answers a non-UUID X-Request-Id so (starlette-context)
            reason = f"{response.reason} " if response.reason else ""
            message = f"{reason}(empty {response.status_code} body)"
        return _one_line(f"HTTP {response.status_code}: {message}")

    def _read_limited(self, response) -> bytes:
        try:
            return response.raw.read(ERROR_BODY_LIMIT) or b""
        except Exception as exc:  # the status is what matters; the body is a courtesy
            return f"(body unreadable: {type(exc).__name__})".encode()

    def _count_tokens(self, record: RequestRecord, answer: str, reasoning: str, usage: dict) -> None:
        """Server usage first; else the tokenizer on the whole text; else the estimate (docs/metrics.md).
        A request with neither usage nor text counted nothing: its token_source stays None (0 tokens).
        With --tokenizer server the texts wait on the record for the counting stage."""
        record.output_chars = len(answer)
        record.prompt_tokens = usage.get("prompt_tokens")
        if usage.get("completion_tokens") == 0 and (answer or reasoning):
            usage = {k: v for k, v in usage.items() if k != "completion_tokens"}  # 0 tokens for text: no count
        if "completion_tokens" in usage:
            record.output_tokens = usage["completion_tokens"]
            record.token_source = "usage"
            record.reasoning_tokens = usage.get("reasoning_tokens")
            self._usage_seen += 1  # summary tokens.check: does the tokenizer agree with the server's usage?
            if self._usage_seen % TOKEN_CHECK_EVERY == 0 and answer and not self._defer_count:
                checked, _, source = count_texts(self.token_counter, answer, reasoning)
                if source != "estimate":  # the tokenizer's count of the same text, to check usage against
                    record.tokenizer_tokens = checked
            if record.reasoning_tokens is None and reasoning and not self._defer_count:
                record.reasoning_tokens = count_texts(self.token_counter, "", reasoning)[1]
            return
        if not answer and not reasoning:  # nothing to count (an empty answer, or a failure before any text)
            return
        if self._defer_count and (answer or reasoning):
            record.pending_text = (answer, reasoning)
            record.reasoning_tokens = usage.get("reasoning_tokens")
            return
        record.output_tokens, record.reasoning_tokens, record.token_source = count_texts(
            self.token_counter, answer, reasoning)
        if "reasoning_tokens" in usage:
            record.reasoning_tokens = usage["reasoning_tokens"]

    def close(self) -> None:
        self.session.close()


def _retry_after_s(value) -> Optional[float]:
    """A Retry-After header's delay in seconds (the delta-seconds form; an HTTP date is not waited for)."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < float("inf") else None


EXPECTED_TYPE = {"sse": "text/event-stream", "ndjson": "application/x-ndjson"}


def _printable(text: str) -> str:
    """A body's first characters as one readable line: control characters become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def merge_body(body: dict, extra: dict) -> dict:
    """--extra-body into a request body: objects merge key by key (so `{"stream_options":
    {"continuous_usage_stats": true}}` keeps `include_usage`), anything else replaces."""
    for key, value in extra.items():
        mine = body.get(key)
        if isinstance(value, dict) and isinstance(mine, dict):
            body[key] = merge_body(dict(mine), value)
        else:
            body[key] = value
    return body


_BUGS_SEEN: set = set()
_BUGS_LOCK = threading.Lock()


def _first_of_its_kind(exc: BaseException) -> bool:
    key = (type(exc).__name__, str(exc)[:80])
    with _BUGS_LOCK:
        if key in _BUGS_SEEN:
            return False
        _BUGS_SEEN.add(key)
        return True


def request_id_prefix() -> str:
    """The first 24 characters of a random UUID4, so that with the request id as 12 hex digits every
    X-Request-Id is a valid UUID (llama-cpp-python refuses anything else with an empty 400), unique
    within the run and across runs (vLLM keys its requests on it)."""
    return str(uuid.uuid4())[:24]
