"""SLO expressions of --slo: parsing, verdicts against a summary, and goodput per-request bounds.

Pure functions; imports ConfigError from config.py and the metric registry (metrics.py: which
distributions an SLO and goodput may use, their units and directions).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass

from . import metrics as registry
from .config import ConfigError
from .metrics import STATS

FAMILIES = tuple(m.key for m in registry.select(slo=True))
_MS_FAMILIES = tuple(m.key for m in registry.select(slo=True, unit="ms"))
_RATE_FAMILIES = tuple(m.key for m in registry.select(slo=True, unit="tok/s"))
# metric -> canonical unit; distributions are "<family>_<stat>", in ms or (tokens) per second
OTHER_METRICS = {"success": "%", "error_rate": "%", "goodput_pct": "%",
                 "requests_per_s": "/s", "output_tokens_per_s": "/s", "goodput": "/s"}
ALIASES = {"rps": "requests_per_s", "tps": "output_tokens_per_s"}
METRICS = {f"{m.key}_{s}": "ms" if m.unit == "ms" else "/s" for m in registry.select(slo=True) for s in STATS} | OTHER_METRICS
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# no '%' in SLO_HELP: argparse %-formats help strings
SLO_HELP = (f"comma-separated METRIC OP VALUE[UNIT], OP one of < <= > >=. METRIC: <family>_<stat> "
            f"(family: {', '.join(_MS_FAMILIES)}; stat: {', '.join(STATS)}; unit ms (default) or s), "
            + "".join(f"{f}_<stat> ({registry.metric(f).label['en']}), " for f in _RATE_FAMILIES) + "success, error_rate, goodput_pct (percent), requests_per_s (rps), output_tokens_per_s (tps), "
            "goodput (requests/s). Example: 'ttft_p95<800ms,e2e_p99<20s,request_tps_p50>=20,success>=99.5'")

_OP_RE = re.compile(r"<=|>=|<|>")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?")
_UNITS = {"ms": ("", "ms", "s"), "%": ("", "%"), "/s": ("", "/s")}  # written units each canonical unit accepts
_UNIT_HINT = {"ms": "use ms or s", "%": "use % or no unit", "/s": "a rate takes no unit"}


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str
    op: str
    limit: float
    unit: str  # "ms", "%" or "/s": the metric's canonical unit, the one `limit` is in


def _error(message: str) -> ConfigError:
    return ConfigError(f"--slo: {message}")


def _unknown_metric(name: str, expr: str) -> ConfigError:
    hints = [f"did you mean '{m}'?" for m in difflib.get_close_matches(name, [*METRICS, *ALIASES], n=1)]
    family = name.rpartition("_")[0]
    hints.append(f"stats: {', '.join(STATS)}" if family in FAMILIES else "see --help for metric names")
    return _error(f"unknown metric '{name}' in '{expr}' ({' '.join(hints)})")


def _parse_term(expr: str) -> Slo:
    found = _OP_RE.search(expr)
    if found is None:
        raise _error(f"'{expr}' needs an operator (<, <=, >, >=)")
    op, name, value = found.group(), expr[:found.start()].strip().lower(), expr[found.end():].strip().lower()
    if not name:
        raise _error(f"'{expr}' needs a metric before '{op}'")
    if not value:
        raise _error(f"'{expr}' needs a value after '{op}'")
    metric = ALIASES.get(name, name)
    if metric not in METRICS:
        raise _unknown_metric(name, expr)
    number, unit = re.fullmatch(r"(.*?)\s*([a-z%/]*)", value).groups()
    if not _NUMBER_RE.fullmatch(number) or not math.isfinite(float(number)):
        raise _error(f"bad number '{value}' in '{expr}'")
    limit, canonical = float(number), METRICS[metric]
    if unit not in _UNITS[canonical]:
        raise _error(f"unit '{unit}' does not fit {metric} in '{expr}' ({_UNIT_HINT[canonical]})")
    if limit < 0:
        raise _error(f"negative limit in '{expr}'")
    if canonical == "%" and limit > 100:
        raise _error(f"percent limit above 100 in '{expr}'")
    return Slo(expr, metric, op, limit * 1000.0 if unit == "s" else limit, canonical)


def parse_slos(text: str) -> tuple[Slo, ...]:
    """Parse '--slo' text; empty terms (a trailing comma) are skipped, an empty whole is an error."""
    slos = tuple(_parse_term(term.strip()) for term in (text or "").split(",") if term.strip())
    if not slos:
        raise _error("empty expression (e.g. 'ttft_p95<800ms,success>=99%')")
    return slos


def _dig(summary: dict, *keys: str):
    for key in keys:
        if not isinstance(summary, dict):
            return None
        summary = summary.get(key)
    return summary


def value_of(slo: Slo, summary: dict) -> float | None:
    """The measured value in the SLO's canonical unit; None when the summary lacks it."""
    m = slo.metric
    if m in ("success", "error_rate"):
        value = _dig(summary, "requests", "success_rate_pct")
        if value is not None and m == "error_rate":
            value = 100.0 - value
    elif m in ("requests_per_s", "output_tokens_per_s"):
        value = _dig(summary, "throughput", m)
    elif m in ("goodput", "goodput_pct"):
        value = _dig(summary, "goodput", "requests_per_s" if m == "goodput" else "pct")
    else:
        family, _, stat = m.rpartition("_")
        value = _dig(summary, registry.metric(family).field, stat)
    return None if value is None else float(value)


