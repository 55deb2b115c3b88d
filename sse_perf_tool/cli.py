"""Command line: argparse -> RunConfig, and the wiring of one run. The only module that reads
argv and the environment, prints usage errors or decides the exit code.

Heavy imports (tiktoken, Jinja2, paramiko, pynvml) happen inside functions, so --help stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .config import (API_NAMES, DEFAULT_QUERY, ConfigError, RunConfig, load_extra_body, parse_header, validate,
                     validate_base_url)
from .slo import SLO_HELP

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_SLO, EXIT_INTERRUPTED = 0, 1, 2, 99, 130

RUN_EXAMPLES = """\
examples:
  sse-perf --demo --threads 20 --duration 30
      a real load test against the embedded mock server (no server needed)
  sse-perf --host 10.0.0.5 --port 80 --api-key app-xxx --threads 20 --ramp-up 10 --duration 60
      a Dify chat app: 20 users started over 10 s, sending for 60 s
  sse-perf --base-url http://gpu1:8000/v1 --api openai-chat --model qwen2.5-7b \\
           --param-file examples/queries.txt --threads 32 --duration 120 --model-name qwen7b
      a vLLM / SGLang / TGI OpenAI-compatible server with a file of prompts
  sse-perf --api-key-file keys.txt --param-file dataset.jsonl --requests 500 --threads 16
      exactly 500 requests, keys and prompts taken in turn
  sse-perf --base-url http://gpu1:8000/v1 --api openai-chat --threads 32 --duration 300 \\
           --gpu ssh://ops@gpu1 --server-metrics http://gpu1:8000/metrics
      the same with the server's GPUs (nvidia-smi over SSH) and vLLM's queue metrics
  sse-perf --demo --sweep-threads 1,4,16,64 --duration 10 --slo "ttft_p95<500ms"
      how many threads does it hold within the SLO? (exit 99 when no level meets it)
  sse-perf --demo --rate 4 --arrival poisson --seed 42 --threads 64 --duration 60 --warmup 10
      open loop: 4 requests/s whatever the responses do; queue time counts (no coordinated omission)
  sse-perf --base-url http://127.0.0.1:8000/v1 --api openai-chat --model qwen3 --tokenizer server \
           --extra-body '{"chat_template_kwargs": {"enable_thinking": false}}' --threads 4 --duration 60
      llama.cpp / llama-cpp-python (no usage in the stream): the server's own tokenizer counts the answers;
      server-specific fields go into every request body
  sse-perf --base-url http://gpu1:8000/v1 --api openai-chat --threads 256 --processes 2 --duration 120
      many fast streams: read them in 2 worker processes so the load generator keeps up
  sse-perf --config examples/mixed-datasets.toml --demo
      a load profile kept in version control; options on the command line win
  sse-perf mock-server --port 8000 --ttft-ms 300 --itl-ms 25
      run the simulated LLM server in the foreground
  sse-perf report report/20261121-101500
      render report.html again from a run folder

exit codes: 0 completed (even with failed requests), 2 bad usage or input (nothing sent),
99 an SLO missed, or --max-error-rate or the first 20 requests all failing stopped the run
(results written), 130 interrupted (partial results written), 1 internal error.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors: one clear line on stderr, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _number_list(integer: bool):
    """'1,2,4,8' -> (1, 2, 4, 8): a sweep's levels, in the order given."""
    kind = "whole numbers" if integer else "numbers"

    def parse(text: str) -> tuple:
        items = [item.strip() for item in str(text).split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind} (got {text!r})")
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


DEFAULT_OPEN_LOOP_THREADS = 64


