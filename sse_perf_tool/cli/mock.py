"""`sse-perf mock-server`: the embedded simulated LLM server in the foreground."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..exit_codes import EXIT_USAGE
from .common import Parser, number, whole_number


def build_mock_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="sse-perf mock-server",
        description="The embedded simulated LLM server: every flavour's path on its real wire format.",
        epilog="example:\n  sse-perf mock-server --port 8000 --ttft-ms 300 --itl-ms 25 --tokens 128 --error-rate 0.01\n"
        "  then: sse-perf --port 8000 --threads 8 --duration 20\n"
        "  sse-perf mock-server --port 8000 --like llama-cpp-python\n"
        "  then: sse-perf --port 8000 --api openai-chat --threads 2 --duration 20 (cut streams are 'truncated')",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=whole_number, default=8000, help="port; 0 picks a free one (default: 8000)")
    p.add_argument("--ttft-ms", type=number, default=200.0, help="delay before the first token (default: 200)")
    p.add_argument("--itl-ms", type=number, default=20.0, help="delay between tokens (default: 20)")
    p.add_argument("--tokens", type=whole_number, default=64, help="answer tokens per response (default: 64)")
    p.add_argument("--jitter-ms", type=number, default=0.0, help="uniform +- jitter on every delay")
    p.add_argument("--reasoning-tokens", type=whole_number, default=0, help="reasoning tokens before the answer")
    p.add_argument("--error-rate", type=number, default=0.0, help="fraction of requests answered with HTTP 500")
    p.add_argument("--api-key", help="when set, other keys get 401")
    p.add_argument("--seed", type=whole_number, help="random seed for jitter and errors")
    q = p.add_argument_group("behave like a real server (for trying sse-perf against its quirks)")
    q.add_argument("--like", choices=("llama-cpp-python",),
                   help="all of that server's default behaviours: --check-request-id --interrupt --no-usage "
                   "--tokenize llama-cpp-python")
    q.add_argument("--check-request-id", action="store_true", help="answer a non-UUID X-Request-Id with an empty HTTP 400")
    q.add_argument("--interrupt", action="store_true", help="a new request cuts the streams running ([DONE] with no "
                   "finish_reason, then the connection closes without the body's last chunk)")
    q.add_argument("--empty-rate", type=number, default=0.0, help="fraction of answers with no text at all")
    q.add_argument("--no-usage", action="store_true", help="ignore stream_options.include_usage (as llama.cpp servers do)")
    q.add_argument("--tokenize", choices=("vllm", "llama.cpp", "llama-cpp-python", "none"), default="vllm",
                   help="tokenizer endpoint to serve: vllm (POST /tokenize, also SGLang's shape), llama.cpp "
                   "(POST /tokenize {content}), llama-cpp-python (POST /extras/tokenize), none (default: vllm)")
    return p


def mock_server_main(argv: Sequence[str]) -> int:
    args = build_mock_parser().parse_args(argv)
    problems = []
    if not 0 <= args.port <= 65535:
        problems.append(f"--port must be between 0 and 65535 (got {args.port})")
    for name in ("ttft_ms", "itl_ms", "jitter_ms"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    if args.tokens < 1:
        problems.append("--tokens must be at least 1")
    if args.reasoning_tokens < 0:
        problems.append("--reasoning-tokens must not be negative")
    if not 0 <= args.error_rate <= 1:
        problems.append(f"--error-rate must be between 0 and 1 (got {args.error_rate:g})")
    if not 0 <= args.empty_rate <= 1:
        problems.append(f"--empty-rate must be between 0 and 1 (got {args.empty_rate:g})")
    if problems:
        print(f"sse-perf mock-server: error: {problems[0]}", file=sys.stderr)
        return EXIT_USAGE
    from ..mock_server import MockConfig, run_forever

    config = MockConfig(
        host=args.host, port=args.port, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens,
        jitter_ms=args.jitter_ms, reasoning_tokens=args.reasoning_tokens, error_rate=args.error_rate,
        api_key=args.api_key, seed=args.seed, check_request_id=args.check_request_id, interrupt=args.interrupt,
        empty_rate=args.empty_rate, usage=not args.no_usage, tokenize=args.tokenize, like=args.like,
    )
    try:
        return run_forever(config)
    except OSError as exc:
        print(f"sse-perf mock-server: error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_USAGE
