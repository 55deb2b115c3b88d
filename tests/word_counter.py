"""A token counter stand-in for SSETester: one token per whitespace-separated word. Shared by the
tester tests (unit and integration) and the worker-pool tests."""

from __future__ import annotations


class WordCounter:
    """Token counter stand-in: one token per whitespace-separated word; remembers what it counted."""

    def __init__(self, source: str = "tokenizer"):
        self.source = source
        self.texts: list[str] = []

    def count(self, text: str) -> tuple[int, str]:
        self.texts.append(text)
        return len(text.split()), self.source
