"""`sse-perf [run options]`: argparse -> a validated RunConfig, then the run (execution.py).

Reads argv and the environment (SSE_PERF_API_KEY, SSE_PERF_SSH_PASSWORD); heavy imports happen
inside functions, so --help stays fast.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

from .. import __version__
from ..config import (API_NAMES, DEFAULT_QUERY, ConfigError, RunConfig, load_extra_body, parse_demo_mock, parse_header,
                       validate, validate_base_url)
from ..exit_codes import EXIT_USAGE
from ..masking import mask_known
from ..slo import SLO_HELP
from .common import Parser, number, number_list, whole_number


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
  sse-perf --base-url http://127.0.0.1:8000/v1 --api openai-chat --model qwen3 --tokenizer server \\
           --extra-body '{"chat_template_kwargs": {"enable_thinking": false}}' --threads 4 --duration 60
      llama.cpp / llama-cpp-python (no usage in the stream): the server's own tokenizer counts the answers;
      server-specific fields go into every request body
  sse-perf --base-url http://gpu1:8000/v1 --api openai-chat --threads 256 --processes 2 --duration 120
      many fast streams: read them in 2 worker processes so the load generator keeps up
  sse-perf --ray auto --ray-workers 16 --base-url http://gpu1:8000/v1 --api openai-chat --threads 2000 \\
           --duration 300
      the load from every node of a Ray cluster (run on a cluster node); the report is written here
  sse-perf --config examples/mixed-datasets.toml --demo
      a load profile kept in version control; options on the command line win
  sse-perf --demo --threads 8 --duration 600 --live 8089
      watch a long run in a browser: open the printed http://127.0.0.1:8089/?token=... URL
  sse-perf mock-server --port 8000 --ttft-ms 300 --itl-ms 25
      run the simulated LLM server in the foreground
  sse-perf report report/20261121-101500
      render report.html again from a run folder
  sse-perf --demo --duration 10 --analyze
      a model's reading of the run (here the mock's fixed one; --llm-base-url names a real model)
  sse-perf ui
      a local web console: the runs of the history, a New run form, saved targets

exit codes: 0 completed (even with some failed requests), 3 not one measured request
succeeded (results written), 2 bad usage or input (nothing sent), 99 an SLO missed or
--max-error-rate stopped the run (results written), 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
(partial results written), 1 internal error.
"""


DEFAULT_OPEN_LOOP_THREADS = 64


