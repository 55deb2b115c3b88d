"""--live [HOST:]PORT and --allow-remote: the address parsed, a reachable address refused unless
meant, and bad input refused with one clear line (exit 2) before anything is sent."""

from __future__ import annotations

import pytest

from sse_perf_tool.config import ConfigError, RunConfig, parse_live_address, validate


@pytest.mark.parametrize("text,expected", [
    ("8089", ("127.0.0.1", 8089)),
    ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("127.0.0.1:8089", ("127.0.0.1", 8089)),
    ("localhost:8089", ("localhost", 8089)),
    ("[::1]:8089", ("::1", 8089)),
    ("0", ("127.0.0.1", 0)),
    ("65535", ("127.0.0.1", 65535)),
    (" 8089 ", ("127.0.0.1", 8089)),
])
def test_a_loopback_address_is_parsed_to_host_and_port(text, expected):
    assert parse_live_address(text) == expected


@pytest.mark.parametrize("text,host", [
    ("0.0.0.0:8089", "0.0.0.0"),
    ("192.168.1.5:8089", "192.168.1.5"),
    ("[::]:8089", "::"),
    ("example.com:8089", "example.com"),
])
def test_an_address_other_machines_can_reach_needs_allow_remote(text, host):
    with pytest.raises(ConfigError, match="--allow-remote") as caught:
        parse_live_address(text)
    assert len(str(caught.value).splitlines()) == 1
    assert parse_live_address(text, allow_remote=True)[0] == host


def test_0_0_0_0_is_accepted_with_allow_remote():
    assert parse_live_address("0.0.0.0:8089", allow_remote=True) == ("0.0.0.0", 8089)


@pytest.mark.parametrize("text", ["99999", "65536", "-1", "abc", "", "8089:", "127.0.0.1:", "127.0.0.1:80a",
                                  "[::1]", "[::1]8089", "[::1:8089", ":8089", "http://x:1", "x/y:1", "a b:1",
                                  "user@h:1"])
def test_a_bad_live_address_is_refused_with_one_clear_line(text):
    for allow_remote in (False, True):
        with pytest.raises(ConfigError) as caught:
            parse_live_address(text, allow_remote=allow_remote)
        message = str(caught.value)
        assert message.startswith("--live"), message
        assert len(message.splitlines()) == 1, message


def test_a_bad_port_names_the_range():
    with pytest.raises(ConfigError, match="0 to 65535"):
        parse_live_address("99999")


def test_validate_checks_the_live_address():
    base = dict(base_url="http://127.0.0.1:9/v1")
    assert validate(RunConfig(**base, live="8089")) is not None
    assert validate(RunConfig(**base, live="0.0.0.0:8089", allow_remote=True)) is not None
    with pytest.raises(ConfigError, match="--allow-remote"):
        validate(RunConfig(**base, live="0.0.0.0:8089"))
    with pytest.raises(ConfigError, match="--live"):
        validate(RunConfig(**base, live="http://x:1"))


def test_allow_remote_without_live_is_refused():
    with pytest.raises(ConfigError, match="--live") as caught:
        validate(RunConfig(base_url="http://127.0.0.1:9/v1", allow_remote=True))
    assert "--allow-remote" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1

