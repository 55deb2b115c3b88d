"""--input-tokens and --output-tokens: prompts of drawn lengths cut with the tokenizer, answers asked
for by length, all drawn with the seed; the flavours' exact-length options."""

from __future__ import annotations

import statistics

import pytest

from sse_perf_tool.config import ConfigError, parse_length
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.synthetic import ENCODING, ByLength, prompts_by_length
from sse_perf_tool.tokens import TokenCounter


def test_each_prompt_has_its_drawn_number_of_tokens_and_the_seed_repeats_them():
    counter = TokenCounter(ENCODING)
    prompts = prompts_by_length(300, 0, seed=5, pool=20)
    assert all(n == 300 for _, n in prompts)
    assert all(abs(counter.count(text)[0] - 300) <= 2 for text, _ in prompts)  # re-encoded: the cut holds
    assert prompts == prompts_by_length(300, 0, seed=5, pool=20)
    assert prompts != prompts_by_length(300, 0, seed=6, pool=20)
    assert all(text.replace(" ", "").isalpha() for text, _ in prompts[:3])  # words, not noise


def test_a_spread_draws_lengths_around_the_mean():
    sizes = [n for _, n in prompts_by_length(200, 40, seed=1, pool=200)]
    assert 185 < statistics.mean(sizes) < 215 and 30 < statistics.stdev(sizes) < 50 and min(sizes) >= 1


class _Given:
    def next(self):
        return Query("the user's own prompt")


def test_output_lengths_alone_keep_the_given_prompts_and_set_max_tokens():
    by_length = ByLength(_Given(), None, (64, 0), seed=2)
    queries = [by_length.next() for _ in range(5)]
    assert {q.text for q in queries} == {"the user's own prompt"} and {q.max_tokens for q in queries} == {64}
    assert by_length.asked() == {"output_tokens": {"asked_mean": 64, "asked_sd": 0.0}}
    both = ByLength(_Given(), (50, 0), (8, 2), seed=2)
    first = [both.next() for _ in range(3)]
    assert all(q.text != "the user's own prompt" for q in first)
    assert both.asked()["input_tokens"]["sent_mean"] == 50


def test_openai_flavours_ask_for_exactly_that_many_tokens():
    settings = RequestSettings(exact_output=True)
    body = get_flavor("openai-chat").build_body(Query("x", max_tokens=64), settings)
    assert body["max_tokens"] == 64 and body["min_tokens"] == 64 and body["ignore_eos"] is True
    assert "ignore_eos" not in get_flavor("openai-chat").build_body(Query("x", max_tokens=64), RequestSettings())


@pytest.mark.parametrize("text,expected", [("512", (512, 0.0)), ("512:64", (512, 64.0)), (" 8 : 1.5 ", (8, 1.5))])
def test_lengths_parse(text, expected):
    assert parse_length(text, "--input-tokens") == expected


@pytest.mark.parametrize("text", ["0", "-5", "abc", "512:", "512:-1", "1.5", ""])
def test_bad_lengths_are_one_line_errors(text):
    with pytest.raises(ConfigError, match="--input-tokens takes N or N:SD"):
        parse_length(text, "--input-tokens")


def test_prompts_open_with_one_of_the_shared_prefixes_in_turn_each_group_a_dataset():
    counter = TokenCounter(ENCODING)
    by_length = ByLength(_Given(), (30, 0), None, seed=9, prefix=(100, 3))
    queries = [by_length.next() for _ in range(9)]
    assert [q.dataset for q in queries] == ["prefix-1", "prefix-2", "prefix-3"] * 3
    prefixes = {}
    for q in queries:  # within a group every prompt opens with the same 100 tokens; groups differ
        prefixes.setdefault(q.dataset, []).append(q.text)
    for group, texts in prefixes.items():
        common = texts[0]
        for text in texts[1:]:
            while not text.startswith(common):
                common = common[:-1]
        assert abs(counter.count(common)[0] - 100) <= 3, group
    assert len({texts[0][:50] for texts in prefixes.values()}) == 3
    assert by_length.asked()["prefix"] == {"tokens": 100, "groups": 3}
