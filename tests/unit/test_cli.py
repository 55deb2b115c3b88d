"""The run options as the CLI parses them, without running anything: every shipped examples/*.toml
reads through the real parser and validates as a RunConfig. Runs through the CLI are in
tests/integration/test_cli.py and test_cli_load.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sse_perf_tool.cli import config_from_args, parse_run_args
from sse_perf_tool.providers import parse_dataset_spec

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO_ROOT / "examples").glob("*.toml")))
def test_shipped_example_configs_parse_and_validate(example, monkeypatch):
    """Every examples/*.toml reads through the real parser and validates as a RunConfig; the dataset
    files it names exist (paths relative to the repo root)."""
    monkeypatch.chdir(REPO_ROOT)
    args = parse_run_args(["--config", f"examples/{example}"])
    cfg = config_from_args(args, {})
    for spec in cfg.datasets:
        assert Path(parse_dataset_spec(spec).path).is_file(), spec
    if cfg.slo:
        from sse_perf_tool.slo import parse_slos

        assert parse_slos(cfg.slo)


def test_there_are_example_configs():
    """The parametrised check above is not vacuous."""
    assert len(list((REPO_ROOT / "examples").glob("*.toml"))) >= 4
