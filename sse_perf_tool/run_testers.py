"""The testers of one run: the settings every request is sent with, the tokenizer endpoint of
--tokenizer server (detected before anything is sent) and its counting stage, and the testers
themselves, in this process or in --processes worker processes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .config import RunConfig, mask_url, think_tag, tls_verify
from .console import say
from .exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from .flavors import get_flavor
from .flavors.base import RequestSettings


class TestersNotStarted(Exception):
    """The testers could not start (already said); the run ends with `exit_code` and nothing sent."""

    def __init__(self, exit_code: int):
        super().__init__(exit_code)
        self.exit_code = exit_code


@dataclass
class Testers:
    make_tester: Callable[[int], object]  # thread index -> a tester (tester.SSETester or a worker's proxy)
    pool: Optional[object]  # worker_pool.WorkerPool with --processes, else None
    server_tokenizer: Optional[object]  # server_tokens' detected endpoint with --tokenizer server, else None
    id_prefix: str  # the X-Request-Id prefix sent, "" without --request-id

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def start_testers(cfg: RunConfig, keys, counter, out, err) -> Testers:
    """The run's testers, started; raises TestersNotStarted after saying why they could not be."""
    from .tester import SSETester, TesterSettings, request_id_prefix

    flavor = get_flavor(cfg.api)
    settings = TesterSettings(
        url=cfg.base_url + flavor.path,
        timeout_s=cfg.timeout_s,
        headers=cfg.headers,
        request=RequestSettings(
            model=cfg.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            user=cfg.user, conversation_id=cfg.conversation_id, auto_generate_name=cfg.dify_auto_generate_name,
            exact_output=cfg.output_tokens is not None,
        ),
        request_id_prefix=request_id_prefix() if cfg.request_id else "",
        extra_body=tuple((cfg.extra_body or {}).items()),
        think_tag=think_tag(cfg.think_tags),
        turns=cfg.turns,
        follow_redirects=cfg.follow_redirects,
        verify=tls_verify(cfg),
        request_timeout_s=cfg.request_timeout_s,
        idle_timeout_s=cfg.idle_timeout_s,
        **_cancel_settings(cfg),
    )
    server_tokenizer = _server_tokenizer(cfg, keys, out, err) if cfg.tokenizer == "server" else None
    if cfg.processes > 1 or cfg.ray is not None:
        from .worker_pool import WorkerPool, WorkerPoolError, WorkerRefused

        backend = _ray_backend(cfg, out, err) if cfg.ray is not None else cfg.processes
        pool = WorkerPool(backend, cfg.api, settings, cfg.tokenizer,
                          workers=min(cfg.threads, backend.processes) if cfg.ray is not None else None)
        try:
            pool.start()
        except WorkerRefused as exc:
            say(f"error: {exc}", err)
            raise TestersNotStarted(EXIT_USAGE) from None
        except WorkerPoolError as exc:
            say(f"error: {exc}", err)
            raise TestersNotStarted(EXIT_INTERNAL) from None
        except KeyboardInterrupt:  # before anything was sent: nothing to write
            pool.close()
            say("\ninterrupted while the worker processes started: nothing was sent", out)
            raise TestersNotStarted(EXIT_INTERRUPTED) from None
        if cfg.ray is not None:
            described = pool.describe()
            bound = described.get("clock_bound_ms_max")
            say(f"ray: {len(pool.workers)} worker(s) on {len(described.get('nodes') or [])} node(s)"
                + (f", clocks known within ±{bound:.2f} ms" if bound else ", all on this machine's clock"), out)
        return Testers(pool.tester, pool, server_tokenizer, settings.request_id_prefix)
    counter.preload()  # build the tokenizer now: building it mid-run would stall every thread's timing

    def make_tester(index):
        return SSETester(flavor, settings, counter)

    return Testers(make_tester, None, server_tokenizer, settings.request_id_prefix)


