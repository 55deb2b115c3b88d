"""summary.json assembled: the whole-run figures, one block per sweep level, SLO verdicts, and
(complete_summary) what the run measured beside the records: requests never sent, the client
self-check, the server tokenizer's counts, the GPUs.

Imports stats, slo and tokens (and gpu.summary when GPUs were sampled); built from the figures the
run kept as records came, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .slo import all_met, evaluate_slos
from .stats import RunFigures
from .tokens import SOURCE_TOKENIZER, tiktoken_note


def build_summary(
    run_section: dict,
    figures: RunFigures,
    duration_s: Optional[float],
    slos: tuple = (),
    levels: Optional[list[dict]] = None,
    sweep_kind: Optional[str] = None,
    sweep_values: tuple = (),
) -> dict:
    """The whole summary.json, from the figures the run kept (`RunFigures`, per level in a sweep,
    with the per-request bounds of `slos`).

    `levels` (sweeps): one dict per level that ran, in run order, {"value", "from_s", "to_s",
    "warmup_to_s", "duration_s"}; `sweep_values` are all the planned levels (an early stop or Ctrl-C
    may leave some unrun). For a sweep the top-level `slo` holds the verdicts of the best level (the
    highest that meets every SLO), or of the first level when none does, so that "any top-level SLO
    missed" means "exit 99" in both cases.
    """
    summary = {"run": run_section}
    summary.update(figures.whole.summary(duration_s))
    summary["tokens"]["note"] = token_note(summary, run_section)
    if slos:
        summary["slo"] = evaluate_slos(slos, summary)
    if not levels:
        return summary
    blocks = []
    for level in levels:
        value = level["value"]
        block = {"level": {sweep_kind: value}, "from_s": level["from_s"], "to_s": level["to_s"],
                 "warmup_to_s": level.get("warmup_to_s")}
        block.update(figures.level(value).summary(level.get("duration_s")))
        if slos:
            block["slo"] = evaluate_slos(slos, block)
            block["meets_slo"] = all_met(block["slo"])
        else:
            block["meets_slo"] = None
        blocks.append(block)
    summary["levels"] = blocks
    best = best_level(blocks)
    summary["sweep"] = {"kind": sweep_kind, "values": list(sweep_values) or [lv["value"] for lv in levels],
                        "best_level": None if best is None else best["level"][sweep_kind]}
    if slos and blocks:
        summary["slo"] = (best or blocks[0])["slo"]
    return summary


@dataclass(frozen=True)
class ServerTokenCounts:
    """What the --tokenizer server counting stage did: summary.json's `tokens.server`."""

    endpoint: str  # the tokenizer's description
    counted: int  # answers counted by the server's endpoint
    fell_back: int  # answers counted locally because the endpoint failed
    failure: Optional[str]  # why the endpoint stopped being asked, if it did


def complete_summary(
    run_section: dict,
    figures: RunFigures,
    duration_s: Optional[float],
    slos: tuple = (),
    levels: Optional[list[dict]] = None,
    sweep_kind: Optional[str] = None,
    sweep_values: tuple = (),
    *,
    not_sent: int = 0,
    client: Optional[dict] = None,
    server_tokens: Optional[ServerTokenCounts] = None,
    gpu_samples: Optional[Sequence] = None,
) -> dict:
    """The whole summary.json of a finished run: `build_summary` over the figures, then what was
    measured beside the records, in this order: `requests.not_sent` (`not_sent`, and each sweep
    level's from its `levels` dict's "not_sent"), `client` (the self-check probe's section),
    `tokens.server` (when the counting stage ran), and `gpu` with
    `throughput.output_tokens_per_joule` (when GPUs were sampled: `gpu_samples` not None).
    """
    summary = build_summary(run_section, figures, duration_s, slos, levels, sweep_kind, sweep_values)
    summary["requests"]["not_sent"] = not_sent
    for block, level in zip(summary.get("levels") or (), levels or ()):
        block["requests"]["not_sent"] = level.get("not_sent", 0)
    summary["client"] = client
    if server_tokens is not None:
        summary["tokens"]["server"] = {"endpoint": server_tokens.endpoint, "counted": server_tokens.counted,
                                       "fell_back": server_tokens.fell_back, "failure": server_tokens.failure}
    if gpu_samples is not None:
        from .gpu.summary import summarise_gpu, total_energy_j

        summary["gpu"] = summarise_gpu(gpu_samples)
        energy = total_energy_j(summary["gpu"])
        tokens = summary["throughput"]["output_tokens_total"]
        summary["throughput"]["output_tokens_per_joule"] = tokens / energy if energy else None
    return summary


def token_note(summary: dict, run_section: dict) -> Optional[str]:
    """The warning that token counts came from tiktoken for a model that is not OpenAI's (once)."""
    if not summary["tokens"]["sources"].get(SOURCE_TOKENIZER):
        return None
    config = run_section.get("config") or {}
    return tiktoken_note(config.get("model"), config.get("tokenizer") or "cl100k_base")


def best_level(blocks: list[dict]) -> Optional[dict]:
    """The highest level that meets every SLO (levels need not be sorted), or None."""
    met = [b for b in blocks if b.get("meets_slo")]
    if not met:
        return None
    return max(met, key=lambda b: next(iter(b["level"].values())))


def slo_missed(summary: dict) -> bool:
    return any(not v["met"] for v in summary.get("slo") or ())


def with_findings(summary: dict, rows, requests: Optional[dict] = None) -> dict:
    """`summary` with its `findings` (findings.py) over the per-second `rows`: each finding's id,
    severity, evidence (the numbers), its words in English (title, text, suggestion), the chart that
    shows it and the seconds it covers."""
    from .findings import describe, findings

    summary["findings"] = [dict(f, **{key: value for key, value in describe(f).items() if key != "evidence"},
                                text=describe(f)["evidence"]) for f in findings(summary, rows, requests)]
    return summary
