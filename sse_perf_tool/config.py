"""Run settings as frozen dataclasses and their validation (masking is masking.py's).

Raises ConfigError with one clear line; never reads argv, env or exits (that is the cli package's job).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from .masking import (mask_header_text, mask_header_value, mask_mapping, mask_secret, mask_url, strip_bearer,
                      unsafe_characters)

__all__ = ["mask_header_text", "mask_header_value", "mask_mapping", "mask_secret", "mask_url"]  # re-exported

TIKTOKEN_ENCODINGS = ("cl100k_base", "o200k_base")  # tokens.py builds them
SERVER = "server"  # --tokenizer server
HF_PREFIX = "hf:"  # --tokenizer hf:PATH
API_NAMES = ("dify-chat", "dify-completion", "dify-workflow", "openai-chat", "openai-completions", "anthropic-messages",
             "tgi-generate", "openai-responses", "ollama-chat", "ollama-generate")
DEFAULT_QUERY = "你是谁"


class ConfigError(ValueError):
    """Bad usage or bad input: the CLI prints the message on one line and exits 2."""


@dataclass(frozen=True)
class RunConfig:
    base_url: str
    api: str = "dify-chat"
    api_key: Optional[str] = None
    api_key_file: Optional[str] = None
    query: Optional[str] = DEFAULT_QUERY  # None when the queries come from --param-file or --dataset
    param_file: Optional[str] = None
    threads: int = 1
    processes: int = 1  # worker processes reading the streams (1 = the threads run in this process)
    ray: Optional[str] = None  # --ray: local, auto or the cluster's HOST:PORT (the workers are Ray actors)
    ray_workers: Optional[int] = None  # --ray-workers (None: one per CPU the cluster offers)
    ray_spread: str = "spread"  # --ray-spread: spread, strict (one worker per node) or pack
    ramp_up_s: float = 0.0
    duration_s: float = 0.0
    requests: Optional[int] = None
    timeout_s: float = 60.0
    grace_s: float = 30.0
    model: Optional[str] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    headers: tuple = ()  # ((name, value), ...)
    user: str = "sse-perf-{thread}"  # {thread}: the virtual user's number, so a Dify app sees one user per thread
    conversation_id: str = ""
    turns: int = 1  # each virtual user holds a conversation of this many turns, then starts a new one
    follow_redirects: bool = False  # 307/308 within the same origin are followed; other redirects fail
    honor_retry_after: bool = False  # a closed-loop virtual user told 429 + Retry-After waits as told
    ca_bundle: Optional[str] = None  # a CA file for https targets (else certifi's, or REQUESTS_CA_BUNDLE)
    insecure: bool = False  # TLS certificates are not checked (said at the start)
    request_timeout_s: Optional[float] = None  # the whole request, however its stream goes on
    idle_timeout_s: Optional[float] = None  # between data events (Dify's pings do not count)
    dify_auto_generate_name: Optional[bool] = None  # --dify-auto-generate-name on|off (None: Dify's default, on)
    output_dir: str = "report"
    html_report: Optional[str] = None
    model_name: Optional[str] = None
    tokenizer: str = "cl100k_base"
    think_tags: str = "auto"  # auto: a leading <think>…</think> in the answer is reasoning; off; or another tag name
    lang: str = "en"
    quiet: bool = False
    demo: bool = False
    demo_mock: tuple = ()  # --demo-mock: ((MockConfig field, number), ...) for the embedded server
    gpu: tuple = ()  # --gpu values: "local", "ssh://user@host[:port]"
    gpu_index: Optional[str] = None
    ssh_key: Optional[str] = None
    ssh_accept_new_host_key: bool = False
    known_hosts: Optional[str] = None
    server_metrics: tuple = ()  # Prometheus /metrics URLs
    server_metric_names: tuple = ()
    # load models (issue 5)
    rate: Optional[float] = None  # open loop: requests/s; None = closed loop
    arrival: str = "poisson"
    seed: Optional[int] = None  # arrivals and dataset draws; chosen at random (and recorded) when not given
    sweep_threads: tuple = ()
    sweep_rate: tuple = ()
    cooldown_s: float = 0.0
    warmup_s: float = 0.0
    warmup_requests: int = 0
    slo: Optional[str] = None
    max_error_rate_pct: Optional[float] = None
    datasets: tuple = ()  # --dataset NAME=PATH[:WEIGHT] specs, as given
    config_file: Optional[str] = None
    history: Optional[str] = None  # history database (default OUTPUT_DIR/history.db)
    no_history: bool = False
    request_id: bool = True  # send X-Request-Id (a UUID per request) unless --no-request-id
    extra_body: Optional[dict] = None  # --extra-body: merged into every request body
    keep_going: bool = False  # do not stop a run whose first requests all fail
    live: Optional[str] = None  # --live [HOST:]PORT: the live view's address while the run runs
    allow_remote: bool = False  # --allow-remote: --live may bind an address other hosts can reach
    input_tokens: Optional[str] = None  # --input-tokens N[:SD]: synthetic prompts of N tokens (synthetic.py)
    output_tokens: Optional[str] = None  # --output-tokens M[:SD]: each request asks for M tokens, EOS ignored where it can
    trace: Optional[str] = None  # --trace FILE: replay a recorded workload (trace.py): its moments and lengths
    trace_speed: float = 1.0  # --trace-speed X: X times as fast as recorded
    prefix_tokens: Optional[int] = None  # --prefix-tokens K: prompts open with one of --prefix-groups prefixes of K tokens
    prefix_groups: Optional[int] = None
    cancel_rate_pct: Optional[float] = None  # --cancel-rate: this share of the requests is given up (abandoned)
    cancel_after: Optional[str] = None  # --cancel-after S (seconds) or Ntokens: when such a user gives up
    analyze: bool = False  # --analyze: a model reads the run once it is written (analysis.py)
    llm_base_url: Optional[str] = None  # --llm-base-url (or SSE_PERF_LLM_BASE_URL); --demo: its mock
    llm_model: Optional[str] = None
    llm_api_key_file: Optional[str] = None
    llm_timeout_s: float = 120.0
    llm_context_chars: Optional[int] = None

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or bool(self.sweep_rate) or self.trace is not None

    @property
    def sweep(self) -> Optional[tuple[str, tuple]]:
        """("threads" | "rate", values) for a sweep, else None."""
        if self.sweep_threads:
            return "threads", self.sweep_threads
        if self.sweep_rate:
            return "rate", self.sweep_rate
        return None

    def masked(self) -> dict:
        """Every option, JSON-ready, with keys and secret-looking header values masked."""
        out = asdict(self)
        out["api_key"] = mask_secret(self.api_key) if self.api_key else None
        out["base_url"] = mask_url(self.base_url)
        out["server_metrics"] = [mask_url(url) for url in self.server_metrics]
        out["llm_base_url"] = mask_url(self.llm_base_url) if self.llm_base_url else None
        out["headers"] = [f"{k}: {mask_header_value(k, v)}" for k, v in self.headers]
        out["extra_body"] = mask_mapping(self.extra_body) if self.extra_body is not None else None
        return out


def load_extra_body(text: Any) -> dict:
    """--extra-body: a JSON object, or @FILE holding one (a TOML table from --config is taken as is)."""
    if isinstance(text, dict):
        return dict(text)
    text = str(text).strip()
    where = "--extra-body"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        where = f"--extra-body {text}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"--extra-body: file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--extra-body: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not text.strip():
            raise ConfigError(f"--extra-body: {path} is empty")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where} is not valid JSON ({exc}); give an object like '{{\"ignore_eos\": true}}' "
                          "or @file.json") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def validate_base_url(url: str) -> str:
    """http(s) URL with a host; trailing slash removed so paths can be appended."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"--base-url must start with http:// or https:// (got {mask_url(url)!r})")
    if not parts.hostname:
        raise ConfigError(f"--base-url has no host: {mask_url(url)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"--base-url has a bad port: {mask_url(url)!r}") from None
    return url.rstrip("/")


def validate(cfg: RunConfig) -> RunConfig:
    """Check numbers and names; returns cfg unchanged or raises ConfigError."""
    if cfg.api not in API_NAMES + ("auto",):
        raise ConfigError(f"--api must be one of {', '.join(API_NAMES)} or auto (got {cfg.api!r})")
    if cfg.threads < 1:
        raise ConfigError(f"--threads must be at least 1 (got {cfg.threads})")
    for name, value in (("--ramp-up", cfg.ramp_up_s), ("--duration", cfg.duration_s), ("--grace", cfg.grace_s)):
        if value < 0:
            raise ConfigError(f"{name} must not be negative (got {value:g})")
    if cfg.timeout_s <= 0:
        raise ConfigError(f"--timeout must be greater than 0 (got {cfg.timeout_s:g})")
    if cfg.requests is not None and cfg.requests < 1:
        raise ConfigError(f"--requests must be at least 1 (got {cfg.requests})")
    for name, value in (("--request-timeout", cfg.request_timeout_s), ("--idle-timeout", cfg.idle_timeout_s)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be greater than 0 (got {value:g})")
    if cfg.ca_bundle and cfg.insecure:
        raise ConfigError("--ca-bundle and --insecure: give one (--insecure checks no certificate at all)")
    if cfg.ca_bundle and not Path(cfg.ca_bundle).expanduser().is_file():
        raise ConfigError(f"--ca-bundle: no such file: {cfg.ca_bundle}")
    if cfg.turns < 1:
        raise ConfigError(f"--turns must be at least 1 (got {cfg.turns})")
    if not cfg.user:
        raise ConfigError("--user must not be empty (Dify requires a user)")
    if cfg.max_tokens is not None and cfg.max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1 (got {cfg.max_tokens})")
    if cfg.temperature is not None and not 0 <= cfg.temperature <= 2:
        raise ConfigError(f"--temperature must be between 0 and 2 (got {cfg.temperature:g})")
    if cfg.top_p is not None and not 0 < cfg.top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1] (got {cfg.top_p:g})")
    problem = check_tokenizer_spec(cfg.tokenizer)
    if problem:
        raise ConfigError(problem)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_:-]*", cfg.think_tags or ""):
        raise ConfigError(f"--think-tags must be auto, off, or a tag name such as think (got {cfg.think_tags!r})")
    if cfg.demo_mock and not cfg.demo:
        raise ConfigError("--demo-mock sets the embedded server of --demo: give --demo too")
    if not cfg.request_id and has_header(cfg.headers, "X-Request-Id"):
        raise ConfigError("--no-request-id and --header 'X-Request-Id: ...' cannot be combined: give one of them")
    _validate_load(cfg)
    validate_base_url(cfg.base_url)
    _validate_analyze(cfg)
    for option, value in (("--input-tokens", cfg.input_tokens), ("--output-tokens", cfg.output_tokens)):
        if value is not None:
            parse_length(value, option)
    if (cfg.prefix_tokens is None) != (cfg.prefix_groups is None):
        raise ConfigError("--prefix-tokens and --prefix-groups go together: K tokens shared by each of G groups "
                          "(e.g. --prefix-tokens 1000 --prefix-groups 4)")
    if cfg.prefix_tokens is not None:
        if cfg.prefix_tokens < 1 or cfg.prefix_groups < 1:
            raise ConfigError(f"--prefix-tokens and --prefix-groups must be at least 1 (got {cfg.prefix_tokens}, "
                              f"{cfg.prefix_groups})")
        if cfg.prefix_groups > 256:
            raise ConfigError(f"--prefix-groups is at most 256 (got {cfg.prefix_groups})")
        if cfg.datasets:
            raise ConfigError("--prefix-groups are the run's datasets (prefix-1 ..): it cannot be combined with --dataset")
    if cfg.input_tokens is not None and (cfg.param_file or cfg.datasets):
        raise ConfigError("--input-tokens makes the prompts by length: it cannot be combined with --param-file or "
                          "--dataset")
    if cfg.cancel_rate_pct is not None or cfg.cancel_after is not None:
        parse_cancel(cfg.cancel_rate_pct, cfg.cancel_after)
    if cfg.live is not None:
        parse_live_address(cfg.live, cfg.allow_remote)
    elif cfg.allow_remote:
        raise ConfigError("--allow-remote lets --live bind an address other hosts can reach: give --live too")
    return cfg


