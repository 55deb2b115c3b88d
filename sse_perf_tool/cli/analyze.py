"""`sse-perf analyze RUN_DIR`: a model's reading of a finished run (analysis.py), streamed to the
terminal, written to RUN_DIR/analysis.md and shown in the run's report. Also the LLM options that
`--analyze` on a run shares, and where the model's key comes from (a file, or
SSE_PERF_LLM_API_KEY)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..config import ConfigError, check_llm_options
from ..exit_codes import EXIT_OK, EXIT_USAGE
from .common import Parser, number

ANALYZE_EXAMPLES = """\
examples:
  sse-perf analyze report/20261121-101500 --llm-base-url http://gpu1:8000/v1 --llm-model qwen2.5-7b
      a model served by vLLM reads the run; the answer streams here and goes into analysis.md and the report
  sse-perf analyze report/20261121-101500 --llm-base-url https://api.openai.com/v1 --llm-model gpt-4o-mini \\
           --llm-api-key-file ~/.openai-key --lang zh
      in Chinese, from a hosted model
  sse-perf --demo --duration 10 --analyze
      a demo run read by the embedded mock server's fixed analysis (the whole path, offline)

What the model is sent: the run's options (no key, header, prompt or answer), the summary, the levels,
the findings and the per-second series, reduced to fit --llm-context-chars.
exit codes: 0 written, 2 bad usage or the model could not answer (the run folder is left as it was).
"""


def add_llm_options(p: argparse.ArgumentParser, g=None) -> None:
    g = g if g is not None else p.add_argument_group("the model that reads the run")
    g.add_argument("--llm-base-url", metavar="URL",
                   help="an OpenAI-compatible server's base URL (its /chat/completions reads the run); or env "
                   "SSE_PERF_LLM_BASE_URL")
    g.add_argument("--llm-model", metavar="NAME", help="the model field sent (default: none, the server's own)")
    g.add_argument("--llm-api-key-file", metavar="FILE", help="the key for that server, first line of FILE (or env "
                   "SSE_PERF_LLM_API_KEY)")
    g.add_argument("--llm-timeout", type=number, default=120.0, metavar="S",
                   help="the whole answer within S seconds (default: 120)")
    g.add_argument("--llm-context-chars", type=int, default=None, metavar="N",
                   help="the most characters of the run's digest the model is sent (default: 24000)")


def llm_settings(args, env: dict, default_base_url: Optional[str] = None):
    """The LLM options checked (ConfigError with one line)."""
    base_url = args.llm_base_url or env.get("SSE_PERF_LLM_BASE_URL") or default_base_url
    if not base_url:
        raise ConfigError("a model's reading needs --llm-base-url (an OpenAI-compatible server, e.g. "
                          "http://gpu1:8000/v1) or env SSE_PERF_LLM_BASE_URL")
    from ..analysis import CONTEXT_CHARS, LlmSettings, read_llm_key

    base_url = check_llm_options(base_url, args.llm_timeout, args.llm_context_chars)
    chars = CONTEXT_CHARS if args.llm_context_chars is None else args.llm_context_chars
    key = read_llm_key(args.llm_api_key_file, env)
    return LlmSettings(base_url, args.llm_model, key, args.llm_timeout, chars)


def analyze_main(argv: Sequence[str]) -> int:
    p = Parser(prog="sse-perf analyze", epilog=ANALYZE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="A model's reading of a run: its digest is sent to an OpenAI-compatible chat endpoint, "
               "the answer streams to the terminal and is written to RUN_DIR/analysis.md, which the report shows.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="the answer's language, and the report's")
    add_llm_options(p)
    args = p.parse_args(list(argv))
    from ..analysis import AnalysisError
    from ..masking import mask_known

    run_dir = Path(args.run_dir)
    try:
        if not run_dir.is_dir():
            raise ConfigError(f"not a folder: {run_dir}")
        settings = llm_settings(args, dict(os.environ))
        from ..analysis import analyze_folder

        path = analyze_folder(run_dir, settings, args.lang, sys.stdout)
    except (ConfigError, AnalysisError) as exc:
        sys.stdout.flush()
        print(f"sse-perf analyze: error: {mask_known(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    from ..report import write_report

    try:
        report = write_report(run_dir, lang=args.lang)
    except (OSError, ValueError) as exc:
        print(f"analysis: {path} (the report could not be written again: {exc})")
        return EXIT_OK
    print(f"analysis: {path}\nreport: {report}")
    return EXIT_OK