def build_run_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sse-perf",
        description="Load test a streaming LLM endpoint (Dify, vLLM, SGLang, TGI, any OpenAI-compatible "
        "server): concurrency, TTFT, TPOT, throughput and errors, with a per-second live table, a run "
        "folder of raw records and an HTML report.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"sse-perf {__version__}")
    t = p.add_argument_group("target")
    t.add_argument("--host", default="localhost", help="target host (default: localhost)")
    t.add_argument("--port", type=_positive_int, default=80, help="target port (default: 80)")
    t.add_argument("--base-url", help="full base URL, e.g. https://x/v1; wins over --host/--port")
    t.add_argument("--api", choices=API_NAMES, default="dify-chat", help="wire flavour (default: dify-chat)")
    t.add_argument("--api-key", help="app-xxx or 'Bearer app-xxx' (or env SSE_PERF_API_KEY)")
    t.add_argument("--api-key-file", help="file with one key per line; requests take keys in turn")
    t.add_argument("--header", action="append", default=[], metavar="'K: V'", help="extra request header (repeatable)")
    t.add_argument("--no-request-id", action="store_true",
                   help="send no X-Request-Id header (by default each request has a UUID; --header "
                   "'X-Request-Id: ...' sends yours instead)")
    t.add_argument("--timeout", type=_number, default=60.0, metavar="S",
                   help="per-request connect and read limit; also the longest silence between events (default: 60)")
    w = p.add_argument_group("workload")
    w.add_argument("--query", default=DEFAULT_QUERY, help=f"the prompt when no --param-file is given (default: {DEFAULT_QUERY})")
    w.add_argument("--param-file", help=".txt: one query per line; .jsonl: {query, inputs, dataset, max_tokens}")
    w.add_argument("--dataset", action="append", default=[], metavar="NAME=PATH[:WEIGHT]",
                   help="a named query file (.txt or .jsonl); repeatable; each request draws a dataset by weight "
                   "(default 1) and takes its next query")
    w.add_argument("--model", help="model field for OpenAI flavours")
    w.add_argument("--max-tokens", type=_positive_int, help="max_tokens sent where the flavour has it")
    w.add_argument("--temperature", type=_number)
    w.add_argument("--top-p", type=_number)
    w.add_argument("--user", default="sse-perf", help="Dify user field (default: sse-perf)")
    w.add_argument("--conversation-id", default="", help="Dify conversation_id (default: empty = new conversation)")
    w.add_argument("--tokenizer", default="cl100k_base", metavar="NAME",
                   help="how answers are counted when the server reports no usage: cl100k_base or o200k_base "
                   "(tiktoken, OpenAI's tokenizers), server (the target's own /tokenize or /extras/tokenize "
                   "endpoint: vLLM, SGLang, llama.cpp, llama-cpp-python), or hf:PATH (a local tokenizer.json, "
                   "offline) (default: cl100k_base)")
    w.add_argument("--extra-body", metavar="JSON|@FILE",
                   help="JSON object merged into every request body (its keys win), e.g. "
                   "'{\"ignore_eos\": true, \"min_tokens\": 128}' or @extra.json")
    load = p.add_argument_group("load (closed loop by default: each thread sends its next request when the last ends)")
    load.add_argument("--threads", type=_positive_int, default=None,
                      help=f"concurrent users (default: 1); with --rate, the most requests in flight "
                      f"(default: {DEFAULT_OPEN_LOOP_THREADS})")
    load.add_argument("--processes", type=_positive_int, default=1, metavar="P",
                      help="read the streams in P worker processes, the threads spread over them (default: 1 = "
                      "all in this process); one Python process reads at most about one core's worth of events, "
                      "so use 2 or more when the self-check reports the load generator saturated")
    load.add_argument("--ramp-up", type=_number, default=0.0, metavar="S", help="start the threads evenly over S seconds")
    load.add_argument("--duration", "--execution-time", dest="duration", type=_number, default=0.0, metavar="S",
                      help="seconds to keep sending; 0 = one request per thread (default: 0)")
    load.add_argument("--requests", type=_positive_int, metavar="N", help="stop after N requests in total")
    load.add_argument("--grace", type=_number, default=30.0, metavar="S",
                      help="after --duration, in-flight requests get S seconds to finish, then are cancelled (default: 30)")
    load.add_argument("--rate", type=_number, metavar="R",
                      help="open loop: R requests/s on an arrival schedule, whatever the responses do")
    load.add_argument("--arrival", choices=("poisson", "constant"), default="poisson",
                      help="open-loop arrival schedule (default: poisson)")
    load.add_argument("--seed", type=_positive_int, help="seed for arrivals and --dataset draws (default: random, "
                      "recorded in summary.json so a run can be repeated)")
    load.add_argument("--sweep-threads", type=_number_list(True), metavar="1,2,4,..",
                      help="run each thread count in turn for --duration (or --requests), one run folder")
    load.add_argument("--sweep-rate", type=_number_list(False), metavar="1,2,4,..",
                      help="open-loop sweep: run each rate (requests/s) in turn")
    load.add_argument("--cooldown", type=_number, default=0.0, metavar="S", help="pause between sweep levels")
    load.add_argument("--warmup", type=_number, default=0.0, metavar="S",
                      help="first S seconds (of each sweep level) are warm-up: recorded, excluded from statistics; "
                      "--duration counts after them")
    load.add_argument("--warmup-requests", type=_positive_int, default=0, metavar="N",
                      help="the first N requests (of each level) are warm-up")
    load.add_argument("--max-error-rate", type=_number, metavar="PCT",
                      help="stop the run early when more than PCT%% of the last 50 requests (20 at least) failed")
    load.add_argument("--keep-going", action="store_true",
                      help="do not stop when each of the first 20 measured requests failed (by default such a "
                      "run stops, naming the top error: it is misconfigured, not loaded)")
    gates = p.add_argument_group("service levels (exit code 99 when one is missed)")
    gates.add_argument("--slo", action="append", default=[], metavar="EXPR", help=SLO_HELP)
    o = p.add_argument_group("output")
    o.add_argument("--output-dir", default="report", help="parent of run folders (default: ./report)")
    o.add_argument("--html-report", metavar="PATH", help="write report.html here instead of inside the run folder")
    o.add_argument("--model-name", help="label for the run; part of the run folder's name")
    o.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the live table and report")
    o.add_argument("--quiet", action="store_true", help="no per-second table, only the final summary")
    o.add_argument("--history", metavar="PATH", help="history database of every run (default: OUTPUT_DIR/history.db)")
    o.add_argument("--no-history", action="store_true", help="do not record this run in the history database")
    g = p.add_argument_group("telemetry (sampled every second into the time series and report)")
    g.add_argument("--gpu", action="append", default=[], metavar="SOURCE",
                   help="'local' (NVML) or ssh://user@host[:port] (nvidia-smi over SSH); repeatable")
    g.add_argument("--gpu-index", metavar="0,1", help="only these GPU indices (default: all)")
    g.add_argument("--ssh-key", metavar="PATH", help="private key for ssh:// GPU sources (else ssh-agent, or the "
                   "password in env SSE_PERF_SSH_PASSWORD)")
    g.add_argument("--ssh-accept-new-host-key", action="store_true",
                   help="accept a host key missing from known_hosts (with a warning) instead of refusing")
    g.add_argument("--known-hosts", metavar="PATH", help="known_hosts file (default: ~/.ssh/known_hosts)")
    g.add_argument("--server-metrics", action="append", default=[], metavar="URL",
                   help="Prometheus /metrics endpoint to scrape (vLLM, SGLang); repeatable")
    g.add_argument("--server-metric", action="append", default=[], metavar="NAME",
                   help="also record this Prometheus metric name; repeatable")
    p.add_argument("--demo", action="store_true", help="start the embedded mock server on a free loopback port and target it")
    p.add_argument("--config", metavar="FILE.toml", help="run options from a TOML file (keys = option names without "
                   "--); options on the command line win")
    return p