def _validate_analyze(cfg: RunConfig) -> None:
    given = [name for name, value in (("--llm-base-url", cfg.llm_base_url), ("--llm-model", cfg.llm_model),
                                      ("--llm-api-key-file", cfg.llm_api_key_file),
                                      ("--llm-context-chars", cfg.llm_context_chars)) if value is not None]
    if not cfg.analyze:
        if given:
            raise ConfigError(f"{given[0]} sets the model that reads the run: give --analyze too (or run "
                              "`sse-perf analyze RUN_DIR` afterwards)")
        return
    if cfg.llm_base_url is None and not cfg.demo:
        raise ConfigError("--analyze needs --llm-base-url (an OpenAI-compatible server, e.g. http://gpu1:8000/v1) "
                          "or env SSE_PERF_LLM_BASE_URL; with --demo the embedded mock answers")
    check_llm_options(cfg.llm_base_url, cfg.llm_timeout_s, cfg.llm_context_chars)


def check_llm_options(base_url: Optional[str], timeout_s: float, context_chars: Optional[int]) -> Optional[str]:
    """--llm-base-url (returned without its trailing slash), --llm-timeout, --llm-context-chars."""
    if base_url is not None:
        try:
            base_url = validate_base_url(base_url)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("--base-url", "--llm-base-url")) from None
    if timeout_s <= 0:
        raise ConfigError(f"--llm-timeout must be greater than 0 (got {timeout_s:g})")
    if context_chars is not None and context_chars < MIN_CONTEXT_CHARS:
        raise ConfigError(f"--llm-context-chars must be at least {MIN_CONTEXT_CHARS} (a run's essentials; got "
                          f"{context_chars})")
    return base_url


