"""Findings in a comparison: for each run against the baseline, the findings that are new, gone
and unchanged (by id). A run's findings are its summary.json's, or, for a run recorded before
findings existed, those of its summary and time series. Imports findings.
"""

from __future__ import annotations

from .findings import SEVERITIES, describe, findings


def run_findings(run) -> list[dict]:
    found = run.summary.get("findings") if isinstance(run.summary, dict) else None
    if isinstance(found, list):
        return [f for f in found if isinstance(f, dict) and f.get("severity") in SEVERITIES and f.get("id")]
    return findings(run.summary if isinstance(run.summary, dict) else {}, run.timeseries())


def findings_diff(runs: list) -> list[dict]:
    """[{run, new, gone, unchanged}] for each run after the baseline; each list holds
    {id, severity, title} (the title in English, as summary.json has it)."""
    found = [run_findings(run) for run in runs]
    base = {f["id"]: f for f in found[0]} if found else {}
    out = []
    for run, own in zip(runs[1:], found[1:]):
        mine = {f["id"]: f for f in own}
        out.append({"run": run.label,
                    "new": [_brief(f) for i, f in mine.items() if i not in base],
                    "gone": [_brief(f) for i, f in base.items() if i not in mine],
                    "unchanged": [_brief(f) for i, f in mine.items() if i in base]})
    return out


def _brief(finding: dict) -> dict:
    try:
        title = describe(finding)["title"]
    except (KeyError, IndexError, ValueError):  # a finding this version has no words for
        title = str(finding.get("title") or finding["id"])
    return {"id": finding["id"], "severity": finding["severity"], "title": title, "evidence": finding.get("evidence")}


def diff_lines(comparison: dict, t: dict) -> list[str]:
    """The terminal's lines: per compared run, its new and gone findings (unchanged counted)."""
    lines = []
    for entry in comparison.get("findings") or ():
        if not (entry["new"] or entry["gone"]):
            continue
        lines.append(t["findings_vs"].format(run=entry["run"], same=len(entry["unchanged"])))
        lines += [f"  + [{f['severity']}] {f['title']}" for f in entry["new"]]
        lines += [f"  - [{f['severity']}] {f['title']}" for f in entry["gone"]]
    return lines
