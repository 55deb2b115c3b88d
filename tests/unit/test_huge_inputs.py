"""Bounded cost for huge inputs: an answer beyond the tokenizer limit is estimated (not tokenized
for seconds and half a gigabyte), and a query file larger than the input limit (or endless, as
/dev/zero) is refused with one line instead of filling the memory."""

from __future__ import annotations

import os

import pytest

from sse_perf_tool import providers, tokens
from sse_perf_tool.config import ConfigError


class NeverCalled:
    def count(self, text):
        raise AssertionError("a huge text must not reach the tokenizer")


def test_an_answer_beyond_the_limit_is_estimated():
    huge = "word " * (tokens.TOKENIZE_LIMIT_CHARS // 5 + 1)
    total, reasoning, source = tokens.count_texts(NeverCalled(), huge, "")
    assert source == "estimate" and total == tokens.TOKENIZE_LIMIT_CHARS // 5 + 1 and reasoning is None


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_endless_query_file_is_refused(monkeypatch):
    monkeypatch.setattr(providers, "INPUT_LIMIT_BYTES", 1 << 20)
    with pytest.raises(ConfigError, match="--param-file is larger than 1 MiB: /dev/zero"):
        providers.load_queries("/dev/zero")
