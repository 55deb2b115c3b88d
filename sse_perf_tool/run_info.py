"""What summary.json's `run` section and the start banner say about a run: its options (masked),
its load model, its times. Imports config and the package version.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from . import __version__
from .config import RunConfig, has_header, mask_url
from .http_session import proxies_for


def make_run_section(cfg: RunConfig, started_at: float, ended_at: float, duration_s, interrupted: bool) -> dict:
    return {
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_s": duration_s,
        "api": cfg.api,
        "base_url": mask_url(cfg.base_url),
        "threads": cfg.threads,
        "ramp_up_s": cfg.ramp_up_s,
        "model_name": cfg.model_name,
        "load": _load_section(cfg),
        "interrupted": interrupted,
        "tool_version": __version__,
        "config": cfg.masked(),
    }


def end_run_section(cfg: RunConfig, started_at: float, ended_at: float, duration_s, interrupted: bool,
                    stopped_early: Optional[str], id_prefix: str) -> dict:
    """summary.json's `run` section once the run is over: `make_run_section`, then why it stopped
    early (None when it did not) and the request id prefix sent (None when --header set X-Request-Id
    or no ids were sent)."""
    section = make_run_section(cfg, started_at, ended_at, duration_s, interrupted)
    section["stopped_early"] = stopped_early
    section["request_id_prefix"] = None if has_header(cfg.headers, "X-Request-Id") else (id_prefix or None)
    return section


def _load_section(cfg: RunConfig) -> dict:
    sweep = cfg.sweep
    return {
        "model": "open" if cfg.open_loop else "closed",
        "threads": cfg.threads,
        "processes": cfg.processes,
        "rate": cfg.rate,
        "arrival": cfg.arrival if cfg.open_loop else None,
        "seed": cfg.seed,
        "warmup_s": cfg.warmup_s or None,
        "warmup_requests": cfg.warmup_requests or None,
        "sweep": None if sweep is None else {"kind": sweep[0], "values": list(sweep[1]), "cooldown_s": cfg.cooldown_s},
    }


def banner(cfg: RunConfig, plan, prepared) -> str:
    """One line saying what is about to happen."""
    if plan.duration_s > 0:
        length = f"for {plan.duration_s:g} s" + (f" or {plan.requests} requests" if plan.requests else "")
    elif plan.requests:
        length = f"{plan.requests} requests"
    else:
        length = "one request per thread"
    sweep = cfg.sweep
    if sweep is not None:
        kind, values = sweep
        load = f"sweep of {kind} {', '.join(f'{v:g}' for v in values)}, {length} each"
        if kind == "rate":
            load += f" ({cfg.arrival} arrivals, at most {cfg.threads} in flight)"
    elif cfg.rate is not None:
        load = f"{cfg.rate:g} requests/s ({cfg.arrival} arrivals, at most {cfg.threads} in flight), {length}"
    else:
        ramp = f", ramp-up {plan.ramp_up_s:g} s" if plan.ramp_up_s else ""
        load = f"{plan.threads} threads{ramp}, {length}"
    if cfg.processes > 1:
        load += f", read in {cfg.processes} worker processes"
    if cfg.warmup_s:
        load += f", after {cfg.warmup_s:g} s warm-up"
    elif cfg.warmup_requests:
        load += f", after {cfg.warmup_requests} warm-up requests"
    datasets = getattr(prepared.queries, "datasets", None)
    mix = ""
    if datasets:
        mix = "; datasets " + ", ".join(f"{name}×{weight:g}" for name, weight, _ in datasets)
    proxy = proxies_for(cfg.base_url).get(urlsplit(cfg.base_url).scheme)
    via = f" via proxy {mask_url(proxy)}" if proxy else ""
    return (f"sse-perf {__version__}: {cfg.api} {mask_url(cfg.base_url)}{via}, {load}{mix} "
            "(Ctrl-C stops and keeps the results)")
