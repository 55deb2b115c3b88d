"""The strings of every output, one module per language (en.py, zh.py), each with one table per
output. `table(name, lang)` is the lookup every output uses. Pure data; imports nothing else.
"""

from __future__ import annotations

from . import en, zh

LANGS = ("en", "zh")
_MODULES = {"en": en, "zh": zh}


def table(name: str, lang: str) -> dict[str, str]:
    """The strings of output `name` (TERMINAL, COMPARE, REPORT, COMPARE_REPORT) in `lang`;
    ValueError for a language sse-perf does not have."""
    try:
        return getattr(_MODULES[lang], name)
    except KeyError:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}") from None


def tables(name: str) -> dict[str, dict[str, str]]:
    """{lang: the strings of output `name`} for every language."""
    return {lang: table(name, lang) for lang in LANGS}
