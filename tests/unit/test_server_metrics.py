"""Server metrics without a socket: Prometheus text parsed with prometheus-client's parser, the URL
rule, and the sampler's HTTP paths (the Accept header, HTTP errors, connection errors and
timeouts, a body that is not Prometheus text, a gap and its recovery) with requests answered by
`responses`. Scraping a real loopback server: tests/integration/test_server_metrics.py."""

from __future__ import annotations

import re

import pytest
import requests
import responses

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.server_metrics import DEFAULT_NAMES, PrometheusSampler, normalise_url, parse_metrics

from prometheus_texts import SGLANG_TEXT, VLLM_TEXT


# -- parsing --
def test_vllm_defaults_are_summed_across_label_sets():
    values = parse_metrics(VLLM_TEXT, DEFAULT_NAMES)
    assert values == {
        "vllm:num_requests_running": 5.0,  # 3 + 2 over the two models
        "vllm:num_requests_waiting": 1.0,
        "vllm:gpu_cache_usage_perc": 0.25,
    }  # absent names (kv_cache_usage_perc, sglang:*) are simply not reported


def test_sglang_defaults():
    assert parse_metrics(SGLANG_TEXT, DEFAULT_NAMES) == {
        "sglang:num_running_reqs": 7.0,
        "sglang:num_queue_reqs": 2.0,
        "sglang:token_usage": 0.5,
    }


def test_extra_names_match_sample_names_and_counter_family_names():
    names = ["vllm:prompt_tokens_total", "vllm:prompt_tokens", "vllm:e2e_request_latency_seconds_count",
             "vllm:e2e_request_latency_seconds", "process_open_fds", "absent_metric"]
    values = parse_metrics(VLLM_TEXT, names)
    assert values == {
        "vllm:prompt_tokens_total": 1234.0,
        "vllm:prompt_tokens": 1234.0,  # a counter named without _total
        "vllm:e2e_request_latency_seconds_count": 4.0,
        "process_open_fds": 42.0,
    }  # a histogram's family name matches nothing: summing its buckets would be meaningless


def test_nan_samples_are_left_out():
    text = "# TYPE a gauge\na{x=\"1\"} NaN\na{x=\"2\"} 2.0\n# TYPE b gauge\nb NaN\n"
    assert parse_metrics(text, ["a", "b"]) == {"a": 2.0}


def test_unparseable_text_raises():
    with pytest.raises(ValueError):
        parse_metrics("<html><body>login</body></html>\n", DEFAULT_NAMES)


def test_normalise_url():
    assert normalise_url("http://h:8000") == "http://h:8000/metrics"
    assert normalise_url("http://h:8000/") == "http://h:8000/metrics"
    assert normalise_url("https://h/custom/metrics") == "https://h/custom/metrics"
    for bad in ("h:8000/metrics", "ftp://h/metrics", ""):
        with pytest.raises(TelemetryError, match="--server-metrics"):
            normalise_url(bad)


# -- the sampler's HTTP paths, with requests answered by `responses` (no socket) --
URL = "http://vllm.test:8000/metrics"


@pytest.fixture
def http():
    """Every request through `requests` is answered by what the test registered; an unregistered
    URL raises ConnectionError, and nothing reaches the network."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_scrape_sends_the_prometheus_accept_header_and_returns_the_wanted_names(http):
    http.add(responses.GET, URL, body=VLLM_TEXT, content_type="text/plain; version=0.0.4")
    sampler = PrometheusSampler("http://vllm.test:8000", names=["vllm:prompt_tokens_total"])
    assert sampler.url == URL
    sampler.preflight()
    assert sampler.fetch_metrics() == {"vllm:num_requests_running": 5.0, "vllm:num_requests_waiting": 1.0,
                                       "vllm:gpu_cache_usage_perc": 0.25, "vllm:prompt_tokens_total": 1234.0}
    assert [call.request.headers["Accept"] for call in http.calls] == ["text/plain;version=0.0.4"] * 2
    assert sampler.warnings == []


@pytest.mark.parametrize("status, reason", [(500, "Internal Server Error"), (503, "Service Unavailable"),
                                            (401, "Unauthorized")])
def test_an_http_error_fails_preflight_with_its_status(http, status, reason):
    http.add(responses.GET, URL, body="oops", status=status)
    with pytest.raises(TelemetryError) as info:
        PrometheusSampler(URL).preflight()
    assert str(info.value) == f"--server-metrics {URL}: HTTP {status} {reason}"


@pytest.mark.parametrize("error, message", [
    (requests.ConnectionError("refused"), "cannot connect"),
    (requests.ConnectTimeout("slow"), "no answer within 0.5 s"),
    (requests.ReadTimeout("slow"), "no answer within 0.5 s"),
    (requests.TooManyRedirects("loop"), "request failed: TooManyRedirects"),
], ids=["connection-error", "connect-timeout", "read-timeout", "other-request-error"])
def test_a_failed_request_fails_preflight_with_one_line_saying_why(http, error, message):
    http.add(responses.GET, URL, body=error)
    with pytest.raises(TelemetryError) as info:
        PrometheusSampler(URL, timeout_s=0.5).preflight()
    assert str(info.value) == f"--server-metrics {URL}: {message}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("body", ["<html><body>login</body></html>\n", '{"status": "ok"}\n',
                                  'vllm:num_requests_running{model_name="a" 3\n', "vllm:num_requests_running abc\n"],
                         ids=["html-login-page", "json", "unclosed-labels", "value-not-a-number"])
def test_a_body_that_is_not_prometheus_text_fails_preflight(http, body):
    http.add(responses.GET, URL, body=body, status=200)
    with pytest.raises(TelemetryError, match=r"^--server-metrics http://vllm\.test:8000/metrics: not Prometheus text format"):
        PrometheusSampler(URL).preflight()


def test_an_endpoint_without_known_metrics_or_the_asked_ones_only_warns(http):
    http.add(responses.GET, URL, body="# TYPE up gauge\nup 1\n")
    sampler = PrometheusSampler(URL, names=["sglang:gen_throughput"])
    sampler.preflight()
    assert sampler.warnings == [
        f"server {URL}: not found (yet): sglang:gen_throughput; reported when they appear",
        f"server {URL}: none of the known vLLM/SGLang metrics found; name others with --server-metric",
    ]


def test_failed_scrapes_leave_a_gap_with_one_warning_and_the_recovery_counts_the_missed(http):
    """One scrape per tick, driven here without the sampler's thread: ok, 500, connection error,
    500, ok. The failed ticks give no sample (a gap), the first failure warns once, the recovery
    warns once with the number missed."""
    http.add(responses.GET, URL, body=VLLM_TEXT)
    http.add(responses.GET, URL, body="oops", status=500)
    http.add(responses.GET, URL, body=requests.ConnectionError("refused"))
    http.add(responses.GET, URL, body="oops", status=500)
    http.add(responses.GET, URL, body=VLLM_TEXT)
    sampler = PrometheusSampler(URL)
    batches = [sampler._tick() for _ in range(5)]
    assert [len(batch) for batch in batches] == [1, 0, 0, 0, 1]
    assert batches[0][0].values == batches[4][0].values == parse_metrics(VLLM_TEXT, DEFAULT_NAMES)
    assert len(sampler.warnings) == 2
    assert sampler.warnings[0] == (f"server {URL}: scrape failed (HTTP 500 Internal Server Error); "
                                   "gap in server metrics until it recovers")
    assert re.fullmatch(rf"server {re.escape(URL)}: scrapes recovered after a \d+\.\d s gap \(3 missed\)",
                        sampler.warnings[1])
    assert len(http.calls) == 5
