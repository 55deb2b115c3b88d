"""masking: the one masking of every output. The report and the summary once masked differently
(`app-…` against `app-…5678`, `X-Token` masked in one only): they now share these functions."""

from sse_perf_tool.config import RunConfig
from sse_perf_tool.masking import (mask_header_text, mask_mapping, mask_option, mask_secret, mask_url)
from sse_perf_tool.report import render_report  # noqa: F401 - the report imports the same masking


def test_short_secrets_show_no_tail_long_ones_their_last_four_and_masking_twice_changes_nothing():
    assert mask_secret("app-12345678") == "app-…"  # 4 of 8 characters would give half away
    assert mask_secret("app-1234567890abcdef9f3a") == "app-…9f3a"
    assert mask_secret("Bearer sk-abcdefghijklmnop1234") == "sk-…1234"
    assert mask_secret(mask_secret("app-1234567890abcdef9f3a")) == "app-…9f3a"
    assert mask_secret("short") == "…"


def test_headers_with_secret_looking_names_are_masked_and_keep_their_scheme():
    assert mask_header_text("X-Token: abcdefghijklmnopqrst") == "X-Token: …qrst"
    assert mask_header_text("Authorization: Bearer sk-live-SECRET9999") == "Authorization: Bearer sk-…9999"
    assert mask_header_text("Cookie: session=abcdefghijklmnop") == "Cookie: …mnop"
    assert mask_header_text("X-Trace: visible") == "X-Trace: visible"


def test_nested_body_values_under_a_secret_key_are_masked_however_deep():
    body = {"auth": {"pass": "hunter2hunter2x"}, "api_key": "sk-abcdefghijklmnop1234", "seed": 7,
            "tools": [{"name": "x", "token": "abc"}], "chat_template_kwargs": {"enable_thinking": False}}
    masked = mask_mapping(body)
    assert masked["auth"] == {"pass": "…er2x"}
    assert masked["api_key"] == "sk-…1234" and masked["tools"][0] == {"name": "x", "token": "…"}
    assert masked["seed"] == 7 and masked["chat_template_kwargs"] == {"enable_thinking": False}


def test_urls_lose_their_password():
    assert mask_url("http://ops:s3cret@gpu1:8000/v1") == "http://ops:…@gpu1:8000/v1"
    assert mask_url("http://gpu1:8000/v1") == "http://gpu1:8000/v1"


def test_the_summary_and_the_report_mask_an_option_the_same_way():
    cfg = RunConfig(base_url="http://u:pw@h/v1", api_key="app-12345678",
                    headers=(("X-Token", "abcdefghijklmnopqrst"), ("X-Trace", "t1")))
    summary_view = cfg.masked()
    assert summary_view["api_key"] == mask_option("api_key", "app-12345678") == "app-…"
    assert summary_view["headers"] == mask_option("headers", ["X-Token: abcdefghijklmnopqrst", "X-Trace: t1"])
    assert summary_view["base_url"] == mask_option("base_url", "http://u:pw@h/v1") == "http://u:…@h/v1"
    assert mask_option("api_key_file", "/etc/keys.txt") == "/etc/keys.txt"  # a path, not a secret
    assert mask_option("tokenizer", "cl100k_base") == "cl100k_base"


def test_options_that_only_look_like_headers_are_shown_as_given():
    """--dataset specs and --server-metric names hold ':' but are no headers: nothing is masked or
    respaced; non-secret headers such as X-Author stay readable; a value with '…' in it is masked."""
    assert mask_option("datasets", ["long_tokens=d/x.jsonl:2"]) == ["long_tokens=d/x.jsonl:2"]
    assert mask_option("server_metric_names", ["vllm:num_requests_running"]) == ["vllm:num_requests_running"]
    assert mask_option("headers", ["X-Author: Jane Doe", "X-Auth-Mode: none"]) == ["X-Author: Jane Doe",
                                                                                  "X-Auth-Mode: none"]
    assert mask_secret("real…secretvalue1234567") == "…4567"
