"""`python -m sse_perf_tool` is the same program as `sse-perf`."""

import sys

from .cli import main

if __name__ == "__main__":  # --processes starts workers with `spawn`, which imports this module again
    sys.exit(main())
