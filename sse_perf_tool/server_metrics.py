"""Server-side metrics: scrape a Prometheus `/metrics` endpoint every interval (vLLM, SGLang, ...).

Imports gpu.base (Sample, Sampler, TelemetryError) only; parses with prometheus-client's text
parser, fetches with requests on its own Session.
"""

from __future__ import annotations

import math
import time
from typing import Iterable, Optional
from urllib.parse import urlsplit, urlunsplit

import requests

from .gpu.base import Sample, Sampler, TelemetryError

SOURCE = "server"

# Reported when present; a server exposes only its own, so the others are simply absent.
DEFAULT_NAMES = (
    # vLLM
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:gpu_cache_usage_perc",  # vLLM V0 and early V1
    "vllm:kv_cache_usage_perc",  # newer vLLM V1
    # SGLang
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
)


def parse_metrics(text: str, names: Iterable[str]) -> dict[str, float]:
    """Prometheus text exposition -> {name: value} for the wanted names that are present.

    A name matches a sample name exactly (`vllm:num_requests_running`,
    `vllm:prompt_tokens_total`, `..._sum`, `..._count`); a counter may also be named by its
    family name without `_total`. Samples of the same name with different labels (one per
    model, engine or GPU) are SUMMED: running requests across two served models is what load
    is on the server. For ratios such as KV-cache usage that means one value per label set adds
    up, which is exact with the usual single model per server. NaN samples are left out.
    Raises ValueError when the text cannot be parsed.
    """
    from prometheus_client.parser import text_string_to_metric_families  # see preflight()

    wanted = set(names)
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        counter_alias = family.name if family.type == "counter" and family.name in wanted else None
        for sample in family.samples:
            targets = [sample.name] if sample.name in wanted else []
            if counter_alias is not None and sample.name == counter_alias + "_total":
                targets.append(counter_alias)
            value = float(sample.value)
            if not targets or math.isnan(value):
                continue
            for name in targets:
                sums[name] = sums.get(name, 0.0) + value
    return sums


def normalise_url(url: str) -> str:
    """http(s) only; a URL with no path gets `/metrics` (where vLLM and SGLang serve them)."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TelemetryError(f"--server-metrics {text}: expected an http:// or https:// URL")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urlunsplit(parts)


class PrometheusSampler(Sampler):
    """One scrape per interval -> one Sample(source="server", index=None,
    values={prometheus_name: value}) holding the wanted names that the scrape had. A failed
    scrape leaves a gap and one warning; recovery is warned once too."""

    def __init__(self, url: str, names: Optional[list[str]] = None, timeout_s: float = 2.0):
        super().__init__()
        self.source = SOURCE
        self.url = normalise_url(url)
        self.extra_names = [n for n in (names or []) if n]
        self.names = tuple(dict.fromkeys(list(DEFAULT_NAMES) + self.extra_names))
        self.timeout_s = float(timeout_s)
        self._session: Optional[requests.Session] = None
        self._failing_since: Optional[float] = None
        self._missed = 0

    def _warn(self, message: str) -> None:
        self.warnings.append(f"{SOURCE} {self.url}: {message}")

    def preflight(self) -> None:
        """One scrape must succeed and parse. Names asked for with --server-metric that are not
        there yet only warn: some servers expose a metric after its first event."""
        try:
            import prometheus_client.parser  # noqa: F401
        except ImportError:
            raise TelemetryError(
                "--server-metrics: needs the Python package prometheus-client (pip install prometheus-client)"
            ) from None
        try:
            values = self.fetch_metrics()
        except _ScrapeError as exc:
            raise TelemetryError(f"--server-metrics {self.url}: {exc}") from None
        missing = [n for n in self.extra_names if n not in values]
        if missing:
            self._warn(f"not found (yet): {', '.join(missing)}; reported when they appear")
        if not values:
            self._warn("none of the known vLLM/SGLang metrics found; name others with --server-metric")

    def fetch_metrics(self) -> dict[str, float]:
        """One scrape -> {name: value}; _ScrapeError with a one-line reason on any failure."""
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["Accept"] = "text/plain;version=0.0.4"
        try:
            response = self._session.get(self.url, timeout=self.timeout_s)
        except requests.Timeout:
            raise _ScrapeError(f"no answer within {self.timeout_s:g} s") from None
        except requests.ConnectionError:
            raise _ScrapeError("cannot connect") from None
        except requests.RequestException as exc:
            raise _ScrapeError(f"request failed: {type(exc).__name__}") from None
        try:
            if response.status_code != 200:
                raise _ScrapeError(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
            try:
                return parse_metrics(response.text, self.names)
            except (ValueError, TypeError, IndexError) as exc:
                raise _ScrapeError(f"not Prometheus text format ({exc})") from None
        finally:
            response.close()

    def _tick(self) -> list[Sample]:
        at_ns = time.perf_counter_ns()
        try:
            values = self.fetch_metrics()
        except _ScrapeError as exc:
            if self._stop.is_set():
                return []
            self._missed += 1
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                self._warn(f"scrape failed ({exc}); gap in server metrics until it recovers")
            return []
        if self._failing_since is not None:
            gap_s = time.monotonic() - self._failing_since
            self._warn(f"scrapes recovered after a {gap_s:.1f} s gap ({self._missed} missed)")
            self._failing_since = None
            self._missed = 0
        return [Sample(source=SOURCE, index=None, at_ns=at_ns, values=dict(values))]

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class _ScrapeError(Exception):
    pass
