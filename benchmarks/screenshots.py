"""Screenshots of the HTML reports, for a person to look at after a change to the templates.

Renders the reports the browser tests check (tests/browser/: the same fabricated run folders from
tests/report_fixtures.py and tests/compare_fixtures.py, and one real run against the embedded mock
server) and saves full-page and section screenshots with Debian's headless Chromium (playwright).
The tests assert what a user would see; this only takes the pictures. Usage:

    .venv/bin/python benchmarks/screenshots.py [--out test-output]   # test-output/ is git-ignored
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from browser_support import CHROMIUM, launched_browser  # noqa: E402
from compare_fixtures import make_compare_reports  # noqa: E402
from report_fixtures import make_open_loop_run_dir, make_run_dir, make_sweep_run_dir  # noqa: E402


def report_pages(work: Path) -> list[tuple[str, Path, int, list[tuple[str, str]]]]:
    """(file name, report, window width, [(section file name, CSS selector)]) for each screenshot."""
    from sse_perf_tool.report import write_report

    run = make_run_dir(work / "run", seconds=30, threads=20, ramp_up_s=5, with_gpu=True, with_datasets=True,
                       xss=True, extra_columns=["client_lag_ms"])
    sweep = make_sweep_run_dir(work / "sweep", with_gpu=True)
    open_loop = make_open_loop_run_dir(work / "open", stopped_early="error rate 85.0% over the last 50 requests > 20%")
    saturated = make_run_dir(work / "selfcheck", seconds=30, threads=20, ramp_up_s=5, client="saturated")
    busy = make_run_dir(work / "busy", seconds=30, threads=4, client="busy")
    en, zh = write_report(run, run / "report.html"), write_report(run, run / "report-zh.html", lang="zh")
    sweep_en, sweep_zh = write_report(sweep, sweep / "report.html"), write_report(sweep, sweep / "report-zh.html", lang="zh")
    open_en = write_report(open_loop, open_loop / "report.html")
    self_en = write_report(saturated, saturated / "report.html")
    self_zh = write_report(saturated, saturated / "report-zh.html", lang="zh")
    return [
        ("report-screenshot.png", en, 1400, []),
        ("report-screenshot-zh.png", zh, 1400, []),
        ("report-screenshot-narrow.png", en, 420, []),
        ("report-sweep.png", sweep_en, 1400, [("report-sweep-section.png", "#sweep"),
                                              ("report-sweep-bands.png", "#timeseries .chart-grid >> nth=0")]),
        ("report-sweep-zh.png", sweep_zh, 1400, []),
        ("report-open.png", open_en, 1400, []),
        ("report-sweep-narrow.png", sweep_en, 420, []),
        ("report-open-narrow.png", open_en, 420, []),
        ("report-selfcheck.png", self_en, 1400, [("report-selfcheck-charts.png", "#timeseries .chart-grid >> nth=-1")]),
        ("report-selfcheck-zh-narrow.png", self_zh, 420, []),
        ("report-machine-busy.png", write_report(busy, busy / "report.html"), 1400, []),
        ("report-token-note.png", real_run_report(work / "real"), 1400, []),
    ]


def real_run_report(out: Path) -> Path:
    """A run over loopback against a server with no usage and some empty answers (the token note)."""
    from sse_perf_tool.cli import main
    from sse_perf_tool.mock_server import MockConfig, MockServer
    from sse_perf_tool.report import write_report

    with MockServer(MockConfig(ttft_ms=2, itl_ms=1, tokens=6, usage=False, empty_rate=0.5, seed=5)) as server:
        code = main(["--base-url", server.base_url, "--api", "openai-chat", "--model", "qwen3-8b", "--requests", "12",
                     "--output-dir", str(out), "--quiet", "--no-history"])
    if code != 0:
        raise SystemExit(f"the run against the mock server exited {code}")
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return write_report(run_dir, run_dir / "report-en.html", lang="en")


def compare_pages(work: Path) -> list[tuple[str, Path, int, list]]:
    reports = make_compare_reports(work / "compare")
    return [("compare.png", reports["en"], 1400, []),
            ("compare-zh.png", reports["zh"], 1400, []),
            ("compare-sweep.png", reports["sweep"], 1400, [])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "test-output", help="folder for the PNG files")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is absent (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        shots = report_pages(Path(tmp)) + compare_pages(Path(tmp))
        for browser in launched_browser():
            for name, path, width, sections in shots:
                page = browser.new_page(viewport={"width": width, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(path.as_uri())
                page.screenshot(path=str(args.out / name), full_page=True)
                for section_name, selector in sections:
                    page.locator(selector).screenshot(path=str(args.out / section_name))
                page.close()
                print(f"{args.out / name}" + (f"  (page errors: {errors})" if errors else ""))
                for section_name, _ in sections:
                    print(f"{args.out / section_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