def _validate_trace(cfg: RunConfig) -> None:
    """--trace brings its own moments and lengths: nothing may set them too."""
    clash = [name for name, given in (("--rate", cfg.rate is not None), ("--sweep-rate", bool(cfg.sweep_rate)),
                                      ("--sweep-threads", bool(cfg.sweep_threads)), ("--input-tokens", cfg.input_tokens),
                                      ("--output-tokens", cfg.output_tokens), ("--prefix-tokens", cfg.prefix_tokens),
                                      ("--param-file", cfg.param_file), ("--dataset", bool(cfg.datasets)),
                                      ("--warmup", cfg.warmup_s > 0), ("--warmup-requests", cfg.warmup_requests > 0))
             if given]
    if clash:
        raise ConfigError(f"--trace sets when each request goes and its lengths: it cannot be combined with {clash[0]}")
    if not cfg.trace_speed > 0:
        raise ConfigError(f"--trace-speed must be greater than 0 (got {cfg.trace_speed:g})")


def parse_length(text: str, option: str) -> tuple[int, float]:
    """--input-tokens / --output-tokens N[:SD] -> (N, SD): N a whole number of at least 1, SD not negative."""
    found = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?", str(text))
    if not found or int(found.group(1)) < 1:
        raise ConfigError(f"{option} takes N or N:SD tokens, N at least 1 (got {text!r}), e.g. 512 or 512:64")
    return int(found.group(1)), float(found.group(2) or 0)


