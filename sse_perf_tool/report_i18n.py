"""The HTML report's strings in every language: its table of i18n/en.py and i18n/zh.py, where
every output's strings live (one module per language). Keys are shared by all languages (a test
checks it). The metrics' own names and definitions are in the metric registry (metrics.py).

Imports only i18n.
"""

from __future__ import annotations

from .i18n import LANGS, tables

STRINGS: dict[str, dict[str, str]] = tables("REPORT")  # i18n/en.py, i18n/zh.py
EN, ZH = STRINGS["en"], STRINGS["zh"]


def strings(lang: str) -> dict[str, str]:
    """The string table of `lang`; ValueError for a language the report does not have."""
    try:
        return STRINGS[lang]
    except KeyError:
        raise ValueError(f"unknown report language {lang!r}; expected one of {', '.join(LANGS)}") from None
