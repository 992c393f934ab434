"""A stand-in pipeline for the launcher's tests: `python -m tests.training.launcher_child EXIT [SLEEP]`.

Prints its pid, cwd and one environment variable, then a line per tenth of a second while it
sleeps, then exits with EXIT ("raise" raises instead).
"""

import json
import os
import sys
import time

if __name__ == "__main__":
    code, sleep = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    print(json.dumps({"pid": os.getpid(), "cwd": os.getcwd(), "marker": os.environ.get("LAUNCHER_TEST_MARKER"),
                      "argv0": sys.argv[0], "name": __name__}))
    print("to stderr", file=sys.stderr)
    deadline = time.monotonic() + sleep
    while time.monotonic() < deadline:
        print("tick")
        time.sleep(0.1)
    if code == "raise":
        raise RuntimeError("the stand-in pipeline failed")
    sys.exit(int(code))
