"""summary: built from the figures the aggregator kept as records came; the same numbers as a pass
over the run folder's records.jsonl (which the run no longer reads back), for a real sweep run."""

import json
from pathlib import Path

from sse_perf_tool.slo import parse_slos, request_bounds
from sse_perf_tool.stats import RunFigures
from sse_perf_tool.storage import load_records
from sse_perf_tool.summary import build_summary


def _only_run(parent: Path) -> Path:
    (run_dir,) = [p for p in parent.iterdir() if p.is_dir()]
    return run_dir


def test_a_sweep_summary_kept_in_memory_equals_one_computed_from_its_records(make_mock, tmp_path, cli):
    server = make_mock(ttft_ms=2, itl_ms=1, tokens=5, error_rate=0.2, seed=3)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n")
    b.write_text("three\n")
    slo = "ttft_p95<500ms,success>=50%"
    code, _, err = cli(["--base-url", server.base_url, "--sweep-threads", "1,2", "--requests", 12, "--warmup-requests", 2,
                        "--dataset", f"a={a}", "--dataset", f"b={b}:2", "--slo", slo, "--seed", 5,
                        "--output-dir", tmp_path / "out", "--quiet", "--no-history", "--keep-going"])
    assert code in (0, 99), err
    run_dir = _only_run(tmp_path / "out")
    written = json.loads((run_dir / "summary.json").read_text())
    slos = parse_slos(slo)
    figures = RunFigures.from_records(load_records(run_dir), request_bounds(slos), per_level=True)
    levels = [{k: block[k] for k in ("from_s", "to_s", "warmup_to_s")} | {"value": block["level"]["threads"],
              "duration_s": block["requests"]["ok"] / block["throughput"]["requests_per_s"]
              if block["throughput"]["requests_per_s"] else None} for block in written["levels"]]
    again = build_summary(written["run"], figures, written["run"]["duration_s"], slos, levels, "threads", (1, 2))
    for key in ("requests", "errors", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "datasets", "goodput", "tokens", "slo"):
        expected = dict(written[key]) if isinstance(written[key], dict) else written[key]
        if key == "requests":
            expected.pop("not_sent")
        assert json.loads(json.dumps(again[key])) == expected, key
    for mine, theirs in zip(again["levels"], written["levels"]):
        assert mine["requests"]["total"] == theirs["requests"]["total"] and mine["ttft_ms"] == theirs["ttft_ms"]
    assert written["requests"]["warmup"] == 4 and set(written["datasets"]) == {"a", "b"}
