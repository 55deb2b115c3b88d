"""Whether an HTTP redirect of a streaming request may be followed. By default none is: requests
would send credential headers (other than Authorization) to another host and turn a 301's POST
into a GET without its body, and the request would still count as ok. With --follow-redirects,
a 307 or 308 (which keep the POST and its body) within the same origin (scheme, host, port) is
followed; anything else fails the request as `http_status`, naming the Location (masked).

Pure; imports config (masking).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from .config import mask_url

MAX_REDIRECTS = 3  # hops one request may follow
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def origin(url: str) -> tuple:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def redirect_target(status: int, location: str, url: str, follow: bool) -> tuple[str, str]:
    """(the URL to follow, "") or ("", why it is not followed: one line)."""
    target = urljoin(url, location or "")
    shown = mask_url(target)
    if not follow:
        return "", (f"HTTP {status}: redirect to {shown}, not followed (give the final URL, or "
                    "--follow-redirects for one within the same origin)")
    if origin(target) != origin(url):
        return "", f"HTTP {status}: redirect to another origin ({shown}), not followed: the API key would go there"
    if status not in (307, 308):
        return "", (f"HTTP {status}: redirect to {shown}, not followed: a {status} turns the POST into a GET "
                    "without its body (only 307 and 308 keep it)")
    return target, ""
