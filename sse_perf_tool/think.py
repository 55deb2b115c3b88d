"""Reasoning streamed inside the answer text as a leading `<think>…</think>` block (DeepSeek-R1,
QwQ, Qwen3 thinking and their distills served without a reasoning parser; Dify's default "tagged"
reasoning format): the text between the tags is reasoning, the rest is the answer
(docs/metrics.md, TTFO).

`ThinkSplitter` takes each event's answer text as it arrives and returns (reasoning, answer).
Tags may be split across events: a piece that may still become a tag is held back until the
next event settles it (never longer than the tag is long). Only a block at the very start of the
answer (after whitespace) is reasoning; a `<think>` later in an answer is answer text. The
whitespace right after `</think>` is not answer text, so TTFO is the first answer character.

Pure; imports nothing. No clock.
"""

from __future__ import annotations

_START, _INSIDE, _AFTER, _ANSWER = range(4)


class ThinkSplitter:
    def __init__(self, tag: str = "think"):
        self.open, self.close = f"<{tag}>", f"</{tag}>"
        self._state = _START
        self._held = ""

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, answer) of this piece of answer text; either may be ""."""
        if self._state == _ANSWER:
            return "", text
        buffer = self._held + text
        self._held = ""
        reasoning = answer = ""
        if self._state == _START:
            stripped = buffer.lstrip()
            if stripped.startswith(self.open):
                buffer, self._state = stripped[len(self.open):], _INSIDE
            elif self.open.startswith(stripped):  # "", "  <th": may still become the tag
                self._held = buffer
                return "", ""
            else:
                self._state = _ANSWER
                return "", buffer
        if self._state == _INSIDE:
            end = buffer.find(self.close)
            if end < 0:
                keep = _partial_suffix(buffer, self.close)
                reasoning, self._held = buffer[: len(buffer) - keep], buffer[len(buffer) - keep:]
                return reasoning, ""
            reasoning, buffer, self._state = buffer[:end], buffer[end + len(self.close):], _AFTER
        if self._state == _AFTER:
            answer = buffer.lstrip()
            if answer:
                self._state = _ANSWER
        return reasoning, answer

    @property
    def settled(self) -> bool:
        """Past any leading block, with nothing held: every later piece is answer text as it is."""
        return self._state == _ANSWER

    def finish(self) -> tuple[str, str]:
        """What is still held when the stream ends: an unclosed block's tail is reasoning, a
        lone prefix of the opening tag is answer text."""
        held, self._held = self._held, ""
        if self._state == _INSIDE:
            return held, ""
        return "", held if self._state in (_START, _ANSWER) else ""


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that is a start of `tag` (0 when none)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
