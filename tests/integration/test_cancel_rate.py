"""--cancel-rate and --cancel-after, users who give up: the share drawn with --seed is cancelled by
sse-perf after N token events or S seconds, recorded as abandoned (neither ok nor failed), in
closed and open loop; Dify's stop endpoint is called; bad values exit 2 before anything is sent."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sse_perf_tool.cli import main


def _run(tmp_path: Path, capsys, *extra) -> tuple[dict, list[dict], str]:
    code = main(["--demo", "--output-dir", str(tmp_path), "--no-history", "--seed", "7", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("run folder: ")))
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    return json.loads((run_dir / "summary.json").read_text()), records, out


def test_the_seeded_share_gives_up_after_n_tokens_and_is_not_a_failure(tmp_path, capsys):
    summary, records, out = _run(tmp_path, capsys, "--api", "openai-chat", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=20",
                                 "--requests", "30", "--threads", "3", "--cancel-rate", "40", "--cancel-after", "5tokens")
    chosen = {r["request_id"] for r in records if random.Random(f"7:{r['request_id']}").random() < 0.4}
    abandoned = [r for r in records if r["error_kind"] == "abandoned"]
    assert {r["request_id"] for r in abandoned} == chosen and chosen
    assert all(r["chunks"] == 5 and not r["ok"] for r in abandoned)
    assert summary["requests"]["abandoned"] == len(chosen)
    assert summary["requests"]["failed"] == 0 and "abandoned" not in summary["errors"]
    assert summary["requests"]["ok"] == 30 - len(chosen)
    assert f"abandoned by their users (--cancel-rate; not failures): {len(chosen)}" in out


def test_users_give_up_after_s_seconds_in_open_loop_and_dify_is_told_to_stop(tmp_path, capsys):
    summary, records, _ = _run(tmp_path, capsys, "--api", "dify-chat", "--demo-mock", "ttft_ms=20,itl_ms=20,tokens=40",
                               "--rate", "10", "--duration", "2", "--cancel-rate", "50", "--cancel-after", "0.25s")
    assert records and all(r["error_kind"] == "abandoned" for r in records if not r["ok"])
    abandoned = [r for r in records if r["error_kind"] == "abandoned"]
    assert abandoned and len(abandoned) == summary["requests"]["abandoned"]
    assert all(250 <= r["total_ms"] < 250 + 200 for r in abandoned)  # given up at the moment set, by the reader's tick
    assert summary["requests"]["stops"]["ok"] == len(abandoned)  # Dify's stop endpoint, for each


@pytest.mark.parametrize("extra,needle", [
    (["--cancel-rate", "10"], "--cancel-rate and --cancel-after go together"),
    (["--cancel-after", "2s"], "--cancel-rate and --cancel-after go together"),
    (["--cancel-rate", "0", "--cancel-after", "2s"], "--cancel-rate must be"),
    (["--cancel-rate", "150", "--cancel-after", "2s"], "--cancel-rate must be"),
    (["--cancel-rate", "10", "--cancel-after", "soon"], "--cancel-after takes"),
    (["--cancel-rate", "10", "--cancel-after", "0tokens"], "--cancel-after takes"),
])
def test_bad_values_are_one_line_and_exit_2(tmp_path, capsys, extra, needle):
    assert main(["--demo", "--output-dir", str(tmp_path), "--requests", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and not any(tmp_path.iterdir())
