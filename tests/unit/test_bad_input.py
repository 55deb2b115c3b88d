"""Bad input and conflicting options: one line on stderr, exit 2, before anything is sent."""

from __future__ import annotations

import pytest

from sse_perf_tool import cli


@pytest.mark.parametrize("argv,message", [
    (["--host", "http://x"], "--host takes a host name or address, not a URL"),
    (["--host", "bad host"], "is not a host name"),
    (["--host", "127.0.0.1:80"], "--host takes no port"),
    (["--api-key", ""], "--api-key is empty"),
    (["--gpu-index", "0"], "--gpu-index needs --gpu"),
    (["--sweep-rate", "1,,2"], "none empty"),
    (["--api-key", "app-a", "--api-key-file", "keys.txt"], "--api-key and --api-key-file: give one"),
    (["--demo", "--base-url", "http://127.0.0.1:9/v1"], "--demo and --base-url"),
    (["--query", "hi", "--param-file", "q.txt"], "--query and --param-file"),
    (["--request-timeout", "0"], "--request-timeout must be greater than 0"),
])
def test_each_is_one_line_and_exit_2(capsys, argv, message):
    assert cli.main(argv + ["--no-history"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_an_ipv6_host_is_bracketed_in_the_url():
    from sse_perf_tool.cli.run import config_from_args, parse_run_args

    cfg = config_from_args(parse_run_args(["--host", "::1", "--port", "8000"]), {})
    assert cfg.base_url == "http://[::1]:8000/v1"


def test_a_broken_pipe_that_is_not_stdout_is_not_taken_for_the_reader_leaving(monkeypatch):
    """`sse-perf history | head` ends quietly; a broken socket inside a command is a bug to see,
    and must not point this process's stdout at /dev/null."""
    def broken(argv):
        raise BrokenPipeError("a socket")

    monkeypatch.setattr("sse_perf_tool.cli._main", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["history"])
