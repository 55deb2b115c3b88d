"""The tokens module in a fresh interpreter: importing it does not import tiktoken."""

from __future__ import annotations

import subprocess
import sys




def test_importing_tokens_does_not_import_tiktoken():
    """`sse-perf --help` must stay fast: tiktoken is imported on first count only."""
    code = "import sys, sse_perf_tool.tokens, sse_perf_tool.flavors; print('tiktoken' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
