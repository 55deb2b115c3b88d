"""One masking pass over every text sse-perf stores or prints (masking.mask_text / mask_known), and
secrets that cannot be sent (a CR, LF or non-latin-1 character in a key or header) refused."""

from __future__ import annotations

import pytest

from sse_perf_tool import cli
from sse_perf_tool.config import ConfigError, normalise_api_key, parse_header
from sse_perf_tool.masking import mask_known, mask_text, register_secrets, unsafe_characters


def test_every_secret_is_masked_wherever_it_appears_longest_first():
    text = ('HTTP 401: {"error": "bad key app-1234567890abcdef", "echo": "Bearer sk-live-ABCDEFGHIJKL"} '
            'from https://bob:hunter2@10.0.0.1/v1')
    masked = mask_text(text, ["app-1234567890abcdef", "sk-live-ABCDEFGHIJKL", "sk-live"])
    assert "1234567890abcdef" not in masked and "ABCDEFGHIJKL" not in masked and "hunter2" not in masked
    assert "app-…cdef" in masked and "https://bob:…@10.0.0.1/v1" in masked
    assert mask_text("short ab secrets", ["ab"]) == "short ab secrets", "values under 4 characters are not searched"


def test_registered_secrets_are_masked_in_any_later_text():
    register_secrets(["Bearer tok-9f8e7d6c5b4a3210", "x"])
    assert "9f8e7d6c5b4a3210" not in mask_known("the server said: tok-9f8e7d6c5b4a3210 is revoked")


@pytest.mark.parametrize("value,why", [("app-a\r\nX-Evil: 1", "line break"), ("app-\x00x", "control character"),
                                       ("app-密钥", "outside latin-1")])
def test_a_key_or_header_that_cannot_be_sent_is_refused_masked(value, why):
    assert why in unsafe_characters(value)
    with pytest.raises(ConfigError, match=why) as refused:
        normalise_api_key(value)
    assert "X-Evil" not in str(refused.value)
    with pytest.raises(ConfigError, match=why):
        parse_header(f"X-Api-Key: {value}")


def test_usage_errors_never_print_a_urls_password(capsys):
    for url in ("ftp://alice:s3cr3t-pass@host/v1", "http://alice:s3cr3t-pass@host:99999/v1"):
        assert cli.main(["--base-url", url]) == 2
        err = capsys.readouterr().err
        assert "s3cr3t-pass" not in err and len(err.strip().splitlines()) == 1
    assert cli.main(["--base-url", "http://127.0.0.1:9/v1", "--api-key", "app-a\r\nX-Evil: 1"]) == 2
    assert "line break" in capsys.readouterr().err