def evaluate_slos(slos, summary: dict) -> list[dict]:
    """One verdict per SLO, JSON-ready; a value the summary lacks is never met."""
    verdicts = []
    for slo in slos:
        value = value_of(slo, summary)
        met = value is not None and OPS[slo.op](value, slo.limit)
        verdicts.append({"expr": slo.expr, "metric": slo.metric, "op": slo.op, "limit": slo.limit,
                         "unit": slo.unit, "value": value, "met": met})
    return verdicts


def all_met(verdicts: list[dict]) -> bool:
    return all(v["met"] for v in verdicts)


def _tighter(new: tuple[str, float], old: tuple[str, float], direction: str = registry.LOWER) -> bool:
    """The bound on the side that matters beats the other (an upper bound, <, <=, where lower is
    better; a lower bound where higher is better); then the smaller upper / larger lower; strict
    wins ties."""
    new_upper, old_upper = new[0] in ("<", "<="), old[0] in ("<", "<=")
    if new_upper != old_upper:
        return new_upper == (direction == registry.LOWER)
    if new[1] != old[1]:
        return (new[1] < old[1]) == new_upper
    return len(new[0]) < len(old[0])


def request_bounds(slos) -> dict[str, tuple[str, float]]:
    """Per-request goodput bounds (vLLM's definition): record field -> (op, limit in the field's unit).

    Any stat of a bounded family counts (ttft_p95<800 -> ttft_ms < 800). A field bounded on both
    sides keeps the bound on the side that matters (the upper one where lower is better): goodput
    is about requests fast enough.
    """
    bounds: dict[str, tuple[str, float]] = {}
    for slo in slos:
        family = slo.metric.rpartition("_")[0]
        metric = registry.BY_KEY.get(family)
        if metric is None or not metric.goodput:
            continue
        field, bound = metric.field, (slo.op, slo.limit)
        if field not in bounds or _tighter(bound, bounds[field], metric.direction):
            bounds[field] = bound
    return bounds


_NULL_MEETS = frozenset(registry.fields(null_meets_bound=True))


def meets_bounds(record: dict, bounds: dict[str, tuple[str, float]]) -> bool:
    """An ok record whose bounded fields all satisfy their bound.

    A null field that the registry marks `null_meets_bound` (undefined below 2 tokens) meets its
    bound, as in vLLM; any other null fails.
    """
    if not record.get("ok"):
        return False
    for field, (op, limit) in bounds.items():
        value = record.get(field)
        if value is None:
            if field in _NULL_MEETS:
                continue
            return False
        if not OPS[op](value, limit):
            return False
    return True
