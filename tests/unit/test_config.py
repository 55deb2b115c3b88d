"""config: validation messages, header parsing, secret masking."""

import pytest

from sse_perf_tool.config import ConfigError, RunConfig, mask_secret, normalise_api_key, parse_header, validate


def test_mask_keeps_prefix_and_last_four_only():
    assert mask_secret("app-1234567890abcdef9f3a") == "app-…9f3a"
    assert mask_secret("Bearer sk-abcdefghijklmnop1234") == "sk-…1234"
    assert mask_secret("short") == "…"
    assert "1234567890" not in mask_secret("app-1234567890abcdef9f3a")


def test_bearer_prefix_is_optional():
    assert normalise_api_key("Bearer app-x") == "app-x"
    assert normalise_api_key("  app-x ") == "app-x"


def test_masked_config_hides_key_and_auth_headers():
    cfg = RunConfig(base_url="http://h/v1", api_key="app-secretsecretsecret1234",
                    headers=(("Authorization", "Bearer tok-abcdefghijklmnopqrs"), ("X-Trace", "on")))
    masked = cfg.masked()
    text = repr(masked)
    assert "secretsecret" not in text and "abcdefghijklmnop" not in text
    assert masked["api_key"] == "app-…1234"
    assert "X-Trace: on" in masked["headers"]


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"threads": 0}, "--threads"),
        ({"duration_s": -1}, "--duration"),
        ({"ramp_up_s": -0.5}, "--ramp-up"),
        ({"timeout_s": 0}, "--timeout"),
        ({"requests": 0}, "--requests"),
        ({"base_url": "ftp://h/v1"}, "http://"),
        ({"base_url": "http:///v1"}, "no host"),
        ({"base_url": "http://h:99999/v1"}, "port"),
        ({"api": "nope"}, "--api"),
        ({"top_p": 0}, "--top-p"),
    ],
)
def test_bad_values_are_refused_with_the_option_named(changes, needle):
    base = dict(base_url="http://localhost:80/v1")
    base.update(changes)
    with pytest.raises(ConfigError, match=needle.replace("?", r"\?")):
        validate(RunConfig(**base))


def test_header_parsing():
    assert parse_header("X-A:  b c ") == ("X-A", "b c")
    with pytest.raises(ConfigError):
        parse_header("no colon here")