def counting_stage(server_tokenizer, sink):
    """The --tokenizer server stage between the runners and `sink`: answers without usage are
    counted by the server's endpoint (by a local tokenizer when it fails)."""
    from .server_tokens import CountingStage
    from .tokens import TokenCounter

    fallback = TokenCounter()
    fallback.preload()  # built now: the stage may need it mid-run
    return CountingStage(server_tokenizer, fallback, sink)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Ctrl-C noted, not raised, for the block (main thread only); the list it yields is non-empty
    afterwards when one came."""
    came: list = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGINT, lambda *_: came.append(True))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous)


def _ray_backend(cfg: RunConfig, out, err):
    """--ray: the cluster reached and checked before anything is sent (exit 2 and one line if not)."""
    from urllib.parse import urlsplit

    from .backends.ray_backend import RayBackend, RayBackendError

    backend = RayBackend(cfg.ray, cfg.ray_workers, cfg.ray_spread)
    say("ray: starting a private Ray on this machine..." if cfg.ray == "local" else
        f"ray: connecting to the cluster at {cfg.ray}...", out)
    with _ctrl_c_deferred() as interrupted:  # Ray cut short in its start leaves its agents running
        try:
            backend.connect()
        except RayBackendError as exc:
            say(f"error: {exc}", err)
            raise TestersNotStarted(EXIT_USAGE) from None
    if interrupted:
        backend.shutdown()
        say("\ninterrupted while Ray started: nothing was sent", out)
        raise TestersNotStarted(EXIT_INTERRUPTED)
    if backend.multi_host:
        host = (urlsplit(cfg.base_url).hostname or "").lower()
        why = None
        if cfg.demo:
            why = ("--demo runs its mock server on this machine only, which the other nodes cannot reach: start "
                   "`sse-perf mock-server --host 0.0.0.0 --port 8000` on a host every node reaches and give "
                   "--base-url http://THAT-HOST:8000/v1 instead")
        elif host == "localhost" or host.startswith("127.") or host == "::1":
            why = (f"--base-url {host} is this machine's loopback, which the workers on the other "
                   f"{len(backend.nodes) - 1} node(s) cannot reach: give an address every node reaches")
        if why:
            backend.shutdown()
            say(f"error: {why}", err)
            raise TestersNotStarted(EXIT_USAGE)
    return backend


def _server_tokenizer(cfg: RunConfig, keys, out, err):
    from .server_tokens import TokenizeUnavailable, detect_server_tokenizer

    try:
        server_tokenizer = detect_server_tokenizer(cfg.base_url, cfg.model, _tokenize_headers(cfg, keys))
    except TokenizeUnavailable as exc:
        say(f"sse-perf: error: {exc}", err)
        raise TestersNotStarted(EXIT_USAGE) from None
    say(f"tokenizer: answers without usage are counted by {server_tokenizer.description} "
        f"at {mask_url(server_tokenizer.root)}", out)
    if server_tokenizer.shape.server == "llama-cpp-python":
        say("warning: llama-cpp-python's /extras/tokenize takes its model lock: each count waits for a running "
            "stream, and with its default --interrupt_requests True it cuts that stream; start the server with "
            "--interrupt_requests False (a load test needs that anyway)", err)
    return server_tokenizer


def _tokenize_headers(cfg: RunConfig, keys) -> dict:
    """The run's own headers for the tokenizer endpoint: the first API key, then --header values."""
    headers = {}
    if keys is not None:
        headers["Authorization"] = f"Bearer {keys.first()}"
    headers.update(dict(cfg.headers))
    return headers


def _cancel_settings(cfg: RunConfig) -> dict:
    """--cancel-rate and --cancel-after as the testers' settings (none without them)."""
    if cfg.cancel_rate_pct is None:
        return {}
    from .config import parse_cancel

    fraction, seconds, tokens = parse_cancel(cfg.cancel_rate_pct, cfg.cancel_after)
    return {"cancel_fraction": fraction, "cancel_after_s": seconds, "cancel_after_tokens": tokens,
            "cancel_seed": cfg.seed or 0}
