"""What every sub-command's parser shares: usage errors as one line and exit 2, number types.

Imports exit_codes only.
"""

from __future__ import annotations

import argparse

from ..exit_codes import EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """Usage errors: one clear line on stderr, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def whole_number(text: str) -> int:
    """Any whole number; the option's own range is checked where the option is validated (with a
    message that names it), e.g. config.validate for --threads."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1 (`history --limit 0` would otherwise list every run)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def number_list(integer: bool):
    """'1,2,4,8' -> (1, 2, 4, 8): a sweep's levels, in the order given."""
    kind = "whole numbers" if integer else "numbers"

    def parse(text: str) -> tuple:
        items = [item.strip() for item in str(text).split(",")]
        if items and not items[-1]:
            items.pop()  # a trailing comma ("1,2,4,") is harmless
        if not items or "" in items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind}, none empty (got {text!r})")
        values = []
        for item in items:
            try:
                values.append(int(item) if integer else float(item))
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected a comma-separated list of {kind}, {item!r} is not one (got {text!r})") from None
        if any(v != v or v in (float("inf"), float("-inf")) or v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"every level must be greater than 0 (got {text!r})")
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"a level is repeated (got {text!r})")
        return tuple(values)

    return parse
