"""A real run's findings reach every output: summary.json, the end of the terminal output, the
report (first, before the summary) and `compare --json` (new, gone, the same)."""

from __future__ import annotations

import json
from pathlib import Path

from sse_perf_tool.cli import main


def _run(tmp_path: Path, capsys, *extra) -> tuple[Path, str]:
    code = main(["--demo", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=4", "--requests", "6", "--threads", "2",
                 "--output-dir", str(tmp_path), "--no-history", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("run folder: ")))
    return run_dir, out


def test_a_short_run_says_it_has_too_few_requests_for_a_p99_everywhere(tmp_path, capsys):
    run_dir, out = _run(tmp_path, capsys)
    summary = json.loads((run_dir / "summary.json").read_text())
    (few,) = [f for f in summary["findings"] if f["id"] == "few_requests"]
    assert few["severity"] == "info" and few["evidence"] == {"ok": 6, "needed": 100}
    assert few["title"] == "Too few requests for a stable p99" and "6 successful requests" in few["text"]
    assert few["suggestion"]
    lines = out.splitlines()
    at = lines.index("findings:")
    shown = [line for line in lines[at + 1:] if line.startswith("  [")]
    assert len(shown) == min(3, len(summary["findings"]))
    for line, finding in zip(shown, summary["findings"]):  # the most severe, in the summary's order
        assert line.startswith(f"  [{finding['severity']}] {finding['title']}: ")
    if len(summary["findings"]) <= 3:  # (a loaded machine may add a warning, which comes first)
        assert any(line.startswith("  [info] Too few requests for a stable p99: 6 successful requests")
                   for line in shown)
    end = next(i for i, line in enumerate(lines) if line.startswith("run folder: "))
    assert all(len(line) <= 80 for line in lines[at:end])  # the findings fit the terminal
    html = (run_dir / "report.html").read_text()
    assert html.index('id="findings"') < html.index('id="summary"')
    assert 'data-finding="few_requests"' in html


def test_compare_says_which_findings_are_new_gone_or_the_same(tmp_path, capsys):
    first, _ = _run(tmp_path / "a", capsys)
    second, _ = _run(tmp_path / "b", capsys, "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=4,rate_limit_rate=0.5,seed=3",
                     "--keep-going")
    assert main(["compare", str(first), str(second), "--json"]) in (0, 99)
    comparison = json.loads(capsys.readouterr().out)
    (entry,) = comparison["findings"]
    assert "rate_limited" in [f["id"] for f in entry["new"]]
    assert "few_requests" in [f["id"] for f in entry["unchanged"]]
    assert "rate_limited" not in [f["id"] for f in entry["gone"] + entry["unchanged"]]
    assert main(["compare", str(first), str(second)]) in (0, 99)
    text = capsys.readouterr().out
    assert "  + [critical] Rate limited" in text