def config_from_args(args: argparse.Namespace, env: dict) -> RunConfig:
    base_url = args.base_url or f"http://{args.host}:{args.port}/v1"
    if not args.demo:
        validate_base_url(base_url)
    headers = tuple(parse_header(h) for h in args.header)
    cfg = RunConfig(
        base_url=base_url,
        api=args.api,
        api_key=args.api_key or env.get("SSE_PERF_API_KEY") or None,
        api_key_file=args.api_key_file,
        query=args.query,
        param_file=args.param_file,
        threads=_threads(args),
        processes=args.processes,
        ramp_up_s=args.ramp_up,
        duration_s=args.duration,
        requests=args.requests,
        timeout_s=args.timeout,
        grace_s=args.grace,
        model=args.model,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        headers=headers,
        user=args.user,
        conversation_id=args.conversation_id,
        output_dir=args.output_dir,
        html_report=args.html_report,
        model_name=args.model_name,
        tokenizer=args.tokenizer,
        lang=args.lang,
        quiet=args.quiet,
        demo=args.demo,
        gpu=tuple(args.gpu),
        gpu_index=args.gpu_index,
        ssh_key=args.ssh_key,
        ssh_accept_new_host_key=args.ssh_accept_new_host_key,
        known_hosts=args.known_hosts,
        server_metrics=tuple(args.server_metrics),
        server_metric_names=tuple(args.server_metric),
        rate=args.rate,
        arrival=args.arrival,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31),
        sweep_threads=args.sweep_threads or (),
        sweep_rate=args.sweep_rate or (),
        cooldown_s=args.cooldown,
        warmup_s=args.warmup,
        warmup_requests=args.warmup_requests,
        slo=",".join(args.slo) or None,
        max_error_rate_pct=args.max_error_rate,
        datasets=tuple(args.dataset),
        config_file=args.config,
        history=args.history,
        no_history=args.no_history,
        request_id=not args.no_request_id,
        extra_body=load_extra_body(args.extra_body) if args.extra_body is not None else None,
        keep_going=args.keep_going,
    )
    if args.port < 1 or args.port > 65535:
        raise ConfigError(f"--port must be between 1 and 65535 (got {args.port})")
    return validate(cfg)


