"""The HTTP session each tester thread uses, and how a failed connection is told: no retries (a
load tester must not hide failures), the environment read once (proxies for the target, none for
loopback; a CA bundle), no ~/.netrc. StreamPoster sends the streaming POSTs through that
session's own adapter and connection pool without requests' per-request preparation.

Imports records (one_line), requests and urllib3.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
import urllib3
from requests.cookies import extract_cookies_to_jar, get_cookie_header
from requests.structures import CaseInsensitiveDict

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

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._targets: dict = {}  # url -> (pool, the URL to send: a path, or the whole URL to a proxy, retries, request)

    def _target(self, url: str):
        target = self._targets.get(url)
        if target is None:
            session = self.session
            prepared = requests.Request("POST", url).prepare()
            adapter = session.get_adapter(url)
            pool = adapter.get_connection_with_tls_context(prepared, session.verify, proxies=session.proxies)
            adapter.cert_verify(pool, url, session.verify, None)
            target = self._targets[url] = (pool, adapter.request_url(prepared, session.proxies), adapter.max_retries,
                                           prepared)
        return target

    def post(self, url: str, body: bytes, headers: dict, timeout: float) -> StreamResponse:
        pool, path, retries, prepared = self._target(url)
        headers = CaseInsensitiveDict(headers)  # `--header 'accept: */*'` replaces Accept, as in a session
        headers["Content-Length"] = str(len(body))
        jar = self.session.cookies
        if jar and "Cookie" not in headers:
            cookie = get_cookie_header(jar, prepared)
            if cookie:
                headers["Cookie"] = cookie
        try:
            raw = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, assert_same_host=False,
                               preload_content=False, decode_content=False, retries=retries,
                               timeout=urllib3.Timeout(connect=timeout, read=timeout), chunked=False)
        except Exception as exc:
            raise _as_requests_error(exc) from exc
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
