"""Every exit code of sse-perf, in one place. Imports nothing.

0 completed (even with failed requests); 1 an internal error; 2 bad usage or input (one line on
stderr, nothing sent); 3 no measured request succeeded (every file still written); 99 an SLO missed, a run stopped early by --max-error-rate or because its
first requests all failed, or a comparison's regression beyond --fail-on-regression; 130
interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (128 + the signal; every file written).
"""

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOTHING_OK = 3  # the run ended, but not one measured request succeeded
EXIT_SLO = 99
EXIT_REGRESSION = EXIT_SLO  # "the run is not good enough", as for a missed SLO
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM: timeout, Docker, Kubernetes, CI
EXIT_HANGUP = 129  # SIGHUP: the terminal went away
