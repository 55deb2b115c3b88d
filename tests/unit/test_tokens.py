"""Token counting: offline tiktoken encodings from the shipped rank files, and the estimate."""

from __future__ import annotations

import gzip
import logging
import socket
import sys
import threading

import pytest

from sse_perf_tool import tokens
from sse_perf_tool.tokens import (
    ENCODINGS,
    TokenCounter,
    TokenizerUnavailable,
    default_rank_file,
    estimate_tokens,
    load_encoding,
)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket or an HTTP request fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import requests  # imported before socket is patched (ssl subclasses socket.socket)

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def corrupt_copy(tmp_path, name: str):
    """A copy of the shipped rank file with one rank changed: valid format, wrong sha256."""
    raw = gzip.decompress(default_rank_file(name).read_bytes())
    token, _rank = raw.split(b"\n", 1)[0].split()
    changed = raw.replace(token + b" 0\n", token + b" 999999999\n", 1)
    assert changed != raw
    path = tmp_path / f"{name}.tiktoken.gz"
    path.write_bytes(gzip.compress(changed))
    return path


def test_encodings_listed():
    assert ENCODINGS == ("cl100k_base", "o200k_base")
    for name in ENCODINGS:
        assert default_rank_file(name).is_file()


@pytest.mark.parametrize(
    ("name", "ids", "n_vocab"),
    [("cl100k_base", [15339, 1917], 100277), ("o200k_base", [24912, 2375], 200019)],
)
def test_encoding_loads_offline_and_matches_official_ids(no_network, name, ids, n_vocab):
    """The shipped rank files + copied pat_str give the official token ids, with no network."""
    enc = load_encoding(name)
    assert enc.encode("hello world") == ids
    assert enc.n_vocab == n_vocab
    assert enc.encode("<|endoftext|>", allowed_special="all") == [tokens._SPECIAL_TOKENS[name]["<|endoftext|>"]]


def test_pat_str_splits_like_the_official_encoding(no_network):
    """cl100k groups digits by three and keeps contractions; o200k splits on case changes."""
    cl = load_encoding("cl100k_base")
    assert [cl.decode([t]) for t in cl.encode("1234567")] == ["123", "456", "7"]
    assert [cl.decode([t]) for t in cl.encode("I'm")] == ["I", "'m"]
    o2 = load_encoding("o200k_base")
    assert o2.encode("你好，世界") and o2.decode(o2.encode("你好，世界")) == "你好，世界"


@pytest.mark.parametrize("name", ENCODINGS)
def test_counter_counts_with_tokenizer(no_network, name):
    counter = TokenCounter(name)
    assert counter.count("hello world") == (2, "tokenizer")
    assert counter.count("") == (0, "tokenizer")
    assert counter.preload() is True


def test_counter_treats_special_token_text_as_ordinary_text(no_network):
    """A model answer that contains `<|endoftext|>` must not raise; it is counted as text."""
    tokens_, source = TokenCounter("cl100k_base").count("a <|endoftext|> b")
    assert source == "tokenizer"
    assert tokens_ > 3


def test_counter_caches_the_encoding_per_process(no_network):
    TokenCounter("cl100k_base").count("x")
    first = tokens._cached_encoding("cl100k_base", None)
    TokenCounter("cl100k_base").count("y")
    assert tokens._cached_encoding("cl100k_base", None) is first


def test_counter_is_thread_safe_and_builds_once(tmp_path, monkeypatch):
    """Many threads counting at once build one Encoding, not one each."""
    path = tmp_path / "cl100k_base.tiktoken.gz"
    path.write_bytes(default_rank_file("cl100k_base").read_bytes())
    calls = []
    real = tokens.load_encoding

    def counting_load(name, rank_file=None):
        calls.append(name)
        return real(name, rank_file)

    monkeypatch.setattr(tokens, "load_encoding", counting_load)
    counter = TokenCounter("cl100k_base", rank_file=path)
    results = []
    threads = [threading.Thread(target=lambda: results.append(counter.count("hello world"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(2, "tokenizer")] * 8
    assert calls == ["cl100k_base"]


def test_sha_mismatch_raises(tmp_path):
    with pytest.raises(TokenizerUnavailable, match="sha256"):
        load_encoding("cl100k_base", corrupt_copy(tmp_path, "cl100k_base"))


def test_sha_mismatch_falls_back_to_estimate_and_warns_once(tmp_path, caplog):
    counter = TokenCounter("cl100k_base", rank_file=corrupt_copy(tmp_path, "cl100k_base"))
    with caplog.at_level(logging.WARNING, logger="sse_perf_tool.tokens"):
        assert counter.count("hello world") == (2, "estimate")
        assert counter.count("你好") == (2, "estimate")
        assert counter.preload() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cl100k_base" in warnings[0].getMessage()


@pytest.mark.parametrize("content", [b"not gzip at all", None])
def test_broken_or_missing_file_falls_back_to_estimate(tmp_path, content):
    path = tmp_path / "o200k_base.tiktoken.gz"
    if content is not None:
        path.write_bytes(content)
    assert TokenCounter("o200k_base", rank_file=path).count("one two three") == (3, "estimate")


def test_missing_tiktoken_falls_back_to_estimate(tmp_path, monkeypatch):
    path = tmp_path / "cl100k_base.tiktoken.gz"  # a fresh cache key, so nothing is cached
    path.write_bytes(default_rank_file("cl100k_base").read_bytes())
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # `import tiktoken` raises ImportError
    with pytest.raises(TokenizerUnavailable, match="tiktoken"):
        load_encoding("cl100k_base", path)
    assert TokenCounter("cl100k_base", rank_file=path).count("a b") == (2, "estimate")


def test_unknown_encoding_is_rejected():
    with pytest.raises(ValueError, match="cl100k_base"):
        TokenCounter("gpt2")
    with pytest.raises(TokenizerUnavailable):
        load_encoding("p50k_base")


# --- estimate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n\t", 0),
        ("Hello, world!", 2),
        ("The quick brown fox jumps over the lazy dog.", 9),
        ("snake_case and A100 GPUs", 4),
        ("don't", 2),
        ("...!!!", 0),
        ("你好世界", 4),
        ("你好，世界。", 4),
        ("人工智能是未来", 7),
        ("GPU是A100", 3),
        ("我用 Python 写代码", 6),
        ("こんにちは", 5),
        ("カタカナ", 4),
        ("안녕하세요", 5),
        ("㐀", 1),  # CJK Extension A
        ("\uf900", 1),  # CJK Compatibility Ideograph
        ("Grüße aus Köln", 3),
    ],
)
def test_estimate_tokens(text, expected):
    """CJK characters count one each; runs of other word characters count one each."""
    assert estimate_tokens(text) == expected


def test_no_network_fixture_really_blocks_downloads(no_network, tmp_path, monkeypatch):
    """Guard for the offline tests: tiktoken's own downloading loader must fail under the fixture."""
    import tiktoken.load

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(AssertionError, match="network access attempted"):
        tiktoken.load.load_tiktoken_bpe("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken")