def parse_cancel(rate_pct: Optional[float], after: Optional[str]) -> tuple[float, Optional[float], Optional[int]]:
    """--cancel-rate PCT --cancel-after S|Ntokens -> (the share given up, after seconds, after token events)."""
    if rate_pct is None or after is None:
        raise ConfigError("--cancel-rate and --cancel-after go together: the share of users who give up, and when "
                          "(e.g. --cancel-rate 10 --cancel-after 2s, or --cancel-after 50tokens)")
    if not 0 < rate_pct <= 100:
        raise ConfigError(f"--cancel-rate must be a percentage above 0 and at most 100 (got {rate_pct:g})")
    text = str(after).strip().lower()
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|seconds?)?", text)
    if found:
        seconds = float(found.group(1))
        if seconds <= 0:
            raise ConfigError(f"--cancel-after must be more than 0 seconds (got {after!r})")
        return rate_pct / 100.0, seconds, None
    found = re.fullmatch(r"(\d+)\s*(t|tok|tokens?)", text)
    if found and int(found.group(1)) >= 1:
        return rate_pct / 100.0, None, int(found.group(1))
    raise ConfigError(f"--cancel-after takes seconds (2, 2.5s) or token events (50tokens) (got {after!r})")


MIN_CONTEXT_CHARS = 4000  # --llm-context-chars: below this not even a run's essentials fit
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_live_address(text: str, allow_remote: bool = False) -> tuple[str, int]:
    """--live [HOST:]PORT -> (host, port); the host is 127.0.0.1 when not given, and an address
    other hosts can reach needs --allow-remote. Port 0: any free port (the URL printed says which)."""
    text = str(text).strip()
    host, port_text = "127.0.0.1", text
    if text.startswith("["):  # [::1]:8089
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            raise ConfigError(f"--live takes [HOST:]PORT, e.g. 8089 or 127.0.0.1:8089 (got {text!r})")
        host, port_text = text[1:close], text[close + 2:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host or any(ch.isspace() or ch in "/@?#" for ch in host):
        raise ConfigError(f"--live takes [HOST:]PORT, e.g. 8089 or 127.0.0.1:8089 (got {text!r})")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--live: the port must be a number from 0 to 65535 (got {port_text!r}; 0 takes a free one)")
    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise ConfigError(f"--live {text}: {host} can be reached from other machines; the live view can stop the "
                          "run, so give --allow-remote to mean it (or bind 127.0.0.1)")
    return host, int(port_text)


def _validate_load(cfg: RunConfig) -> None:
    """Open loop, sweeps, warm-up, early stop: the combinations that make sense."""
    if cfg.rate is not None and cfg.rate <= 0:
        raise ConfigError(f"--rate must be greater than 0 requests/s (got {cfg.rate:g})")
    if cfg.arrival not in ("poisson", "constant"):
        raise ConfigError(f"--arrival must be poisson or constant (got {cfg.arrival!r})")
    if cfg.sweep_threads and cfg.sweep_rate:
        raise ConfigError("--sweep-threads and --sweep-rate cannot be combined: sweep one of them")
    if cfg.sweep_rate and cfg.rate is not None:
        raise ConfigError("--sweep-rate replaces --rate: give one of them")
    if cfg.sweep_threads and cfg.rate is not None:
        raise ConfigError("--sweep-threads sweeps closed-loop users; for an open-loop sweep use --sweep-rate")
    if any(v < 1 or v != int(v) for v in cfg.sweep_threads):
        raise ConfigError("--sweep-threads values must be whole numbers of at least 1")
    if any(v <= 0 for v in cfg.sweep_rate):
        raise ConfigError("--sweep-rate values must be greater than 0 requests/s")
    if cfg.sweep and cfg.duration_s <= 0 and cfg.requests is None:
        raise ConfigError("a sweep needs --duration (seconds per level) or --requests (requests per level)")
    if cfg.trace is not None:
        _validate_trace(cfg)
    elif cfg.open_loop and cfg.duration_s <= 0 and cfg.requests is None:
        raise ConfigError("--rate needs --duration or --requests (an open loop has no natural end)")
    if cfg.open_loop and cfg.ramp_up_s > 0:
        raise ConfigError("--ramp-up applies to closed-loop threads; with --rate use --warmup instead")
    if cfg.cooldown_s < 0:
        raise ConfigError(f"--cooldown must not be negative (got {cfg.cooldown_s:g})")
    if cfg.cooldown_s > 0 and not cfg.sweep:
        raise ConfigError("--cooldown is the pause between sweep levels: it needs --sweep-threads or --sweep-rate")
    if cfg.warmup_s < 0:
        raise ConfigError(f"--warmup must not be negative (got {cfg.warmup_s:g})")
    if cfg.warmup_requests < 0:
        raise ConfigError(f"--warmup-requests must not be negative (got {cfg.warmup_requests})")
    if cfg.warmup_s > 0 and cfg.warmup_requests > 0:
        raise ConfigError("give --warmup (seconds) or --warmup-requests (a count), not both")
    if (cfg.warmup_s > 0 or cfg.warmup_requests > 0) and cfg.duration_s <= 0 and cfg.requests is None:
        raise ConfigError("a warm-up needs --duration or --requests for the measured part that follows it")
    if cfg.max_error_rate_pct is not None and not 0 <= cfg.max_error_rate_pct < 100:
        raise ConfigError(f"--max-error-rate must be a percentage from 0 to below 100 (got {cfg.max_error_rate_pct:g})")
    if cfg.datasets and cfg.param_file:
        raise ConfigError("--dataset and --param-file cannot be combined: list the file as a --dataset")
    if cfg.processes < 1:
        raise ConfigError(f"--processes must be at least 1 (got {cfg.processes})")
    if cfg.processes > cfg.threads:
        raise ConfigError(f"--processes {cfg.processes} is more than the {cfg.threads} threads: each process needs "
                          f"at least one thread (threads are spread over the processes)")
    _check_ray(cfg)


_RAY_ADDRESS = re.compile(r"^(local|auto|[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})$")


def _check_ray(cfg: RunConfig) -> None:
    if cfg.ray is None:
        if cfg.ray_workers is not None:
            raise ConfigError("--ray-workers needs --ray (local, auto or the cluster's HOST:PORT)")
        if cfg.ray_spread != "spread":
            raise ConfigError("--ray-spread needs --ray (local, auto or the cluster's HOST:PORT)")
        return
    if cfg.ray.startswith("ray://"):
        raise ConfigError("--ray ray://... is Ray Client, which sse-perf does not use: run sse-perf on a node of the "
                          "cluster with --ray auto (or the head's HOST:PORT)")
    if not _RAY_ADDRESS.match(cfg.ray):
        raise ConfigError(f"--ray must be local, auto or the cluster's HOST:PORT (got {cfg.ray!r})")
    if cfg.processes > 1:
        raise ConfigError("--ray and --processes cannot be combined: with --ray every worker is a Ray actor "
                          "(--ray-workers N sets how many)")
    if cfg.ray_workers is not None:
        if cfg.ray_workers < 1:
            raise ConfigError(f"--ray-workers must be at least 1 (got {cfg.ray_workers})")
        if cfg.ray_workers > cfg.threads:
            raise ConfigError(f"--ray-workers {cfg.ray_workers} is more than the {cfg.threads} threads: each worker "
                              "needs at least one thread (threads are spread over the workers)")


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _HEADER_NAME.match(name):
        raise ConfigError(f"--header must look like 'Name: value' (got {mask_header_text(text)!r})")
    problem = unsafe_characters(value.strip())
    if problem:
        raise ConfigError(f"--header {name}: its value has {problem}, which no HTTP header may carry")
    return name, value.strip()


def _on_off(text: str) -> bool:
    value = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}
    if text.lower() not in value:
        raise ValueError(text)
    return value[text.lower()]