def build_run_parser() -> argparse.ArgumentParser:
    p = Parser(
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
    t.add_argument("--port", type=whole_number, default=80, help="target port (default: 80)")
    t.add_argument("--base-url", help="full base URL, e.g. https://x/v1; wins over --host/--port")
    t.add_argument("--api", choices=API_NAMES + ("auto",), default="dify-chat",
                   help="wire flavour; auto asks a Dify app's GET /v1/info for its mode (and /v1/parameters for its "
                   "required inputs) before any load (default: dify-chat)")
    t.add_argument("--api-key", help="app-xxx or 'Bearer app-xxx' (or env SSE_PERF_API_KEY)")
    t.add_argument("--api-key-file", help="file with one key per line; requests take keys in turn")
    t.add_argument("--header", action="append", default=[], metavar="'K: V'", help="extra request header (repeatable)")
    t.add_argument("--request-timeout", type=number, metavar="S",
                   help="fail a request that runs longer than S seconds in all (an endless stream; keep-alive pings "
                   "do not extend it); default: no limit, only --timeout between reads")
    t.add_argument("--idle-timeout", type=number, metavar="S",
                   help="fail a request with no data event for S seconds: unlike --timeout, Dify's ping keep-alives "
                   "do not count as progress (default: off)")
    t.add_argument("--ca-bundle", metavar="PATH",
                   help="the CA certificates (PEM) https targets are checked against, e.g. an intranet CA (default: "
                   "certifi's, or env REQUESTS_CA_BUNDLE)")
    t.add_argument("--insecure", action="store_true",
                   help="do not check TLS certificates (self-signed test servers); a warning says so at the start")
    t.add_argument("--follow-redirects", action="store_true",
                   help="follow a 307 or 308 redirect within the same origin (scheme, host, port); by default no "
                   "redirect is followed and the request fails as http_status naming the Location (a redirect to "
                   "another host would take the API key there; a 301/302 would turn the POST into a GET)")
    t.add_argument("--no-request-id", action="store_true",
                   help="send no X-Request-Id header (by default each request has a UUID; --header "
                   "'X-Request-Id: ...' sends yours instead)")
    t.add_argument("--timeout", type=number, default=60.0, metavar="S",
                   help="per-request connect and read limit; also the longest silence between events (default: 60)")
    w = p.add_argument_group("workload")
    w.add_argument("--query", default=None, help=f"the prompt when no --param-file is given (default: {DEFAULT_QUERY})")
    w.add_argument("--param-file", help=".txt: one query per line; .jsonl: {query, inputs, dataset, max_tokens}")
    w.add_argument("--dataset", action="append", default=[], metavar="NAME=PATH[:WEIGHT]",
                   help="a named query file (.txt or .jsonl); repeatable; each request draws a dataset by weight "
                   "(default 1) and takes its next query")
    w.add_argument("--input-tokens", metavar="N[:SD]",
                   help="synthetic prompts of N tokens (a normal spread of SD, drawn with --seed): real words cut with "
                   "the offline tokenizer, instead of --query or a file; the summary records the lengths sent")
    w.add_argument("--output-tokens", metavar="M[:SD]",
                   help="each request asks for M tokens (SD as above): max_tokens, and on OpenAI-compatible servers "
                   "min_tokens and ignore_eos (vLLM) so the answers have that length; the summary records asked and got")
    w.add_argument("--prefix-tokens", type=whole_number, metavar="K",
                   help="prompts open with one of --prefix-groups shared prefixes of K tokens, in turn (prefix-cache "
                   "benchmarks); each group is a dataset of the summary and report (prefix-1 ..)")
    w.add_argument("--prefix-groups", type=whole_number, metavar="G", help="how many shared prefixes (with --prefix-tokens)")
    w.add_argument("--model", help="model field for OpenAI flavours")
    w.add_argument("--max-tokens", type=whole_number, help="max_tokens sent where the flavour has it")
    w.add_argument("--temperature", type=number)
    w.add_argument("--top-p", type=number)
    w.add_argument("--user", default="sse-perf-{thread}", metavar="ID",
                   help="Dify user field; {thread} becomes the virtual user's number, so the app sees one user per "
                   "thread as it would real users (default: sse-perf-{thread})")
    w.add_argument("--conversation-id", default="", help="Dify conversation_id (default: empty = new conversation)")
    w.add_argument("--turns", type=whole_number, default=1, metavar="N",
                   help="each virtual user holds a conversation of N turns, then starts a new one: Dify sends back "
                   "the conversation_id the server returned, OpenAI chat sends the growing message list with the real "
                   "answers (1, 3, 5 ... messages); records carry conversation_turn and the summary splits by turn "
                   "(default: 1)")
    w.add_argument("--dify-auto-generate-name", choices=("on", "off"), default=None,
                   help="Dify names each new conversation with an extra LLM call (its default: on); off saves that "
                   "call on every new conversation, so the load is only the answers")
    w.add_argument("--tokenizer", default="cl100k_base", metavar="NAME",
                   help="how answers are counted when the server reports no usage: cl100k_base or o200k_base "
                   "(tiktoken, OpenAI's tokenizers), server (the target's own /tokenize or /extras/tokenize "
                   "endpoint: vLLM, SGLang, llama.cpp, llama-cpp-python), or hf:PATH (a local tokenizer.json, "
                   "offline) (default: cl100k_base)")
    w.add_argument("--think-tags", default="auto", metavar="auto|off|TAG",
                   help="reasoning streamed inside the answer as a leading <think>...</think> block (DeepSeek-R1, "
                   "QwQ, Qwen3 without a reasoning parser; Dify's default): auto treats it as reasoning (it counts "
                   "for TTFT, not TTFO or output_chars), off keeps it as answer text, TAG uses <TAG>...</TAG> "
                   "(default: auto)")
    w.add_argument("--extra-body", metavar="JSON|@FILE",
                   help="JSON object merged into every request body (its keys win), e.g. "
                   "'{\"ignore_eos\": true, \"min_tokens\": 128}' or @extra.json")
    load = p.add_argument_group("load (closed loop by default: each thread sends its next request when the last ends)")
    load.add_argument("--threads", type=whole_number, default=None,
                      help=f"concurrent users (default: 1); with --rate, the most requests in flight "
                      f"(default: {DEFAULT_OPEN_LOOP_THREADS})")
    load.add_argument("--processes", type=whole_number, default=1, metavar="P",
                      help="read the streams in P worker processes, the threads spread over them (default: 1 = "
                      "all in this process); one Python process reads at most about one core's worth of events, "
                      "so use 2 or more when the self-check reports the load generator saturated")
    ray = p.add_argument_group("several machines (pip install 'sse-perf[ray]'; see the README's 'Several machines')")
    ray.add_argument("--ray", metavar="ADDRESS",
                     help="run the workers as Ray actors: local (a private Ray on this machine, for trying it), auto "
                     "(the cluster this machine joined with `ray start`, or RAY_ADDRESS) or the cluster's HOST:PORT; "
                     "the run is driven, measured and written here")
    ray.add_argument("--ray-workers", type=whole_number, metavar="N",
                     help="worker actors, one CPU each (default: one per CPU the cluster offers, at most --threads)")
    ray.add_argument("--ray-spread", choices=("spread", "strict", "pack"), default="spread",
                     help="how the workers are placed: spread over the nodes (default), strict (one per node at "
                     "most), pack (as few nodes as possible)")
    load.add_argument("--ramp-up", type=number, default=0.0, metavar="S", help="start the threads evenly over S seconds")
    load.add_argument("--duration", "--execution-time", dest="duration", type=number, default=0.0, metavar="S",
                      help="seconds to keep sending; 0 = one request per thread (default: 0)")
    load.add_argument("--requests", type=whole_number, metavar="N", help="stop after N requests in total")
    load.add_argument("--honor-retry-after", action="store_true",
                      help="a virtual user answered HTTP 429 with Retry-After waits that long (at most 60 s) before "
                      "its next request, recorded as retry_wait_ms (closed loop only); by default the offered load "
                      "stays constant and a rate-limited user sends again at once")
    load.add_argument("--grace", type=number, default=30.0, metavar="S",
                      help="after --duration, in-flight requests get S seconds to finish, then are cancelled (default: 30)")
    load.add_argument("--rate", type=number, metavar="R",
                      help="open loop: R requests/s on an arrival schedule, whatever the responses do")
    load.add_argument("--arrival", choices=("poisson", "constant"), default="poisson",
                      help="open-loop arrival schedule (default: poisson)")
    load.add_argument("--seed", type=whole_number, help="seed for arrivals and --dataset draws (default: random, "
                      "recorded in summary.json so a run can be repeated)")
    load.add_argument("--sweep-threads", type=number_list(True), metavar="1,2,4,..",
                      help="run each thread count in turn for --duration (or --requests), one run folder")
    load.add_argument("--sweep-rate", type=number_list(False), metavar="1,2,4,..",
                      help="open-loop sweep: run each rate (requests/s) in turn")
    load.add_argument("--cooldown", type=number, default=0.0, metavar="S", help="pause between sweep levels")
    load.add_argument("--warmup", type=number, default=0.0, metavar="S",
                      help="first S seconds (of each sweep level) are warm-up: recorded, excluded from statistics; "
                      "--duration counts after them")
    load.add_argument("--warmup-requests", type=whole_number, default=0, metavar="N",
                      help="the first N requests (of each level) are warm-up")
    load.add_argument("--max-error-rate", type=number, metavar="PCT",
                      help="stop the run early when more than PCT%% of the last 50 requests (20 at least) failed")
    load.add_argument("--trace", metavar="FILE",
                      help="replay a recorded workload: each request at its moment with its lengths (JSONL as Mooncake's "
                      "traces: timestamp in ms or timestamp_s, input_length, output_length, hash_ids; or BurstGPT's CSV); "
                      "open loop, at most --threads in flight; the run ends after its last request")
    load.add_argument("--trace-speed", type=number, default=1.0, metavar="X",
                      help="replay the trace X times as fast as recorded (default: 1)")
    load.add_argument("--cancel-rate", type=number, metavar="PCT",
                      help="users who give up: PCT%% of the requests (drawn with --seed) are cancelled by sse-perf "
                      "after --cancel-after, recorded as abandoned (neither ok nor failed; Dify's stop endpoint is "
                      "called)")
    load.add_argument("--cancel-after", metavar="S|Ntokens",
                      help="when such a user gives up: after S seconds (2, 2.5s) or N token events (50tokens)")
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
    o.add_argument("--live", metavar="[HOST:]PORT",
                   help="while the run runs, serve a live view at http://HOST:PORT/ (charts every second, the live "
                   "table's figures, a Stop button, /events as Server-Sent Events, /metrics for Prometheus); the URL "
                   "with its access token is printed at the start; HOST defaults to 127.0.0.1, PORT 0 takes a free one")
    o.add_argument("--allow-remote", action="store_true",
                   help="let --live bind an address other machines can reach (0.0.0.0, a LAN address): anyone "
                   "with the URL's token can then watch and stop the run, over plain HTTP")
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
    p.add_argument("--demo-mock", metavar="K=V,..",
                   help="how the --demo server behaves (sse-perf mock-server's options as K=V): ttft_ms, itl_ms, tokens, "
                   "jitter_ms, reasoning_tokens, error_rate, empty_rate, seed; Dify as Dify streams it: "
                   "dify_mode=chat|chatflow|agent|completion|workflow, message_end=after|none|before, "
                   "think_tags=off|whole|split, zero_usage=on, message_replace=on, required_inputs=a;b, "
                   "ping_interval_s; faults: rate_limit_rate, html_rate, stall_rate, reset_rate, stream_error_rate, "
                   "pause_rate, stall_s, retry_after_s (default: ttft_ms=200,itl_ms=20,tokens=64)")
    a = p.add_argument_group("a model's reading of the run (see sse-perf analyze --help)")
    a.add_argument("--analyze", action="store_true",
                   help="once the run is written, an OpenAI-compatible model reads its digest (no key, prompt or "
                   "answer is sent): the answer streams here and goes into analysis.md and the report")
    from .analyze import add_llm_options

    add_llm_options(p, a)
    p.add_argument("--config", metavar="FILE.toml", help="run options from a TOML file (keys = option names without "
                   "--); options on the command line win")
    return p


def _check_conflicts(args: argparse.Namespace) -> None:
    """Options that would silently override each other: one line, exit 2."""
    for given, other, why in (
        (args.api_key is not None, args.api_key_file, "--api-key and --api-key-file: give one (the file would win)"),
        (args.demo, args.base_url, "--demo and --base-url: --demo targets its own embedded server; give one"),
        (args.query is not None, args.param_file or args.dataset,
         "--query and --param-file/--dataset: the file's queries would be used and --query ignored; give one"),
        (args.gpu_index is not None, not args.gpu, "--gpu-index needs --gpu (local, or ssh://...)"),
        (args.query is not None, args.input_tokens, "--query and --input-tokens: --input-tokens makes the prompts by "
         "length; give one"),
        (args.query is not None, args.trace, "--query and --trace: the trace's lengths make the prompts; give one"),
    ):
        if given and other:
            raise ConfigError(why)
    if args.api_key is not None and not args.api_key.strip():
        raise ConfigError("--api-key is empty")
    host = args.host
    if "://" in host or "/" in host:
        raise ConfigError(f"--host takes a host name or address, not a URL (got {host!r}): give --base-url for a URL")
    if any(ch.isspace() for ch in host) or not host:
        raise ConfigError(f"--host {host!r} is not a host name")
    if host.count(":") == 1:
        raise ConfigError(f"--host takes no port (got {host!r}): give --port")


def config_from_args(args: argparse.Namespace, env: dict) -> RunConfig:
    _check_conflicts(args)
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host  # IPv6: ::1
    base_url = args.base_url or f"http://{host}:{args.port}/v1"
    if not args.demo:
        validate_base_url(base_url)
    headers = tuple(parse_header(h) for h in args.header)
    cfg = RunConfig(
        base_url=base_url,
        api=args.api,
        api_key=args.api_key or env.get("SSE_PERF_API_KEY") or None,
        api_key_file=args.api_key_file,
        query=args.query if args.query is not None else (None if args.param_file or args.dataset else DEFAULT_QUERY),
        param_file=args.param_file,
        threads=_threads(args),
        processes=args.processes,
        ray=args.ray,
        ray_workers=args.ray_workers,
        ray_spread=args.ray_spread,
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
        turns=args.turns,
        follow_redirects=args.follow_redirects,
        honor_retry_after=args.honor_retry_after,
        ca_bundle=args.ca_bundle,
        insecure=args.insecure,
        request_timeout_s=args.request_timeout,
        idle_timeout_s=args.idle_timeout,
        dify_auto_generate_name=None if args.dify_auto_generate_name is None else args.dify_auto_generate_name == "on",
        output_dir=args.output_dir,
        html_report=args.html_report,
        model_name=args.model_name,
        tokenizer=args.tokenizer,
        think_tags=args.think_tags,
        lang=args.lang,
        quiet=args.quiet,
        demo=args.demo,
        demo_mock=parse_demo_mock(args.demo_mock) if args.demo_mock else (),
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
        live=args.live,
        allow_remote=args.allow_remote,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        trace=args.trace,
        trace_speed=args.trace_speed,
        prefix_tokens=args.prefix_tokens,
        prefix_groups=args.prefix_groups,
        cancel_rate_pct=args.cancel_rate,
        cancel_after=args.cancel_after,
        analyze=args.analyze,
        llm_base_url=args.llm_base_url or (env.get("SSE_PERF_LLM_BASE_URL") if args.analyze else None) or None,
        llm_model=args.llm_model,
        llm_api_key_file=args.llm_api_key_file,
        llm_timeout_s=args.llm_timeout,
        llm_context_chars=args.llm_context_chars,
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
    return DEFAULT_OPEN_LOOP_THREADS if (args.rate is not None or args.sweep_rate or args.trace) else 1


def parse_run_args(argv: list) -> argparse.Namespace:
    """argv (and --config FILE, whose options the command line overrides) -> Namespace.
    Raises ConfigError for a bad config file; argparse exits 2 for bad options."""
    parser = build_run_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if not known.config:
        return parser.parse_args(argv)
    from ..config_file import load_config_file

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


def run_main(argv: list) -> int:
    """A load test: bad input exits 2 before anything is sent."""
    try:
        args = parse_run_args(argv)
        cfg = config_from_args(args, dict(os.environ))
        from ..execution import prepare_run

        prepared = prepare_run(cfg, ssh_password=os.environ.get("SSE_PERF_SSH_PASSWORD") or None)
    except ConfigError as exc:
        print(f"sse-perf: error: {mask_known(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    from ..execution import execute_run

    return execute_run(prepared)
