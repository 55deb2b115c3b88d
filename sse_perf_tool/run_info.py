"""What summary.json's `run` section and the start banner say about a run: its options (masked),
its load model, its times. Imports config and the package version.
"""

from __future__ import annotations

import socket
from typing import Optional
from urllib.parse import urlsplit

from . import __version__
from .config import RunConfig, has_header, mask_url
from .i18n import LANGS, table
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
                    stopped_early: Optional[str], id_prefix: str, workers: Optional[dict] = None) -> dict:
    """summary.json's `run` section once the run is over: `make_run_section`, then why it stopped
    early (None when it did not) and the request id prefix sent (None when --header set X-Request-Id
    or no ids were sent). `workers`: the worker pool's own account (backend, nodes, each worker
    and its clock), merged into `load`."""
    section = make_run_section(cfg, started_at, ended_at, duration_s, interrupted)
    if workers:
        load = section["load"]
        load["workers"] = workers.get("workers", load["workers"])
        load["nodes"] = workers.get("nodes", load["nodes"])
        load["clock_bound_ms_max"] = workers.get("clock_bound_ms_max")
        load["worker_list"] = workers.get("worker_list", [])
        if "ray_address" in workers:
            load["ray"] = {"address": workers["ray_address"], "version": workers.get("ray_version")}
    section["stopped_early"] = stopped_early
    section["request_id_prefix"] = None if has_header(cfg.headers, "X-Request-Id") else (id_prefix or None)
    return section


def _load_section(cfg: RunConfig) -> dict:
    sweep = cfg.sweep
    return {
        "model": "open" if cfg.open_loop else "closed",
        "threads": cfg.threads,
        "processes": cfg.processes,
        "backend": "ray" if cfg.ray is not None else ("processes" if cfg.processes > 1 else "threads"),
        "workers": cfg.ray_workers if cfg.ray is not None else (cfg.processes if cfg.processes > 1 else 0),
        "nodes": [{"host": socket.gethostname()}],
        "clock_bound_ms_max": None,  # with --ray: the loosest worker clock estimate's bound
        "rate": cfg.rate,
        "arrival": cfg.arrival if cfg.open_loop else None,
        "seed": cfg.seed,
        "warmup_s": cfg.warmup_s or None,
        "warmup_requests": cfg.warmup_requests or None,
        "sweep": None if sweep is None else {"kind": sweep[0], "values": list(sweep[1]), "cooldown_s": cfg.cooldown_s},
    }


def banner(cfg: RunConfig, plan, prepared) -> str:
    """One line saying what is about to happen, in the run's language (i18n TERMINAL `b_*`)."""
    t = table("TERMINAL", cfg.lang if cfg.lang in LANGS else "en")
    proxy = proxies_for(cfg.base_url).get(urlsplit(cfg.base_url).scheme)
    via = t["b_proxy"].format(proxy=mask_url(proxy)) if proxy else ""
    return (f"sse-perf {__version__}: {cfg.api} {mask_url(cfg.base_url)}{via}{t['b_sep']}{load_text(cfg, plan, prepared)} "
            f"{t['b_ctrl_c']}")


def load_text(cfg: RunConfig, plan, prepared) -> str:
    """The banner's words for the load: threads or rate, how long, sweep, processes, warm-up, datasets."""
    t = table("TERMINAL", cfg.lang if cfg.lang in LANGS else "en")
    if plan.duration_s > 0:
        length = t["b_for"].format(s=f"{plan.duration_s:g}") + (t["b_or"].format(n=plan.requests) if plan.requests else "")
    elif plan.requests:
        length = t["b_requests"].format(n=plan.requests)
    else:
        length = t["b_one_each"]
    sweep = cfg.sweep
    if cfg.trace is not None:
        load = t["b_trace"].format(file=cfg.trace, speed=f"{cfg.trace_speed:g}", n=cfg.threads)
    elif sweep is not None:
        kind, values = sweep
        load = t["b_sweep"].format(kind=t["b_kind_" + kind], values=", ".join(f"{v:g}" for v in values), length=length)
        if kind == "rate":
            load += t["b_arrivals"].format(arrival=cfg.arrival, n=cfg.threads)
    elif cfg.rate is not None:
        load = t["b_rate"].format(rate=f"{cfg.rate:g}") + t["b_arrivals"].format(arrival=cfg.arrival, n=cfg.threads) \
            + t["b_sep"] + length
    else:
        ramp = t["b_sep"] + t["b_ramp"].format(s=f"{plan.ramp_up_s:g}") if plan.ramp_up_s else ""
        load = t["b_threads"].format(n=plan.threads) + ramp + t["b_sep"] + length
    if cfg.processes > 1:
        load += t["b_sep"] + t["b_processes"].format(n=cfg.processes)
    if cfg.ray is not None:
        load += t["b_sep"] + t["b_ray"].format(cluster=cfg.ray)
    if cfg.warmup_s:
        load += t["b_sep"] + t["b_warmup_s"].format(s=f"{cfg.warmup_s:g}")
    elif cfg.warmup_requests:
        load += t["b_sep"] + t["b_warmup_n"].format(n=cfg.warmup_requests)
    datasets = getattr(prepared.queries, "datasets", None)
    mix = ""
    if datasets:
        mix = t["b_datasets"] + ", ".join(f"{name}×{weight:g}" for name, weight, _ in datasets)
    return load + mix