def _names(text: str) -> tuple:
    """`city;notes` (commas separate --demo-mock items): the mock's required Dify inputs."""
    return tuple(name for name in text.replace("|", ";").replace(" ", ";").split(";") if name)


def _word(*choices: str):
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text
    parse.choices = choices
    return parse


# --demo-mock K=V: the embedded server's settings (MockConfig fields), each with how its value is read
DEMO_MOCK_FIELDS = {
    "ttft_ms": float, "itl_ms": float, "tokens": int, "jitter_ms": float, "reasoning_tokens": int,
    "error_rate": float, "empty_rate": float, "seed": int,
    "dify_mode": _word("chat", "chatflow", "agent", "completion", "workflow"),
    "message_end": _word("after", "none", "before"), "think_tags": _word("off", "whole", "split"),
    "zero_usage": _on_off, "message_replace": _on_off, "required_inputs": _names, "ping_interval_s": float,
    "rate_limit_rate": float, "html_rate": float, "stall_rate": float, "reset_rate": float,
    "stream_error_rate": float, "pause_rate": float, "stall_s": float, "retry_after_s": int,
}


def _expected(key: str) -> str:
    kind = DEMO_MOCK_FIELDS[key]
    if hasattr(kind, "choices"):
        return "one of " + ", ".join(kind.choices)
    return {int: "a number", float: "a number", _on_off: "on or off", _names: "names separated by ;"}[kind]


