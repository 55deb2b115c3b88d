"""The HTTP session each tester thread uses, and how a failed connection is told: no retries (a
load tester must not hide failures), the environment read once (proxies for the target, none for
loopback; a CA bundle), no ~/.netrc. StreamPoster sends the streaming POSTs through that
session's own adapter and connection pool without requests' per-request preparation.

Imports records (one_line), libc, requests and urllib3.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import threading
from urllib.parse import urlsplit

import requests
import urllib3
from requests.cookies import extract_cookies_to_jar, get_cookie_header
from requests.structures import CaseInsensitiveDict

from . import libc
from .records import one_line

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK or host.startswith("127.")


def proxies_for(url: str) -> dict:
    """The proxies HTTP(S)_PROXY/NO_PROXY give for this URL; none for a loopback target (a proxy
    never reaches this machine's own loopback: a dead corporate proxy would fail every --demo
    request as `connect` without a word of a proxy)."""
    if not url or is_loopback(url):
        return {}
    return requests.utils.get_environ_proxies(url)


def new_session(url: str = "", verify=None) -> requests.Session:
    """One session per thread; no retries (a load tester must not hide failures).

    The environment is read once here, not on every request as requests does by default (a
    netrc lookup and proxy matching per request cost CPU at high rates): proxies from
    HTTP(S)_PROXY/NO_PROXY for this URL (none for loopback) and a CA bundle from
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (`verify`: --ca-bundle's path, or False for --insecure, wins).
    A ~/.netrc entry is not used: its Basic auth would replace the API key's Authorization header.
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False
    session.proxies.update(proxies_for(url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    if verify is not None:  # --ca-bundle PATH, or --insecure (False): wins over the environment
        session.verify = verify
        if verify is False:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # said once, at the start
    return session


class _QuietSocket(socket.socket):
    """A plain TCP socket whose settimeout() makes no system call when the timeout is already the
    one asked for. urllib3 sets the socket's timeout twice per request (to send, and to read the
    head), always to the same value on a tester's connection, and each call is an ioctl that gives
    up the interpreter lock and waits to get it back behind the shared reader."""

    __slots__ = ()

    def settimeout(self, value) -> None:
        if value != self.gettimeout():
            super().settimeout(value)


# The thread's watcher while its StreamPoster sends (watcher(sock): a raw file to read the
# response head from, or None), and the file it gave for the response being made.
_WATCH = threading.local()


class _MadeFile:
    """Stands in for the socket when http.client makes the response: its file is the watcher's."""

    __slots__ = ("raw",)

    def __init__(self, raw) -> None:
        self.raw = raw

    def makefile(self, mode: str):
        return io.BufferedReader(self.raw)


class _WatchedResponse(http.client.HTTPResponse):
    """http.client's response, reading from the watcher's file where one was given."""

    def __init__(self, sock, *args, **kwargs) -> None:
        raw = getattr(_WATCH, "raw", None)
        if raw is not None:
            _WATCH.raw = None
            sock = _MadeFile(raw)
        super().__init__(sock, *args, **kwargs)


class _OneWrite:
    """Mixed into urllib3's connection classes for the testers' pools: a request whose body is
    bytes goes out in one write, head and body together (urllib3 writes them apart: two system
    calls, each giving up the interpreter lock, and on a socket with a timeout a poll before each),
    and a plain socket becomes a _QuietSocket when it connects. What is sent is byte for byte what
    urllib3 would send."""

    _held = None  # the head, while its body is on its way
    response_class = _WatchedResponse

    def getresponse(self):
        """With a watcher (the shared reader): the answer is read off the socket from the moment
        the request went out, each read stamped, and the head is parsed from those bytes."""
        watcher = getattr(_WATCH, "watcher", None)
        raw = watcher(self.sock) if watcher is not None and type(self.sock) is _QuietSocket else None
        if raw is None:
            return super().getresponse()
        _WATCH.raw = raw
        try:
            return super().getresponse()
        except BaseException:
            raw.close()  # the socket is the connection's again, closed with it
            raise
        finally:
            _WATCH.raw = None

    def connect(self) -> None:
        super().connect()
        if type(self.sock) is socket.socket:
            self.sock.__class__ = _QuietSocket

    @property
    def is_connected(self) -> bool:
        """urllib3's check before it reuses the connection (has the server closed it?), asked with
        a poll that holds the interpreter lock on a plain socket (a zero-timeout poll never blocks)."""
        sock = self.sock
        if type(sock) is _QuietSocket and libc.AVAILABLE:
            readable = libc.readable_now(sock.fileno())
            if readable is not None:
                return not readable
        return super().is_connected

    def request(self, method, url, body=None, headers=None, **options) -> None:
        if not isinstance(body, bytes) or not body or options.get("chunked"):
            return super().request(method, url, body=body, headers=headers, **options)
        self._held = b""
        try:
            super().request(method, url, body=body, headers=headers, **options)
        except BaseException:
            self._held = None  # nothing half-sent: the head is dropped with the failed request
            raise
        held, self._held = self._held, None
        if held:  # no body write came (urllib3 changed): the head still goes
            super().send(held)

    def send(self, data) -> None:
        held = self._held
        if held is None:
            return super().send(data)
        if not held:  # the head: held for its body
            self._held = bytes(data)
            return None
        self._held = None
        data = held + bytes(data)
        sock = self.sock
        if type(sock) is _QuietSocket and libc.AVAILABLE:  # a request fits the empty buffer of a reused connection
            sent = libc.send_ready(sock.fileno(), data)
            if sent == len(data):
                return None
            data = data[sent:]
        return super().send(data)


_LEAN_CLASSES: dict = {}


def lean_connection_class(cls):
    """`cls` (a urllib3 connection class) with _OneWrite mixed in, made once per class."""
    lean = _LEAN_CLASSES.get(cls)
    if lean is None:
        lean = _LEAN_CLASSES[cls] = type("Lean" + cls.__name__, (_OneWrite, cls), {})
    return lean


class StreamResponse:
    """What the tester reads of a streaming response, as requests' Response names it: status_code,
    reason, headers (case-insensitive), raw (urllib3's response, read by body_reader and the
    shared reader) and close()."""

    __slots__ = ("raw",)

    def __init__(self, raw) -> None:
        self.raw = raw

    @property
    def status_code(self) -> int:
        return self.raw.status

    @property
    def reason(self) -> str:
        return self.raw.reason

    @property
    def headers(self):
        return self.raw.headers

    def close(self) -> None:
        """As requests' Response.close(): the body is dropped, a connection still held goes back."""
        self.raw.close()
        self.raw.release_conn()


class StreamPoster:
    """The testers' streaming POST: requests' own adapter, connection pool, TLS settings and proxies
    (so --ca-bundle, --insecure, HTTP(S)_PROXY/NO_PROXY and the loopback rule mean what they mean
    for any request of the session), handed straight to urllib3. requests spends about 0.7 ms of
    CPU per request preparing and wrapping it (URL parsing, settings merged, hooks, the cookie
    jar), and at hundreds of requests a second that time, each piece of it taken with the
    interpreter lock, is what delays the shared reader. Errors are raised as the requests
    exceptions the adapter would raise. Headers are merged without regard to case, the later
    winning, as the session merges them. Cookies the server sets go into the session's own jar
    (so its other requests, as a Dify stop, carry them too) and are sent back as it would."""

    def __init__(self, session: requests.Session, watcher=None) -> None:
        self.session = session
        # watcher(sock) -> a raw file for the response head, or None: the shared reader's watch
        self.watcher = watcher
        self._targets: dict = {}  # url -> (pool, the URL to send: a path, or the whole URL to a proxy, retries, request)

    def _target(self, url: str):
        target = self._targets.get(url)
        if target is None:
            session = self.session
            prepared = requests.Request("POST", url).prepare()
            adapter = session.get_adapter(url)
            pool = adapter.get_connection_with_tls_context(prepared, session.verify, proxies=session.proxies)
            try:
                adapter.cert_verify(pool, url, session.verify, None)
            except OSError as exc:  # the CA bundle is not there (any more): this request's TLS fails
                raise requests.exceptions.SSLError(str(exc)) from None
            if not issubclass(pool.ConnectionCls, _OneWrite):  # before it makes its first connection
                pool.ConnectionCls = lean_connection_class(pool.ConnectionCls)
            target = self._targets[url] = (pool, adapter.request_url(prepared, session.proxies), adapter.max_retries,
                                           prepared)
        return target

    def prepare(self, url: str) -> None:
        """Make the pool for `url` now (no connection yet), so that the first request costs what the
        later ones do. What cannot be made (a CA bundle that is not there) is left to the first
        request, which fails with it as any request would."""
        try:
            self._target(url)
        except (ValueError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            return  # the first request makes it again and turns the error into its record

    def post(self, url: str, body: bytes, headers: dict, timeout: float) -> StreamResponse:
        pool, path, retries, prepared = self._target(url)
        headers = CaseInsensitiveDict(headers)  # `--header 'accept: */*'` replaces Accept, as in a session
        headers["Content-Length"] = str(len(body))
        jar = self.session.cookies
        if jar and "Cookie" not in headers:
            cookie = get_cookie_header(jar, prepared)
            if cookie:
                headers["Cookie"] = cookie
        _WATCH.watcher = self.watcher
        try:
            raw = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, assert_same_host=False,
                               preload_content=False, decode_content=False, retries=retries,
                               timeout=urllib3.Timeout(connect=timeout, read=timeout), chunked=False)
        except Exception as exc:
            raise _as_requests_error(exc) from exc
        finally:
            _WATCH.watcher = None
        if "set-cookie" in raw.headers:  # expiry, deletion, path and domain as the session's jar has them
            extract_cookies_to_jar(jar, prepared, raw)
        return StreamResponse(raw)


def _as_requests_error(exc: Exception) -> Exception:
    """urllib3's exception as requests' adapter raises it (requests/adapters.py, HTTPAdapter.send)."""
    from urllib3 import exceptions as u

    if isinstance(exc, u.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, u.ConnectTimeoutError) and not isinstance(reason, u.NewConnectionError):
            return requests.exceptions.ConnectTimeout(exc)
        if isinstance(reason, u.ProxyError):
            return requests.exceptions.ProxyError(exc)
        if isinstance(reason, u.SSLError):
            return requests.exceptions.SSLError(exc)
        return requests.exceptions.ConnectionError(exc)
    if isinstance(exc, u.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, u.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(exc)
    if isinstance(exc, u.ProxyError):
        return requests.exceptions.ProxyError(exc)
    if isinstance(exc, (u.ProtocolError, u.ClosedPoolError, OSError)):
        return requests.exceptions.ConnectionError(exc)
    if isinstance(exc, u.HTTPError):
        return requests.exceptions.RequestException(exc)
    return exc


def describe_connection_error(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    for needle, label in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("Connection reset", "connection reset before the response"),
        ("RemoteDisconnected", "server closed the connection before responding"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
    ):
        if needle in text:
            return label
    return one_line(f"connection failed: {text}")
