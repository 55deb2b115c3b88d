"""`sse-perf ui`: the local console over the history database and the run folders (Runs, New run,
Targets), served until Ctrl-C. The cli package dispatches `ui` here; the pages are ui_server's.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Sequence

from ..config import ConfigError, parse_live_address
from ..exit_codes import EXIT_OK, EXIT_USAGE
from .common import Parser

UI_EXAMPLES = """\
examples:
  sse-perf ui
      the console on http://127.0.0.1:8089/ (the URL with its token is printed)
  sse-perf ui --port 0 --output-dir runs
      on a free port, over runs/history.db and the run folders in runs/
  sse-perf ui --host 0.0.0.0 --port 8089 --allow-remote
      reachable from other machines (anyone with the token can start and stop runs)

exit codes: 0 stopped with Ctrl-C, 2 bad usage (a port in use, an address without --allow-remote).
"""


def build_ui_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sse-perf ui", epilog=UI_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="A local web console: the runs of the history (filter, open a report, compare, download "
               "a run's files), a New run form that starts runs as the command line would and opens their live "
               "view, and saved targets.")
    p.add_argument("--port", type=int, default=8089, help="port to serve on; 0 takes a free one (default: 8089)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow an address other machines can reach: anyone with the URL's token can then start and "
                   "stop runs, over plain HTTP")
    p.add_argument("--output-dir", default="report", help="where the runs are written and history.db lives "
                   "(default: ./report)")
    p.add_argument("--history", metavar="PATH", help="history database (default: OUTPUT_DIR/history.db)")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the console")
    return p


def ui_main(argv: Sequence[str]) -> int:
    args = build_ui_parser().parse_args(list(argv))
    from ..history import default_history_path
    from .ui_server import UiServer

    host = args.host.strip("[]")
    try:
        parse_live_address(f"[{host}]:{args.port}" if ":" in host else f"{host}:{args.port}", args.allow_remote)
        server = UiServer(host, args.port, args.history or default_history_path(args.output_dir), args.output_dir,
                          args.lang)
    except ConfigError as exc:
        print(f"sse-perf ui: error: {str(exc).replace('--live', '--host/--port')}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sse-perf ui: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    server.serve()
    print(f"sse-perf console: {server.url}", flush=True)
    print(f"history: {server.history_path}; runs go to {args.output_dir}/ (Ctrl-C stops the console and the runs it "
          "started)", flush=True)
    if not server.loopback:
        print("warning: --allow-remote: anyone who can reach this address and has the URL's token can start and "
              "stop runs; the pages and the token travel unencrypted (plain HTTP)", file=sys.stderr)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping the console (and the runs it started)", flush=True)
    finally:
        server.close()
    return EXIT_OK
