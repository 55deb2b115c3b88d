"""The embedded mock server's pieces that need no socket: its configuration, the token schedule
and the words it streams (one tokenizer token each). Over real HTTP: tests/integration/test_mock_server.py."""

from __future__ import annotations

import re

import pytest

from sse_perf_tool.mock_server import (
    ANSWER_WORDS,
    REASONING_WORDS,
    MockConfig,
    schedule_offsets_s,
    token_text,
)


def expected_text(n: int, reasoning: bool = False) -> str:
    return "".join(token_text(i, reasoning) for i in range(n))


def test_schedule_is_absolute_and_jitter_never_makes_a_delay_negative():
    import random

    plain = schedule_offsets_s(MockConfig(ttft_ms=100, itl_ms=10), 4, random.Random(0))
    assert plain == pytest.approx([0.1, 0.11, 0.12, 0.13])
    config = MockConfig(ttft_ms=5, itl_ms=2, jitter_ms=10)
    offsets = schedule_offsets_s(config, 500, random.Random(3))
    delays = [offsets[0]] + [b - a for a, b in zip(offsets, offsets[1:])]
    assert all(d >= 0 for d in delays)
    assert any(d == 0 for d in delays) and any(d > 0.002 for d in delays)  # clamped and jittered
    assert all(d <= 0.015 + 1e-9 for d in delays)
    assert offsets == schedule_offsets_s(config, 500, random.Random(3))  # a seed repeats it


def test_config_rejects_impossible_values():
    for bad in (dict(error_rate=1.5), dict(tokens=-1), dict(ttft_ms=-1), dict(reasoning_tokens=1.5),
                dict(port=70000)):
        with pytest.raises(ValueError):
            MockConfig(**bad)


def test_token_text_cycles_deterministic_words_with_cjk():
    assert [token_text(i) for i in range(len(ANSWER_WORDS) + 2)] == list(ANSWER_WORDS) + list(ANSWER_WORDS[:2])
    assert token_text(0, reasoning=True) == REASONING_WORDS[0]
    cjk = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
    assert any(cjk.search(w) for w in ANSWER_WORDS) and any(cjk.search(w) for w in REASONING_WORDS)


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_each_event_is_one_tokenizer_token(encoding):
    """So a tokenizer count of the streamed text agrees with the usage the mock reports."""
    tokens = pytest.importorskip("sse_perf_tool.tokens")
    load = getattr(tokens, "load_encoding", None)
    if load is None:
        pytest.skip("the project's tokenizer loader is not available")
    try:
        enc = load(encoding)
    except Exception as exc:  # tiktoken missing or rank file unreadable: nothing to check here
        pytest.skip(f"tokenizer unavailable: {exc}")
    for reasoning in (False, True):
        for n in range(1, 2 * len(ANSWER_WORDS) + 1):
            assert len(enc.encode_ordinary(expected_text(n, reasoning))) == n, (reasoning, n)


def test_like_llama_cpp_python_turns_on_all_its_behaviours():
    config = MockConfig(like="llama-cpp-python")
    assert config.check_request_id and config.interrupt and not config.usage
    assert config.tokenize == "llama-cpp-python"
    with pytest.raises(ValueError):
        MockConfig(like="vllm")