def parse_demo_mock(text: str) -> tuple:
    """--demo-mock 'ttft_ms=5,itl_ms=1,tokens=8' -> (("ttft_ms", 5.0), ...); ConfigError on a bad item.
    Ranges are checked by the mock's own MockConfig when the run starts it."""
    items = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in DEMO_MOCK_FIELDS:
            raise ConfigError(f"--demo-mock takes {', '.join(k + '=V' for k in DEMO_MOCK_FIELDS)} (got {part!r})")
        try:
            items.append((key, DEMO_MOCK_FIELDS[key](value.strip())))
        except ValueError:
            raise ConfigError(f"--demo-mock {key} must be {_expected(key)} (got {value.strip()!r})") from None
    return tuple(items)


def has_header(headers: tuple, name: str) -> bool:
    """Whether ((name, value), ...) has a header of this name (any case)."""
    wanted = name.lower()
    return any(key.lower() == wanted for key, _ in headers)


def tls_verify(cfg: RunConfig):
    """What requests' `verify` is for this run: --ca-bundle's path, False for --insecure, None
    for the default (certifi's CAs, or REQUESTS_CA_BUNDLE)."""
    if cfg.insecure:
        return False
    return str(Path(cfg.ca_bundle).expanduser()) if cfg.ca_bundle else None


