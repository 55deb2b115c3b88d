"""The Prometheus sampler against a real HTTP server on 127.0.0.1:0 (metrics_server.py) whose
answer a test changes mid-run: preflight, samples, HTTP errors, a slow endpoint, a gap and its
recovery, a prompt stop. The parser and the error paths without a socket are in
tests/unit/test_server_metrics.py."""

from __future__ import annotations


import pytest

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.server_metrics import PrometheusSampler

from prometheus_texts import SGLANG_TEXT
from waiting import wait_until

from .metrics_server import MetricsServer, closed_port_url


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
    with MetricsServer(delay_s=1.0) as srv:  # the answer comes after 1 s: only the 0.2 s timeout says this
        with pytest.raises(TelemetryError, match="no answer within 0.2 s"):
            PrometheusSampler(srv.url, timeout_s=0.2).preflight()


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
    """The next scrape is a minute away: the thread has ended when stop() returns (it waits for it
    only briefly) only if stop() cut that wait."""
    with MetricsServer() as srv:
        sampler = PrometheusSampler(srv.url)
        sampler.start(lambda batch: None, interval_s=60.0)
        assert wait_until(lambda: srv.hits >= 1)
        sampler.stop()
        assert not sampler.running
