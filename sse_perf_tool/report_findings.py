"""The report's findings: summary.json's `findings` (or, for a folder written before them, the
findings of its summary and time series), in the report's language, each with the chart that
shows it and the seconds it covers marked on that chart. Imports findings (the words) and nothing
of the report but the chart groups it is given.
"""

from __future__ import annotations

from typing import Optional

from .findings import SEVERITIES, describe, findings

BANDED = ("client_saturated", "machine_busy")  # every time chart shades those seconds already (the self-check's band)


def findings_view(summary: dict, rows: list[dict], groups: list[dict], lang: str,
                  requests: Optional[dict] = None) -> tuple[list[dict], list[dict]]:
    """(the findings for the template, the chart marks for the page's script). A finding names
    a column; its chart is the first of `groups` drawing that column."""
    found = summary.get("findings")
    if not isinstance(found, list):
        found = findings(summary, rows, requests)
    charts = {}
    for group in groups:
        for chart in group["charts"]:
            for series in chart["series"]:
                charts.setdefault(series["col"], (chart["id"], chart["title"]))
    view, marks = [], []
    for finding in sorted((f for f in found if isinstance(f, dict) and f.get("severity") in SEVERITIES),
                          key=lambda f: SEVERITIES.index(f["severity"])):
        try:
            words = describe(finding, lang)
        except (KeyError, IndexError, ValueError):  # a finding this version has no words for (a newer sse-perf's)
            words = {"title": str(finding.get("title") or finding.get("id")), "evidence": str(finding.get("text") or ""),
                     "suggestion": str(finding.get("suggestion") or "")}
        chart_id, chart_title = charts.get(finding.get("chart"), (None, None))
        words = dict(words, evidence=words["evidence"][:1].upper() + words["evidence"][1:])  # a line of its own
        view.append(dict(words, id=finding.get("id"), severity=finding["severity"], chart_id=chart_id,
                         chart_title=chart_title, seconds=_seconds(finding.get("from_s"), finding.get("to_s"))))
        if chart_id is not None and finding.get("from_s") is not None and finding.get("id") not in BANDED:
            marks.append({"chart": chart_id, "from": finding["from_s"], "to": finding.get("to_s"),
                          "severity": finding["severity"], "id": finding.get("id")})
    return view, marks


def _seconds(start, end) -> Optional[str]:
    if start is None:
        return None
    return f"{start:g}–{end:g} s" if end is not None else f"{start:g} s –"