def _threads(args: argparse.Namespace) -> int:
    if args.sweep_threads and args.threads is not None:
        raise ConfigError("--threads and --sweep-threads cannot be combined: the sweep sets the threads of each level")
    if args.threads is not None:
        return args.threads
    if args.sweep_threads:
        return max(args.sweep_threads)
    return DEFAULT_OPEN_LOOP_THREADS if (args.rate is not None or args.sweep_rate) else 1


def parse_run_args(argv: list) -> argparse.Namespace:
    """argv (and --config FILE, whose options the command line overrides) -> Namespace.
    Raises ConfigError for a bad config file; argparse exits 2 for bad options."""
    parser = build_run_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if not known.config:
        return parser.parse_args(argv)
    from .config_file import load_config_file

    values = load_config_file(known.config, parser)
    # repeatable options: the command line's list replaces the file's (it would otherwise add to it)
    appends = {a.dest for a in parser._actions if isinstance(a, argparse._AppendAction)}
    listed = {dest: values.pop(dest) for dest in list(values) if dest in appends}
    parser.set_defaults(**values)
    args = parser.parse_args(argv)
    for dest, value in listed.items():
        if not getattr(args, dest):
            setattr(args, dest, list(value) if isinstance(value, (list, tuple)) else [value])
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (argparse's own exits, --help included, become returns)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BrokenPipeError:  # `sse-perf history | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _main(argv: list) -> int:
    if argv and argv[0] == "mock-server":
        return mock_server_main(argv[1:])
    if argv and argv[0] == "report":
        return report_main(argv[1:])
    if argv and argv[0] == "history":
        return history_main(argv[1:])
    if argv and argv[0] == "compare":
        from .compare_cli import compare_main

        return compare_main(argv[1:])
    try:
        args = parse_run_args(argv)
        cfg = config_from_args(args, dict(os.environ))
        from .execution import prepare_run

        prepared = prepare_run(cfg, ssh_password=os.environ.get("SSE_PERF_SSH_PASSWORD") or None)
    except ConfigError as exc:
        print(f"sse-perf: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .execution import execute_run

    return execute_run(prepared)


def build_mock_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sse-perf mock-server",
        description="The embedded simulated LLM server: every flavour's path on its real wire format.",
        epilog="example:\n  sse-perf mock-server --port 8000 --ttft-ms 300 --itl-ms 25 --tokens 128 --error-rate 0.01\n"
        "  then: sse-perf --port 8000 --threads 8 --duration 20\n"
        "  sse-perf mock-server --port 8000 --like llama-cpp-python\n"
        "  then: sse-perf --port 8000 --api openai-chat --threads 2 --duration 20 (cut streams are 'truncated')",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=8000, help="port; 0 picks a free one (default: 8000)")
    p.add_argument("--ttft-ms", type=_number, default=200.0, help="delay before the first token (default: 200)")
    p.add_argument("--itl-ms", type=_number, default=20.0, help="delay between tokens (default: 20)")
    p.add_argument("--tokens", type=_positive_int, default=64, help="answer tokens per response (default: 64)")
    p.add_argument("--jitter-ms", type=_number, default=0.0, help="uniform +- jitter on every delay")
    p.add_argument("--reasoning-tokens", type=_positive_int, default=0, help="reasoning tokens before the answer")
    p.add_argument("--error-rate", type=_number, default=0.0, help="fraction of requests answered with HTTP 500")
    p.add_argument("--api-key", help="when set, other keys get 401")
    p.add_argument("--seed", type=_positive_int, help="random seed for jitter and errors")
    q = p.add_argument_group("behave like a real server (for trying sse-perf against its quirks)")
    q.add_argument("--like", choices=("llama-cpp-python",),
                   help="all of that server's default behaviours: --check-request-id --interrupt --no-usage "
                   "--tokenize llama-cpp-python")
    q.add_argument("--check-request-id", action="store_true", help="answer a non-UUID X-Request-Id with an empty HTTP 400")
    q.add_argument("--interrupt", action="store_true", help="a new request cuts the streams running ([DONE] with no "
                   "finish_reason, then the connection closes without the body's last chunk)")
    q.add_argument("--empty-rate", type=_number, default=0.0, help="fraction of answers with no text at all")
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
    from .mock_server import MockConfig, run_forever

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


def report_main(argv: Sequence[str]) -> int:
    p = _Parser(
        prog="sse-perf report",
        description="Render report.html again from a run folder's records.jsonl, timeseries.csv and summary.json.",
        epilog="example:\n  sse-perf report report/20261121-101500 -o /tmp/run.html --lang zh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write the report (default: RUN_DIR/report.html)")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    missing = [n for n in ("summary.json", "timeseries.csv", "records.jsonl") if not (run_dir / n).is_file()]
    if not run_dir.is_dir():
        print(f"sse-perf report: error: not a folder: {run_dir}", file=sys.stderr)
        return EXIT_USAGE
    if missing:
        print(f"sse-perf report: error: {run_dir} is not a run folder (missing {', '.join(missing)})", file=sys.stderr)
        return EXIT_USAGE
    from .report import write_report

    try:
        path = write_report(run_dir, Path(args.output) if args.output else None, lang=args.lang)
    except (OSError, ValueError) as exc:
        print(f"sse-perf report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {path}")
    return EXIT_OK


HISTORY_EXAMPLES = """\
examples:
  sse-perf history                          the runs recorded in report/history.db, newest first
  sse-perf history --model qwen --since 7d --limit 20
  sse-perf history --json                   {"runs": [{"id", "started_at", "model_name", ...}]}
  sse-perf history show 12                  one run's summary
  sse-perf history import /data/20261120-101500-qwen7b
                                            add a run folder made elsewhere
  sse-perf history export 12 --format csv -o run12.csv
"""


def build_history_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sse-perf history", description="Every run is recorded in a SQLite database "
                "(default report/history.db). List them, show one, import a run folder, export one.",
                epilog=HISTORY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=("list", "show", "import", "export"), default="list",
                   help="list (default), show ID, import RUN_DIR..., export ID")
    p.add_argument("targets", nargs="*", metavar="ID|RUN_DIR")
    p.add_argument("--history", metavar="PATH", help="the database (default: OUTPUT_DIR/history.db)")
    p.add_argument("--output-dir", default="report", help="where run folders and history.db live (default: ./report)")
    p.add_argument("--model", help="only runs whose model label contains this")
    p.add_argument("--since", metavar="WHEN", help="only runs started since: 2026-11-01, 2026-11-01T09:00, 7d, 12h, 30m")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="at most N runs (newest first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="export format (default: csv)")
    p.add_argument("-o", "--output", metavar="PATH", help="export to this file (default: standard output)")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    return p


