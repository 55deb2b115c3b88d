"""Server metrics: Prometheus text parsed with prometheus-client's parser, scraped from a real
HTTP server on 127.0.0.1:0 whose answer a test can change mid-run."""

from __future__ import annotations

import pytest

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.server_metrics import DEFAULT_NAMES, normalise_url, parse_metrics

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
