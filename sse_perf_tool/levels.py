"""A run's load levels, in turn (one for a plain run, one per value of a sweep): each level gets
its own Runner, the aggregator sees the current one, and the phases are kept for the time series.

Imports config, runner (the plans) and console.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

from .config import RunConfig
from .console import say as _say

_NS = 1_000_000_000


def plans_for(cfg: RunConfig, schedule: Optional[tuple] = None) -> list:
    """One RunPlan per level (a single one when not a sweep); request ids are set as levels start.
    `schedule`: --trace's arrival offsets (ns)."""
    from .runner import RunPlan

    base = RunPlan(threads=cfg.threads, ramp_up_s=cfg.ramp_up_s, duration_s=cfg.duration_s, requests=cfg.requests,
                   grace_s=cfg.grace_s, rate=cfg.rate, arrival=cfg.arrival, seed=cfg.seed,
                   warmup_s=cfg.warmup_s, warmup_requests=cfg.warmup_requests, schedule=schedule)
    sweep = cfg.sweep
    if sweep is None:
        return [base]
    kind, values = sweep
    if kind == "threads":
        return [replace(base, threads=int(v), level=v) for v in values]
    return [replace(base, rate=float(v), level=v) for v in values]


class Levels:
    """The levels of one run, in turn: each gets its own Runner; the aggregator sees the current one."""

    def __init__(self, cfg: RunConfig, make_runner, aggregator_ref: list, start_ns: int, out, stage=None):
        self.cfg = cfg
        self.stage = stage  # the --tokenizer server counting stage between the runners and the aggregator
        self.make_runner = make_runner
        self.aggregator_ref = aggregator_ref
        self.start_ns = start_ns
        self.out = out
        self.current = None
        self.phases: list[dict] = []  # {"value", "from_s", "to_s", "warmup_to_s"} per level run
        self.events_done = 0
        self.not_sent = 0
        self.stopped_early: Optional[str] = None
        self.worker_errors: list[str] = []

    def active_threads(self) -> int:
        runner = self.current
        return runner.active_threads if runner is not None else 0

    def live_events(self) -> int:
        runner = self.current
        return self.events_done + (runner.live_events() if runner is not None else 0)

    def run(self, plans: list) -> None:
        """Run every level; KeyboardInterrupt passes through (after `cancel()` the phases are complete)."""
        sweep = self.cfg.sweep
        next_id = 1
        for index, plan in enumerate(plans):
            if index and self.cfg.cooldown_s > 0:
                _say(f"cooldown: {self.cfg.cooldown_s:g} s", self.out)
                time.sleep(self.cfg.cooldown_s)
            aggregator = self.aggregator_ref[0]
            if index:
                if self.stage is not None:
                    self.stage.sync()  # the previous level's last records have left the counting stage ...
                aggregator.sync()  # ... and are counted before the level is judged
            if aggregator.stop_reason:  # crossed by the last records of the previous level
                self.stopped_early = aggregator.stop_reason
                return
            plan = replace(plan, first_request_id=next_id)
            runner = self.make_runner(plan)
            aggregator.start_level(plan.threads)
            if sweep is not None:
                _say(f"level {index + 1}/{len(plans)}: {_level_label(sweep[0], plan.level)}", self.out)
            level_start = time.perf_counter_ns()
            self.current = runner
            self._begin(plan, runner, level_start)
            runner.start(level_start)
            runner.run(should_stop=lambda: aggregator.stop_reason)
            self._end(runner)
            next_id += runner.issued
            if runner.stopped_early:
                self.stopped_early = runner.stopped_early
                return

    def cancel(self) -> None:
        runner = self.current
        if runner is not None:
            runner.cancel()
            self._end(runner)

    def _begin(self, plan, runner, level_start: int) -> None:
        self.phases.append({"value": plan.level, "from_s": (level_start - self.start_ns) / _NS, "to_s": None,
                            "warmup_to_s": None, "runner": runner})

    def _end(self, runner) -> None:
        if not self.phases or self.phases[-1].get("runner") is not runner:
            return
        phase = self.phases[-1]
        del phase["runner"]
        phase["to_s"] = (time.perf_counter_ns() - self.start_ns) / _NS
        plan = runner.plan
        if (plan.warmup_s > 0 or plan.warmup_requests > 0) and runner.measure_start_ns is not None:
            phase["warmup_to_s"] = min(phase["to_s"], (runner.measure_start_ns - self.start_ns) / _NS)
        elif plan.warmup_s > 0 or plan.warmup_requests > 0:
            phase["warmup_to_s"] = phase["to_s"]  # never left warm-up
        self.events_done += runner.live_events()
        phase["not_sent"] = runner.not_sent()
        self.not_sent += phase["not_sent"]
        self.worker_errors.extend(runner.worker_errors)
        self.current = None


def _level_label(kind: str, value) -> str:
    return f"{value:g} threads" if kind == "threads" else f"{value:g} requests/s"
