"""The command line: `sse-perf [run options]` and its sub-commands, one module each (run, mock,
report, history, compare, analyze, ui). The only package that reads argv and the environment, prints usage
errors or decides the exit code (exit_codes.py has them all).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from ..exit_codes import EXIT_OK, EXIT_USAGE
from .run import build_run_parser, config_from_args, parse_run_args, run_main

__all__ = ["main", "build_run_parser", "config_from_args", "parse_run_args"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (argparse's own exits, --help included, become returns)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BrokenPipeError:  # `sse-perf history | head`: the reader left; not an error
        if not _stdout_is_gone():
            raise  # a broken pipe elsewhere (a socket) is not the reader leaving
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that the interpreter's last flush does not fail
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _stdout_is_gone() -> bool:
    """Whether stdout's reader has left (a flush fails with a broken pipe)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _main(argv: list) -> int:
    command = argv[0] if argv else None
    if command == "mock-server":
        from .mock import mock_server_main

        return mock_server_main(argv[1:])
    if command == "report":
        from .report import report_main

        return report_main(argv[1:])
    if command == "history":
        from .history import history_main

        return history_main(argv[1:])
    if command == "compare":
        from .compare import compare_main

        return compare_main(argv[1:])
    if command == "analyze":
        from .analyze import analyze_main

        return analyze_main(argv[1:])
    if command == "ui":
        from .ui import ui_main

        return ui_main(argv[1:])
    return run_main(argv)