def think_tag(think_tags: str) -> str:
    """The tag whose leading block in the answer is reasoning ("think" for auto), "" for off."""
    return {"auto": "think", "off": ""}.get(think_tags, think_tags)


def check_tokenizer_spec(spec: str) -> Optional[str]:
    """None when `spec` is a --tokenizer value sse-perf knows, else the reason it is not (one line)."""
    if spec in TIKTOKEN_ENCODINGS or spec == SERVER:
        return None
    if spec.startswith(HF_PREFIX):
        if not spec[len(HF_PREFIX):]:
            return "--tokenizer hf: needs a path to a tokenizer.json (hf:PATH)"
        path = Path(spec[len(HF_PREFIX):]).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            return f"--tokenizer {spec}: no tokenizer.json at {path}"
        return None
    return (f"--tokenizer must be {', '.join(TIKTOKEN_ENCODINGS)}, server, or hf:PATH/tokenizer.json "
            f"(got {spec!r})")


def normalise_api_key(key: str) -> str:
    """Accepts 'app-xxx' or 'Bearer app-xxx'; returns the bare key. A key with a line break, a
    control character or a character outside latin-1 cannot be sent (it would split or break the
    Authorization header): ConfigError, the key masked."""
    bare = strip_bearer(key)
    problem = unsafe_characters(bare)
    if problem:
        raise ConfigError(f"the API key {mask_secret(bare)} has {problem}, which no HTTP header may carry")
    return bare
