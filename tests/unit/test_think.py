"""Reasoning inside the answer text as a leading <think>…</think> block (think.py)."""

from __future__ import annotations

import pytest

from sse_perf_tool.think import ThinkSplitter


def split(pieces, tag="think"):
    splitter, out = ThinkSplitter(tag), []
    for piece in pieces:
        out.append(splitter.feed(piece))
    out.append(splitter.finish())
    return out


def joined(out):
    return "".join(r for r, _ in out), "".join(a for _, a in out)


def test_a_leading_block_is_reasoning_and_the_rest_the_answer():
    out = split(["<think>", "The user", " greets.", "</think>", "\n\n", "Hello", "!"])
    assert joined(out) == ("The user greets.", "Hello!")
    first_answer = next(i for i, (_, a) in enumerate(out) if a)
    assert out[first_answer][1] == "Hello", "the newlines after </think> are not the first answer character"


@pytest.mark.parametrize("cut", range(1, 40))
def test_tags_split_anywhere_across_events_give_the_same_split(cut):
    text = "  <think>plan: say hi</think>\nHi there"
    out = split([text[:cut], text[cut:]])
    assert joined(out) == ("plan: say hi", "Hi there")


def test_one_character_at_a_time():
    text = "<think>a<b</think>ok"
    assert joined(split(list(text))) == ("a<b", "ok")


def test_a_later_think_tag_is_answer_text_and_no_tag_passes_through_unheld():
    assert split(["Hello ", "<think>x</think>"]) == [("", "Hello "), ("", "<think>x</think>"), ("", "")]
    assert joined(split(["<thin", "king about it"])) == ("", "<thinking about it")


def test_an_unclosed_block_is_all_reasoning_and_a_lone_prefix_is_answer():
    assert joined(split(["<think>still going", " on</thi"])) == ("still going on</thi", "")
    assert joined(split(["<th"])) == ("", "<th")


def test_other_tag_names():
    assert joined(split(["<reasoning>r</reasoning>a"], tag="reasoning")) == ("r", "a")


def test_the_splitter_is_settled_once_past_the_block_and_not_before():
    splitter = ThinkSplitter()
    assert not splitter.settled
    splitter.feed("<think>plan")
    assert not splitter.settled
    splitter.feed("</think>\n")
    assert not splitter.settled, "whitespace after the block: the answer has not begun"
    splitter.feed("Hi")
    assert splitter.settled and splitter.finish() == ("", "")
    plain = ThinkSplitter()
    plain.feed("No block here")
    assert plain.settled
