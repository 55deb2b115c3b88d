"""Does the self-check tell a busy machine from a saturated load generator? (issue 13)

Runs `sse-perf --demo` at one thread for 10 s while, from its second 2 on, one real-time CPU burner
per core (chrt -f 10, 8 s each; Linux' real-time throttling still leaves 5 % to everyone else)
takes the machine. Expected: "machine busy" with the other processes' CPU and the load, never
"use fewer threads". Needs Linux and root (chrt). Everything is bounded: burners stop after 8 s.

    python benchmarks/busy_machine.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

BURN = "import time\nend = time.time() + 8\nwhile time.time() < end: pass\n"


def main() -> int:
    if shutil.which("chrt") is None or os.geteuid() != 0:
        print("needs Linux' chrt and root (real-time burners)", file=sys.stderr)
        return 2
    out_dir = tempfile.mkdtemp(prefix="sse-perf-busy-")
    run = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--demo", "--threads", "1", "--duration", "10",
                            "--output-dir", out_dir, "--no-history"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    burners = [subprocess.Popen(["timeout", "9", "chrt", "-f", "10", sys.executable, "-c", BURN])
               for _ in range(os.cpu_count() or 1)]
    output, _ = run.communicate(timeout=120)
    for burner in burners:
        burner.wait(timeout=30)
    lines = [line for line in output.splitlines() if line.startswith("!!") or line.startswith("load generator")]
    print("\n".join(lines))
    busy = any("machine busy" in line or "was busy with other work" in line for line in lines)
    blamed = any("fewer threads" in line for line in lines)
    print(f"verdict: {'machine busy' if busy else 'no busy-machine warning'}"
          f"{', and it advised fewer threads (wrong)' if blamed else ''}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0 if busy and not blamed else 1


if __name__ == "__main__":
    sys.exit(main())
