"""`sse-perf mock-server`: the embedded simulated LLM server in the foreground."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..exit_codes import EXIT_USAGE
from .common import Parser, number, whole_number

_RATES = (  # option dest -> what that fraction of requests gets (MockConfig fields of the same name)
    ("error_rate", "HTTP 500 with the vendor's error body"),
    ("rate_limit_rate", "HTTP 429 with Retry-After and Dify's too_many_requests body"),
    ("html_rate", "HTTP 200 with an HTML page (a proxy's or a login page) instead of the stream"),
    ("stall_rate", "half the tokens, then --stall-s of silence (no pings), then the rest"),
    ("reset_rate", "half the tokens, then a TCP reset"),
    ("stream_error_rate", "half the tokens, then an error event in the 200 stream (Dify `error`, "
                          "after a failed workflow_finished in flows; OpenAI `data: {\"error\"...}` + [DONE])"),
    ("pause_rate", "chatflow / workflow streams: all tokens, then workflow_paused (a human-input node) "
                   "and the stream closes"),
)


def build_mock_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="sse-perf mock-server",
        description="The embedded simulated LLM server: every flavour's path on its real wire format.",
        epilog="example:\n  sse-perf mock-server --port 8000 --ttft-ms 300 --itl-ms 25 --tokens 128 --error-rate 0.01\n"
        "  then: sse-perf --port 8000 --threads 8 --duration 20\n"
        "  sse-perf mock-server --port 8000 --like llama-cpp-python\n"
        "  then: sse-perf --port 8000 --api openai-chat --threads 2 --duration 20 (cut streams are 'truncated')\n"
        "  sse-perf mock-server --port 8000 --dify-mode chatflow --message-end none --reasoning-tokens 8 "
        "--think-tags split\n"
        "  then: sse-perf --port 8000 --threads 4 --duration 20 (Dify 1.13.x: no message_end)\n"
        "faults: each --*-rate is a fraction of valid requests; one draw per request, so they add up to at most 1.",
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
    q.add_argument("--think-tags", choices=("whole", "split"),
                   help="the --reasoning-tokens stream inside <think>...</think> in the answer text, on every "
                   "flavour (Dify's default 'tagged' reasoning, a server without a reasoning parser); split: "
                   "each tag cut across two events (<thi | nk>)")
    d = p.add_argument_group("Dify (as Dify streams it: compact raw-UTF-8 JSON, `event: ping` keep-alives)",
                             "also served: GET /v1/info, GET /v1/parameters, and the stop endpoints POST "
                             "/v1/chat-messages/{task_id}/stop, /v1/completion-messages/{task_id}/stop, "
                             "/v1/workflows/tasks/{task_id}/stop (body {\"user\"}: that user's stream ends early)")
    d.add_argument("--dify-mode", choices=("chat", "chatflow", "agent", "completion", "workflow"), default="chat",
                   help="the app: what POST /chat-messages streams (chat: message* -> message_end; chatflow: "
                   "ping, workflow_started, nodes, message*, workflow_finished, message_end; agent: agent_thought, "
                   "message_file, agent_message* -> message_end) and GET /info's mode; every path is served in "
                   "any mode (default: chat)")
    d.add_argument("--message-end", choices=("after", "none", "before"), default="after",
                   help="chatflow: message_end after workflow_finished, none at all (Dify 1.13.x, issue "
                   "#32856), or before it (newer docs) (default: after)")
    d.add_argument("--ping-interval-s", type=number, default=10.0,
                   help="Dify's keep-alive: chat apps ping every S s; chatflow and workflow runs ping first, "
                   "then after S s of silence (default: 10)")
    d.add_argument("--zero-usage", action="store_true",
                   help="usage with every field 0 (as Dify's annotation and moderation replies send)")
    d.add_argument("--message-replace", action="store_true",
                   help="output moderation: each chat answer ends with message_replace (a new answer) before "
                   "message_end")
    d.add_argument("--required-input", action="append", default=[], metavar="NAME",
                   help="an input variable every Dify request must give in `inputs` (else HTTP 400, as Dify); "
                   "GET /parameters lists it as required; repeat for more")
    f = p.add_argument_group("faults (each a fraction of valid requests)")
    for dest, meaning in _RATES[1:]:
        f.add_argument("--" + dest.replace("_", "-"), type=number, default=0.0, metavar="F", help=meaning)
    f.add_argument("--retry-after-s", type=whole_number, default=1, help="the 429's Retry-After header (default: 1)")
    f.add_argument("--stall-s", type=number, default=30.0, help="how long a stall lasts (default: 30)")
    return p


def mock_server_main(argv: Sequence[str]) -> int:
    args = build_mock_parser().parse_args(argv)
    problems = []
    if not 0 <= args.port <= 65535:
        problems.append(f"--port must be between 0 and 65535 (got {args.port})")
    for name in ("ttft_ms", "itl_ms", "jitter_ms", "stall_s"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    if args.tokens < 1:
        problems.append("--tokens must be at least 1")
    if args.reasoning_tokens < 0:
        problems.append("--reasoning-tokens must not be negative")
    for name in [dest for dest, _ in _RATES] + ["empty_rate"]:
        if not 0 <= getattr(args, name) <= 1:
            problems.append(f"--{name.replace('_', '-')} must be between 0 and 1 (got {getattr(args, name):g})")
    if sum(getattr(args, dest) for dest, _ in _RATES) > 1:
        problems.append("the fault rates (--error-rate, --rate-limit-rate, ...) add up to more than 1")
    if args.retry_after_s < 0:
        problems.append("--retry-after-s must not be negative")
    if not args.ping_interval_s > 0:
        problems.append("--ping-interval-s must be above 0")
    if problems:
        print(f"sse-perf mock-server: error: {problems[0]}", file=sys.stderr)
        return EXIT_USAGE
    from ..mock_server import MockConfig, run_forever

    config = MockConfig(
        host=args.host, port=args.port, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens,
        jitter_ms=args.jitter_ms, reasoning_tokens=args.reasoning_tokens, error_rate=args.error_rate,
        api_key=args.api_key, seed=args.seed, check_request_id=args.check_request_id, interrupt=args.interrupt,
        empty_rate=args.empty_rate, usage=not args.no_usage, tokenize=args.tokenize, like=args.like,
        dify_mode=args.dify_mode, message_end=args.message_end, ping_interval_s=args.ping_interval_s,
        zero_usage=args.zero_usage, think_tags=args.think_tags or "off", message_replace=args.message_replace,
        required_inputs=tuple(args.required_input), retry_after_s=args.retry_after_s, stall_s=args.stall_s,
        **{dest: getattr(args, dest) for dest, _ in _RATES[1:]},
    )
    try:
        return run_forever(config)
    except OSError as exc:
        print(f"sse-perf mock-server: error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_USAGE
