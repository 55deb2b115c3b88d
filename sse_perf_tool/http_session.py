"""The HTTP session each tester thread uses, and how a failed connection is told: no retries (a
load tester must not hide failures), the environment read once (proxies for the target, none for
loopback; a CA bundle), no ~/.netrc.

Imports records (one_line) and requests.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests

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