def _history_fail(message: str) -> int:
    print(f"sse-perf history: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def resolve_run_id(db, text: str) -> int:
    """A run id that exists in `db`; ConfigError naming the closest known ids otherwise."""
    known = db.ids()
    try:
        run_id = int(text)
    except ValueError:
        run_id = None
    if run_id is not None and run_id in known:
        return run_id
    if not known:
        raise ConfigError(f"unknown run id {text!r}: the history has no runs yet")
    target = run_id if run_id is not None else max(known)
    closest = sorted(known, key=lambda k: (abs(k - target), k))[:3]
    raise ConfigError(f"unknown run id {text!r} (closest known: {', '.join(map(str, sorted(closest)))})")


def history_main(argv: Sequence[str]) -> int:
    args = build_history_parser().parse_args(argv)
    from .history import History, HistoryError, default_history_path, since_to_timestamp
    from . import history_view as view

    path = args.history or default_history_path(args.output_dir)
    if args.action != "import" and not Path(path).is_file():
        if args.action == "list":
            print(json.dumps({"runs": []}) if args.json else f"no runs recorded yet ({path} does not exist)")
            return EXIT_OK
        return _history_fail(f"no history database at {path}")
    since = None
    if args.since:
        try:
            since = since_to_timestamp(args.since)
        except ValueError:
            return _history_fail(f"--since must be a date (2026-11-01), a date and time, or 7d / 12h / 30m (got {args.since!r})")
    try:
        db = History(path)
    except HistoryError as exc:
        return _history_fail(str(exc))
    try:
        return _history_action(args, db, view, since)
    except ConfigError as exc:
        return _history_fail(str(exc))
    except HistoryError as exc:
        return _history_fail(str(exc))
    finally:
        db.close()


def _history_action(args, db, view, since) -> int:
    if args.action == "list":
        runs = db.list_runs(model=args.model, since=since, limit=args.limit)
        if args.json:
            print(json.dumps({"runs": [view.run_json(r) for r in runs]}, ensure_ascii=False, indent=1))
        elif not runs:
            print("no runs match" if (args.model or since) else "no runs recorded yet")
        else:
            for line in view.runs_table(runs):
                print(line)
        return EXIT_OK
    if args.action == "import":
        if not args.targets:
            raise ConfigError("history import needs one or more run folders")
        for target in args.targets:
            folder = Path(target)
            if not (folder / "summary.json").is_file() or not (folder / "records.jsonl").is_file():
                raise ConfigError(f"{target} is not a run folder (needs summary.json and records.jsonl)")
        for target in args.targets:
            print(f"imported {target} as run #{db.import_run_dir(Path(target))}")
        return EXIT_OK
    if len(args.targets) != 1:
        raise ConfigError(f"history {args.action} needs exactly one run id")
    run_id = resolve_run_id(db, args.targets[0])
    run = db.get_run(run_id)
    if args.action == "show":
        if args.json:
            print(json.dumps(dict(view.run_json(run), summary=run.get("summary")), ensure_ascii=False, indent=1))
        else:
            for line in view.show_lines(run, db.count_records(run_id), args.lang):
                print(line)
        return EXIT_OK
    text = (view.export_csv(db.records(run_id)) if args.format == "csv"
            else view.export_json(run, db.records(run_id)))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"exported run #{run_id} ({args.format}) to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
