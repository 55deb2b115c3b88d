"""`python -m sse_perf_tool` is the same program as `sse-perf`."""

import sys

from .cli import main

sys.exit(main())
