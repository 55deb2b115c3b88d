"""The report module in a fresh interpreter: importing it does not import Jinja2."""

from __future__ import annotations

import subprocess
import sys




def test_jinja_is_not_imported_with_the_module():
    code = "import sys, sse_perf_tool.report; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
