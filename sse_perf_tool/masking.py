"""Secrets masked for display: the one masking of every output (console, files, report, history).

Imports nothing from the package. Shown masked, a key keeps its vendor prefix and, when long
enough that four characters give little away, its last four: `app-…9f3a`.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable
from urllib.parse import urlsplit

MASK = "…"
TAIL_FROM = 12  # a secret (after its prefix) of at least this many characters shows its last 4

# keys of a JSON body that hold secrets (any case, anywhere in the key: `auth`, `api_key`, `pwd`, ...)
SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|auth|bearer|credential|cookie", re.IGNORECASE)
# names of headers that hold secrets (`X-Author` and `X-Auth-Mode` do not)
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|key|passw|credential", re.IGNORECASE)
_MASKED = re.compile(r"^([A-Za-z]{2,8}-)?…(.{4})?$")
# sse-perf's own options that hold secrets (their *_file options hold paths, not secrets)
SECRET_OPTION = re.compile(r"api[_-]?key|password|passwd|secret|authorization|credential", re.IGNORECASE)


def strip_bearer(key: str) -> str:
    """'Bearer app-xxx' or 'app-xxx' -> 'app-xxx'."""
    key = key.strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    return key


def mask_secret(secret: str) -> str:
    """'app-1234567890abcd9f3a' -> 'app-…9f3a'; short secrets show nothing but the prefix; text
    already masked stays as it is (masking twice must not hide the tail it kept)."""
    secret = strip_bearer(secret)
    if _MASKED.match(secret):
        return secret
    prefix = ""
    match = re.match(r"^([A-Za-z]{2,8}-)", secret)
    if match:
        prefix = match.group(1)
    rest = secret[len(prefix):]
    tail = rest[-4:] if len(rest) >= TAIL_FROM else ""
    return f"{prefix}{MASK}{tail}"


def mask_url(url: str) -> str:
    """http://user:secret@host/v1 -> http://user:…@host/v1 (credentials in URLs are secrets too)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:{MASK}@{netloc}").geturl()


def mask_header_value(name: str, value: str) -> str:
    """A header's value as shown: masked under a secret-looking name, its auth scheme kept
    ('Bearer sk-…9999')."""
    if not SECRET_HEADER.search(name):
        return value
    scheme, sep, rest = value.strip().partition(" ")
    if sep and scheme.lower() in ("bearer", "basic", "token") and rest.strip():
        return f"{scheme} {mask_secret(rest)}"
    return mask_secret(value)


def mask_header_text(text: str) -> str:
    """'X-Token: abc…' -> 'X-Token: …' (a 'Name: value' header as given on the command line)."""
    name, sep, value = text.partition(":")
    return f"{name}{sep} {mask_header_value(name.strip(), value.strip())}" if sep else text


def mask_mapping(value: Any, secret: bool = False) -> Any:
    """A JSON value with every string under a secret-looking key masked (`api_key`, `token`, ...),
    however deep below it (`{"auth": {"pass": ...}}`)."""
    if isinstance(value, dict):
        return {k: mask_mapping(v, secret or bool(SECRET_NAME.search(str(k)))) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_mapping(v, secret) for v in value]
    if isinstance(value, str) and secret:
        return mask_secret(value)
    return value


def mask_option(name: str, value: Any) -> Any:
    """One run option as shown anywhere (defence in depth: summary.json has them masked already).
    Secret options, header lists ('Name: value') and nested bodies are masked."""
    secret = bool(SECRET_OPTION.search(name)) and not name.endswith("_file")
    if isinstance(value, str):
        return mask_secret(value) if secret else (mask_url(value) if "://" in value else value)
    if isinstance(value, dict):
        return mask_mapping(value, secret)
    if isinstance(value, (list, tuple)):
        if name in ("headers", "header"):  # 'Name: value' items
            return [mask_header_text(v) if isinstance(v, str) else v for v in value]
        return [mask_secret(v) if secret and isinstance(v, str)
                else mask_url(v) if isinstance(v, str) else v for v in value]
    return value


# -- every known secret, wherever it appears ------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")
MIN_SECRET = 4  # shorter values are not searched for (they would mask ordinary words)
_KNOWN: set = set()
_KNOWN_LOCK = threading.Lock()


def register_secrets(values: Iterable) -> None:
    """Remember the run's secrets (API keys, key-file keys, credential header values, URL and SSH
    passwords) so that `mask_known` finds them in any text: a server message that echoes a key, an
    error that quotes a URL."""
    with _KNOWN_LOCK:
        for value in values:
            if isinstance(value, str):
                bare = strip_bearer(value)
                for secret in (value.strip(), bare):
                    if len(secret) >= MIN_SECRET:
                        _KNOWN.add(secret)


def mask_text(text: str, secrets: Iterable = ()) -> str:
    """`text` with every one of `secrets` (and every URL password) masked, longest first so that a
    key inside a longer secret is not half-masked."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
    for secret in sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask_secret(secret))
    return text


def mask_known(text: str) -> str:
    """`text` with every secret `register_secrets` was told of masked: the one pass over whatever
    sse-perf prints or stores that may hold a server's words."""
    with _KNOWN_LOCK:
        known = tuple(_KNOWN)
    return mask_text(text, known)


def secret_header_values(headers: Iterable) -> list:
    """The values of ((name, value), ...) headers whose name says they hold a secret."""
    return [value for name, value in headers if SECRET_HEADER.search(name)]


def unsafe_characters(value: str) -> str:
    """Why `value` cannot go into an HTTP header (a CR, LF or other control character, or a
    character outside latin-1), or "" when it can."""
    for ch in value:
        if ch in "\r\n":
            return "a line break (CR or LF)"
        if ord(ch) < 32 and ch != "\t" or ord(ch) == 127:
            return f"a control character (U+{ord(ch):04X})"
        if ord(ch) > 255:
            return f"a character outside latin-1 ({ch!r})"
    return ""
