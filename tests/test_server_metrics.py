"""Server metrics: Prometheus text parsed with prometheus-client's parser, scraped from a real
HTTP server on 127.0.0.1:0 whose answer a test can change mid-run."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.server_metrics import DEFAULT_NAMES, PrometheusSampler, normalise_url, parse_metrics

VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="llama-a"} 3.0
vllm:num_requests_running{model_name="llama-b"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="llama-a"} 1.0
vllm:num_requests_waiting{model_name="llama-b"} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="llama-a"} 0.25
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="llama-a"} 1234.0
# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="llama-a"} 3.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="llama-a"} 4.0
vllm:e2e_request_latency_seconds_count{model_name="llama-a"} 4.0
vllm:e2e_request_latency_seconds_sum{model_name="llama-a"} 2.5
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 42.0
"""

SGLANG_TEXT = """\
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="qwen",tp_rank="0"} 7.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="qwen",tp_rank="0"} 2.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="qwen",tp_rank="0"} 0.5
"""


class MetricsServer:
    """Serves `body` with `status` at any path; both may be changed while it runs."""

    def __init__(self, body=VLLM_TEXT, status=200, delay_s=0.0):
        self.body, self.status, self.delay_s = body, status, delay_s
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.hits += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                data = owner.body.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def closed_port_url():
    with MetricsServer() as srv:
        url = srv.url
    return url


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


# -- the sampler against a real HTTP server --
def test_preflight_and_samples_flow():
    with MetricsServer() as srv:
        sampler = PrometheusSampler(srv.url, names=["vllm:prompt_tokens_total"])
        sampler.preflight()
        batches = []
        sampler.start(batches.append, interval_s=0.02)
        try:
            assert wait_until(lambda: len(batches) >= 3)
        finally:
            sampler.stop()
    for batch in batches:
        (sample,) = batch
        assert (sample.source, sample.index, sample.key) == ("server", None, "server")
        assert sample.values == {
            "vllm:num_requests_running": 5.0,
            "vllm:num_requests_waiting": 1.0,
            "vllm:gpu_cache_usage_perc": 0.25,
            "vllm:prompt_tokens_total": 1234.0,
        }
    assert sampler.warnings == []


def test_unreachable_url_fails_preflight():
    url = closed_port_url()
    with pytest.raises(TelemetryError) as info:
        PrometheusSampler(url).preflight()
    assert str(info.value) == f"--server-metrics {url}: cannot connect"


def test_http_500_fails_preflight():
    with MetricsServer(body="oops", status=500) as srv:
        with pytest.raises(TelemetryError, match=r"--server-metrics .*: HTTP 500"):
            PrometheusSampler(srv.url).preflight()


def test_not_prometheus_text_fails_preflight():
    with MetricsServer(body="<html><body>login</body></html>\n") as srv:
        with pytest.raises(TelemetryError, match="not Prometheus text format"):
            PrometheusSampler(srv.url).preflight()


def test_slow_endpoint_fails_preflight_within_the_timeout():
    with MetricsServer(delay_s=1.0) as srv:
        t0 = time.monotonic()
        with pytest.raises(TelemetryError, match="no answer within 0.2 s"):
            PrometheusSampler(srv.url, timeout_s=0.2).preflight()
        assert time.monotonic() - t0 < 0.9


def test_missing_names_only_warn_at_preflight():
    with MetricsServer(body=SGLANG_TEXT) as srv:
        sampler = PrometheusSampler(srv.url, names=["sglang:gen_throughput"])
        sampler.preflight()
    assert len(sampler.warnings) == 1
    assert "sglang:gen_throughput" in sampler.warnings[0] and srv.url in sampler.warnings[0]


def test_no_known_metrics_warns():
    with MetricsServer(body="# TYPE up gauge\nup 1\n") as srv:
        sampler = PrometheusSampler(srv.url)
        sampler.preflight()
    assert any("none of the known vLLM/SGLang metrics" in w for w in sampler.warnings)


def test_mid_run_failure_leaves_a_gap_and_warns_once_then_recovers():
    with MetricsServer() as srv:
        sampler = PrometheusSampler(srv.url)
        sampler.preflight()
        batches = []
        sampler.start(batches.append, interval_s=0.02)
        try:
            assert wait_until(lambda: len(batches) >= 2)
            srv.status = 500
            assert wait_until(lambda: any("scrape failed" in w for w in sampler.warnings))
            during = len(batches)
            hits = srv.hits
            assert wait_until(lambda: srv.hits >= hits + 3)  # several failed scrapes...
            assert len(batches) == during  # ...and no sample for any of them: a gap
            srv.status = 200
            assert wait_until(lambda: len(batches) >= during + 2)
        finally:
            sampler.stop()
    failed = [w for w in sampler.warnings if "scrape failed" in w]
    assert len(failed) == 1 and "HTTP 500" in failed[0]
    assert any("recovered after" in w for w in sampler.warnings)


def test_stop_is_prompt():
    with MetricsServer() as srv:
        sampler = PrometheusSampler(srv.url)
        sampler.start(lambda batch: None, interval_s=1.0)
        time.sleep(0.05)
        t0 = time.monotonic()
        sampler.stop()
        assert time.monotonic() - t0 < 2
        assert not sampler.running
